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
- Where it is kept: each chat's entry is fields of its `Chat` (inherited from `ChatLog`, at
  their initial values while the chat is not in the log) and is saved in that chat's row, so
  a step writes only the entries of the chats it changed; the global part is four numbers in
  the meta: `since`, `first`, `seq` (counts every message logged, never reset: each entry
  keeps the `seq` of its latest message, the log's order) and `start` (the `seq` when the
  last digest was sent). Reasons: the whole log in the meta was rewritten on every commit
  (about 38 KB with `CHATS_KEPT` chats, 40% of a fuzz run's time); and as an object of its
  own, an entry cost every message a lookup of its chat and of the dropped entry's chat among
  all chats (cache misses over thousands of chats), where the fields cost nothing to find.
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
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo

from wapa.core.escalation import NAME_CHARS, clean
from wapa.core.events import Decision, Reason

CHATS_KEPT = 300
EXCERPT_CHARS: Final = 80
KEPT_CHARS: Final = 4 * EXCERPT_CHARS  # raw, before cleaning (which may drop characters)
ANSWERS_SHOWN: Final = 3

# module names: enum attributes cost ~200 ns (Final: compiled, read in place; core/machine.py)
_COOLDOWN: Final = Reason.COOLDOWN
_SENT: Final = Reason.SENT
# decision code -> what the chat's line says; "" for a reply under way
_STATUS: Final[dict[str, str]] = {
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


LOG_FIELDS = (
    "log_label",
    "log_group",
    "log_wrote",
    "log_last",
    "log_msg",
    "log_urgent",
    "log_answers",
    "log_status",
    "log_seq",
)

_DECLARED_BY_SUBCLASS: tuple[str, ...] = ()  # a name, so mypy leaves ChatLog's slots to Chat


class ChatLog:
    """A chat's line in the log: fields `Chat` (core/machine.py) inherits, so each chat holds
    its own line and saves it in its row (`log_export`). They keep their initial values
    (`log_clear`) while the chat is not in the log; `log_seq` > 0 says it is. The subclass
    declares them (`LOG_FIELDS`) in its `__slots__`: a compiled class (bench/build_core.py)
    may not inherit a non-empty one."""

    __slots__: ClassVar[tuple[str, ...]] = _DECLARED_BY_SUBCLASS

    def __init__(self) -> None:
        self.log_clear()

    def log_clear(self) -> None:
        """Out of the log: the initial values (the ids and times it held are let go)."""
        self.log_label = ""
        self.log_group = False
        self.log_wrote = 0
        self.log_last = 0.0
        self.log_msg = ""  # the id of the last message: its excerpt is read from the context
        self.log_urgent = False
        self.log_answers: tuple[float, ...] = ()  # the last ANSWERS_SHOWN send times
        self.log_status = ""  # a value of _STATUS ("" reply under way or not decided yet)
        self.log_seq = 0  # `DigestLog.seq` at its latest message: the log's order; 0: not in it

    def log_export(self) -> list[Any]:
        """Plain JSON, a compact list in field order (kept in the chat's row)."""
        return [
            self.log_label,
            self.log_group,
            self.log_wrote,
            self.log_last,
            self.log_msg,
            self.log_urgent,
            list(self.log_answers),
            self.log_status,
            self.log_seq,
        ]

    def log_load(self, row: Sequence[Any], seq: int = 0) -> None:
        """The inverse of `log_export`; a row saved before entries had a `seq` (8 fields, in
        the meta) takes `seq`."""
        label, group, wrote, last, msg, urgent, answers, status, *rest = row
        if len(rest) > 1:
            raise ValueError(f"a digest entry has {len(row)} fields, expected 9")
        self.log_label = str(label)
        self.log_group = bool(group)
        self.log_wrote = int(wrote)
        self.log_last = float(last)
        self.log_msg = str(msg)
        self.log_urgent = bool(urgent)
        self.log_answers = tuple(float(t) for t in answers)
        self.log_status = str(status)
        self.log_seq = int(rest[0]) if rest else seq


@dataclass
class DigestLog:
    since: float | None = None  # the last digest (or the first time the core knew)
    # the chats in the log (their lines are their `ChatLog` fields), most recent last: an
    # index, not exported. An OrderedDict: moving a chat to the end and dropping the first are
    # O(1) (a dict's first live key is found by scanning the slots its earlier deletions left)
    chats: OrderedDict[str, ChatLog] = field(default_factory=OrderedDict)
    first: float | None = None  # the first message logged since: the next digest follows it
    seq: int = 0  # counts every message logged (the entries' order); never reset
    start: int = 0  # `seq` when the last digest was sent: entries at or below it are stale

    def wrote(
        self, key: str, line: ChatLog, label: str, group: bool, msg: str, urgent: bool, now: float
    ) -> None:
        """A contact's message `msg` (its id; "" when it must not be quoted) entered the chat
        `key`, whose line is `line`. The label is kept raw (bounded) and cleaned when a digest
        is built: this runs for every message, so it is cheap: a chat in the log moves to the
        end, a new one in a full log takes the place of the first (both O(1) in C), whose line
        is cleared; no object is made. The dropped chat's row is not written: its entry stays
        there, stale (its `seq` is below every live one's), until the row is next written."""
        chats = self.chats
        if line.log_seq:
            chats.move_to_end(key)  # most recent last
            if label:
                line.log_label = label[:KEPT_CHARS]
        else:
            if len(chats) >= CHATS_KEPT:  # the line whose latest message is the oldest goes
                chats.popitem(last=False)[1].log_clear()
            chats[key] = line
            line.log_label = label[:KEPT_CHARS]
            line.log_group = group
        self.seq = line.log_seq = self.seq + 1
        line.log_wrote += 1
        line.log_last = now
        line.log_msg = msg[:KEPT_CHARS]
        if urgent:
            line.log_urgent = True
        line.log_status = ""
        if self.first is None:
            self.first = now

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
                log.log_answers = (*log.log_answers, d.t)[-ANSWERS_SHOWN:]
            else:
                if code == _COOLDOWN and "owner wrote" in d.detail:
                    status = "you wrote last"
                if log.log_status == status:
                    continue
            log.log_status = status
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
        texts = {
            id(x): excerpt(cid, x.log_msg) if x.log_msg else "" for cid, x in self.chats.items()
        }
        logs = list(self.chats.values())
        messages = sum(x.log_wrote for x in logs)
        replies = sum(len(x.log_answers) for x in logs)
        head = (
            f"Digest since {_when(since, now, zone)}: {counted(len(logs), 'chat')}, "
            f"{counted(messages, 'message')}, {counted(replies, 'reply', 'replies')}."
        )
        if not logs:
            return f"Digest since {_when(since, now, zone)}: nothing new."
        sections: list[tuple[str, list[ChatLog]]] = [
            ("Urgent:", [x for x in logs if x.log_urgent]),
            ("Still waiting:", [x for x in logs if not x.log_urgent and _waiting(x)]),
            ("Answered:", [x for x in logs if not x.log_urgent and x.log_status == "answered"]),
            ("You answered:", [x for x in logs if not x.log_urgent and x.log_status == "you"]),
            ("Reply under way:", [x for x in logs if not x.log_urgent and x.log_status == ""]),
        ]
        lines, total, shown = [head], len(head), 0
        for title, group in sections:
            group.reverse()  # the latest first, ties too
            group.sort(key=lambda x: -x.log_last)
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

    def reset(self, now: float) -> None:
        """Start over (a digest was sent): every line is cleared (the rows keep their entries,
        stale, until next written: `start` tells)."""
        for line in self.chats.values():
            line.log_clear()
        self.since, self.chats, self.first, self.start = now, OrderedDict(), None, self.seq

    def export(self) -> dict[str, Any]:
        """The global part only: the entries are saved with their chats (`ChatLog.export`)."""
        return {"since": self.since, "first": self.first, "seq": self.seq, "start": self.start}

    @classmethod
    def restore(cls, data: dict[str, Any] | None, held: dict[str, ChatLog]) -> DigestLog:
        """The log from its global part and `held`, the lines the restored chats hold (chat
        id -> line): those above `start` with the `CHATS_KEPT` highest `seq`, in that order.
        The others are stale (dropped or emptied by a digest): they are cleared."""
        data = data or {}
        since, first = data.get("since"), data.get("first")
        start = int(data.get("start", 0))
        ordered = sorted(held.items(), key=lambda item: item[1].log_seq)
        chats = OrderedDict(item for item in ordered[-CHATS_KEPT:] if item[1].log_seq > start)
        for cid, line in ordered:
            if cid not in chats:
                line.log_clear()
        seq = max(int(data.get("seq", 0)), max((x.log_seq for x in chats.values()), default=0))
        return cls(
            float(since) if since is not None else None,
            chats,
            float(first) if first is not None and chats else None,
            seq,
            start,
        )

    @staticmethod
    def saved_in_meta(data: dict[str, Any] | None) -> dict[str, list[Any]]:
        """The entries of a state saved when the whole log was in the meta (`chats`, most
        recent last, 8 fields), with their `seq`, 1..n in that order: the machine moves them
        into their chats (`ChatLog.log_load`)."""
        rows = (data or {}).get("chats") or {}
        return {str(cid): [*row, i] for i, (cid, row) in enumerate(rows.items(), 1)}


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
    return x.log_status not in ("answered", "you", "")


def _line(x: ChatLog, text: str, now: float, zone: ZoneInfo) -> str:
    label = clean(x.log_label, NAME_CHARS) or "someone"
    name = f"{label} (group)" if x.log_group else label
    count = counted(x.log_wrote, "message")
    at = ("last " if x.log_wrote > 1 else "") + _when(x.log_last, now, zone)
    excerpt = clean(text, EXCERPT_CHARS)
    quote = f' "{excerpt}"' if excerpt else ""
    if x.log_answers:
        said = ", ".join(_when(t, now, zone) for t in x.log_answers)
        outcome = f"answered {said}"
        if x.log_status not in ("answered", ""):
            outcome += f"; now {_said(x.log_status)}"
    else:
        outcome = _said(x.log_status) or "reply under way"
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
