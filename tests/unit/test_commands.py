"""The `/incident …` parser: every subcommand's happy paths, every error path, and random text.

`parse()` is a pure function: it returns a `Command` or a `UsageError` and never raises. The grammar is the command
table and the "Bad input" section of issue 2; whether a severity exists or an incident is open is the service's
business and is tested elsewhere.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import date, time, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.incident.commands import (
    MAX_TEXT,
    SUBCOMMANDS,
    USAGE,
    Acknowledge,
    AddAction,
    AddNote,
    AssignRole,
    ChangeSeverity,
    Close,
    Command,
    CompilePostmortem,
    CompleteAction,
    Declare,
    Help,
    LinkTenants,
    ListIncidents,
    Mitigate,
    PostStatus,
    PrepareBrief,
    Reopen,
    Resolve,
    SendBrief,
    SetFreeze,
    ShowIncident,
    ShowPlaybook,
    Snooze,
    TickChecklist,
    UsageError,
    parse,
)

CONTROL_CATEGORIES = {"Cc", "Cf", "Cs"}
JOINERS = "\u200c\u200d"  # format characters that are kept on purpose: emoji sequences, Persian


def ok(text: str, kind: type[Command]) -> Command:
    """Parse `text` and insist on a command of type `kind`."""
    result = parse(text)
    assert isinstance(result, kind), f"{text!r} parsed to {result!r}, expected a {kind.__name__}"
    return result


def err(text: str) -> UsageError:
    """Parse `text` and insist on a usage error."""
    result = parse(text)
    assert isinstance(result, UsageError), f"{text!r} parsed to {result!r}, expected a UsageError"
    return result


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in CONTROL_CATEGORIES and ch not in JOINERS for ch in value)


# --------------------------------------------------------------------------------------------------------- declare


def test_declare_takes_severity_title_and_impact() -> None:
    command = ok('declare P1 "Payments callbacks not arriving" impact="customers charged, bookings unconfirmed"',
                 Declare)
    assert command == Declare(title="Payments callbacks not arriving", severity="P1",
                              impact="customers charged, bookings unconfirmed")


def test_declare_without_severity_leaves_it_to_the_ladder_default() -> None:
    command = ok('declare "Payments down"', Declare)
    assert command.severity is None
    assert command.title == "Payments down"
    assert command.impact is None


def test_declare_accepts_an_unquoted_title() -> None:
    assert ok("declare P2 checkout is slow for everyone", Declare) == Declare(
        title="checkout is slow for everyone", severity="P2")


def test_declare_accepts_an_unquoted_title_without_severity() -> None:
    assert ok("declare checkout slow", Declare) == Declare(title="checkout slow", severity=None)


def test_declare_upper_cases_the_severity() -> None:
    assert ok('declare sev1 "Payments down"', Declare).severity == "SEV1"


@pytest.mark.parametrize("option", ["sev", "severity"])
def test_declare_takes_severity_as_an_option(option: str) -> None:
    command = ok(f'declare "Payments down" {option}=p2', Declare)
    assert (command.severity, command.title) == ("P2", "Payments down")


def test_declare_options_may_come_before_the_title() -> None:
    assert ok('declare P1 impact="all EU customers" "Payments down"', Declare) == Declare(
        title="Payments down", severity="P1", impact="all EU customers")


def test_declare_quoted_severity_lookalike_is_part_of_the_title() -> None:
    command = ok('declare "P1"', Declare)
    assert (command.severity, command.title) == (None, "P1")


def test_declare_understands_smart_quotes() -> None:
    command = ok("declare P1 “Payments down” impact=“customers charged twice”", Declare)
    assert command == Declare(title="Payments down", severity="P1", impact="customers charged twice")


def test_declare_understands_single_quotes() -> None:
    command = ok("declare P1 'Payments down' impact='EU only'", Declare)
    assert command == Declare(title="Payments down", severity="P1", impact="EU only")


def test_declare_understands_typographic_single_quotes_and_guillemets() -> None:
    assert ok("declare P1 ‘Payments down’", Declare).title == "Payments down"
    assert ok("declare P1 «Paiements en panne»", Declare).title == "Paiements en panne"


def test_declare_keeps_an_apostrophe_inside_a_double_quoted_title() -> None:
    assert ok('declare P1 "Bob\'s queue is stuck"', Declare).title == "Bob's queue is stuck"


@pytest.mark.parametrize("text", ["declare", "declare P1", 'declare P1 impact="everyone"', 'declare P1 ""',
                                  'declare "   "'])
def test_declare_without_a_title_says_the_title_is_missing(text: str) -> None:
    error = err(text)
    assert error.message.startswith("Missing title")
    assert error.usage == USAGE["declare"]


def test_declare_with_an_unknown_option_lists_the_valid_options() -> None:
    error = err('declare P1 "Payments down" owner=@bob')
    assert "Unknown option 'owner='" in error.message
    for valid in ("impact=", "sev=", "severity="):
        assert valid in error.message


@pytest.mark.parametrize("text", ['declare P1 "Payments down" impact=', 'declare P1 "Payments down" impact=""',
                                  'declare P1 "Payments down" impact="   "'])
def test_declare_with_an_empty_option_value_says_it_needs_a_value(text: str) -> None:
    assert err(text).message == "Option 'impact=' needs a value."


# ------------------------------------------------------------------------------------------------------------- ack


@pytest.mark.parametrize("text", ["ack", "ACK", "acknowledge"])
def test_ack_acknowledges(text: str) -> None:
    assert ok(text, Acknowledge) == Acknowledge()


def test_ack_with_an_incident_reference_names_the_incident() -> None:
    assert ok("ack INC-4", Acknowledge).incident == 4


def test_ack_with_arguments_says_it_takes_none() -> None:
    error = err("ack right now")
    assert error.message == "'ack' takes no arguments, got 'right now'."


# ---------------------------------------------------------------------------------------------------------- status


def test_status_takes_quoted_text() -> None:
    assert ok('status "DB failover done; next update 10:30"', PostStatus) == PostStatus(
        text="DB failover done; next update 10:30")


def test_status_takes_unquoted_text() -> None:
    assert ok("status db is back, watching error rates", PostStatus).text == "db is back, watching error rates"


@pytest.mark.parametrize(("text", "expected"), [
    ("status retry=3 worked", PostStatus(text="retry=3 worked")),
    ('status set timeout="30s" on the pool', PostStatus(text='set timeout="30s" on the pool')),
    ("note set max_conns=200 on primary", AddNote(text="set max_conns=200 on primary")),
    ("resolve pool_size=50 deployed", Resolve(summary="pool_size=50 deployed")),
])
def test_free_text_keeps_words_that_look_like_options(text: str, expected: Command) -> None:
    # These once lost their key: 'retry=3 worked' became '3 worked'.
    assert parse(text) == expected


def test_update_is_an_alias_of_status() -> None:
    assert ok('update "still looking"', PostStatus).text == "still looking"


@pytest.mark.parametrize("text", ["status", 'status ""', "status INC-7"])
def test_status_without_text_says_the_text_is_missing(text: str) -> None:
    assert err(text).message == "Missing status text."


# ------------------------------------------------------------------------------------------------------------- sev


@pytest.mark.parametrize(("text", "level"), [("sev P1", "P1"), ("sev p0", "P0"), ("severity SEV2", "SEV2"),
                                             ('sev "s3"', "S3")])
def test_sev_changes_the_level_upper_cased(text: str, level: str) -> None:
    assert ok(text, ChangeSeverity) == ChangeSeverity(level=level)


@pytest.mark.parametrize("text", ["sev", "sev P1 P2", 'sev ""'])
def test_sev_needs_exactly_one_level(text: str) -> None:
    assert err(text).message == "Say the new severity, e.g. /incident sev P1."


# ------------------------------------------------------------------------------------------------------------ role


@pytest.mark.parametrize(("word", "role"), [("ic", "ic"), ("ops", "ops"), ("comms", "comms"), ("scribe", "scribe"),
                                            ("commander", "ic"), ("IC", "ic"), ("Scribe", "scribe")])
def test_role_assigns_every_role_and_the_commander_alias(word: str, role: str) -> None:
    assert ok(f"role {word} @alice", AssignRole) == AssignRole(role=role, user="alice")


def test_role_strips_the_at_sign_from_the_user() -> None:
    assert ok("role ops @bob", AssignRole).user == "bob"


def test_role_keeps_a_plain_user_name() -> None:
    assert ok("role ops bob", AssignRole).user == "bob"


def test_role_keeps_a_platform_mention_intact() -> None:
    assert ok("role comms <@U123>", AssignRole).user == "<@U123>"


def test_role_with_an_unknown_role_lists_the_roles() -> None:
    error = err("role boss @alice")
    assert error.message == "Unknown role 'boss'. Roles: ic, ops, comms, scribe."


@pytest.mark.parametrize("text", ["role", "role ic", "role ic @alice @bob"])
def test_role_needs_a_role_and_one_person(text: str) -> None:
    assert err(text).message == "Say the role and the person, e.g. /incident role ic @alice."


@pytest.mark.parametrize("text", ['role ic ""', "role ic @", 'role ic "@"'])
def test_role_with_an_empty_person_asks_who(text: str) -> None:
    assert err(text).message == "Say who takes the role, e.g. @alice."


# ------------------------------------------------------------------------------------------------------------ note


def test_note_adds_untagged_text() -> None:
    assert ok('note "rolled back deploy 4411"', AddNote) == AddNote(text="rolled back deploy 4411")


def test_note_takes_unquoted_text() -> None:
    assert ok("note paged the DBA", AddNote).text == "paged the DBA"


@pytest.mark.parametrize("tag", ["rootcause", "contributing", "wentwell"])
def test_note_takes_a_post_mortem_tag(tag: str) -> None:
    assert ok(f'note {tag} "connection pool exhausted"', AddNote) == AddNote(text="connection pool exhausted", tag=tag)


def test_note_tag_is_case_insensitive() -> None:
    assert ok('note RootCause "pool exhausted"', AddNote).tag == "rootcause"


def test_a_quoted_tag_word_is_note_text_not_a_tag() -> None:
    assert ok('note "rootcause" unknown yet', AddNote) == AddNote(text="rootcause unknown yet")


@pytest.mark.parametrize(("value", "at"), [("09:52", time(9, 52)), ("9:05", time(9, 5)), ("00:00", time(0, 0)),
                                           ("23:59", time(23, 59))])
def test_note_at_records_when_it_happened(value: str, at: time) -> None:
    assert ok(f'note --at {value} "callbacks stopped"', AddNote) == AddNote(text="callbacks stopped", at=at)


def test_note_takes_a_tag_and_a_time_together() -> None:
    assert ok('note contributing --at 08:15 "alert threshold too high"', AddNote) == AddNote(
        text="alert threshold too high", tag="contributing", at=time(8, 15))
    assert ok('note --at 08:15 wentwell "rollback took 2 minutes"', AddNote) == AddNote(
        text="rollback took 2 minutes", tag="wentwell", at=time(8, 15))


@pytest.mark.parametrize("value", ["25:99", "9.52", "24:00", "12:60", "0952", "noon", "9:5"])
def test_note_with_a_bad_time_says_hh_mm(value: str) -> None:
    error = err(f'note --at {value} "callbacks stopped"')
    assert f"Bad time '{value}'" in error.message
    assert "HH:MM" in error.message


def test_note_at_without_a_value_asks_for_a_time() -> None:
    assert err("note --at").message == "--at needs a time, e.g. --at 09:52."


@pytest.mark.parametrize("text", ["note", 'note ""', "note rootcause", "note --at 09:52", "note wentwell --at 09:52"])
def test_note_without_text_says_the_text_is_missing(text: str) -> None:
    assert err(text).message == "Missing note text."


# ----------------------------------------------------------------------------------------------------------- check


@pytest.mark.parametrize(("value", "item"), [("3", 3), ("1", 1), ("03", 3), ("999999", 999999)])
def test_check_ticks_an_item_by_number(value: str, item: int) -> None:
    assert ok(f"check {value}", TickChecklist) == TickChecklist(item=item)


@pytest.mark.parametrize("value", ["three", "0", "-1", "+2", "1.5", "#2", "1234567"])
def test_check_with_a_non_positive_or_non_number_says_give_a_number(value: str) -> None:
    error = err(f"check {value}")
    assert error.message == f"'{value}' is not a checklist item number; give a number like 1, 2, 3."


@pytest.mark.parametrize("text", ["check", "check 1 2"])
def test_check_needs_exactly_one_item(text: str) -> None:
    assert err(text).message == "Say which checklist item, e.g. /incident check 3."


@pytest.mark.parametrize("text", ["check ²", "check ①", "action done ³", "check ٣", "check ３", "action done ੩"])
def test_item_numbers_take_ascii_digits_only(text: str) -> None:
    # str.isdigit() is true for '²' and '①' but int() rejects them: that ValueError once escaped parse().
    assert isinstance(parse(text), UsageError)


# ---------------------------------------------------------------------------------------------------------- snooze


@pytest.mark.parametrize(("value", "minutes"), [("30m", 30), ("1h", 60), ("90 m", 90), ("45min", 45), ("2H", 120),
                                                ("5m", 5), ("4h", 240), ("240m", 240)])
def test_snooze_takes_a_duration(value: str, minutes: int) -> None:
    assert ok(f"snooze {value}", Snooze) == Snooze(duration=timedelta(minutes=minutes))


@pytest.mark.parametrize("value", ["2m", "4m", "5h", "241m", "0m", "0h"])
def test_snooze_out_of_range_says_between_5m_and_4h(value: str) -> None:
    error = err(f"snooze {value}")
    assert error.message == f"Snooze must be between 5m and 4h, got {value}."


@pytest.mark.parametrize("value", ["soon", "1.5h", "30s", "30", "m30", "1 hour", "３０m"])
def test_snooze_with_garbage_asks_for_a_duration(value: str) -> None:
    error = err(f"snooze {value}")
    assert error.message.startswith("Bad snooze '")
    assert "30m or 1h" in error.message


def test_snooze_without_a_duration_says_nothing_was_given() -> None:
    assert err("snooze").message == "Bad snooze '(nothing)'; give a duration like 30m or 1h."


# -------------------------------------------------------------------------------------------------------- playbook


def test_playbook_without_a_name_lists_them() -> None:
    assert ok("playbook", ShowPlaybook) == ShowPlaybook(playbook=None)


def test_playbook_with_a_name_shows_it_lower_cased() -> None:
    assert ok("playbook Database-Unavailable", ShowPlaybook) == ShowPlaybook(playbook="database-unavailable")


def test_playbook_with_an_incident_reference_names_the_incident() -> None:
    assert ok("playbook INC-3", ShowPlaybook) == ShowPlaybook(incident=3, playbook=None)


# ---------------------------------------------------------------------------------------------------------- freeze


@pytest.mark.parametrize(("text", "on"), [("freeze on", True), ("freeze off", False), ("freeze ON", True),
                                          ("unfreeze", False), ("INC-3 unfreeze", False)])
def test_freeze_turns_the_deploy_freeze_on_or_off(text: str, on: bool) -> None:
    assert ok(text, SetFreeze).on is on


def test_freeze_with_garbage_says_on_or_off() -> None:
    assert err("freeze maybe").message == "Freeze takes on or off, got 'maybe'."


def test_freeze_without_a_value_says_nothing_was_given() -> None:
    assert err("freeze").message == "Freeze takes on or off, got '(nothing)'."


def test_unfreeze_takes_an_incident_reference_on_either_side() -> None:
    assert parse("unfreeze INC-3") == SetFreeze(incident=3, on=False)
    assert parse("INC-3 unfreeze") == SetFreeze(incident=3, on=False)


@pytest.mark.parametrize("text", ["unfreeze on", "unfreeze off", "unfreeze now"])
def test_unfreeze_takes_no_arguments(text: str) -> None:
    # 'unfreeze on' once turned the freeze ON.
    error = err(text)
    assert error.message == f"'unfreeze' takes no arguments, got '{text.split()[1]}'."
    assert str(error).endswith("\nUsage: /incident freeze off")


# ---------------------------------------------------------------------------------------------------------- action


def test_action_adds_a_follow_up_item() -> None:
    assert ok('action "Alert on callback lag"', AddAction) == AddAction(text="Alert on callback lag")


def test_action_takes_an_owner_without_the_at_sign() -> None:
    assert ok('action "Alert on callback lag" owner=@bob', AddAction).owner == "bob"
    assert ok('action "Alert on callback lag" owner=bob', AddAction).owner == "bob"


def test_action_takes_a_due_date() -> None:
    assert ok('action "Alert on callback lag" due=2026-12-01', AddAction).due == date(2026, 12, 1)


def test_action_takes_owner_and_due_in_any_order() -> None:
    expected = AddAction(text="Alert on callback lag", owner="bob", due=date(2026, 12, 1))
    assert ok('action "Alert on callback lag" owner=@bob due=2026-12-01', AddAction) == expected
    assert ok('action due=2026-12-01 owner=@bob "Alert on callback lag"', AddAction) == expected
    assert ok("action Alert on callback lag owner=@bob due=2026-12-01", AddAction) == expected


def test_actions_is_an_alias_of_action() -> None:
    assert ok('actions "Alert on callback lag"', AddAction).text == "Alert on callback lag"


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "tomorrow", "01/12/2026"])
def test_action_with_a_bad_date_says_yyyy_mm_dd(value: str) -> None:
    error = err(f'action "Alert on callback lag" due={value}')
    assert f"Bad date '{value}'" in error.message
    assert "YYYY-MM-DD" in error.message


def test_action_with_an_unknown_option_lists_the_valid_options() -> None:
    error = err('action "Alert on callback lag" priority=high')
    assert error.message == "Unknown option 'priority='. Valid options here: owner=, due=."


def test_action_with_an_empty_owner_says_it_needs_a_value() -> None:
    assert err('action "Alert on callback lag" owner=').message == "Option 'owner=' needs a value."


@pytest.mark.parametrize("text", ["action", 'action ""', "action owner=@bob due=2026-12-01"])
def test_action_without_text_says_the_text_is_missing(text: str) -> None:
    assert err(text).message == "Missing action item text."


def test_action_done_completes_an_item() -> None:
    assert ok("action done 2", CompleteAction) == CompleteAction(item=2)
    assert ok("action DONE 2", CompleteAction) == CompleteAction(item=2)


def test_action_done_with_an_incident_reference_names_the_incident() -> None:
    assert ok("action INC-5 done 2", CompleteAction) == CompleteAction(incident=5, item=2)
    assert ok("INC-5 action done 2", CompleteAction) == CompleteAction(incident=5, item=2)


@pytest.mark.parametrize("text", ["action done", "action done 2 3"])
def test_action_done_needs_exactly_one_number(text: str) -> None:
    assert err(text).message == "Say which action item is done, e.g. /incident action done 2."


@pytest.mark.parametrize("value", ["two", "0", "-2"])
def test_action_done_with_a_non_number_says_give_a_number(value: str) -> None:
    assert err(f"action done {value}").message == (
        f"'{value}' is not a action item number; give a number like 1, 2, 3.")


def test_a_quoted_done_is_an_action_item_text() -> None:
    assert ok('action "done"', AddAction) == AddAction(text="done")


# ------------------------------------------------------------------------------------------------ the status flow


@pytest.mark.parametrize(("text", "kind"), [("mitigate", Mitigate), ("close", Close), ("reopen", Reopen),
                                            ("list", ListIncidents), ("ls", ListIncidents)])
def test_commands_without_arguments_parse(text: str, kind: type[Command]) -> None:
    assert ok(text, kind) == kind()


@pytest.mark.parametrize("name", ["mitigate", "close", "reopen", "list"])
def test_commands_without_arguments_reject_arguments(name: str) -> None:
    error = err(f'{name} "for real"')
    assert error.message == f"'{name}' takes no arguments, got 'for real'."
    assert error.usage == USAGE[name]


def test_resolve_takes_a_summary() -> None:
    assert ok('resolve "Pool size raised; callbacks draining"', Resolve) == Resolve(
        summary="Pool size raised; callbacks draining")
    assert ok("resolve pool size raised", Resolve).summary == "pool size raised"


@pytest.mark.parametrize("text", ["resolve", 'resolve ""'])
def test_resolve_without_a_summary_has_none(text: str) -> None:
    assert ok(text, Resolve) == Resolve(summary=None)


# ------------------------------------------------------------------------------------------------------ postmortem


@pytest.mark.parametrize(("text", "fmt"), [("postmortem", "md"), ("postmortem md", "md"), ("postmortem json", "json"),
                                           ("postmortem JSON", "json"), ("pm json", "json")])
def test_postmortem_compiles_markdown_or_json(text: str, fmt: str) -> None:
    assert ok(text, CompilePostmortem) == CompilePostmortem(format=fmt)


@pytest.mark.parametrize("value", ["pdf", "md json", "--format json"])
def test_postmortem_with_a_bad_format_says_md_or_json(value: str) -> None:
    assert err(f"postmortem {value}").message == f"Unknown post-mortem format '{value}'; use md, json or pr."


def test_postmortem_pr_compiles_markdown_and_asks_for_the_pull_request() -> None:
    assert ok("postmortem pr", CompilePostmortem) == CompilePostmortem(format="md", pull_request=True)
    assert ok("postmortem INC-7 md pr", CompilePostmortem) == CompilePostmortem(incident=7, format="md",
                                                                               pull_request=True)
    assert ok("postmortem", CompilePostmortem).pull_request is False


def test_postmortem_pr_with_json_is_refused() -> None:
    assert "Markdown" in err("postmortem json pr").message


# ------------------------------------------------------------------------------------------------------- show/help


def test_show_without_a_reference_leaves_the_room_to_decide() -> None:
    assert ok("show", ShowIncident) == ShowIncident(incident=None)


@pytest.mark.parametrize("ref", ["INC-7", "inc-7", "INC7", "7", "#7"])
def test_show_names_an_incident(ref: str) -> None:
    assert ok(f"show {ref}", ShowIncident) == ShowIncident(incident=7)


@pytest.mark.parametrize("ref", ["seven", "INC-x", "7 8", "INC-7 extra"])
def test_show_with_a_bad_reference_says_use_inc_n(ref: str) -> None:
    error = err(f"show {ref}")
    assert error.message.endswith("is not an incident id; use INC-n.")


def test_help_without_a_topic_gives_the_overview() -> None:
    assert ok("help", Help) == Help(topic=None)


@pytest.mark.parametrize("topic", SUBCOMMANDS)
def test_help_takes_any_command_as_topic(topic: str) -> None:
    assert ok(f"help {topic}", Help) == Help(topic=topic)


def test_help_topic_may_be_written_as_a_slash_command() -> None:
    assert ok("help /Declare", Help) == Help(topic="declare")


def test_help_with_an_unknown_topic_lists_the_commands() -> None:
    error = err("help nonsense")
    assert error.message.startswith("No help for 'nonsense'. Commands: ")
    for name in SUBCOMMANDS:
        assert name in error.message


# ------------------------------------------------------------------------------------- references, prefix, unknown


@pytest.mark.parametrize("text", ['status INC-7 "db back"', 'INC-7 status "db back"', 'inc-7 status "db back"',
                                  '/incident INC-7 status "db back"', '/incident status INC-7 "db back"'])
def test_incident_reference_before_or_after_the_command_names_the_incident(text: str) -> None:
    assert ok(text, PostStatus) == PostStatus(incident=7, text="db back")


def test_without_a_reference_the_room_decides_the_incident() -> None:
    assert ok('status "db back"', PostStatus).incident is None


@pytest.mark.parametrize(("text", "expected"), [
    ("INC-12 sev P1", ChangeSeverity(incident=12, level="P1")),
    ("role INC-3 ic @alice", AssignRole(incident=3, role="ic", user="alice")),
    ('note INC-3 rootcause "pool"', AddNote(incident=3, text="pool", tag="rootcause")),
    ("check INC-2 4", TickChecklist(incident=2, item=4)),
    ("INC-2 snooze 30m", Snooze(incident=2, duration=timedelta(minutes=30))),
    ("freeze INC-9 on", SetFreeze(incident=9, on=True)),
    ("INC-4 resolve", Resolve(incident=4)),
    ("postmortem INC-4 json", CompilePostmortem(incident=4, format="json")),
    ("show INC-4", ShowIncident(incident=4)),
])
def test_incident_reference_works_with_every_kind_of_command(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_only_the_first_incident_reference_names_the_incident() -> None:
    assert ok('INC-7 status INC-8 "merged"', PostStatus) == PostStatus(incident=7, text="INC-8 merged")


@pytest.mark.parametrize("text", ["/incident ack", "incident ack", "ack", "/INCIDENT ack", "Incident ack",
                                  "   /incident    ack   "])
def test_the_incident_prefix_is_optional(text: str) -> None:
    assert ok(text, Acknowledge) == Acknowledge()


def test_unknown_subcommand_lists_the_commands() -> None:
    error = err("deploy now")
    assert error.message.startswith("Unknown command 'deploy'. Commands: ")
    for name in SUBCOMMANDS:
        assert name in error.message
    assert error.usage == USAGE["help"]


def test_a_quoted_first_word_is_not_a_command() -> None:
    error = err('"declare" P1 "Payments down"')
    assert error.message.startswith("Start with a command: ")


@pytest.mark.parametrize("text", ["", "   ", "/incident", "incident", "/incident   ", "\x00", "\u200b", "\n\t"])
def test_empty_text_gives_help(text: str) -> None:
    assert parse(text) == Help()


def test_non_string_input_is_a_usage_error() -> None:
    assert isinstance(parse(None), UsageError)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ length, quotes, unicode


def test_text_over_4000_characters_is_rejected_with_a_clear_message() -> None:
    text = 'status "' + "x" * MAX_TEXT + '"'
    error = err(text)
    assert "4,000" in error.message
    assert f"{len(text):,}" in error.message


def test_text_of_exactly_4000_characters_is_accepted() -> None:
    text = 'status "' + "x" * (MAX_TEXT - len('status ""')) + '"'
    assert len(text) == MAX_TEXT == 4000
    assert len(ok(text, PostStatus).text) == MAX_TEXT - len('status ""')


def test_a_huge_text_is_rejected_not_parsed() -> None:
    assert "4,000" in err("status " + "x" * 1_000_000).message


@pytest.mark.parametrize("text", ['declare P1 "Payments down', "status “db back", "note “pool exhausted",
                                  'action "x" owner="bob', "status «en panne"])
def test_unbalanced_quote_is_a_usage_error(text: str) -> None:
    error = err(text)
    assert "Unbalanced quote" in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize(("text", "subcommand"), [('status "db back', "status"), ("INC-7 status “db back", "status"),
                                                  ('update "db back', "status"), ('declare P1 "x', "declare")])
def test_unbalanced_quote_error_shows_the_commands_usage(text: str, subcommand: str) -> None:
    assert str(err(text)).endswith(f"\nUsage: /incident {USAGE[subcommand]}")


@pytest.mark.parametrize(("text", "expected"), [("status 'twas the cache", "'twas the cache"),
                                              ("note don't restart 'yet", "don't restart 'yet"),
                                              ("status 'db back' now", "db back now")])
def test_a_lone_apostrophe_is_a_letter_but_paired_single_quotes_still_group(text: str, expected: str) -> None:
    result = parse(text)
    assert result.text == expected


@pytest.mark.parametrize(("text", "severity", "title"), [("declare EC2 instances down", None, "EC2 instances down"),
                                                          ("declare S3 bucket unreachable", None,
                                                           "S3 bucket unreachable"),
                                                          ('declare P7 "x"', "P7", "x"),
                                                          ("declare p1 db down", "P1", "db down")])
def test_declare_reads_a_severity_only_when_it_is_one_of_the_workspace_levels(text, severity, title) -> None:
    result = parse(text, severities=("P0", "P1", "P2", "P3"))
    assert isinstance(result, Declare) and (result.severity, result.title) == (severity, title)


@pytest.mark.parametrize("text", ['declare P1 "x" sev=P2', 'declare "x" impact=a impact=b',
                                  'declare "x" sev=P1 severity=P2'])
def test_declare_options_given_twice_are_an_error(text: str) -> None:
    assert "twice" in err(text).message


@pytest.mark.parametrize(("alias", "topic"), [("acknowledge", "ack"), ("unfreeze", "freeze"), ("pm", "postmortem")])
def test_help_accepts_command_aliases(alias: str, topic: str) -> None:
    assert parse(f"help {alias}") == Help(topic=topic)


def test_unassigned_code_points_such_as_new_emoji_are_kept() -> None:
    assert ok('declare P1 "\U0001FAE8 shaking"', Declare).title == "\U0001FAE8 shaking"


def test_unbalanced_quote_before_any_command_has_no_usage_to_show() -> None:
    error = err('"status db back')
    assert "Unbalanced quote" in error.message


@pytest.mark.parametrize(("text", "expected"), [
    ('status "db\x00 back"', "db back"),
    ('status "db \x1b[31mback"', "db [31mback"),
    ('status "db\u200b back"', "db back"),          # zero-width space, category Cf
    ('status "db \u202eback"', "db back"),          # right-to-left override, category Cf
    ('status "db\x7f back\x07"', "db back"),
    ('status "db\ufeff back"', "db back"),          # byte-order mark, category Cf
])
def test_control_characters_are_removed(text: str, expected: str) -> None:
    assert ok(text, PostStatus).text == expected


def test_control_characters_inside_the_command_word_are_ignored() -> None:
    assert ok('de\u200bcla\x00re P1 "Payments down"', Declare) == Declare(title="Payments down", severity="P1")


@pytest.mark.parametrize("title", [
    "🔥 Payments down 💳",
    "انقطاع خدمة الدفع",
    "Café: paiements échoués à Zürich",
    "決済が失敗しています",
    "Платежи не проходят",
    "🇰🇪 M-Pesa callbacks late",
])
def test_unicode_titles_survive_intact(title: str) -> None:
    assert ok(f'declare P1 "{title}"', Declare).title == title


@pytest.mark.parametrize("title", ["👩\u200d💻 laptops down", "🏳️\u200d🌈 banner broken",
                                   "می\u200cخواهم پرداخت کنم"])  # Persian needs ZWNJ
def test_joiners_inside_emoji_sequences_and_words_survive(title: str) -> None:
    assert ok(f'declare P1 "{title}"', Declare).title == title


def test_titles_are_nfc_normalised() -> None:
    decomposed = "Cafe\u0301 down"
    title = ok(f'declare P1 "{decomposed}"', Declare).title
    assert title == "Caf\u00e9 down"
    assert unicodedata.is_normalized("NFC", title)


@pytest.mark.parametrize(("text", "expected"), [
    ('status "line one\nline two"', "line one line two"),
    ('status "col\tcol"', "col col"),
    ('status "cr\rlf"', "cr lf"),
])
def test_newlines_and_tabs_inside_quoted_text_become_spaces(text: str, expected: str) -> None:
    assert ok(text, PostStatus).text == expected


def test_a_multi_line_title_becomes_one_line() -> None:
    assert ok('declare P1 "Payments\ndown"', Declare).title == "Payments down"


# -------------------------------------------------------------------------------- every error shows its usage line

# (input, the subcommand whose usage the error must show); together these are every error path of every command.
ERRORS: list[tuple[str, str]] = [
    ("public", "public"),
    ("public resolved", "public"),
    ('public "x" areas=Pay!', "public"),
    ("public brief x", "public"),
    ("web now", "web"),
    ("declare P1", "declare"),
    ('declare P1 "x" owner=@bob', "declare"),
    ('declare P1 "x" impact=', "declare"),
    ("ack now", "ack"),
    ("acknowledge now", "ack"),
    ("status", "status"),
    ("update", "status"),
    ("sev", "sev"),
    ("severity P1 P2", "sev"),
    ("role boss @alice", "role"),
    ("role ic", "role"),
    ('role ic ""', "role"),
    ("note", "note"),
    ("note --at", "note"),
    ('note --at 25:99 "x"', "note"),
    ("check", "check"),
    ("check zero", "check"),
    ("check 0", "check"),
    ("snooze", "snooze"),
    ("snooze 2m", "snooze"),
    ("snooze soon", "snooze"),
    ("freeze maybe", "freeze"),
    ("unfreeze maybe", "freeze"),
    ('playbook "db', "playbook"),
    ('resolve "pool raised', "resolve"),
    ("action", "action"),
    ('action "x" due=2026-13-01', "action"),
    ('action "x" priority=high', "action"),
    ('action "x" owner=', "action"),
    ("action done", "action"),
    ("action done x", "action"),
    ("mitigate now", "mitigate"),
    ("close now", "close"),
    ("reopen now", "reopen"),
    ("postmortem pdf", "postmortem"),
    ("affects", "affects"),
    ("follow now", "follow"),
    ("unfollow INC-2 please", "unfollow"),
    ("use", "use"),
    ("use x", "use"),
    ("affects ACME!", "affects"),
    ("brief", "brief"),
    ("brief acme eta=0", "brief"),
    ("brief acme investigating extra", "brief"),
    ("brief send", "brief"),
    ("brief send x", "brief"),
    ("brief acme when=now", "brief"),
    ("pm pdf", "postmortem"),
    ("list all", "list"),
    ("stats soon", "stats"),
    ("stats 0d", "stats"),
    ("stats 400d", "stats"),
    ("stats 30d extra", "stats"),
    ("oncall everyone", "oncall"),
    ("page", "page"),
    ("page platform", "page"),
    ('page "platform" now', "page"),
    ('escalate "no answer', "escalate"),
    ("oncall override platform @dave 2026-12-24", "oncall"),
    ("oncall override platform @dave 24/12 2026-12-27", "oncall"),
    ("ls all", "list"),
    ("show seven", "show"),
    ("help nonsense", "help"),
    ("deploy now", "help"),
    ('"declare" x', "help"),
]


@pytest.mark.parametrize(("text", "subcommand"), ERRORS, ids=[text for text, _ in ERRORS])
def test_every_usage_error_shows_what_was_wrong_and_the_right_usage(text: str, subcommand: str) -> None:
    error = err(text)
    rendered = str(error)
    assert error.message.strip()
    assert "\n" not in error.message, "the error itself must be one line"
    assert f"Usage: /incident {subcommand}" in rendered
    usage = "freeze off" if text.startswith("unfreeze") else USAGE[subcommand]
    assert rendered == f"{error.message}\nUsage: /incident {usage}"


def test_the_error_table_covers_every_subcommand() -> None:
    # playbook and resolve accept any words, so their only error is an unbalanced quote.
    assert {subcommand for _, subcommand in ERRORS} == set(SUBCOMMANDS)


HAPPY: dict[str, str] = {
    "declare": 'declare P1 "Payments down"', "ack": "ack", "status": 'status "x"', "sev": "sev P1",
    "role": "role ic @a", "note": 'note "x"', "check": "check 1", "snooze": "snooze 30m", "playbook": "playbook",
    "freeze": "freeze on", "action": 'action "x"', "mitigate": "mitigate", "resolve": "resolve", "close": "close",
    "reopen": "reopen", "postmortem": "postmortem", "list": "list", "show": "show", "help": "help",
    "affects": "affects acme", "brief": "brief all-affected", "stats": "stats 7d",
    "follow": "follow INC-3", "unfollow": "unfollow", "use": "use INC-9",
    "public": 'public identified "Payments are slow" areas=payments', "web": "web",


    "oncall": "oncall override platform @dave 2026-12-24 2026-12-27T09:00",
    "page": 'page @alice "need eyes on the ledger"', "escalate": "escalate",
}


def test_page_and_escalate_parse() -> None:
    from bot.incident.commands import Escalate, PageByHand

    assert ok('INC-4 page dba "replica lag 40 min"', PageByHand) == PageByHand(incident=4, target="dba",
                                                                                reason="replica lag 40 min")
    assert ok("escalate", Escalate) == Escalate()
    assert ok('escalate "nobody answers"', Escalate) == Escalate(reason="nobody answers")


def test_oncall_parses_to_show_or_override() -> None:
    from bot.incident.commands import OverrideOnCall, ShowOnCall

    assert ok("oncall", ShowOnCall) == ShowOnCall()
    assert ok("on-call", ShowOnCall) == ShowOnCall()
    assert ok("oncall override Platform <@U1> 2026-12-24 2026-12-27t09:00", OverrideOnCall) == OverrideOnCall(
        role="platform", person="<@U1>", starts="2026-12-24", ends="2026-12-27t09:00")


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_in_usage_parses(name: str) -> None:
    result = parse(f"/incident {HAPPY[name]}")
    assert isinstance(result, Command), result


# ------------------------------------------------------------------------------------------------ customer briefs


def test_affects_takes_comma_separated_tenants_lowercased_once_each() -> None:
    assert ok("affects acme, Globex,acme", LinkTenants) == LinkTenants(tenants=("acme", "globex"))


def test_brief_takes_target_template_options_and_send_flag() -> None:
    assert ok("brief all-affected update area=payments eta=30 --send", PrepareBrief) == PrepareBrief(
        target=("all-affected",), template="update", area="payments", eta_minutes=30, send=True)
    assert ok("brief acme,globex", PrepareBrief).target == ("acme", "globex")
    assert ok("brief send 3", SendBrief) == SendBrief(brief_id=3)


def test_declare_links_tenants() -> None:
    assert ok('declare P1 "x" tenant=acme,globex', Declare).tenants == ("acme", "globex")


# ---------------------------------------------------------------------------------- invisible and line-breaking text


@pytest.mark.parametrize("text", ["declare \u200d", 'declare P1 "\u200d"', "declare \u200c \u200d", "status \u200d",
                                  'note "\u200c"', "action \u200d"])
def test_text_made_only_of_invisible_joiners_counts_as_missing(text: str) -> None:
    assert isinstance(parse(text), UsageError)


@pytest.mark.parametrize("text", ['action "x" due="2026\u2028-12-01"', 'role "ic\u2029x" @alice', 'freeze "o\u2028n"'])
def test_error_messages_stay_one_line_even_with_unicode_line_separators(text: str) -> None:
    assert len(err(text).message.splitlines()) == 1


# ----------------------------------------------------------------------------------------------- property tests

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])

ALIASES = ["acknowledge", "severity", "update", "actions", "pm", "ls", "unfreeze"]
COMMAND_WORDS = st.sampled_from([*SUBCOMMANDS, *ALIASES])
WORDS = [*SUBCOMMANDS, "acknowledge", "severity", "update", "actions", "pm", "ls", "unfreeze", "/incident",
         "incident", "done", "on", "off", "md", "json", "--at", "rootcause", "contributing", "wentwell", "ic", "ops",
         "comms", "scribe", "commander", "P1", "p0", "SEV2", "S4", "@alice", "@", "<@U123>", "30m", "1h", "90 m",
         "2m", "5h", "09:52", "25:99", "9.52", "2026-12-01", "2026-13-01", "INC-7", "#7"]
QUOTES = ['"', "'", "“", "”", "‘", "’", "«", "»"]
ODD = ["=", "INC-", "#", "-", "\n", "\r\n", "\t", "\x00", "\x1b", "\x7f", "\u200b", "\u200d", "\u202e", "\ufeff",
       "\u2028", "\u00a0", "\u3000", "e\u0301", "🔥", "👩\u200d💻", "ا", "\ud800"]
DIGITS = st.one_of(
    st.integers(min_value=-5, max_value=10**10).map(str),
    st.text(alphabet="0123456789²³¹①٣３੩", min_size=1, max_size=4),
)
SMALL_TEXT = st.text(max_size=12)


@st.composite
def quoted(draw: st.DrawFn) -> str:
    opening = draw(st.sampled_from(QUOTES))
    closing = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}.get(opening, opening)
    body = draw(st.one_of(SMALL_TEXT, st.sampled_from(WORDS)))
    return opening + body + draw(st.sampled_from([closing, closing, ""]))


FRAGMENT = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(WORDS),
    quoted(),
    st.builds(lambda key, value: f"{key}={value}",
              st.sampled_from(["impact", "owner", "due", "sev", "severity", "bogus", "x"]),
              st.one_of(st.just(""), quoted(), DIGITS, SMALL_TEXT)),
    st.builds(lambda digits: f"INC-{digits}", DIGITS),
    DIGITS,
    st.sampled_from(ODD),
    SMALL_TEXT,
)


def _option(*keys: str) -> st.SearchStrategy[str]:
    return st.builds(lambda key, value: f"{key}={value}", st.sampled_from(keys),
                     st.one_of(st.just(""), quoted(), DIGITS, SMALL_TEXT, st.sampled_from(WORDS)))


CLOCKS = st.builds(lambda h, sep, m: f"{h}{sep}{m}", DIGITS, st.sampled_from([":", ":", ".", ""]), DIGITS)
# Per command, the kind of argument it expects, so the generator reaches each command's argument parsing.
ARGUMENTS: dict[str, st.SearchStrategy[str]] = {
    "declare": st.one_of(st.sampled_from(["P1", "sev2", "S3", "EC2", "P"]), quoted(), _option("impact", "sev",
                                                                                            "severity", "owner")),
    "sev": st.sampled_from(["P1", "p0", "SEV2", "S4", '""']),
    "role": st.sampled_from(["ic", "ops", "comms", "scribe", "commander", "boss", "@alice", "@", "<@U123>", '""']),
    "note": st.one_of(st.sampled_from(["rootcause", "contributing", "wentwell", "--at", "--AT"]), CLOCKS, quoted()),
    "check": DIGITS,
    "snooze": st.builds(lambda n, sep, unit: f"{n}{sep}{unit}", DIGITS, st.sampled_from(["", " "]),
                        st.sampled_from(["m", "h", "min", "H", "s", ""])),
    "freeze": st.sampled_from(["on", "off", "ON", "maybe"]),
    "unfreeze": st.sampled_from(["on", "off", "INC-3"]),
    "action": st.one_of(st.just("done"), DIGITS, quoted(), _option("owner", "due", "priority"),
                        st.builds(lambda y, m, d: f"due={y}-{m}-{d}", DIGITS, DIGITS, DIGITS)),
    "postmortem": st.sampled_from(["md", "json", "JSON", "pdf"]),
    "show": st.one_of(DIGITS, st.builds(lambda n: f"INC-{n}", DIGITS), st.builds(lambda n: f"#{n}", DIGITS)),
    "help": st.sampled_from([*SUBCOMMANDS, "/declare", "nonsense", "acknowledge"]),
}


@st.composite
def command_lines(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "", "/incident ", "incident ", "INC-3 "]))
    head = draw(st.one_of(COMMAND_WORDS, COMMAND_WORDS, COMMAND_WORDS, st.sampled_from(WORDS), SMALL_TEXT))
    expected = ARGUMENTS.get(head, FRAGMENT)
    parts = draw(st.lists(st.one_of(expected, expected, FRAGMENT), max_size=5))
    separators = draw(st.lists(st.sampled_from([" ", " ", " ", "", "  ", "\t", "\n"]), min_size=len(parts),
                               max_size=len(parts)))
    return prefix + head + "".join(sep + part for sep, part in zip(separators, parts, strict=True))


def assert_parse_contract(text: str) -> None:
    result = parse(text)  # must not raise
    assert isinstance(result, (Command, UsageError)), repr(result)
    if isinstance(result, UsageError):
        rendered = str(result)
        head, _, usage = rendered.partition("\nUsage: /incident ")
        assert head == result.message
        assert head.strip(), f"empty error message for {text!r}"
        assert "\n" not in head and "\r" not in head, f"multi-line error for {text!r}: {head!r}"
        if result.usage is not None:
            assert usage == result.usage
        return
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if isinstance(value, str):
            assert not has_control_characters(value), f"{field.name}={value!r} from {text!r}"
    if isinstance(result, Declare):
        assert result.title.strip(), f"empty title from {text!r}"
    if isinstance(result, (PostStatus, AddNote, AddAction)):
        assert result.text.strip(), f"empty text from {text!r}"


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.characters(exclude_categories=())))  # every code point, lone surrogates included
@example("\ud800")
@example("“")
@example("incident")
def test_parse_never_raises_on_arbitrary_text(text: str) -> None:
    assert_parse_contract(text)


@PROPERTY_SETTINGS
@given(command_lines())
@example("check ²")  # seeds: inputs that once escaped parse() as exceptions
@example("action done ①")
def test_parse_never_raises_on_plausible_command_lines(text: str) -> None:
    assert_parse_contract(text)


# ------------------------------------------------------------------------------------------------------- stats


@pytest.mark.parametrize(("text", "hours"), [("stats", 720), ("stats 30d", 720), ("stats 7d", 168), ("stats 4w", 672),
                                             ("stats 24h", 24), ("stats 365d", 8760), ("stats 7 d", 168)])
def test_stats_takes_an_optional_period_defaulting_to_30_days(text: str, hours: int) -> None:
    from bot.incident.commands import Stats

    assert ok(text, Stats).period == timedelta(hours=hours)


def test_public_update_reads_state_text_areas_and_brief() -> None:
    from bot.incident import commands as cmd

    assert cmd.parse('public identified "Card payments fail" areas=payments,api') == cmd.PublishUpdate(
        state="identified", text="Card payments fail", areas=("payments", "api"))
    assert cmd.parse('public INC-4 "We are looking"') == cmd.PublishUpdate(incident=4, text="We are looking")
    assert cmd.parse("public resolved brief 3") == cmd.PublishUpdate(state="resolved", brief_id=3)
    assert cmd.parse("web") == cmd.WebSignIn()


def test_declare_with_issue_asks_to_log_it_as_an_issue() -> None:
    assert ok('declare P3 "Typo on pricing" --issue', Declare).issue is True
    assert ok('declare P3 "Typo on pricing"', Declare).issue is False
    assert ok('declare P3 "--issue"', Declare) == Declare(title="--issue", severity="P3")  # quoted: the title
