"""Neutral messages → Discord: escaped text, embeds, persistent buttons, files.

- `escape()` turns plain prose into Discord markdown that shows exactly that prose: `*`, `_`, `~`, `|`, `\\`,
  stray backticks and the `[` of a masked link are backslash-escaped; headings, sub-text and quotes at the
  start of a line are defused. Inline code spans, URLs, user/channel mentions, custom emoji and timestamps
  stay live. `@everyone`, `@here` and role mentions are left as words and neutralised where it matters, in
  `SAFE_MENTIONS` (Discord only pings from `content`, and only what `allowed_mentions` allows).
- `render()` picks the shape: a message with a title, fields or a checklist is an embed; plain prose is message
  content (an embed description when it is longer than a message may be). Buttons become a `View` of
  `CardButton`s, a `DynamicItem` whose `custom_id` (`warroom:ack:INC-7`) carries the action and the incident,
  so a click on a card posted before a restart still reaches the bot (`client.add_dynamic_items(CardButton)`).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.ports import Attachment, Button, Message

log = logging.getLogger("warroom.discord")

MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000
MAX_BUTTON_LABEL = 80

# Users may be pinged (an assignee named in `/incident role ic @alice`); @everyone, @here and roles never are.
SAFE_MENTIONS = discord.AllowedMentions(everyone=False, users=True, roles=False, replied_user=False)
# Text that did not come from a Discord user writing in Discord (a customer's reply, a phone, an alert, the bot's
# own words) pings nobody, whatever `<@…>` it contains.
NO_MENTIONS = discord.AllowedMentions.none()

# Card buttons name an incident (INC-7); an alert proposal's Declare names the alert group; a brief's Send its id.
CUSTOM_ID = re.compile(r"warroom:(?:(?P<action>ack|update|resolve|snooze):(?P<key>INC-[0-9]{1,9})"
                       r"|(?P<action2>declare):(?P<key2>alert-[0-9]{1,9})|(?P<action3>brief_send):(?P<key3>[0-9]{1,9}))")

_COLOURS = {"card": 0xE74C3C, "escalation": 0xC0392B, "nudge": 0xF1C40F, "reminder": 0xF39C12,
            "checklist": 0x3498DB, "playbook": 0x9B59B6, "postmortem": 0x2ECC71, "error": 0x95A5A6,
            "update": 0x5865F2, "reply": 0x5865F2, "info": 0x5865F2}
_RESOLVED_COLOUR = 0x2ECC71
_ICONS = {"escalation": "🚨 ", "nudge": "⏰ ", "reminder": "🔔 ", "error": "⚠️ ", "postmortem": "📝 "}
_STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger,
           "default": discord.ButtonStyle.secondary}

# -- escaping -------------------------------------------------------------------------------------------

# Spans that keep their meaning: inline code (`docker compose ps` in playbooks; nothing inside it is markup,
# and nothing inside it pings), links (Discord auto-links them; a backslash inside would break them),
# mentions of users and channels, custom emoji, timestamps.
_LIVE = re.compile(
    r"`[^`\n]+`"
    r"|<?https?://[^\s<>]+>?"
    r"|<(?:@!?|#)[0-9]{15,25}>"
    r"|<a?:[A-Za-z0-9_~]{2,32}:[0-9]{15,25}>"
    r"|<t:-?[0-9]{1,13}(?::[tTdDfFR])?>"
)
_INLINE = re.compile(r"([\\*_~`|])")
_MASKED_LINK = re.compile(r"\[(?=[^\[\]\n]*\]\()")  # the `[` of `[text](url)`
_LINE_MARKUP = re.compile(r"^([ \t]*)(#{1,3}[ \t]|-#[ \t]|>>>[ \t]|>[ \t])", re.MULTILINE)


def _plain(text: str) -> str:
    return _MASKED_LINK.sub(r"\\[", _INLINE.sub(r"\\\1", text))


def escape(text: str) -> str:
    """Plain prose → Discord markdown showing that prose: `# *hot* [x](y)` → `\\# \\*hot\\* \\[x\\](y)`."""
    out: list[str] = []
    last = 0
    for match in _LIVE.finditer(text):
        out.append(_plain(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_plain(text[last:]))
    return _LINE_MARKUP.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", "".join(out))


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut (never leaving a dangling escape backslash)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + "…"


# -- buttons ----------------------------------------------------------------------------------------------


def custom_id(button: Button) -> str:
    return f"warroom:{button.action}:{button.value}"


class CardButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID):
    """Acknowledge / Post update / Resolve / Snooze, for any incident, across restarts.

    discord.py rebuilds it from the clicked `custom_id` and calls `callback`, which hands the click to the
    client's inbound side (`client.warroom`)."""

    def __init__(self, action: str, key: str, *, label: str | None = None,
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=label or action.capitalize(), style=style,
                                           custom_id=f"warroom:{action}:{key}"))
        self.action = action
        self.key = key

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any],  # type: ignore[override]
                             match: re.Match[str], /) -> CardButton:
        action = match["action"] or match["action2"] or match["action3"]
        key = match["key"] or match["key2"] or match["key3"]
        return cls(action, key, label=item.label, style=item.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        inbound = getattr(interaction.client, "warroom", None)
        if inbound is None:
            log.warning("button %s pressed but no warroom handler is attached to the client", self.custom_id)
            return
        await inbound.on_card_button(interaction, action=self.action, key=self.key)


def view_for(buttons: tuple[Button, ...]) -> discord.ui.View | None:
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons[:5]:
        if not CUSTOM_ID.fullmatch(custom_id(button)):
            log.warning("button %s has no warroom custom_id shape; not rendered", custom_id(button))
            continue
        view.add_item(CardButton(button.action, button.value, label=clip(button.label, MAX_BUTTON_LABEL),
                                 style=_STYLES.get(button.style, discord.ButtonStyle.secondary)))
    return view


# -- messages ---------------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """What one Discord message carries. `kwargs()` feeds `send()` / `edit()` / `followup.send()`."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None
    attachment: Attachment | None = None
    mentions: discord.AllowedMentions = NO_MENTIONS

    def file(self) -> discord.File | None:
        # A discord.File is a one-shot stream: make a fresh one for every request.
        if self.attachment is None:
            return None
        return discord.File(io.BytesIO(self.attachment.content), filename=self.attachment.filename,
                            description=self.attachment.title)

    def send_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"content": self.content, "embeds": self.embeds, "allowed_mentions": self.mentions}
        if self.view is not None:
            kwargs["view"] = self.view
        file = self.file()
        if file is not None:
            kwargs["file"] = file
        return kwargs

    def edit_kwargs(self) -> dict[str, Any]:
        # `view=None` removes the buttons (a resolved incident's card has none).
        return {"content": self.content, "embeds": self.embeds, "view": self.view, "allowed_mentions": self.mentions}


def _is_card(message: Message) -> bool:
    return bool(message.title or message.fields or message.checklist)


def _checklist(message: Message) -> str:
    return "\n".join(f"{'☑' if line.done else '☐'} {line.number}. {escape(line.text)}" for line in message.checklist)


def embed_for(message: Message) -> discord.Embed:
    colour = _COLOURS.get(message.kind, _COLOURS["info"])
    if message.kind == "card" and not message.buttons:
        colour = _RESOLVED_COLOUR  # no actions left: resolved or closed
    parts = [escape(message.text)] if message.text else []
    if message.checklist:
        parts.append(_checklist(message))
    embed = discord.Embed(title=clip(escape(message.title), MAX_TITLE) if message.title else None,
                          description=clip("\n\n".join(parts), MAX_DESCRIPTION) if parts else None,
                          colour=colour)
    budget = MAX_EMBED_TOTAL - len(embed.title or "") - len(embed.description or "")
    if message.footer:
        embed.set_footer(text=clip(message.footer, MAX_FOOTER))  # footers show no markdown: as typed
        budget -= len(embed.footer.text or "")
    for item in message.fields[:MAX_FIELDS]:
        name, value = clip(escape(item.label), MAX_FIELD_NAME), clip(escape(item.value) or "—", MAX_FIELD_VALUE)
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        embed.add_field(name=name, value=value, inline=len(item.value) <= 40)
    return embed


def render(message: Message) -> Rendered:
    """A neutral message as Discord content / embed / buttons / file."""
    view = view_for(message.buttons)
    if _is_card(message):
        return Rendered(embeds=[embed_for(message)], view=view, attachment=message.attachment)
    text = _ICONS.get(message.kind, "") + escape(message.text)
    if message.footer:
        text += "\n" + escape(message.footer)
    if len(text) > MAX_CONTENT:
        return Rendered(embeds=[embed_for(message)], view=view, attachment=message.attachment)
    mentions = SAFE_MENTIONS if message.mentions_from == "discord" else NO_MENTIONS
    return Rendered(content=text or None, view=view, attachment=message.attachment, mentions=mentions)
