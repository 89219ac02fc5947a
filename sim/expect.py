"""Checking a scenario's expectations against a simulation, and explaining the failures.

Each failure is one string: a headline saying what was expected and what happened, then the
decision traces of that chat around the time in question, so that "why did it (not) answer?"
is answered right in the output:

    expect[0] (line 14): expected a reply in alice at +2m (±30s): none was sent
      last decision before +2m30s: cooldown at +1m (09:01:00): cooling down until ... (replied)
      decisions in alice:
        +0s      09:00:00  scheduled   reply due at 2026-01-05 09:02:00 (new message)
        ...
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from wapa.core import utc_text
from wapa.core.events import Decision, Reason
from wapa.sim.engine import Generation, Sent, SimResult
from wapa.sim.fake_whatsapp import FakeWhatsApp
from wapa.sim.scenario import Expectation, Scenario

_QUIET_CODES = {Reason.SEND_CONFIRMED, Reason.ECHO}  # bookkeeping, never the "why"
NEAR_MISS = 60.0  # a reply this close outside an `at` window gets its turn explained
_SHOWN_INSIDE = 12
_QUIET_PREFIXES = tuple(f"{code:<20}" for code in _QUIET_CODES)


def fmt_offset(seconds: float) -> str:
    """+2m, +2m05s, +5h00m02s, +1d02h00m, +0.8s: a time since the scenario's start."""
    if math.isinf(seconds):
        return "the end" if seconds > 0 else "the start"
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    whole = int(s)
    frac = s - whole
    d, rest = divmod(whole, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    sec_text = f"{sec + frac:.1f}".rstrip("0").rstrip(".") if frac > 1e-9 else str(sec)
    if d:
        out = f"{d}d{h:02d}h{m:02d}m" + (f"{int(sec):02d}s" if sec or frac else "")
    elif h:
        out = f"{h}h{m:02d}m" + (f"{int(sec):02d}s" if sec or frac else "")
    elif m:
        out = f"{m}m" + (f"{sec:02d}s" if sec and not frac else f"{sec_text}s" if frac else "")
    else:
        out = f"{sec_text}s"
    return sign + out


def clock(t: float) -> str:
    """The time of day of `t` (UTC), from the core's one UTC format."""
    return utc_text(t)[11:]


def _window_text(e: Expectation) -> str:
    lo, hi = e.window
    if e.at is not None:
        return f" at {fmt_offset(e.at)} (±{fmt_offset(hi - e.at)[1:]})"
    if math.isinf(lo) and math.isinf(hi):
        return ""
    return f" between {fmt_offset(lo)} and {fmt_offset(hi)}"


def _chat_text(chat: str) -> str:
    return f"in {chat}" if chat else "in any chat"


def _quote(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


class Checker:
    def __init__(self, scenario: Scenario, result: SimResult, whatsapp: FakeWhatsApp) -> None:
        self.s, self.r, self.wa = scenario, result, whatsapp
        self.start = scenario.start

    def rel(self, t: float) -> float:
        return t - self.start

    def _in(self, e: Expectation, t: float) -> bool:
        lo, hi = e.window
        return lo <= t - self.start <= hi

    def results(self) -> list[tuple[Expectation, str]]:
        """Every expectation with its problem ("" when it holds)."""
        return [(e, getattr(self, f"_{e.kind}")(e)) for e in self.s.expectations]

    def check(self) -> list[str]:
        return [
            f"{e.where()}: {problem}\n" + "\n".join(self.explain(e))
            for e, problem in self.results()
            if problem
        ]

    # ------------------------------------------------------------------ expectations

    def _sends(self, e: Expectation) -> list[Sent]:
        return [x for x in self.r.sent if (not e.chat or x.chat == e.chat) and self._in(e, x.t)]

    def _matches(self, e: Expectation, text: str) -> str:
        folded = text.casefold()
        for want in e.contains:
            if want.casefold() not in folded:
                return f"without {want!r}"
        for bad in e.not_contains:
            if bad.casefold() in folded:
                return f"with {bad!r}"
        return ""

    def _reply(self, e: Expectation) -> str:
        sends = self._sends(e)
        wanted = ""
        if e.contains:
            wanted += " containing " + ", ".join(map(repr, e.contains))
        if e.not_contains:
            wanted += " without " + ", ".join(map(repr, e.not_contains))
        if e.quote is not None:
            wanted += f" quoting {e.quote}" if e.quote else " quoting nothing"
        head = f"expected a reply {_chat_text(e.chat)}{_window_text(e)}{wanted}"
        if not sends:
            others = [x for x in self.r.sent if x.chat == e.chat]
            seen = ", ".join(fmt_offset(self.rel(x.t)) for x in others[:5])
            return (
                f"{head}: none was sent"
                + (f" (replies there at {seen})" if seen else "")
                + self._near_miss(e, others)
            )
        for x in sends:
            if not self._matches(e, x.text) and (e.quote is None or x.quote_id == e.quote):
                return ""
        x = sends[0]
        why = self._matches(e, x.text) or (f"quoting {x.quote_id or 'nothing'}")
        return f"{head}: sent at {fmt_offset(self.rel(x.t))} but {why}: {_quote(x.text)}"

    def _near_miss(self, e: Expectation, sends: list[Sent]) -> str:
        """For an `at` missed by less than NEAR_MISS: when the nearest reply's turn began."""
        if e.at is None or not sends:
            return ""
        lo, hi = e.window
        x = min(sends, key=lambda x: abs(self.rel(x.t) - e.at))  # type: ignore[operator]
        if min(abs(self.rel(x.t) - lo), abs(self.rel(x.t) - hi)) >= NEAR_MISS:
            return ""
        turn = {
            d.code: d
            for d in self.r.decisions
            if d.request_id == x.request_id and d.chat == x.chat and d.t <= x.t
        }
        began = turn.get(Reason.GENERATING)
        if began is None:
            return ""
        ready = turn.get(Reason.REPLY_READY)
        model = f"; the model answered at {fmt_offset(self.rel(ready.t))}" if ready else ""
        at, within = fmt_offset(e.at)[1:], fmt_offset(hi - e.at)[1:]
        return (
            f"\n  `at` is the time of the send. This reply's turn began at "
            f"{fmt_offset(self.rel(began.t))} ({clock(began.t)}: `generating`, the message read, "
            f"typing on, the model asked){model}, and typing ran until the send at "
            f"{fmt_offset(self.rel(x.t))} ({fmt_offset(x.t - began.t)[1:]} after the turn began)."
            f"\n  Widen `within` (default 30s), or expect the turn itself: "
            f"{{decision: generating, chat: {e.chat}, at: {at}, within: {within}}}"
        )

    def _no_reply(self, e: Expectation) -> str:
        sends = self._sends(e)
        if not sends:
            return ""
        x = sends[0]
        more = f" (and {len(sends) - 1} more)" if len(sends) > 1 else ""
        return (
            f"expected no reply {_chat_text(e.chat)}{_window_text(e)}, but {x.chat} got one "
            f"at {fmt_offset(self.rel(x.t))}: {_quote(x.text)}{more}"
        )

    def _replies(self, e: Expectation) -> str:
        sends = self._sends(e)
        if len(sends) == e.count:
            return ""
        at = ", ".join(fmt_offset(self.rel(x.t)) for x in sends[:8])
        return (
            f"expected {e.count} repl{'y' if e.count == 1 else 'ies'} {_chat_text(e.chat)}"
            f"{_window_text(e)}, got {len(sends)}" + (f" (at {at})" if at else "")
        )

    def _decisions(self, e: Expectation) -> list[Decision]:
        return [
            d
            for d in self.r.decisions
            if d.code == e.code
            and (not e.chat or d.chat == e.chat)
            and self._in(e, d.t)
            and not self._matches(e, d.detail)
        ]

    def _decision(self, e: Expectation) -> str:
        found = self._decisions(e)
        what = f"decision {e.code!r} {_chat_text(e.chat)}{_window_text(e)}"
        if e.contains:
            what += " with " + ", ".join(map(repr, e.contains))
        if e.count is not None:
            if len(found) == e.count:
                return ""
            return f"expected {e.count} × {what}, got {len(found)}"
        return "" if found else f"expected a {what}: there was none"

    def _no_decision(self, e: Expectation) -> str:
        found = self._decisions(e)
        if not found:
            return ""
        d = found[0]
        return (
            f"expected no decision {e.code!r} {_chat_text(e.chat)}{_window_text(e)}, but at "
            f"{fmt_offset(self.rel(d.t))} in {d.chat or 'the assistant'}: {d.detail}"
        )

    def _prompt(self, e: Expectation) -> str:
        gens = [g for g in self.r.generations if g.chat == e.chat and self._in(e, g.t)]
        head = f"expected the prompt {_chat_text(e.chat)}{_window_text(e)}"
        if not gens:
            return f"{head} to be checked, but the model was never asked there"
        g = gens[-1]
        problem = self._matches(e, render_prompt(g))
        if not problem:
            return ""
        return f"{head} (asked at {fmt_offset(self.rel(g.t))}) to be right, but it was {problem}:\n{_indent(render_prompt(g))}"

    def _notice(self, e: Expectation) -> str:
        notices = [
            (n.t, n.text)
            for n in self.wa.notices
            if self._in(e, n.t) and (not e.notice_kind or n.kind == e.notice_kind)
        ]
        found = [t for t, text in notices if not self._matches(e, text)]
        kind = f" ({e.notice_kind})" if e.notice_kind else ""
        shown = [c for c in e.contains if c]  # `notice: ""` is any notice
        wanted = " containing " + ", ".join(map(repr, shown)) if shown else ""
        if e.not_contains:
            wanted += " without " + ", ".join(map(repr, e.not_contains))
        got = "; ".join(f"{fmt_offset(self.rel(t))}: {_quote(x)}" for t, x in notices[:4])
        if e.count is not None:
            if len(found) == e.count:
                return ""
            return (
                f"expected {e.count} × notice{kind} to the owner{_window_text(e)}{wanted}, "
                f"got {len(found)}" + (f": {got}" if got else "")
            )
        if found:
            return ""
        return f"expected a notice{kind} to the owner{_window_text(e)}{wanted}; " + (
            f"got {got}" if got else "there was none"
        )

    def _effects(self, e: Expectation, items: Sequence[tuple[float, str]], name: str) -> str:
        found = [t for t, chat in items if chat == e.chat and self._in(e, t)]
        if e.count is not None:
            if len(found) == e.count:
                return ""
            return f"expected {e.count} × {name} {_chat_text(e.chat)}{_window_text(e)}, got {len(found)}"
        return (
            ""
            if found
            else f"expected {name} {_chat_text(e.chat)}{_window_text(e)}: there was none"
        )

    def _read(self, e: Expectation) -> str:
        return self._effects(e, [(r.t, r.chat) for r in self.wa.reads], "mark-read")

    def _typing(self, e: Expectation) -> str:
        return self._effects(e, [(t, c) for t, c, on in self.wa.typing if on], "typing")

    def _link(self, e: Expectation) -> str:
        """The link's health is `e.code` at the window's start and after every change in it."""
        lo, hi = (max(x, self.r.start - self.start) for x in e.window)
        hi = min(hi, self.r.end - self.start)
        times = [lo] + [
            t - self.start for t in self.wa.health_changes() if lo < t - self.start <= hi
        ]
        for t in times:
            health = self.wa.health_at(self.start + t)
            ok = {"red": health.red, "green": health.state == "connected"}.get(
                e.code, health.state == e.code
            )
            if not ok:
                return (
                    f"expected the link {e.code}{_window_text(e)}, but at {fmt_offset(t)} it "
                    f"was {health.state}" + (" (red)" if health.red else "")
                )
        return ""

    # ------------------------------------------------------------------ explanations

    def explain(self, e: Expectation) -> list[str]:
        lo, hi = e.window
        mine = [d for d in self.r.decisions if not e.chat or d.chat == e.chat]
        sends = [x for x in self.r.sent if not e.chat or x.chat == e.chat]
        lines: list[str] = []
        telling = [d for d in mine if self.rel(d.t) <= hi and d.code not in _QUIET_CODES]
        if telling:
            d = telling[-1]
            lines.append(
                f"  last decision by {fmt_offset(hi)}: {d.code} at "
                f"{fmt_offset(self.rel(d.t))} ({clock(d.t)}){' in ' + d.chat if not e.chat and d.chat else ''}: {d.detail}"
            )
        else:
            lines.append(f"  no decision {_chat_text(e.chat)} by {fmt_offset(hi)}")
        rows: list[tuple[float, int, str]] = []
        for d in mine:
            rows.append((d.t, 0, f"{d.code:<20} {(d.chat + ': ') if not e.chat else ''}{d.detail}"))
        for x in sends:
            rows.append(
                (x.t, 1, f"{'SENT':<20} {(x.chat + ': ') if not e.chat else ''}{_quote(x.text)}")
            )
        for t in self.r.crashes:
            rows.append((t, 2, f"{'CRASH':<20} the assistant restarts from its saved state"))
        rows.sort(key=lambda r: (r[0], r[1]))
        before = [r for r in rows if self.rel(r[0]) < lo and not r[2].startswith(_QUIET_PREFIXES)][
            -3:
        ]
        inside = [r for r in rows if lo <= self.rel(r[0]) <= hi]
        after = [r for r in rows if self.rel(r[0]) > hi][:2]
        if len(inside) > _SHOWN_INSIDE:
            skipped = len(inside) - _SHOWN_INSIDE
            inside = (
                inside[:4]
                + [(math.nan, 0, f"... {skipped} more ...")]
                + inside[-(_SHOWN_INSIDE - 4) :]
            )
        if not rows:
            return lines
        lines.append(f"  trace {_chat_text(e.chat)} around then:")
        for t, _, text in before + inside + after:
            if math.isnan(t):
                lines.append(f"    {text}")
            else:
                lines.append(f"    {fmt_offset(self.rel(t)):<11} {clock(t)}  {text}")
        return lines


def render_prompt(g: Generation) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in g.messages)


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def check(scenario: Scenario, result: SimResult, whatsapp: FakeWhatsApp) -> list[str]:
    return Checker(scenario, result, whatsapp).check()


def describe(e: Expectation) -> str:
    """What an expectation checks, in one line: `reply in alice at +2m (±30s) containing 'ok'`."""
    where = f"{_chat_text(e.chat)}{_window_text(e)}"
    times = f"{e.count} × " if e.count is not None else ""
    if e.kind == "reply":
        what = f"a reply {where}"
    elif e.kind == "no_reply":
        what = f"no reply {where}"
    elif e.kind == "replies":
        what = f"{e.count} repl{'y' if e.count == 1 else 'ies'} {where}"
    elif e.kind == "decision":
        what = f"{times}decision {e.code!r} {where}"
    elif e.kind == "no_decision":
        what = f"no decision {e.code!r} {where}"
    elif e.kind == "prompt":
        what = f"the prompt {where}"
    elif e.kind == "notice":
        kind = f" ({e.notice_kind})" if e.notice_kind else ""
        what = f"{times}notice{kind} to the owner{_window_text(e)}"
        if not times:
            what = "a " + what
    elif e.kind == "read":
        what = f"{times}mark-read {where}"
    elif e.kind == "typing":
        what = f"{times}typing {where}"
    elif e.kind == "link":
        what = f"the link {e.code}{_window_text(e)}"
    else:
        what = f"{e.kind} {where}"
    if any(e.contains):  # `notice: ""` is any notice
        what += " containing " + ", ".join(repr(c) for c in e.contains if c)
    if e.not_contains:
        what += " without " + ", ".join(map(repr, e.not_contains))
    if e.quote is not None:
        what += f" quoting {e.quote}" if e.quote else " quoting nothing"
    return what
