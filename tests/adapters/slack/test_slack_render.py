"""Pure pieces: escaping both ways, Block Kit rendering, the manifest, and what importing costs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from adapters.slack.blocks import (
    MAX_BLOCKS,
    MAX_SECTION,
    WORD_JOINER,
    declare_modal,
    escape,
    from_slack,
    leading_mention,
    render,
)
from bot.ports import Button, ChecklistLine, Field, Message

ROOT = Path(__file__).resolve().parents[3]
SLACK = ROOT / "adapters" / "slack"


# -- escaping --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("plain", "mrkdwn"), [
    ("db & cache <ok>", "db &amp; cache &lt;ok&gt;"),
    ("<!channel> <!here> <!everyone>", "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt;"),
    ("<!subteam^S0ONCALL|@oncall> page", "&lt;!subteam^S0ONCALL|@oncall&gt; page"),
    ("@channel and @here and @Everyone", f"@{WORD_JOINER}channel and @{WORD_JOINER}here and @{WORD_JOINER}Everyone"),
    # not a Slack user's own text: a reference is shown as typed and notifies nobody; an id-shaped word is a word
    ("ask <@U0ALICE01> or <@U0BOB0002|bob>", "ask &lt;@U0ALICE01&gt; or &lt;@U0BOB0002|bob&gt;"),
    ("IC is U0ALICE01, status UNAVAILABLE", "IC is U0ALICE01, status UNAVAILABLE"),
    ("see <#C0INCIDENTS>", "see &lt;#C0INCIDENTS&gt;"),
    # a masked link stays visible as text (its URL is linked as itself); a mention label cannot smuggle markup
    ("<https://evil.example|click> <@U1|<!channel>>",
     "&lt;<https://evil.example>|click&gt; &lt;@U1|&lt;!channel&gt;&gt;"),
    ("dash: https://grafana.example/d/x?a=1&b=2.", "dash: <https://grafana.example/d/x?a=1&amp;b=2>."),
    ("*bold* stays mrkdwn", "*bold* stays mrkdwn"),
])
def test_escape_keeps_prose_as_prose(plain: str, mrkdwn: str) -> None:
    assert escape(plain) == mrkdwn


@pytest.mark.parametrize(("plain", "mrkdwn"), [
    ("ask <@U0ALICE01> or <@U0BOB0002|bob>", "ask <@U0ALICE01> or <@U0BOB0002>"),
    ("see <#C0INCIDENTS>", "see <#C0INCIDENTS>"),
    ("IC is U0ALICE01, ref UBK4X7Q2ZP", "IC is U0ALICE01, ref UBK4X7Q2ZP"),  # bare ids stay words here too
    ("<@U1|<!channel>> <!here>", "&lt;@U1|&lt;!channel&gt;&gt; &lt;!here&gt;"),
])
def test_a_slack_users_own_mentions_stay_live(plain: str, mrkdwn: str) -> None:
    assert escape(plain, mentions=True) == mrkdwn


def test_a_reference_that_must_not_notify_shows_the_name_as_text() -> None:
    assert escape("handing over to <@U0BOB0002>", names={"U0BOB0002": "bob <b>"}) == "handing over to @bob &lt;b&gt;"


def test_no_broadcast_survives_escaping() -> None:
    hostile = "<!channel> <!here|here> <!everyone> <!subteam^S1> @channel @here &lt;!channel&gt;"
    out = escape(hostile)
    assert not re.search(r"<!(channel|here|everyone|subteam)", out)
    assert not re.search(r"(?<![\w\u2060])@(channel|here|everyone)\b", out.replace(f"@{WORD_JOINER}", "@-"))


@pytest.mark.parametrize(("slack", "plain"), [
    ("db &amp; cache &lt;ok&gt;", "db & cache <ok>"),
    ("<!here> look", "@here look"),
    ("<@U0ALICE01|alice> and <@U0BOB0002>", "<@U0ALICE01> and <@U0BOB0002>"),
    ("<#C0INC|inc-7-payments> is the room", "#inc-7-payments is the room"),
    ("<!subteam^S0ONCALL|@oncall> paged", "@oncall paged"),
    ("<https://grafana.example/d/x|dashboard>", "dashboard (https://grafana.example/d/x)"),
    ("<https://grafana.example/d/x>", "https://grafana.example/d/x"),
    ("<mailto:sre@example.com|sre@example.com>", "sre@example.com"),
    ("<!date^1700000000^{time}|10:13>", "10:13"),
    ("typed &amp;lt;literally&amp;gt;", "typed &lt;literally&gt;"),
])
def test_from_slack_turns_markup_into_plain_prose(slack: str, plain: str) -> None:
    assert from_slack(slack) == plain


def test_round_trip_shows_what_was_typed() -> None:
    typed = "rollback <v42> & retry"  # Slack sends it escaped; we store it plain; we send it escaped again
    assert escape(from_slack("rollback &lt;v42&gt; &amp; retry")) == "rollback &lt;v42&gt; &amp; retry"
    assert from_slack("rollback &lt;v42&gt; &amp; retry") == typed


@pytest.mark.parametrize(("text", "rest"), [
    ('<@UBOT> status "db back"', 'status "db back"'),
    ("  <@UBOT|warroom>: ack", "ack"),
    ("<@UBOT>", ""),
    ("thanks <@UBOT>", None),
    ("<@UOTHER> ack", None),
])
def test_a_command_is_a_message_that_starts_with_the_bot_mention(text: str, rest: str | None) -> None:
    assert leading_mention(text, "UBOT") == rest


# -- Block Kit -------------------------------------------------------------------------------------------


def card(**overrides: object) -> Message:
    values: dict = dict(
        title="INC-7 · P1 · Payments <down> & @channel", kind="card", incident_key="INC-7",
        fields=(Field("Severity", "P1 — Critical"), Field("Roles", "IC <@U0ALICE01>")),
        buttons=(Button("ack", "Acknowledge", "INC-7", "primary"), Button("update", "Post update", "INC-7"),
                 Button("resolve", "Resolve", "INC-7", "danger")),
        footer="Run commands in this thread: /incident help · INC-7")
    values.update(overrides)
    return Message(**values)


def test_a_card_has_a_header_fields_buttons_and_a_local_time_context() -> None:
    now = datetime(2026, 11, 24, 6, 50, tzinfo=UTC)
    fallback, blocks = render(card(), now=now)

    assert fallback == "INC-7 · P1 · Payments &lt;down&gt; &amp; @\u2060channel"
    assert [b["type"] for b in blocks] == ["header", "section", "actions", "context"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "INC-7 · P1 · Payments <down> & @channel",
                                 "emoji": True}  # plain_text is never parsed
    assert blocks[1]["fields"][1]["text"] == "*Roles*\nIC &lt;@U0ALICE01&gt;"  # the bot's card notifies nobody
    assert render(card(), names={"U0ALICE01": "alice"})[1][1]["fields"][1]["text"] == "*Roles*\nIC @alice"
    buttons = blocks[2]["elements"]
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("warroom_ack", "INC-7", "primary"), ("warroom_update", "INC-7", None), ("warroom_resolve", "INC-7", "danger")]
    assert "confirm" in buttons[2]  # resolving asks first
    context = [e["text"] for e in blocks[3]["elements"]]
    assert context[1] == (f"Updated <!date^{int(now.timestamp())}^{{date_short_pretty}} at {{time}}"
                          "|2026-11-24 06:50 UTC>")
    assert all(e.get("verbatim") for b in blocks if b["type"] == "section" for e in b.get("fields", []))


def test_checklists_show_ticks_and_numbers() -> None:
    _, blocks = render(Message(title="Triage checklist", kind="checklist", checklist=(
        ChecklistLine(7, "Check <health> endpoints"), ChecklistLine(8, "Scope", done=True))))
    text = blocks[1]["text"]["text"]
    assert text == ":white_large_square: *7.* Check &lt;health&gt; endpoints\n:white_check_mark: *8.* ~Scope~"


def test_long_text_is_split_into_sections_within_slack_limits() -> None:
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(200))
    fallback, blocks = render(Message(text=text, kind="playbook"))
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(s) <= MAX_SECTION for s in sections) and len(sections) > 1
    assert "".join(s.replace("\n", "") for s in sections).count("line ") == 200
    assert len(fallback) <= 3000


def test_a_huge_message_stays_within_fifty_blocks() -> None:
    fields = tuple(Field(f"f{n}", "v") for n in range(600))
    _, blocks = render(Message(title="many", fields=fields))
    assert len(blocks) == MAX_BLOCKS and blocks[-1]["type"] == "context"
    assert all(len(b.get("fields", [])) <= 10 for b in blocks)


def test_errors_and_escalations_carry_an_icon() -> None:
    assert render(Message(text="Unknown incident INC-9.", kind="error"))[0].startswith(":warning: ")
    assert render(Message(text="ESCALATION", kind="escalation"))[1][0]["text"]["text"].startswith(":rotating_light:")


def test_the_declare_form_offers_the_ladder_with_its_default() -> None:
    view = declare_modal(levels=[("P1", "Critical"), ("P2", "Major")], default="P2", channel="C1")
    assert view["callback_id"] == "warroom_declare" and json.loads(view["private_metadata"]) == {"channel": "C1"}
    assert view["blocks"][0]["element"]["initial_option"]["value"] == "P2"
    assert [b["block_id"] for b in view["blocks"]] == ["severity", "title", "impact"]


# -- the manifest ----------------------------------------------------------------------------------------

# Web API method (as called on the client in adapters/slack) → the bot scopes it needs.
METHOD_SCOPES = {
    "chat_postMessage": {"chat:write"}, "chat_update": {"chat:write"}, "chat_postEphemeral": {"chat:write"},
    "conversations_create": {"channels:manage"}, "conversations_invite": {"channels:manage"},
    "conversations_replies": {"channels:history", "groups:history"},
    "conversations_history": {"channels:history", "groups:history"},
    "users_info": {"users:read"}, "users_list": {"users:read"}, "files_upload_v2": {"files:write"},
    "views_open": set(), "auth_test": set(), "files_list": {"files:read"}, "conversations_list": {"channels:read"},
}
EVENT_SCOPES = {"app_mention": "app_mentions:read", "message.channels": "channels:history",
                "message.groups": "groups:history", "reaction_added": "reactions:read"}


def manifest() -> dict:
    return yaml.safe_load((SLACK / "manifest.yml").read_text(encoding="utf-8"))


def test_the_manifest_asks_for_exactly_the_scopes_the_adapter_uses() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in SLACK.glob("*.py"))
    called = set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", source))
    assert called, "no Web API calls found: is the scan broken?"
    assert called <= set(METHOD_SCOPES), f"add scopes for {called - set(METHOD_SCOPES)} to this test and the manifest"
    events = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    expected = set().union(*(METHOD_SCOPES[m] for m in called)) | {EVENT_SCOPES[e] for e in events} | {"commands"}
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == expected


def test_the_manifest_subscribes_to_the_events_the_app_listens_to() -> None:
    listened = set(re.findall(r'app\.event\("([a-z_]+)"\)', (SLACK / "app.py").read_text(encoding="utf-8")))
    events = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert listened == {"app_mention", "message", "reaction_added"}
    assert events == {"app_mention", "message.channels", "message.groups", "reaction_added"}


def test_the_manifest_routes_commands_events_and_interactivity_to_one_url() -> None:
    data = manifest()
    [command] = data["features"]["slash_commands"]
    assert command["command"] == "/incident" and command["should_escape"] is True
    urls = {command["url"], data["settings"]["event_subscriptions"]["request_url"],
            data["settings"]["interactivity"]["request_url"]}
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert data["settings"]["interactivity"]["is_enabled"] is True


# -- import cost -----------------------------------------------------------------------------------------


def test_the_core_and_the_http_app_do_not_load_slack_until_slack_is_used() -> None:
    code = ("import sys, bot.incident.service, bot.app.bootstrap, bot.app.cli, adapters.slack, adapters.http as h; "
            "h.build_http_app(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_sdk', 'slack_bolt')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_core_does_not_import_the_slack_adapter() -> None:
    offenders = [f"{p.name}: {line.strip()}" for p in (ROOT / "bot").glob("*.py")
                 for line in p.read_text(encoding="utf-8").splitlines()
                 if re.match(r"\s*(from|import)\s+(slack_sdk|slack_bolt|adapters\.slack)", line)
                 and p.name != "cli.py"]
    assert offenders == []
