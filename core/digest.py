"""Rule 15, the digest: what happened since the last one, built from the core's own decisions.

At `digest_at` local time (in `Policy.local_zone()`: `digest_tz`, else the quiet hours' zone,
else UTC; daylight saving handled by zoneinfo, so 18:00 stays 18:00 across the change) and
on the owner's command `digest`, the owner gets a notice of kind `digest`:

    Digest since Mon 18:00: 3 chats, 5 messages, 2 replies.
    Urgent:
    - Dana (direct), 2 messages, last 14:02 "the server is down, call me": answered 14:03
    Still waiting:
    - Bob, 1 message, 16:40 "are you coming tonight?": quiet after a reply
    - Team (group), 7 messages, last 17:12: not addressed to you
    Answered:
    - Mom, 1 message, 10:15 "call me when you land": answered 10:17

- Who wrote (per chat: how many messages, the last one's time and a short excerpt), what
  the assistant answered and when, who is still waiting and why (quiet after a reply, you
  wrote last, muted, paused, quiet hours, capped, group not addressed, profile silent, model
  failed, reply refused), urgent chats first, then waiting, then answered, then those the
  owner answered himself.
- Exact and without a model: each chat's line comes from the decisions the core made (every
  `Decision` of a step passes through `DigestLog.observe`), never from a summary.
- Bounded: `Policy.digest_max_chars` [1500] characters ("... and N more chats"), `CHATS_KEPT` chats,
  excerpts of `EXCERPT_CHARS`, cleaned like escalations. The log holds no message text: it
  keeps the id of each chat's last message and the excerpt is read from the chat's context
  when the digest is built, so data retention (which empties old context) takes it too.
  `digest_detail: names` never shows message text.
- The log starts over after each digest; a scheduled digest with nothing new is skipped (a
  `digest` decision says so); `digest` on demand always answers. Saved and restored with
  the state.
- Where it is kept: each chat's entry (`ChatLog`) lives in its `Chat` and is saved in that
  chat's row, so a step writes only the entries of the chats it changed; the global part is
  four numbers in the meta: `since`, `first`, `seq` (counts every message logged, never
  reset: each entry keeps the `seq` of its latest message, the log's order) and `start` (the
  `seq` when the last digest was sent). Reason: the whole log in the meta was rewritten on
  every commit (about 38 KB with `CHATS_KEPT` chats, 40% of a fuzz run's time).
- Still bounded, and no row is written just to drop an entry: the log is the entries above
  `start` with the `CHATS_KEPT` highest `seq` (`chats` is that index, rebuilt from the chats
  on restore). A new chat's entry takes the place of the one whose latest message is the
  oldest, as before, and a digest empties the log; in memory the dropped entries go at once,
  in the store they stay in their rows, stale and ignored by restore, until the chat's row is
  next written. A chat's entry goes wherever its row goes: retention (`expire_chat_state`,
  `Assistant.expire`) keeps it, since it holds no text (counts, times, the label and a message
  id whose text goes with the context); a deleted chat row takes its entry along, and a state
  restored without a chat's row has no entry for it. States saved before (the whole log in
  the meta's `digest.chats`, most recent last) restore with each entry moved into its chat,
  which is then written at the next commit (the meta no longer holds it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wapa.core.escalation import NAME_CHARS, clean
from wapa.core.events import Decision, Reason

CHATS_KEPT = 300
EXCERPT_CHARS = 80
KEPT_CHARS = 4 * EXCERPT_CHARS  # raw, before cleaning (which may drop characters)
ANSWERS_SHOWN = 3

_COOLDOWN, _SENT = Reason.COOLDOWN, Reason.SENT  # module names: enum attributes cost ~200 ns
# decision code -> what the chat's line says; "" for a reply under way
_STATUS: dict[str, str] = {
    Reason.SCHEDULED: "",
    Reason.DEBOUNCED: "",
    Reason.URGENT: "",
    Reason.BREAKTHROUGH: "",
    Reason.MAX_WAIT: "",
    Reason.RESTARTED: "",
    Reason.COOLDOWN: "quiet after a reply",
    Reason.MUTED: "muted",
    Reason.PAUSED: "paused",
    Reason.QUIET_HOURS: "quiet hours",
    Reason.CAPPED: "capped",
    Reason.GROUP_NOT_ADDRESSED: "not addressed to you",
    Reason.GROUP_NEVER: "groups are off",
    Reason.STALE: "arrived late",
    Reason.GENERATION_FAILED: "the model failed",
    Reason.GENERATION_TIMEOUT: "the model failed",
    Reason.REJECTED: "the reply was refused",
    Reason.SEND_FAILED: "the reply failed to send",
    Reason.PROFILE_SILENT: "its profile answers no one",
    Reason.OWNER_TAKEOVER: "you",
    Reason.SENT: "answered",
}


@dataclass(slots=True)
class ChatLog:
    label: str
    group: bool
    wrote: int = 0
    last: float = 0.0
    msg: str = ""  # the id of the last message: its excerpt is read from the chat's context
    urgent: bool = False
    answers: tuple[float, ...] = ()  # the last ANSWERS_SHOWN send times (no list per chat)
    status: str = ""  # a value of _STATUS ("" reply under way or not decided yet)
    seq: int = 0  # `DigestLog.seq` at its latest message: the log's order, most recent last

    def export(self) -> list[Any]:
        """Plain JSON, a compact list in field order (kept in the chat's row)."""
        return [
            self.label,
            self.group,
            self.wrote,
            self.last,
            self.msg,
            self.urgent,
            list(self.answers),
            self.status,
            self.seq,
        ]

    @classmethod
    def restore(cls, row: Sequence[Any], seq: int = 0) -> ChatLog:
        """The inverse of `export`; a row saved before entries had a `seq` (8 fields, in the
        meta) takes `seq`."""
        label, group, wrote, last, msg, urgent, answers, status, *rest = row
        if len(rest) > 1:
            raise ValueError(f"a digest entry has {len(row)} fields, expected 9")
        return cls(
            str(label),
            bool(group),
            int(wrote),
            float(last),
            str(msg),
            bool(urgent),
            tuple(float(t) for t in answers),
            str(status),
            int(rest[0]) if rest else seq,
        )


@dataclass
class DigestLog:
    since: float | None = None  # the last digest (or the first time the core knew)
    # the entries the chats hold (`Chat.digest`), most recent last: an index, not exported.
    # An OrderedDict: moving a chat to the end and dropping the first are O(1) (a dict's
    # first live key is found by scanning the slots its earlier deletions left, one per message)
    chats: OrderedDict[str, ChatLog] = field(default_factory=OrderedDict)
    first: float | None = None  # the first message logged since: the next digest follows it
    seq: int = 0  # counts every message logged (the entries' order); never reset
    start: int = 0  # `seq` when the last digest was sent: entries at or below it are stale

    def wrote(
        self, chat: str, label: str, group: bool, msg: str, urgent: bool, now: float
    ) -> str | None:
        """A contact's message `msg` (its id; "" when it must not be quoted) entered the chat;
        its entry is `chats[chat]` after this. The label is kept raw (bounded) and cleaned when
        a digest is built: this runs for every message. Returns the chat whose entry was
        dropped to keep `CHATS_KEPT` (its holder must let it go; its row need not be written,
        the entry's `seq` marks it stale), else None.

        Cheap, since it runs for every message: a chat already in the log moves to the end,
        and a new chat in a full log takes the first entry's place (both O(1) in C) and its
        object, reset, so a busy log allocates nothing per message (an entry per message was
        a tracked allocation the cyclic GC paid for too)."""
        chats = self.chats
        log = chats.get(chat)
        dropped: str | None = None
        if log is not None:
            chats.move_to_end(chat)  # most recent last
            if label:
                log.label = label[:KEPT_CHARS]
        elif len(chats) < CHATS_KEPT:
            log = chats[chat] = ChatLog(label[:KEPT_CHARS], group)
        else:  # the entry whose latest message is the oldest goes
            dropped, log = chats.popitem(last=False)
            chats[chat] = log
            log.label = label[:KEPT_CHARS]
            log.group = group
            log.wrote = 0
            log.urgent = False
            log.answers = ()
        self.seq = log.seq = self.seq + 1
        log.wrote += 1
        log.last = now
        log.msg = msg[:KEPT_CHARS]
        if urgent:
            log.urgent = True
        log.status = ""
        if self.first is None:
            self.first = now
        return dropped

    def observe(self, effects: Sequence[object], changed: set[str]) -> None:
        """A step's decisions: each one of `_STATUS` sets its chat's line; the ids of the
        chats whose entries it changed are added to `changed` (their rows must be written).
        A decision that leaves the line as it was (the common case: a message's own
        scheduling decision after `wrote` cleared the status) changes nothing."""
        chats = self.chats
        for d in effects:
            if not isinstance(d, Decision):
                continue
            code = d.code
            status = _STATUS.get(code)
            if status is None:
                continue
            log = chats.get(d.chat)
            if log is None:
                continue
            if code == _SENT:
                log.answers = (*log.answers, d.t)[-ANSWERS_SHOWN:]
            else:
                if code == _COOLDOWN and "owner wrote" in d.detail:
                    status = "you wrote last"
                if log.status == status:
                    continue
            log.status = status
            changed.add(d.chat)

    def empty(self) -> bool:
        return not self.chats

    def build(
        self,
        now: float,
        zone: ZoneInfo,
        excerpt: Callable[[str, str], str] = lambda chat, msg: "",
        *,
        limit: int,
    ) -> str:
        """The digest's text, at most `limit` characters (`Policy.digest_max_chars`);
        `excerpt(chat, message id)` gives a message's text ("" when gone or not to be shown)."""
        since = self.since if self.since is not None else now
        texts = {id(x): excerpt(cid, x.msg) if x.msg else "" for cid, x in self.chats.items()}
        logs = list(self.chats.values())
        messages = sum(x.wrote for x in logs)
        replies = sum(len(x.answers) for x in logs)
        head = (
            f"Digest since {_when(since, now, zone)}: {counted(len(logs), 'chat')}, "
            f"{counted(messages, 'message')}, {counted(replies, 'reply', 'replies')}."
        )
        if not logs:
            return f"Digest since {_when(since, now, zone)}: nothing new."
        sections: list[tuple[str, list[ChatLog]]] = [
            ("Urgent:", [x for x in logs if x.urgent]),
            ("Still waiting:", [x for x in logs if not x.urgent and _waiting(x)]),
            ("Answered:", [x for x in logs if not x.urgent and x.status == "answered"]),
            ("You answered:", [x for x in logs if not x.urgent and x.status == "you"]),
            ("Reply under way:", [x for x in logs if not x.urgent and x.status == ""]),
        ]
        lines, total, shown = [head], len(head), 0
        for title, group in sections:
            group.reverse()  # the latest first, ties too
            group.sort(key=lambda x: -x.last)
            for i, x in enumerate(group):
                line = ("" if i else title + "\n") + "- " + _line(x, texts[id(x)], now, zone)
                if total + len(line) + 1 > limit - 30:
                    break
                lines.append(line)
                total += len(line) + 1
                shown += 1
        if shown < len(logs):
            lines.append(f"... and {counted(len(logs) - shown, 'more chat')}.")
        return "\n".join(lines)

    def reset(self, now: float) -> list[str]:
        """Start over (a digest was sent); returns the chats whose entries went (their rows
        keep them, stale, until next written: `start` tells)."""
        dropped = list(self.chats)
        self.since, self.chats, self.first, self.start = now, OrderedDict(), None, self.seq
        return dropped

    def export(self) -> dict[str, Any]:
        """The global part only: the entries are saved with their chats (`ChatLog.export`)."""
        return {"since": self.since, "first": self.first, "seq": self.seq, "start": self.start}

    @classmethod
    def restore(cls, data: dict[str, Any] | None, held: dict[str, ChatLog]) -> DigestLog:
        """The log from its global part and `held`, the entries the restored chats hold (chat
        id -> entry): those above `start` with the `CHATS_KEPT` highest `seq`, in that order.
        The others are stale (dropped or emptied by a digest): their holders must drop them."""
        data = data or {}
        since, first = data.get("since"), data.get("first")
        start = int(data.get("start", 0))
        live = [item for item in held.items() if item[1].seq > start]
        chats = OrderedDict(sorted(live, key=lambda item: item[1].seq)[-CHATS_KEPT:])
        seq = max(int(data.get("seq", 0)), max((x.seq for x in chats.values()), default=0))
        return cls(
            float(since) if since is not None else None,
            chats,
            float(first) if first is not None and chats else None,
            seq,
            start,
        )

    @staticmethod
    def saved_in_meta(data: dict[str, Any] | None) -> dict[str, ChatLog]:
        """The entries of a state saved when the whole log was in the meta (`chats`, most
        recent last), numbered 1..n in that order: `restore` moves them into their chats."""
        rows = (data or {}).get("chats") or {}
        return {str(cid): ChatLog.restore(row, i) for i, (cid, row) in enumerate(rows.items(), 1)}


def next_time(after: float, hhmm: str, zone: ZoneInfo) -> float:
    """The first `hhmm` local time in `zone` strictly after `after` (epoch seconds). A time
    the clocks skip (02:30 on the spring change) is read with the offset before the change."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    day = datetime.fromtimestamp(after, zone).date()
    for add in range(3):
        t = datetime.combine(day + timedelta(days=add), time(hours, minutes), tzinfo=zone)
        if t.timestamp() > after:
            return t.timestamp()
    raise AssertionError("unreachable: a local time recurs within two days")


def _waiting(x: ChatLog) -> bool:
    return x.status not in ("answered", "you", "")


def _line(x: ChatLog, text: str, now: float, zone: ZoneInfo) -> str:
    label = clean(x.label, NAME_CHARS) or "someone"
    name = f"{label} (group)" if x.group else label
    count = counted(x.wrote, "message")
    at = ("last " if x.wrote > 1 else "") + _when(x.last, now, zone)
    excerpt = clean(text, EXCERPT_CHARS)
    quote = f' "{excerpt}"' if excerpt else ""
    if x.answers:
        said = ", ".join(_when(t, now, zone) for t in x.answers)
        outcome = f"answered {said}"
        if x.status not in ("answered", ""):
            outcome += f"; now {_said(x.status)}"
    else:
        outcome = _said(x.status) or "reply under way"
    return f"{name}, {count}, {at}{quote}: {outcome}"


def _said(status: str) -> str:
    return "you answered yourself" if status == "you" else status


def _when(t: float, now: float, zone: ZoneInfo) -> str:
    """14:02 today, or Mon 14:02 within the week, or 5 Jan 14:02."""
    local, today = datetime.fromtimestamp(t, zone), datetime.fromtimestamp(now, zone)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if (today.date() - local.date()).days < 7:
        return local.strftime("%a %H:%M")
    return f"{local.day} {local.strftime('%b %H:%M')}"


def counted(n: int, noun: str, plural: str = "") -> str:
    """ "1 chat", "2 chats": the number with its noun, plural when it is not one."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
