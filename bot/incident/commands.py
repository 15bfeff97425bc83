"""Parse `/incident …` text into typed commands.

`parse()` never raises: it returns a command or a `UsageError` whose message says what was wrong and shows
the right usage. The parser knows grammar only; whether a severity exists or an incident is open is the
service's business.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Literal

from bot.incident.key import IncidentKey

MAX_TEXT = 4000

USAGE: dict[str, str] = {
    "declare": 'declare [severity] "<title>" [impact="<who/what is affected>"] [tenant=<t1,t2>] [--issue]',
    "ack": "ack",
    "status": 'status "<what we know, what we are doing, next update>"',
    "sev": "sev <level>",
    "role": "role <ic|ops|comms|scribe> @user",
    "note": 'note [rootcause|contributing|wentwell] [--at HH:MM] "<text>"',
    "check": "check <item number>",
    "snooze": "snooze <30m|1h>  (any 5m–4h)",
    "playbook": "playbook [name]",
    "freeze": "freeze on|off",
    "action": 'action "<text>" [owner=@user] [due=YYYY-MM-DD] [--issue]   |   action done <n>   |   action sync',
    "mitigate": "mitigate",
    "resolve": 'resolve ["<summary>"]',
    "close": "close",
    "reopen": "reopen",
    "postmortem": "postmortem [md|json|pr]",
    "affects": "affects <tenant>[,<tenant>…]",
    "follow": "follow [INC-n]",
    "unfollow": "unfollow [INC-n]",
    "use": "use INC-n",
    "brief": ("brief <tenant[,tenant]|all-affected> [template] [area=<what>] [eta=<minutes>] [--send]   |   "
              "brief send <id>"),
    "public": ('public [investigating|identified|monitoring|resolved] "<text for customers>" [areas=<a,b>]   |   '
               'public brief <id>'),
    "web": "web  (a one-time sign-in link to the web pages, sent to you privately)",
    "page": 'page <role|@person> "<reason>"',
    "escalate": 'escalate ["<reason>"]',
    "oncall": "oncall   |   oncall override <role> @person <from YYYY-MM-DD[THH:MM]> <to YYYY-MM-DD[THH:MM]>",
    "list": "list",
    "stats": "stats [30d]  (a period: 1h–365d, or weeks like 4w)",
    "show": "show [INC-n]",
    "help": "help [command]",
}
SUBCOMMANDS = tuple(USAGE)

HELP_SUMMARY = {
    "declare": "open an incident with its card, checklists and a suggested playbook",
    "ack": "acknowledge; time-to-acknowledge is measured against the response target",
    "status": "post a status update; restarts the update-reminder clock",
    "sev": "change severity; targets and reminders are re-planned",
    "role": "assign incident commander, ops lead, comms lead or scribe",
    "note": "add a timeline note; tagged notes fill the post-mortem's sections",
    "check": "tick an item of the posted checklist",
    "snooze": "postpone the next update nudge once",
    "playbook": "post a scenario playbook's steps (no name: list them)",
    "freeze": "turn the deploy freeze on or off",
    "action": ("add a follow-up action item (--issue: also as a GitHub issue), mark one done, "
               "or open issues for all (sync)"),
    "mitigate": "impact stopped, fix not yet verified",
    "resolve": "fix verified; starts the post-mortem clock",
    "close": "close a resolved incident",
    "reopen": "reopen a resolved or closed incident",
    "postmortem": "compile the timeline into a post-mortem and post it; `pr` also opens or updates its pull request",
    "affects": "link affected customer tenants (for WhatsApp briefs)",
    "follow": "WhatsApp: get every update of an incident on this phone",
    "unfollow": "WhatsApp: stop getting an incident's updates",
    "use": "WhatsApp: make INC-n the incident your messages and commands go to",
    "brief": "preview a WhatsApp brief to affected customers; send on confirm",
    "public": "publish an update on the public status page (nothing else of the incident is shown there)",
    "web": "get a one-time link (10 minutes) that signs you in to the web pages",
    "page": "page whoever holds a role (or one person) now, by hand",
    "escalate": "page the next level of the severity's escalation policy now",
    "oncall": "who is on call now and next per role; override hands a role to someone for a while",
    "list": "list open incidents",
    "stats": "response and resolution times per severity against their targets (default: last 30 days)",
    "show": "one incident's summary",
    "help": "this help, or one command's usage",
}

ROLE_NAMES: dict[str, Literal["ic", "ops", "comms", "scribe"]] = {
    "ic": "ic", "commander": "ic", "ops": "ops", "comms": "comms", "scribe": "scribe"}
NoteTag = Literal["rootcause", "contributing", "wentwell"]
NOTE_TAGS: tuple[NoteTag, ...] = ("rootcause", "contributing", "wentwell")
_SEVERITY_TOKEN = re.compile(r"^[A-Za-z]{0,4}[0-9]{1,2}$")
_DURATION = re.compile(r"^([0-9]{1,3})\s*(m|min|h)$", re.IGNORECASE)
_PERIOD = re.compile(r"^([0-9]{1,4})\s*(h|d|w)$", re.IGNORECASE)
_CLOCK = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}


@dataclass(frozen=True)
class UsageError:
    message: str
    usage: str | None = None

    def __str__(self) -> str:
        return self.message + (f"\nUsage: /incident {self.usage}" if self.usage else "")


@dataclass(frozen=True, kw_only=True)
class Command:
    incident: int | None = None  # an explicit INC-n; otherwise the room decides

    @property
    def name(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True, kw_only=True)
class Declare(Command):
    title: str
    severity: str | None = None
    impact: str | None = None
    tenants: tuple[str, ...] = ()
    issue: bool = False  # --issue: a backlog severity (P3) is logged as a GitHub issue, nobody is paged


@dataclass(frozen=True, kw_only=True)
class Follow(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Unfollow(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class UseIncident(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class LinkTenants(Command):
    tenants: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PrepareBrief(Command):
    target: tuple[str, ...]  # tenants, or ("all-affected",)
    template: str | None = None
    area: str | None = None
    eta_minutes: int | None = None
    send: bool = False


@dataclass(frozen=True, kw_only=True)
class SendBrief(Command):
    brief_id: int


PUBLIC_STATES = ("investigating", "identified", "monitoring", "resolved")


@dataclass(frozen=True, kw_only=True)
class PublishUpdate(Command):
    """`public identified "…" areas=payments`: text for the status page, or a sent brief's text (brief_id)."""

    text: str | None = None
    state: str | None = None  # None: the incident's last public state (investigating at first)
    areas: tuple[str, ...] = ()
    brief_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class WebSignIn(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Acknowledge(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class PostStatus(Command):
    text: str


@dataclass(frozen=True, kw_only=True)
class ChangeSeverity(Command):
    level: str


@dataclass(frozen=True, kw_only=True)
class AssignRole(Command):
    role: Literal["ic", "ops", "comms", "scribe"]
    user: str


@dataclass(frozen=True, kw_only=True)
class AddNote(Command):
    text: str
    tag: NoteTag | None = None
    at: time | None = None


@dataclass(frozen=True, kw_only=True)
class TickChecklist(Command):
    item: int


@dataclass(frozen=True, kw_only=True)
class Snooze(Command):
    duration: timedelta


@dataclass(frozen=True, kw_only=True)
class ShowPlaybook(Command):
    playbook: str | None = None


@dataclass(frozen=True, kw_only=True)
class SetFreeze(Command):
    on: bool


@dataclass(frozen=True, kw_only=True)
class AddAction(Command):
    text: str
    owner: str | None = None
    due: date | None = None
    issue: bool = False  # --issue: also open it as an issue on the code host


@dataclass(frozen=True, kw_only=True)
class CompleteAction(Command):
    item: int


@dataclass(frozen=True, kw_only=True)
class SyncActions(Command):
    """Open a code host issue for every action item that has none yet."""


@dataclass(frozen=True, kw_only=True)
class Mitigate(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Resolve(Command):
    summary: str | None = None


@dataclass(frozen=True, kw_only=True)
class Close(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Reopen(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class CompilePostmortem(Command):
    format: Literal["md", "json"] = "md"
    pull_request: bool = False  # `postmortem pr`: also open or update the post-mortem's pull request


@dataclass(frozen=True, kw_only=True)
class PageByHand(Command):
    target: str  # a role, or @person
    reason: str


@dataclass(frozen=True, kw_only=True)
class Escalate(Command):
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ShowOnCall(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class OverrideOnCall(Command):
    role: str
    person: str  # as typed: a name, @name, or a platform mention (<@U123>)
    starts: str  # YYYY-MM-DD or YYYY-MM-DDTHH:MM, local to the role's rotation; checked by the roster
    ends: str  # the same; a date alone is inclusive (to the end of that day)


@dataclass(frozen=True, kw_only=True)
class ListIncidents(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class ShowIncident(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Stats(Command):
    period: timedelta = timedelta(days=30)


@dataclass(frozen=True, kw_only=True)
class Help(Command):
    topic: str | None = None


ParseResult = Command | UsageError


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool
    key: str | None = None  # for key=value tokens
    raw: str | None = None  # the token as typed, for commands that take no options ("retry=3 worked")

    @property
    def as_typed(self) -> str:
        return self.raw if self.raw is not None else self.text


# A sub-command's parser: its argument tokens and the incident reference given before it, to a command.
_Parser = Callable[[list[_Token], int | None], Command]


class _Bad(Exception):
    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.error = UsageError(message, usage)


_JOINERS = "\u200c\u200d"  # ZWNJ/ZWJ: needed by emoji sequences and Persian script, unlike other format chars
_LINE_BREAKS = "\t\r\n\v\f\u2028\u2029"  # all become plain spaces: commands and errors are one line


def clean_text(text: str) -> str:
    """Drop control and format characters (bidi overrides, zero-width spaces; keeping joiners), turn newlines
    and tabs into spaces, and normalise Unicode to NFC."""
    text = unicodedata.normalize("NFC", text)
    return "".join(
        " " if ch in _LINE_BREAKS else ch
        for ch in text
        # Unassigned code points (Cn) are kept: they are often emoji newer than this Python's Unicode tables.
        if ch in _LINE_BREAKS or ch in _JOINERS or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co")
    )


def _visible(text: str) -> str:
    """The text, or '' when it is only spaces and joiners (nothing a reader could see)."""
    return text if text.strip(" " + _JOINERS) else ""


def tokenize(text: str) -> list[_Token]:
    """Split on whitespace; quotes group words; key="quoted value" is one token. Raises _Bad."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        key = None
        start = i
        match = re.match(r"([A-Za-z_][A-Za-z_-]{0,30})=", text[i:])
        if match:
            key = match.group(1).lower()
            i += match.end()
            if i >= n or text[i].isspace():
                tokens.append(_Token("", quoted=False, key=key, raw=text[start:i]))
                continue
        closing = _QUOTES.get(text[i])
        end = text.find(closing, i + 1) if closing else -1
        if closing and end == -1 and closing in "'’":
            closing = None  # a lone apostrophe ('twas, don't) is a letter, not an opening quote
        if closing:
            if end == -1:
                raise _Bad(f"Unbalanced quote: the text starting at {text[i:i + 20]!r} has no closing {closing}.")
            tokens.append(_Token(text[i + 1:end], quoted=True, key=key, raw=text[start:end + 1] if key else None))
            i = end + 1
        else:
            end = i
            while end < n and not text[end].isspace():
                end += 1
            tokens.append(_Token(text[i:end], quoted=False, key=key, raw=text[start:end] if key else None))
            i = end
    return tokens


def _words(tokens: list[_Token]) -> str:
    """Free text: options were already taken out by commands that have them, so key=value reads as typed."""
    return " ".join(token.as_typed for token in tokens).strip()


def _take_incident_ref(tokens: list[_Token]) -> int | None:
    """An INC-n among the leading positional tokens (first one only) names the incident."""
    if tokens and not tokens[0].quoted and tokens[0].key is None:
        key = IncidentKey.parse(tokens[0].text, strict=True)
        if key is not None:
            tokens.pop(0)
            return key.number
    return None


def _options(tokens: list[_Token], allowed: tuple[str, ...], usage: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for token in [t for t in tokens if t.key is not None]:
        if token.key not in allowed:
            valid = ", ".join(f"{name}=" for name in allowed) or "none"
            raise _Bad(f"Unknown option '{token.key}='. Valid options here: {valid}.", usage)
        if not token.text.strip():
            raise _Bad(f"Option '{token.key}=' needs a value.", usage)
        if token.key in options:
            raise _Bad(f"Option '{token.key}=' is given twice; give it once.", usage)
        options[token.key] = token.text.strip()
        tokens.remove(token)
    return options


def _required_text(tokens: list[_Token], what: str, usage: str) -> str:
    text = _visible(_words(tokens))
    if not text:
        raise _Bad(f"Missing {what}.", usage)
    return text


def _positive_int(token_text: str, what: str, usage: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", token_text) or int(token_text) < 1:
        raise _Bad(f"'{token_text}' is not a {what}; give a number like 1, 2, 3.", usage)
    return int(token_text)


def _user(token: str) -> str:
    return token[1:] if token.startswith("@") and len(token) > 1 else token


def _parse_declare(tokens: list[_Token], ref: int | None, severities: Collection[str] | None) -> Declare:
    usage = USAGE["declare"]
    issue = any(not t.quoted and t.key is None and t.text.lower() == "--issue" for t in tokens)
    tokens[:] = [t for t in tokens if t.quoted or t.key is not None or t.text.lower() != "--issue"]
    options = _options(tokens, ("impact", "sev", "severity", "tenant"), usage)
    if "sev" in options and "severity" in options:
        raise _Bad("Severity is given twice (sev= and severity=); give it once.", usage)
    severity = options.get("sev") or options.get("severity")
    if tokens and not tokens[0].quoted and _SEVERITY_TOKEN.match(tokens[0].text):
        word = tokens[0].text.upper()
        known = severities is None or word in {s.upper() for s in severities}
        # "declare P7 "x"" is a wrong severity; "declare EC2 instances down" is a title that starts with EC2.
        if known or (len(tokens) == 2 and tokens[1].quoted):
            if severity is not None:
                raise _Bad(f"Severity is given twice ({tokens[0].text} and sev={severity}); give it once.", usage)
            severity = tokens.pop(0).text
    title = _visible(_words(tokens))
    if not title:
        raise _Bad('Missing title: say what is broken, e.g. /incident declare P1 "Payments down".', usage)
    tenants = _tenant_list(options["tenant"], usage) if "tenant" in options else ()
    return Declare(incident=ref, title=title, severity=severity.upper() if severity else None,
                   impact=options.get("impact"), tenants=tenants, issue=issue)


_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _tenant_list(value: str, usage: str) -> tuple[str, ...]:
    tenants = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    bad = [t for t in tenants if not _TENANT.match(t)]
    if not tenants or bad:
        shown = bad[0] if bad else value
        raise _Bad(f"'{shown[:40]}' is not a tenant name: use lowercase letters, digits, '-' or '_', "
                   "comma-separated, e.g. acme,globex.", usage)
    return tenants


def _parse_use(tokens: list[_Token], ref: int | None) -> UseIncident:
    if tokens:
        key = IncidentKey.parse(tokens[0].text) if len(tokens) == 1 else None
        if key is None:
            raise _Bad(f"'{_words(tokens)[:40]}' is not an incident id; use INC-n.", USAGE["use"])
        ref = key.number
    if ref is None:
        raise _Bad("Say which incident, e.g. /incident use INC-9.", USAGE["use"])
    return UseIncident(incident=ref)


def _parse_affects(tokens: list[_Token], ref: int | None) -> LinkTenants:
    usage = USAGE["affects"]
    value = "".join(token.as_typed for token in tokens)
    if not value:
        raise _Bad("Say which customer tenants are affected, e.g. /incident affects acme,globex.", usage)
    return LinkTenants(incident=ref, tenants=_tenant_list(value, usage))


def _parse_brief(tokens: list[_Token], ref: int | None) -> PrepareBrief | SendBrief:
    usage = USAGE["brief"]
    if tokens and not tokens[0].quoted and tokens[0].key is None and tokens[0].text.lower() == "send":
        tokens.pop(0)
        if len(tokens) != 1:
            raise _Bad("Say which brief to send, e.g. /incident brief send 3.", usage)
        return SendBrief(incident=ref, brief_id=_positive_int(tokens[0].text, "brief id", usage))
    options = _options(tokens, ("area", "eta"), usage)
    send = False
    positional = []
    for token in tokens:
        if not token.quoted and token.text.lower() == "--send":
            send = True
        else:
            positional.append(token.text)
    if not positional or len(positional) > 2:
        raise _Bad("Say who gets the brief (a tenant, several comma-separated, or all-affected), and optionally "
                   "the template.", usage)
    target = ("all-affected",) if positional[0].lower() == "all-affected" else _tenant_list(positional[0], usage)
    eta = None
    if "eta" in options:
        if not re.fullmatch(r"[0-9]{1,4}", options["eta"]) or not 1 <= int(options["eta"]) <= 1440:
            raise _Bad(f"Bad eta '{options['eta']}'; give minutes between 1 and 1440, e.g. eta=30.", usage)
        eta = int(options["eta"])
    template = positional[1].lower() if len(positional) == 2 else None
    return PrepareBrief(incident=ref, target=target, template=template, area=options.get("area"), eta_minutes=eta,
                        send=send)


def _parse_public(tokens: list[_Token], ref: int | None) -> PublishUpdate:
    usage = USAGE["public"]
    options = _options(tokens, ("areas",), usage)
    areas = tuple(dict.fromkeys(a.strip().lower() for a in options.get("areas", "").split(",") if a.strip()))
    if any(not _TENANT.match(area) for area in areas):
        raise _Bad(f"Bad areas '{options['areas'][:40]}': use lowercase names, comma-separated, e.g. "
                   "areas=payments,api.", usage)
    state = None
    if tokens and not tokens[0].quoted and tokens[0].text.lower() in PUBLIC_STATES:
        state = tokens.pop(0).text.lower()
    if tokens and not tokens[0].quoted and tokens[0].text.lower() == "brief":
        tokens.pop(0)
        if len(tokens) != 1:
            raise _Bad("Say which brief's text to publish, e.g. /incident public brief 3.", usage)
        return PublishUpdate(incident=ref, state=state, areas=areas,
                             brief_id=_positive_int(tokens[0].text, "brief id", usage))
    if tokens and not tokens[0].quoted and tokens[0].text.lower() in ("investigated", "identify", "monitor",
                                                                       "resolve"):
        raise _Bad(f"Unknown status '{tokens[0].text}'. Public statuses: {', '.join(PUBLIC_STATES)}.", usage)
    return PublishUpdate(incident=ref, state=state, areas=areas,
                         text=_required_text(tokens, "text for the status page", usage))


def _parse_note(tokens: list[_Token], ref: int | None) -> AddNote:
    usage = USAGE["note"]
    tag: NoteTag | None = None
    at = None
    while tokens and not tokens[0].quoted:
        head = tokens[0].text.lower()
        named = next((known for known in NOTE_TAGS if known == head), None)
        if named is not None and tag is None:
            tag = named
            tokens.pop(0)
        elif head == "--at":
            tokens.pop(0)
            if not tokens:
                raise _Bad("--at needs a time, e.g. --at 09:52.", usage)
            value = tokens.pop(0).text
            match = _CLOCK.match(value)
            if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
                raise _Bad(f"Bad time '{value}' for --at; use HH:MM on a 24-hour clock, e.g. 09:52.", usage)
            at = time(int(match.group(1)), int(match.group(2)))
        else:
            break
    text = _required_text(tokens, "note text", usage)
    return AddNote(incident=ref, text=text, tag=tag, at=at)


def _parse_action(tokens: list[_Token], ref: int | None) -> AddAction | CompleteAction | SyncActions:
    usage = USAGE["action"]
    if tokens and not tokens[0].quoted and tokens[0].key is None and tokens[0].text.lower() == "done":
        tokens.pop(0)
        if len(tokens) != 1:
            raise _Bad("Say which action item is done, e.g. /incident action done 2.", usage)
        return CompleteAction(incident=ref, item=_positive_int(tokens[0].text, "action item number", usage))
    if len(tokens) == 1 and not tokens[0].quoted and tokens[0].key is None and tokens[0].text.lower() == "sync":
        return SyncActions(incident=ref)
    issue = any(not t.quoted and t.key is None and t.text.lower() == "--issue" for t in tokens)
    tokens[:] = [t for t in tokens if t.quoted or t.key is not None or t.text.lower() != "--issue"]
    options = _options(tokens, ("owner", "due"), usage)
    due = None
    if "due" in options:
        try:
            due = date.fromisoformat(options["due"])
        except ValueError:
            raise _Bad(f"Bad date '{options['due']}' for due=; use YYYY-MM-DD, e.g. due=2026-12-01.", usage) from None
    text = _required_text(tokens, "action item text", usage)
    return AddAction(incident=ref, text=text, owner=_user(options["owner"]) if "owner" in options else None, due=due,
                     issue=issue)


def _parse_snooze(tokens: list[_Token], ref: int | None) -> Snooze:
    usage = USAGE["snooze"]
    value = _words(tokens).replace(" ", "")
    match = _DURATION.match(value)
    if not match:
        raise _Bad(f"Bad snooze '{value or '(nothing)'}'; give a duration like 30m or 1h.", usage)
    minutes = int(match.group(1)) * (60 if match.group(2).lower() == "h" else 1)
    if not 5 <= minutes <= 240:
        raise _Bad(f"Snooze must be between 5m and 4h, got {value}.", usage)
    return Snooze(incident=ref, duration=timedelta(minutes=minutes))


def _no_arguments(cls: type[Command], name: str) -> _Parser:
    def parse(tokens: list[_Token], ref: int | None) -> Command:
        if tokens:
            raise _Bad(f"'{name}' takes no arguments, got '{_words(tokens)[:60]}'.", USAGE[name])
        return cls(incident=ref)
    return parse


def _parse_status(tokens: list[_Token], ref: int | None) -> PostStatus:
    return PostStatus(incident=ref, text=_required_text(tokens, "status text", USAGE["status"]))


def _parse_sev(tokens: list[_Token], ref: int | None) -> ChangeSeverity:
    if len(tokens) != 1 or not tokens[0].text.strip():
        raise _Bad("Say the new severity, e.g. /incident sev P1.", USAGE["sev"])
    return ChangeSeverity(incident=ref, level=tokens[0].text.strip().upper())


def _parse_role(tokens: list[_Token], ref: int | None) -> AssignRole:
    usage = USAGE["role"]
    if len(tokens) != 2:
        raise _Bad("Say the role and the person, e.g. /incident role ic @alice.", usage)
    role = ROLE_NAMES.get(tokens[0].text.lower())
    if role is None:
        raise _Bad(f"Unknown role '{tokens[0].text}'. Roles: ic, ops, comms, scribe.", usage)
    user = _user(tokens[1].text.strip())
    if not user or user == "@":
        raise _Bad("Say who takes the role, e.g. @alice.", usage)
    return AssignRole(incident=ref, role=role, user=user)


def _parse_check(tokens: list[_Token], ref: int | None) -> TickChecklist:
    if len(tokens) != 1:
        raise _Bad("Say which checklist item, e.g. /incident check 3.", USAGE["check"])
    return TickChecklist(incident=ref, item=_positive_int(tokens[0].text, "checklist item number", USAGE["check"]))


def _parse_playbook(tokens: list[_Token], ref: int | None) -> ShowPlaybook:
    name = _words(tokens).lower() or None
    return ShowPlaybook(incident=ref, playbook=name)


def _parse_freeze(tokens: list[_Token], ref: int | None) -> SetFreeze:
    value = _words(tokens).lower()
    if value not in ("on", "off"):
        raise _Bad(f"Freeze takes on or off, got '{value or '(nothing)'}'.", USAGE["freeze"])
    return SetFreeze(incident=ref, on=value == "on")


def _parse_resolve(tokens: list[_Token], ref: int | None) -> Resolve:
    return Resolve(incident=ref, summary=_words(tokens) or None)


def _parse_postmortem(tokens: list[_Token], ref: int | None) -> CompilePostmortem:
    words = _words(tokens).lower().split()
    pull_request = "pr" in words
    words = [word for word in words if word != "pr"]
    value = " ".join(words) or "md"
    if value not in ("md", "json"):
        raise _Bad(f"Unknown post-mortem format '{value}'; use md, json or pr.", USAGE["postmortem"])
    if pull_request and value != "md":
        raise _Bad("The pull request carries the Markdown post-mortem; use `postmortem pr`.", USAGE["postmortem"])
    fmt: Literal["md", "json"] = "json" if value == "json" else "md"
    return CompilePostmortem(incident=ref, format=fmt, pull_request=pull_request)


def _parse_show(tokens: list[_Token], ref: int | None) -> ShowIncident:
    if tokens:
        key = IncidentKey.parse(tokens[0].text) if len(tokens) == 1 else None
        if key is None:
            raise _Bad(f"'{_words(tokens)[:40]}' is not an incident id; use INC-n.", USAGE["show"])
        ref = key.number
    return ShowIncident(incident=ref)


def _parse_stats(tokens: list[_Token], ref: int | None) -> Stats:
    usage = USAGE["stats"]
    value = _words(tokens).replace(" ", "")
    if not value:
        return Stats(incident=ref)
    match = _PERIOD.match(value)
    if not match or len(tokens) > 2:
        raise _Bad(f"Bad period '{_words(tokens)[:40]}'; give one like 30d, 7d, 4w or 24h.", usage)
    hours = int(match.group(1)) * {"h": 1, "d": 24, "w": 168}[match.group(2).lower()]
    if not 1 <= hours <= 365 * 24:
        raise _Bad(f"The period must be between 1h and 365d, got {value}.", usage)
    return Stats(incident=ref, period=timedelta(hours=hours))


_WHEN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt][0-9]{1,2}:[0-9]{2})?$")


def _parse_oncall(tokens: list[_Token], ref: int | None) -> ShowOnCall | OverrideOnCall:
    usage = USAGE["oncall"]
    if not tokens:
        return ShowOnCall(incident=ref)
    if tokens[0].text.lower() != "override":
        raise _Bad(f"'oncall' takes nothing or 'override …', got '{_words(tokens)[:60]}'.", usage)
    words = [token.text for token in tokens[1:]]
    if len(words) != 4:
        raise _Bad("Give a role, a person and two dates, e.g. oncall override platform @dave 2026-12-24 "
                   "2026-12-27.", usage)
    role, person, starts, ends = words
    for when in (starts, ends):
        if not _WHEN.match(when):
            raise _Bad(f"'{when[:40]}' is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM.", usage)
    return OverrideOnCall(incident=ref, role=role.lower(), person=person, starts=starts, ends=ends)


def _parse_page(tokens: list[_Token], ref: int | None) -> PageByHand:
    usage = USAGE["page"]
    if not tokens or tokens[0].quoted:
        raise _Bad("Name a role or a person to page, e.g. page platform \"callbacks failing\".", usage)
    target = tokens.pop(0).text
    return PageByHand(incident=ref, target=target, reason=_required_text(tokens, "a reason", usage))


def _parse_escalate(tokens: list[_Token], ref: int | None) -> Escalate:
    return Escalate(incident=ref, reason=_words(tokens) or None)


def _parse_help(tokens: list[_Token], ref: int | None) -> Help:
    topic = _words(tokens).lower().lstrip("/") or None
    if topic is not None and topic == "unfreeze":
        topic = "freeze"
    topic = _ALIASES.get(topic, topic) if topic else None
    if topic is not None and topic not in USAGE:
        raise _Bad(f"No help for '{topic[:40]}'. Commands: {', '.join(SUBCOMMANDS)}.", USAGE["help"])
    return Help(topic=topic)


_PARSERS: dict[str, _Parser] = {
    "declare": lambda tokens, ref: _parse_declare(tokens, ref, None),
    "ack": _no_arguments(Acknowledge, "ack"),
    "status": _parse_status,
    "sev": _parse_sev,
    "role": _parse_role,
    "note": _parse_note,
    "check": _parse_check,
    "snooze": _parse_snooze,
    "playbook": _parse_playbook,
    "freeze": _parse_freeze,
    "action": _parse_action,
    "mitigate": _no_arguments(Mitigate, "mitigate"),
    "resolve": _parse_resolve,
    "close": _no_arguments(Close, "close"),
    "reopen": _no_arguments(Reopen, "reopen"),
    "postmortem": _parse_postmortem,
    "affects": _parse_affects,
    "follow": _no_arguments(Follow, "follow"),
    "unfollow": _no_arguments(Unfollow, "unfollow"),
    "use": _parse_use,
    "brief": _parse_brief,
    "public": _parse_public,
    "web": _no_arguments(WebSignIn, "web"),
    "oncall": _parse_oncall,
    "page": _parse_page,
    "escalate": _parse_escalate,
    "list": _no_arguments(ListIncidents, "list"),
    "stats": _parse_stats,
    "show": _parse_show,
    "help": _parse_help,
}
_ALIASES = {"acknowledge": "ack", "severity": "sev", "update": "status", "actions": "action", "pm": "postmortem",
            "ls": "list", "unfreeze": "freeze",
            "on-call": "oncall"}


def _usage_for(text: str) -> str | None:
    """The usage of the subcommand a (possibly malformed) line starts with, for error messages."""
    for word in text.split()[:2]:
        name = _ALIASES.get(word.lower(), word.lower())
        if name in USAGE:
            return USAGE[name]
    return None


def parse(text: str, *, severities: Collection[str] | None = None) -> ParseResult:
    """`/incident status INC-7 "db back"` → PostStatus(incident=7, text="db back"); bad input → UsageError.

    `severities` (the workspace's level names) lets `declare EC2 instances down` read EC2 as part of the title."""
    if not isinstance(text, str):
        return UsageError("Expected command text.")
    if len(text) > MAX_TEXT:
        return UsageError(f"That is {len(text):,} characters; commands are limited to {MAX_TEXT:,}. "
                          "Shorten it, or post the detail as a thread message.", _usage_for(text[:200]))
    text = clean_text(text).strip()
    text = re.sub(r"^/?incident\b", "", text, flags=re.IGNORECASE).strip()
    if not text:
        return Help()
    try:
        try:
            tokens = tokenize(text)
        except _Bad as bad:
            raise _Bad(bad.error.message, _usage_for(text)) from None
        ref = _take_incident_ref(tokens)
        if not tokens or tokens[0].quoted or tokens[0].key is not None:
            raise _Bad(f"Start with a command: {', '.join(SUBCOMMANDS)}.", USAGE["help"])
        word = tokens.pop(0).text.lower()
        name = _ALIASES.get(word, word)
        if name not in _PARSERS:
            raise _Bad(f"Unknown command '{word[:40]}'. Commands: {', '.join(SUBCOMMANDS)}.", USAGE["help"])
        if ref is None:
            ref = _take_incident_ref(tokens)
        if word == "unfreeze":
            if tokens:
                raise _Bad(f"'unfreeze' takes no arguments, got '{_words(tokens)[:60]}'.", "freeze off")
            tokens = [_Token("off", quoted=False)]
        if name == "declare":
            return _parse_declare(tokens, ref, severities)
        return _PARSERS[name](tokens, ref)
    except _Bad as bad:
        return bad.error


def help_text(topic: str | None = None) -> str:
    if topic:
        return f"/incident {USAGE[topic]}\n{HELP_SUMMARY[topic]}"
    width = max(len(name) for name in USAGE)
    lines = ["/incident commands (inside an incident's thread, or name it: /incident status INC-7 \"…\"):"]
    lines += [f"  {name.ljust(width)}  {HELP_SUMMARY[name]}" for name in USAGE]
    return "\n".join(lines)
