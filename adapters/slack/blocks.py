"""Slack's two text edges, and Block Kit rendering of the core's neutral messages.

- `from_slack()` turns Slack's message markup (what arrives in events and slash commands) into the plain prose
  the core stores: `&amp;`/`&lt;`/`&gt;` unescaped, links and channel references readable, broadcasts
  (`<!channel>`) and user groups as plain words. User mentions stay `<@U…>`: that is how Slack names a person,
  and it renders as a live mention when the core repeats the text.
- `escape()` turns plain prose into mrkdwn that cannot broadcast or inject markup: `&<>` escaped, `<!channel>`
  / `<!here>` / `<!subteam^…>` neutralised (they arrive as text and leave as text), `@channel` words broken
  with a word joiner; URLs as links. `<@U…>` is a live mention only in text a Slack user wrote in Slack
  (`Message.mentions_from == "slack"`); anywhere else (WhatsApp customers, operators' phones, alerts, Discord,
  the bot's own cards) it shows as `@name` text (or as typed), and it never notifies anyone. A bare word that
  looks like a user id (`UBK4X7Q2ZP`, `W12345678`) is always a word.

Everything here is pure (no slack-sdk import), so it is cheap to test and to reuse from other adapters' tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.ports import Button, Message

MAX_SECTION = 3000  # Block Kit: a section's text
MAX_FIELD = 2000  # Block Kit: one section field
MAX_FIELDS = 10  # Block Kit: fields per section
MAX_BLOCKS = 50  # Block Kit: blocks per message
MAX_HEADER = 150  # Block Kit: header plain_text
MAX_FALLBACK = 3000  # the notification text; Slack truncates far later, people read far less

ACTION_PREFIX = "warroom_"
DECLARE_VIEW = "warroom_declare"
UPDATE_VIEW = "warroom_update"

_ICONS = {"error": ":warning:", "escalation": ":rotating_light:", "nudge": ":alarm_clock:", "reminder": ":bell:",
          "postmortem": ":memo:", "playbook": ":book:"}

# -- inbound: Slack markup → plain prose ----------------------------------------------------------------

_SLACK_REF = re.compile(r"<([^<>\n]*)>")
_USER_REF = re.compile(r"^@([UW][A-Z0-9]+)$")


def _readable(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):
        user = _USER_REF.match(target)
        return f"<@{user.group(1)}>" if user else target  # keep mentions, drop the label
    if target.startswith("#"):
        return f"#{label}" if label else f"<{target}>"
    if target.startswith("!"):
        name = target[1:]
        if name in ("channel", "here", "everyone"):
            return f"@{name}"
        if name.startswith("subteam^"):
            return label or "@group"
        return label or name.split("^", 1)[0]  # <!date^…|fallback> → fallback
    if not target:
        return match.group(0)
    url = target.removeprefix("mailto:")
    return f"{label} ({url})" if label and label != target and label != url else url


def from_slack(text: str) -> str:
    """`<!here> db &amp; cache &lt;ok&gt; <@U1|alice> <https://x.io|dash>` → `@here db & cache <ok> <@U1> dash (https://x.io)`."""
    text = _SLACK_REF.sub(_readable, text or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def leading_mention(text: str, bot_user_id: str | None) -> str | None:
    """The text after a leading `<@BOT>` mention (a command addressed to the bot), else None."""
    if not bot_user_id:
        return None
    match = re.match(rf"^\s*<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[\s:,]*", text or "")
    return text[match.end():] if match else None


# -- outbound: plain prose → safe mrkdwn --------------------------------------------------------------

_ESCAPED_REF = re.compile(r"&lt;([@#])([UWCG][A-Z0-9]+)(?:\|[^&<>|]*)?&gt;")
_BROADCAST_WORD = re.compile(r"(?<![\w@])@(channel|here|everyone)\b", re.IGNORECASE)
_URL = re.compile(r"https?://(?:(?!&lt;|&gt;)[^\s<>|\"])+")
_URL_TRAILING = ".,:!?)]'"
WORD_JOINER = "\u2060"


def _link(match: re.Match[str]) -> str:
    url = match.group(0)
    trailing = ""
    while url and url[-1] in _URL_TRAILING:
        url, trailing = url[:-1], url[-1] + trailing
    return f"<{url}>{trailing}"


def mentions_live(message: Message) -> bool:
    """Whether `<@U…>` in this message may notify: only in text a Slack user wrote in Slack."""
    return message.mentions_from == "slack"


def escape(text: str, *, mentions: bool = False, names: Mapping[str, str] | None = None) -> str:
    """Plain prose → mrkdwn that shows exactly that prose: `<!channel> & <b>` → `&lt;!channel&gt; &amp; &lt;b&gt;`.

    `mentions`: the text is a Slack user's own, so their `<@U…>` and `<#C…>` stay live. Otherwise a `<@U…>`
    becomes `@name` from `names` (or stays the typed text), and notifies nobody."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if mentions:
        out = _ESCAPED_REF.sub(lambda m: f"<{m.group(1)}{m.group(2)}>", out)
    elif names:
        out = _ESCAPED_REF.sub(lambda m: f"@{names[m.group(2)]}".replace("<", "&lt;").replace(">", "&gt;")
                               if m.group(1) == "@" and m.group(2) in names else m.group(0), out)
    out = _BROADCAST_WORD.sub(lambda m: f"@{WORD_JOINER}{m.group(1)}", out)
    return _URL.sub(_link, out)


_escape = escape  # render() and friends shadow the name with a per-message escaper


def slack_date(moment: datetime, fmt: str = "{date_short_pretty} at {time}") -> str:
    """`<!date^…>`: Slack shows the time in each reader's own timezone; the fallback is UTC."""
    fallback = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{fmt}|{fallback}>"


# -- Block Kit ----------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does no automatic parsing of plain words (no @channel, no #channel guessing); the
    # manual markup escape() produced (mentions, links, dates) still renders.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _chunks(text: str, limit: int) -> list[str]:
    """Split on line boundaries into pieces of at most `limit` characters (hard-cutting over-long lines)."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return [piece for piece in pieces if piece.strip()]


def _sections(mrkdwn: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": _mrkdwn(piece)} for piece in _chunks(mrkdwn, MAX_SECTION)]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(button: Button) -> dict[str, Any]:
    element = {"type": "button", "text": {"type": "plain_text", "text": _cut(button.label, 75), "emoji": True},
               "action_id": f"{ACTION_PREFIX}{button.action}", "value": button.value}
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    if button.action == "resolve":
        element["confirm"] = {
            "title": {"type": "plain_text", "text": "Resolve the incident?"},
            "text": {"type": "plain_text", "text": f"Mark {button.value} resolved: the fix is verified."},
            "confirm": {"type": "plain_text", "text": "Resolve"},
            "deny": {"type": "plain_text", "text": "Not yet"},
            "style": "danger",
        }
    return element


def fallback_text(message: Message, *, names: Mapping[str, str] | None = None) -> str:
    """The notification / screen-reader text that goes with the blocks."""
    escape = _escaper(message, names)
    parts = [part for part in (message.title, message.text) if part]
    if not parts and message.checklist:
        parts = [f"{item.number}. {item.text}" for item in message.checklist]
    icon = _ICONS.get(message.kind)
    text = escape(" — ".join(parts) or "warroom")
    return _cut(f"{icon} {text}" if icon else text, MAX_FALLBACK)


def as_mrkdwn(message: Message, *, names: Mapping[str, str] | None = None) -> str:
    """One mrkdwn text for places that take no blocks (a file's comment): title, text, fields, checklist, footer."""
    escape = _escaper(message, names)
    icon = _ICONS.get(message.kind)
    lines = [f"{icon + ' ' if icon else ''}*{escape(message.title)}*"] if message.title else []
    if message.text:
        lines.append(f"{icon + ' ' if icon and not lines else ''}{escape(message.text)}")
    lines += [f"*{escape(field.label)}:* {escape(field.value)}" for field in message.fields]
    lines += [f"{'✓' if item.done else '•'} {item.number}. {escape(item.text)}" for item in message.checklist]
    if message.footer:
        lines.append(f"_{escape(message.footer)}_")
    return _cut("\n".join(lines) or "warroom", MAX_FALLBACK)


def _escaper(message: Message, names: Mapping[str, str] | None) -> Callable[[str], str]:
    live = mentions_live(message)
    return lambda text: _escape(text, mentions=live, names=names)


def render(message: Message, *, now: datetime | None = None,
           names: Mapping[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """A neutral message → (fallback text, Block Kit blocks). A card gets a header, fields, buttons and a
    context line with the refresh time in the reader's timezone. `names`: user id → name for `<@U…>` shown as
    text (see escape)."""
    escape = _escaper(message, names)
    blocks: list[dict[str, Any]] = []
    icon = _ICONS.get(message.kind)
    text = message.text
    if message.title and message.kind == "card":
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": _cut(message.title, MAX_HEADER),
                                                  "emoji": True}})
    elif message.title:
        blocks += _sections(f"{icon + ' ' if icon else ''}*{escape(message.title)}*")
        icon = None
    if text:
        blocks += _sections(f"{icon + ' ' if icon else ''}{escape(text)}")
    fields = [_mrkdwn(_cut(f"*{escape(field.label)}*\n{escape(field.value)}", MAX_FIELD)) for field in message.fields]
    for start in range(0, len(fields), MAX_FIELDS):
        blocks.append({"type": "section", "fields": fields[start:start + MAX_FIELDS]})
    if message.checklist:
        lines = [f"{':white_check_mark:' if item.done else ':white_large_square:'} *{item.number}.* "
                 f"{'~' + escape(item.text) + '~' if item.done else escape(item.text)}" for item in message.checklist]
        blocks += _sections("\n".join(lines))
    if message.buttons:
        blocks.append({"type": "actions", "block_id": f"{ACTION_PREFIX}buttons",
                       "elements": [_button(button) for button in message.buttons[:25]]})
    context = []
    if message.footer:
        context.append(_mrkdwn(_cut(escape(message.footer), MAX_SECTION)))
    if message.kind == "card" and now is not None:
        context.append(_mrkdwn(f"Updated {slack_date(now)}"))
    if context:
        blocks.append({"type": "context", "elements": context})
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + [{"type": "context", "elements": [_mrkdwn("… (shortened for Slack)")]}]
    return fallback_text(message, names=names), blocks


# -- modals -------------------------------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def declare_modal(*, levels: list[tuple[str, str]], default: str, channel: str) -> dict[str, Any]:
    """The `/incident` (no text) form: severity, title, impact. `levels` are (name, label) pairs."""
    options = [{"text": _plain(_cut(f"{name} — {label}", 75)), "value": name} for name, label in levels]
    initial = next((option for option in options if option["value"] == default), options[0])
    return {
        "type": "modal",
        "callback_id": DECLARE_VIEW,
        "title": _plain("Declare an incident"),
        "submit": _plain("Declare"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"channel": channel}),
        "blocks": [
            {"type": "input", "block_id": "severity", "label": _plain("Severity"),
             "element": {"type": "static_select", "action_id": "severity", "options": options,
                         "initial_option": initial}},
            {"type": "input", "block_id": "title", "label": _plain("What is broken?"),
             "element": {"type": "plain_text_input", "action_id": "title", "max_length": 150,
                         "placeholder": _plain("Payments callbacks not arriving")}},
            {"type": "input", "block_id": "impact", "label": _plain("Impact"), "optional": True,
             "element": {"type": "plain_text_input", "action_id": "impact", "multiline": True, "max_length": 1000,
                         "placeholder": _plain("Who or what is affected")}},
        ],
    }


def update_modal(*, incident_key: str, channel: str, thread: str | None) -> dict[str, Any]:
    """The "Post update" form behind the card's and the nudge's button."""
    return {
        "type": "modal",
        "callback_id": UPDATE_VIEW,
        "title": _plain(_cut(f"Update {incident_key}", 24)),
        "submit": _plain("Post update"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"incident": incident_key, "channel": channel, "thread": thread}),
        "blocks": [
            {"type": "input", "block_id": "status", "label": _plain("What we know, what we are doing, next update"),
             "element": {"type": "plain_text_input", "action_id": "text", "multiline": True, "max_length": 3000}},
        ],
    }
