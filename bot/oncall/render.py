"""On-call as neutral messages: the board (now and next per role), a saved change and its gaps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.oncall.roster import RoleWatch, Saved
from bot.oncall.rotation import Gap
from bot.ports import Field, Message


def board_message(board: Sequence[RoleWatch], *, show: Callable[[datetime], str], plan: str) -> Message:
    """`/incident oncall`: one field per role — who now (until when), who next (from when)."""
    fields = []
    for watch in board:
        if watch.now is None:
            now = "nobody"
        else:
            now = f"{watch.now.person} until {show(watch.now.ends_at)}" + (" (override)" if watch.now.override else "")
        after = f"; next {watch.next.person} from {show(watch.next.starts_at)}" if watch.next else ""
        fields.append(Field(watch.role, now + after))
    unstaffed = [w.role for w in board if w.now is None and w.next is None]
    footer = (f"Nobody holds {', '.join(unstaffed)}: warroom oncall rotation add <role> --weekly mon 09:00 "
              "<timezone> <people…>" if unstaffed else f"Roles from playbooks/oncall/{plan}.yaml")
    return Message(title="On call", fields=tuple(fields), footer=footer, kind="info")


def gap_lines(gaps: Sequence[Gap], *, show: Callable[[datetime], str]) -> list[str]:
    return [f"{gap.role} is not covered from {show(gap.starts_at)}"
            + (f" to {show(gap.ends_at)}" if gap.ends_at else " on") for gap in gaps]


def saved_text(saved: Saved, *, show: Callable[[datetime], str]) -> str:
    lines = [f"Saved: {saved.description}."]
    lines += [f"Gap: {line}." for line in gap_lines(saved.gaps, show=show)]
    return "\n".join(lines)
