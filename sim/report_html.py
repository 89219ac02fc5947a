"""`wapa simulate --report FILE.html`: one self-contained page (inline CSS, no scripts, no network).

Per scenario: the result and its explained failures, a timeline per chat (incoming messages,
the owner's messages, the pending-reply window, typing, sends, cooldown spans, crashes) and the
transcript with every decision. All text is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from wapa.core.events import Decision, Message, Reason, Send, Typing
from wapa.sim.engine import Crash, SimResult
from wapa.sim.expect import clock, fmt_offset
from wapa.sim.suite import NO_EXPECTATIONS, Outcome, checks, plural

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
.axis{display:flex;justify-content:space-between;color:#57606a;font-size:11px;margin-left:140px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}
td{border-top:1px solid #eaeef2;padding:3px 6px;vertical-align:top}
td.t{white-space:nowrap;color:#57606a;font-variant-numeric:tabular-nums}
tr.dec td{color:#6e7781;font-size:12px}tr.sent td{background:#f0fff4}tr.owner td{background:#fff8f0}
tr.in td:first-child{box-shadow:inset 3px 0 #0969da}
ul.checks{list-style:none;padding:0;margin:8px 0}ul.checks li{margin:2px 0}
ul.checks b{display:inline-block;width:1.4em}.skip{color:#9a6700}
.empty{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px}
details summary{cursor:pointer;color:#57606a;margin-top:8px}
"""

_LEGEND = (
    ("#0969da", "contact message"),
    ("#bc4c00", "owner message"),
    ("#ffe8a3", "reply pending"),
    ("#b6e3ff", "typing"),
    ("#1a7f37", "reply sent"),
    ("#dde3ea", "cooldown"),
    ("#cf222e", "crash"),
)


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
        f"{plural(len(outcomes), 'scenario')}</h1>",
        "<p class='legend'>"
        + "".join(f"<span><i style='background:{c}'></i>{escape(n)}</span>" for c, n in _LEGEND)
        + "</p>",
    ]
    parts.extend(_scenario(o) for o in outcomes)
    parts.append("</body></html>")
    return "\n".join(parts)


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
    out.append(
        f"<div class='axis'><span>+0s {escape(clock(r.start))}</span>"
        f"<span>{escape(fmt_offset(span / 2))}</span>"
        f"<span>{escape(fmt_offset(span))} {escape(clock(r.start + span))}</span></div>"
    )
    chats = list(dict.fromkeys([*s.chats, *(d.chat for d in r.decisions if d.chat)]))
    for chat in chats:
        spec = s.chats.get(chat)
        if chat == s.persona.owner_id:
            label = "owner (commands)"
        elif spec is None:
            label = chat
        else:
            label = f"{chat}: {spec.name}" if spec.name != chat else chat
        out.append(_lane(chat, label, r, span, s.policy.cooldown))
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


def _lane(chat: str, label: str, r: SimResult, span: float, cooldown: float) -> str:
    spans: list[_Span] = []
    pending: float | None = None
    typing: float | None = None
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
        spans.append(_Span(pending, span, "pend", f"pending from {fmt_offset(pending)}"))
    if typing is not None:
        spans.append(_Span(typing, span, "typ", f"typing from {fmt_offset(typing)}"))
    order = {"cool": 0, "pend": 1, "typ": 2, "in": 3, "own": 3, "out": 4, "crash": 5}
    spans.sort(key=lambda sp: (order[sp.cls], sp.lo))
    items = []
    for sp in spans:
        left = min(max(sp.lo / span, 0.0), 1.0) * 100
        width = (min(sp.hi, span) - sp.lo) / span * 100 if sp.hi > sp.lo else 0.0
        style = f"left:{left:.3f}%" + (f";width:{max(width, 0.2):.3f}%" if width else "")
        items.append(f"<span class='{sp.cls}' style='{style}' title='{escape(sp.title)}'></span>")
    return f"<div class='lane'><b title='{escape(label)}'>{escape(label[:40])}</b><div class='track'>{''.join(items)}</div></div>"


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
