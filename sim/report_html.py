"""`wapa simulate --report FILE.html`: one self-contained page (inline CSS, no scripts, no network).

Per scenario: the result and its explained failures, a timeline per chat (incoming messages,
the owner's messages, the pending-reply window, typing, sends, replies dropped by a cap,
cooldown spans, crashes), a row of the notices the owner received (status, escalation and
digest, each its own colour and shape) and the transcript with every decision. All text is
escaped.

The time axis reads at any span: ticks at round steps (seconds up to weeks, at most eight
labels; days start at UTC midnight and are labelled with the weekday and date), lighter
gridlines between them; a long span whose activity bunches into moments a few pixels wide gets
close-ups of those moments (`_closeups`), each with its own axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from wapa.adapters.safe_text import utf8_safe
from wapa.core.digest import counted
from wapa.core.events import Decision, Message, Notice, NoticeKind, Reason, Send, Typing
from wapa.sim.engine import Crash, SimResult
from wapa.sim.expect import clock, fmt_offset
from wapa.sim.fake_whatsapp import NoticeSent
from wapa.sim.suite import NO_EXPECTATIONS, Outcome, checks

_PENDING_START = {
    Reason.SCHEDULED,
    Reason.URGENT,
    Reason.BREAKTHROUGH,
    Reason.RESTARTED,
    Reason.RECOVERED,
}
_PENDING_END = {
    Reason.GENERATING,
    Reason.OWNER_TAKEOVER,
    Reason.CAPPED,
    Reason.PAUSED,
    Reason.MUTED,
    Reason.STALE,
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fafbfc}
h1{font-size:22px}h2{font-size:17px;margin:0}
section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:14px 18px;margin:0 0 18px}
.pass{color:#1a7f37}.fail{color:#cf222e}.meta{color:#57606a;font-size:12px}
pre{white-space:pre-wrap;background:#fff5f5;border:1px solid #ffd1d1;padding:8px;border-radius:6px;font-size:12px}
.lane{display:grid;grid-template-columns:140px 1fr;align-items:center;margin:6px 0}
.track{position:relative;height:30px;background:#f3f5f7;border-radius:4px;overflow:hidden}
.track span{position:absolute;top:0;height:100%}
.cool{background:repeating-linear-gradient(45deg,#dde3ea,#dde3ea 6px,#eef1f4 6px,#eef1f4 12px);top:20px!important;height:8px!important}
.pend{background:#ffe8a3;top:2px!important;height:8px!important}
.typ{background:#b6e3ff;top:11px!important;height:8px!important}
.track .in,.track .own,.track .out,.track .crash{width:3px;margin-left:-1px}
.track .in{background:#0969da}.track .own{background:#bc4c00}.track .out{background:#1a7f37;width:5px;margin-left:-2px}
.track .crash{background:#cf222e;width:2px}
.track .g{width:1px;background:#c9d1d9}.track .gm{width:1px;background:#e4e8ec}
.track span.cap{top:9px;height:8px;width:8px;margin-left:-5px;background:#fff;border:2px solid #8250df}
.track span.ns,.track span.ne,.track span.nd{top:9px;height:12px;width:12px;margin-left:-6px}
.track span.ns{background:#57606a;border-radius:50%}
.track span.ne{background:#e16f24;transform:rotate(45deg);height:10px;width:10px;margin-left:-5px;top:10px}
.track span.nd{background:#0a7f86}
.axis{position:relative;height:30px;margin-left:140px;color:#57606a;font-size:11px;line-height:14px}
.axis span{position:absolute;top:0;white-space:nowrap;transform:translateX(-50%)}
.axis span.l{transform:none}.axis span.r{transform:translateX(-100%)}
.axis b{color:#1b1f24;font-weight:600}
.closeup{border-left:3px solid #d8dee4;padding-left:10px;margin:10px 0}
.closeup h3{font-size:13px;margin:4px 0;font-weight:600;color:#424a53}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle;box-sizing:border-box}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}
td{border-top:1px solid #eaeef2;padding:3px 6px;vertical-align:top}
td.t{white-space:nowrap;color:#57606a;font-variant-numeric:tabular-nums}
tr.dec td{color:#6e7781;font-size:12px}tr.sent td{background:#f0fff4}tr.owner td{background:#fff8f0}
tr.in td:first-child{box-shadow:inset 3px 0 #0969da}tr.note td{background:#f6f8fa}
ul.checks{list-style:none;padding:0;margin:8px 0}ul.checks li{margin:2px 0}
ul.checks b{display:inline-block;width:1.4em}.skip{color:#9a6700}
.empty{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px}
details summary{cursor:pointer;color:#57606a;margin-top:8px}
"""

_LEGEND = (  # (inline style of the swatch, name)
    ("background:#0969da", "contact message"),
    ("background:#bc4c00", "owner message"),
    ("background:#ffe8a3", "reply pending"),
    ("background:#b6e3ff", "typing"),
    ("background:#1a7f37", "reply sent"),
    ("background:#fff;border:2px solid #8250df", "reply dropped by a cap"),
    ("background:#dde3ea", "cooldown"),
    ("background:#cf222e", "crash"),
    ("background:#57606a;border-radius:50%", "notice: status"),
    ("background:#e16f24;transform:rotate(45deg);width:9px;height:9px", "notice: escalation"),
    ("background:#0a7f86", "notice: digest"),
)
# A notice kind's marker class on the notices row; an unknown kind is drawn as a status notice.
_NOTICE_CLASS: dict[str, str] = {
    NoticeKind.STATUS: "ns",
    NoticeKind.ESCALATION: "ne",
    NoticeKind.DIGEST: "nd",
}
NOTICES_LABEL = "owner notices"


@dataclass
class _Span:
    lo: float
    hi: float
    cls: str
    title: str


def write_report(path: str | Path, outcomes: list[Outcome]) -> None:
    Path(path).write_text(render(outcomes), encoding="utf-8")


def render(outcomes: list[Outcome]) -> str:
    passed = sum(o.passed for o in outcomes)
    unchecked = sum(o.unchecked and o.passed for o in outcomes)
    empty = f" ({unchecked} with no expectations)" if unchecked else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>wapa simulation: {passed}/{len(outcomes)} passed</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>wapa simulation: {passed} passed{empty}, {len(outcomes) - passed} failed, "
        f"{counted(len(outcomes), 'scenario')}</h1>",
        "<p class='legend'>"
        + "".join(f"<span><i style='{c}'></i>{escape(n)}</span>" for c, n in _LEGEND)
        + "</p>",
    ]
    parts.extend(_scenario(o) for o in outcomes)
    parts.append("</body></html>")
    return utf8_safe("\n".join(parts))  # a file name that is not UTF-8 must not break the page


def _scenario(o: Outcome) -> str:
    cls, word = ("pass", "pass") if o.passed else ("fail", "FAIL")
    if o.passed and o.unchecked:
        cls, word = ("skip", "EMPTY")
    out = [
        f"<section><h2><span class='{cls}'>{word}</span> {escape(o.name)}</h2>",
        f"<div class='meta'>{escape(o.file)}</div>",
    ]
    if o.scenario and o.scenario.description:
        out.append(f"<p>{escape(o.scenario.description)}</p>")
    if o.unchecked:
        out.append(f"<p class='empty'>&#9888; {escape(NO_EXPECTATIONS)}</p>")
    out.append(_checks(o))
    if o.failures:
        out.append("<pre>" + escape("\n\n".join(o.failures)) + "</pre>")
    r, s = o.result, o.scenario
    if r is None or s is None:
        out.append("</section>")
        return "\n".join(out)
    span = max(r.end - r.start, 60.0)
    chats = list(dict.fromkeys([*s.chats, *(d.chat for d in r.decisions if d.chat)]))
    labels = {}
    for chat in chats:
        spec = s.chats.get(chat)
        if chat == s.persona.owner_id:
            labels[chat] = "owner (commands)"
        elif spec is None:
            labels[chat] = chat
        else:
            labels[chat] = f"{chat}: {spec.name}" if spec.name != chat else chat
    notices = o.sim.whatsapp.notices if o.sim is not None else []
    view = _View(r, labels, notices, s.policy.cooldown)
    out.append(
        f"<div class='meta'>span {escape(fmt_offset(span))}: "
        f"{escape(_day_clock(r.start))} to {escape(_day_clock(r.start + span))} UTC</div>"
    )
    out.append(view.timeline(0.0, span))
    closeups = _closeups(r, notices, span)
    if closeups:
        out.append(
            f"<details open><summary>close-ups of busy moments ({len(closeups)})</summary>"
            + "".join(
                f"<div class='closeup'><h3>{escape(fmt_offset(lo))} to {escape(fmt_offset(hi))} "
                f"({escape(_day_clock(r.start + lo))} to {escape(_day_clock(r.start + hi))})</h3>"
                f"{view.timeline(lo, hi, only_active=True)}</div>"
                for lo, hi in closeups
            )
            + "</details>"
        )
    out.append(_transcript(r, s.persona.owner_id))
    out.append("</section>")
    return "\n".join(out)


_MARKS = {
    "pass": ("pass", "&#10003;"),
    "fail": ("fail", "&#10007;"),
    "not run": ("skip", "&#8211;"),
}


def _checks(o: Outcome) -> str:
    """Each expectation with its mark: what was checked, not just "pass"."""
    items = []
    for c in checks(o):
        cls, mark = _MARKS[c.status]
        note = (
            " <span class='meta'>(not checked: the simulation stopped)</span>"
            if c.status == "not run"
            else ""
        )
        items.append(
            f"<li><b class='{cls}' title='{escape(c.status)}'>{mark}</b>"
            f"<span class='meta'>line {c.line}</span> {escape(c.what)}{note}</li>"
        )
    return f"<ul class='checks'>{''.join(items)}</ul>" if items else ""


# ---------------------------------------------------------------- the time axis

# Tick steps, in seconds: the smallest that gives at most _MAX_LABELS labels is the major step;
# a smaller one that divides it draws unlabelled gridlines (at most _MAX_GRID of them).
_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_STEPS += (10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)
_MAX_LABELS = 8
_MAX_GRID = 48
_DAY = 86400


@dataclass(frozen=True)
class _Tick:
    x: float  # seconds since the start
    major: bool
    top: str = ""  # the label's first line (bold)
    bottom: str = ""


def _short(x: float) -> str:
    """+1d15h, +6h, +2h30m, +45s, +0: a tick's offset, without zero parts."""
    whole = round(x)
    d, rest = divmod(whole, _DAY)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((d, "d"), (h, "h"), (m, "m"), (sec, "s")) if n]
    return "+" + ("".join(parts) if parts else "0")


def _day_clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%a %-d %b %H:%M")


def ticks(start: float, lo: float, hi: float) -> list[_Tick]:
    """The ticks of an axis from `lo` to `hi` seconds after `start` (a UTC timestamp).

    Steps of an hour or more fall on whole UTC hours (days on midnight); shorter steps count
    from the start. Labels: the weekday and date at day steps, otherwise the offset with the
    time of day under it (with the weekday when the axis spans more than a day)."""
    width = max(hi - lo, 1e-9)
    major = next((st for st in _STEPS if width / st <= _MAX_LABELS), _STEPS[-1])
    minor = next(
        (st for st in _STEPS if st < major and major % st == 0 and width / st <= _MAX_GRID), 0
    )
    out: list[_Tick] = []
    for step, is_major in ((major, True), (minor, False)):
        if not step:
            continue
        origin = 0.0 if step >= 3600 else start  # absolute UTC multiples, or from the start
        t = math.ceil((start + lo - origin) / step - 1e-9) * step + origin
        while t <= start + hi + 1e-9:
            x = t - start
            if is_major:
                out.append(_label(start, x, step, width))
            elif (t - (0.0 if major >= 3600 else start)) % major > 1e-6:
                out.append(_Tick(x, False))
            t += step
    return out


def _label(start: float, x: float, step: float, width: float) -> _Tick:
    when = datetime.fromtimestamp(start + x, UTC)
    if step >= _DAY:
        return _Tick(x, True, when.strftime("%a %-d %b"), _short(x))
    clock_text = when.strftime("%H:%M" if step >= 60 else "%H:%M:%S")
    if width > _DAY:
        clock_text = when.strftime("%a ") + clock_text
    return _Tick(x, True, _short(x), clock_text)


def _axis(tks: list[_Tick], lo: float, hi: float) -> str:
    items = []
    for tk in tks:
        if not tk.major:
            continue
        pos = (tk.x - lo) / (hi - lo) * 100
        edge = " class='l'" if pos < 4 else " class='r'" if pos > 96 else ""
        items.append(
            f"<span{edge} style='left:{pos:.3f}%'><b>{escape(tk.top)}</b><br>"
            f"{escape(tk.bottom)}</span>"
        )
    return f"<div class='axis'>{''.join(items)}</div>"


# ---------------------------------------------------------------- close-ups


def _closeups(r: SimResult, notices: list[NoticeSent], span: float) -> list[tuple[float, float]]:
    """Windows around bursts of activity that the whole-span timeline squeezes into a few
    pixels: bursts are split where nothing happens for max(span / 50, 30 min); a burst of two
    or more events narrower than 3 % of the span gets a close-up (at most eight)."""
    if span < 6 * 3600:
        return []
    times = sorted(
        {
            t - r.start
            for t, item in r.timeline
            if isinstance(item, Message | Send | Crash)
            or (isinstance(item, Decision) and item.code == Reason.CAPPED)
        }
        | {n.t - r.start for n in notices}
    )
    gap = max(span / 50, 1800.0)
    bursts: list[list[float]] = []
    for x in times:
        if bursts and x - bursts[-1][-1] <= gap:
            bursts[-1].append(x)
        else:
            bursts.append([x])
    out = []
    for burst in bursts:
        first, last = burst[0], burst[-1]
        if len(burst) < 2 or last - first > span * 0.03:
            continue
        pad = max(60.0, (last - first) * 0.1)
        out.append((max(0.0, first - pad), min(span, last + pad)))
    return out[:8]


# ---------------------------------------------------------------- lanes


class _View:
    """One scenario's lanes, drawn over any window of its span."""

    def __init__(
        self,
        r: SimResult,
        labels: dict[str, str],
        notices: list[NoticeSent],
        cooldown: float,
    ) -> None:
        self.r, self.labels, self.notices, self.cooldown = r, labels, notices, cooldown
        self.spans = {chat: _chat_spans(chat, r, cooldown) for chat in labels}
        self.crashes = [_Span(t - r.start, t - r.start, "crash", "") for t in r.crashes]
        self.notice_spans = [
            _Span(
                n.t - r.start,
                n.t - r.start,
                _NOTICE_CLASS.get(n.kind, "ns"),
                f"{fmt_offset(n.t - r.start)} {n.kind} notice: {n.text[:200]}",
            )
            for n in notices
        ]

    def timeline(self, lo: float, hi: float, only_active: bool = False) -> str:
        tks = ticks(self.r.start, lo, hi)
        out = [_axis(tks, lo, hi)]
        grid = [_Span(tk.x, tk.x, "g" if tk.major else "gm", "") for tk in tks]
        for chat, label in self.labels.items():
            spans = self.spans[chat]
            if only_active and not any(
                lo <= sp.lo <= hi and sp.cls in _POINTS for sp in spans if sp.cls != "crash"
            ):
                continue
            out.append(_lane(label, grid + spans, lo, hi))
        shown = [sp for sp in self.notice_spans if lo <= sp.lo <= hi]
        if self.notice_spans and (shown or not only_active):
            crashes = [sp for sp in self.crashes if lo <= sp.lo <= hi]
            out.append(_lane(NOTICES_LABEL, grid + crashes + shown, lo, hi))
        return "".join(out)


_POINTS = {"in", "own", "out", "cap", "crash"}
_ORDER = {"g": -2, "gm": -2, "cool": 0, "pend": 1, "typ": 2, "in": 3, "own": 3, "cap": 4}
_ORDER |= {"out": 4, "crash": 5, "ns": 6, "ne": 6, "nd": 6}


def _chat_spans(chat: str, r: SimResult, cooldown: float) -> list[_Span]:
    spans: list[_Span] = []
    pending: float | None = None
    typing: float | None = None
    span = r.end - r.start
    for t, item in r.timeline:
        x = t - r.start
        if isinstance(item, Crash):
            spans.append(_Span(x, x, "crash", f"{fmt_offset(x)} crash"))
            if typing is not None:
                spans.append(_Span(typing, x, "typ", "typing (cut by the crash)"))
                typing = None
            continue
        chat_of = getattr(item, "chat", None)
        if chat_of != chat:
            continue
        if isinstance(item, Message):
            if item.from_me and item.id in r.echo_ids:
                continue  # echo of our own send: shown as the send
            cls = "own" if item.from_me else "in"
            who = "owner" if item.from_me else (item.sender_name or item.sender)
            text = item.text or (f"[{item.media}]" if item.media else "")
            spans.append(_Span(x, x, cls, f"{fmt_offset(x)} {who}: {text[:200]}"))
        elif isinstance(item, Typing):
            if item.on and typing is None:
                typing = x
            elif not item.on and typing is not None:
                spans.append(
                    _Span(typing, x, "typ", f"typing {fmt_offset(typing)} to {fmt_offset(x)}")
                )
                typing = None
        elif isinstance(item, Send):
            spans.append(_Span(x, x, "out", f"{fmt_offset(x)} sent: {item.text[:200]}"))
        elif isinstance(item, Decision):
            if item.code == Reason.CAPPED:
                spans.append(
                    _Span(x, x, "cap", f"{fmt_offset(x)} reply dropped by a cap: {item.detail}")
                )
            if item.code in _PENDING_START and pending is None:
                pending = x
            elif item.code in _PENDING_END and pending is not None:
                spans.append(
                    _Span(
                        pending,
                        x,
                        "pend",
                        f"pending {fmt_offset(pending)} to {fmt_offset(x)}: ends with {item.code}",
                    )
                )
                pending = None
            if item.code == Reason.SENT or (
                item.code == Reason.OWNER_TAKEOVER and "quiet until" in item.detail
            ):
                spans.append(
                    _Span(
                        x,
                        x + cooldown,
                        "cool",
                        f"cooldown from {fmt_offset(x)} to {fmt_offset(x + cooldown)} ({item.code})",
                    )
                )
    if pending is not None:
        spans.append(_Span(pending, max(span, 60.0), "pend", f"pending from {fmt_offset(pending)}"))
    if typing is not None:
        spans.append(_Span(typing, max(span, 60.0), "typ", f"typing from {fmt_offset(typing)}"))
    return spans


def _lane(label: str, spans: list[_Span], lo: float, hi: float) -> str:
    """One row: `spans` drawn over the window `lo`..`hi` (seconds since the start)."""
    width = hi - lo
    items = []
    for sp in sorted(spans, key=lambda sp: (_ORDER[sp.cls], sp.lo)):
        if sp.hi < lo or sp.lo > hi:
            continue
        left = (max(sp.lo, lo) - lo) / width * 100
        right = (min(sp.hi, hi) - lo) / width * 100
        style = f"left:{left:.3f}%" + (
            f";width:{max(right - left, 0.2):.3f}%" if sp.hi > sp.lo else ""
        )
        title = f" title='{escape(sp.title)}'" if sp.title else ""
        items.append(f"<span class='{sp.cls}' style='{style}'{title}></span>")
    return (
        f"<div class='lane'><b title='{escape(label)}'>{escape(label[:40])}</b>"
        f"<div class='track'>{''.join(items)}</div></div>"
    )


def _transcript(r: SimResult, owner: str) -> str:
    rows = []
    for t, item in r.timeline:
        x = t - r.start
        when = f"<td class='t'>{escape(fmt_offset(x))}<br>{escape(clock(t))}</td>"
        if isinstance(item, Message):
            if item.from_me and item.id in r.echo_ids:
                continue
            who = "owner" if item.from_me else (item.sender_name or item.sender)
            text = item.text
            if item.media:
                text = f"[{item.media}] {text}".strip()
            if item.kind != "message":
                text = f"({item.kind}) {text}"
            cls = "owner" if item.from_me else "in"
            rows.append(
                f"<tr class='{cls}'>{when}<td>{escape(item.chat)}</td><td>{escape(who)}</td><td>{escape(text)}</td></tr>"
            )
        elif isinstance(item, Send):
            rows.append(
                f"<tr class='sent'>{when}<td>{escape(item.chat)}</td><td>assistant</td><td>{escape(item.text)}</td></tr>"
            )
        elif isinstance(item, Decision):
            rows.append(
                f"<tr class='dec'>{when}<td>{escape(item.chat)}</td><td>{escape(item.code)}</td><td>{escape(item.detail)}</td></tr>"
            )
        elif isinstance(item, Notice):
            rows.append(
                f"<tr class='note'>{when}<td>{escape(owner)}</td><td>notice ({escape(item.kind)})</td><td>{escape(item.text)}</td></tr>"
            )
        elif isinstance(item, Crash):
            rows.append(
                f"<tr class='dec'>{when}<td></td><td>CRASH</td><td>restart after {escape(fmt_offset(item.down)[1:])}</td></tr>"
            )
    return (
        "<details><summary>transcript and decisions</summary><table>"
        "<tr><td class='t'>time</td><td>chat</td><td>who / decision</td><td>text</td></tr>"
        + "".join(rows)
        + "</table></details>"
    )
