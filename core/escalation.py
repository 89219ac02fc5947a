"""Rule 14, escalation: an urgent contact message is told to the owner at once.

When a contact's message is urgent (rule 4's score), the owner gets a notice of kind
`escalation` in his own chat, whatever the assistant does in that chat (it may be paused,
muted, cooling down or replying):

    Urgent from Dana: "the server is down, call me" (direct)
    Urgent from Bob in "Team": "@Gilad the build is broken" (group, you were addressed)
    During quiet hours: Urgent from Eli at 23:30: "water everywhere" (direct)

- Once per chat per cooldown (the chat's, a profile's override included): a contact who
  writes "urgent" five times is told once; the digest has the rest.
- Groups only when the owner is addressed (rule 5): a group's urgency is not his.
- A backlog message (stale, rule 6) is not escalated: it is not "at once" any more; the
  digest shows it.
- Quiet hours hold it (unless `escalate_in_quiet_hours`): what was held is told in one
  combined notice when they end, and is in the digest as well.
- At most `escalate_per_day` [10] per rolling day (a held one counts when held); `escalate:
  false` turns it off. Both say so in a `not_escalated` decision.
- The contact's text is cut (`QUOTE_CHARS`) and cleaned of control and bidi characters, so a
  crafted message cannot reorder or hide the notice's words; a name is cut to `NAME_CHARS`.
  What is held keeps no text: the message's text is read from the chat's context when told,
  so data retention, which empties old context, reaches it too.
- Notices have their own caps and never count toward the contact send caps (rule 8); they go
  to the owner's chat with himself only, so they never look like the owner taking over a
  contact's chat (rule 3). Their text is not kept in the state (it quotes a contact): an echo
  from this device is recognised as such, any other copy is a note to self, never a command.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
QUOTE_CHARS = 160
NAME_CHARS = 40
HELD_KEPT = 20  # told individually in the combined notice; more are counted
LAST_KEPT = 512  # chats remembered for "once per cooldown"


def clean(text: str, limit: int) -> str:
    """Contact text as it may appear in a notice: no control, format (bidi, zero-width) or
    unassigned characters, whitespace collapsed, cut to `limit` with an ellipsis."""
    if not isinstance(text, str):
        return ""
    text = text[: limit * 4]
    if text.isascii() and text.isprintable():  # the common case, decided in C
        kept = " ".join(text.split())
        return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"
    kept = "".join(
        " " if c.isspace() else c
        for c in text
        if c.isspace() or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"


def notice_line(name: str, title: str, text: str, is_group: bool, at: str = "") -> str:
    """One escalation; `at` (local HH:MM) when it is told later than it came."""
    who = clean(name, NAME_CHARS) or "someone"
    where = f' in "{clean(title, NAME_CHARS)}"' if is_group and title else ""
    when = f" at {at}" if at else ""
    kind = "group, you were addressed" if is_group else "direct"
    return f'Urgent from {who}{where}{when}: "{clean(text, QUOTE_CHARS)}" ({kind})'


@dataclass
class Escalations:
    """What rule 14 remembers: plain data, bounded (`export`/`restore` as JSON)."""

    times: list[float] = field(default_factory=list)  # within the last day, newest `cap`
    last: dict[str, float] = field(default_factory=dict)  # chat -> its latest escalation
    held: list[list[Any]] = field(default_factory=list)  # [t, chat, message id] in quiet hours
    held_more: int = 0  # held beyond HELD_KEPT
    release_at: float = 0.0  # when the held ones are told; 0: none held

    def refusal(self, chat: str, now: float, cooldown: float, cap: int) -> str:
        """Why this chat's urgent message is not escalated now ("" when it is)."""
        while self.times and now - self.times[0] >= DAY:
            del self.times[0]
        last = self.last.get(chat)
        if last is not None and now < last + cooldown:
            return "told already within the cooldown"
        if len(self.times) >= cap:
            return f"{cap} escalations within a day"
        return ""

    def count(self, chat: str, now: float, cap: int) -> None:
        self.times.append(now)
        del self.times[:-cap]
        self.last.pop(chat, None)
        self.last[chat] = now
        if len(self.last) > LAST_KEPT:
            del self.last[next(iter(self.last))]

    def hold(self, chat: str, msg: str, now: float, until: float) -> None:
        """Keep the message's place (no text: its text stays in the chat's context, where
        data retention finds it) to tell it when quiet hours end."""
        if len(self.held) < HELD_KEPT:
            self.held.append([now, chat, msg])
        else:
            self.held_more += 1
        self.release_at = until if not self.release_at else min(self.release_at, until)

    def release(self, line: Callable[[str, str], str]) -> str:
        """The combined notice of what quiet hours held ("" when nothing was); `line(chat,
        message id)` renders one (`notice_line` of the message in the chat's context)."""
        lines = [line(chat, msg) for _, chat, msg in self.held]  # held_more only when full
        more = f"\n... and {self.held_more} more" if self.held_more else ""
        self.held, self.held_more, self.release_at = [], 0, 0.0
        if not lines:
            return ""
        if len(lines) == 1 and not more:
            return f"During quiet hours: {lines[0]}"
        return "During quiet hours:\n" + "\n".join(f"- {x}" for x in lines) + more

    def export(self) -> dict[str, Any]:
        return {
            "times": list(self.times),
            "last": dict(self.last),
            "held": [list(h) for h in self.held],
            "held_more": self.held_more,
            "release_at": self.release_at,
        }

    @classmethod
    def restore(cls, data: dict[str, Any] | None) -> Escalations:
        if not data:
            return cls()
        return cls(
            [float(t) for t in data.get("times", ())],
            {str(k): float(v) for k, v in data.get("last", {}).items()},
            [[float(t), str(chat), str(msg)] for t, chat, msg in data.get("held", ())],
            int(data.get("held_more", 0)),
            float(data.get("release_at", 0.0)),
        )
