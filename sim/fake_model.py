"""A deterministic stand-in for the LLM: answers `Generate` effects from the prompt it was given.

The reply names the contact and quotes the first words of the last contact message, so a reader
can trace every sent text back to the context the core built. Latency is configurable, and
failures of each kind the real adapter distinguishes can be scheduled ("the first two requests
are rate limited") or drawn at random from a seeded generator (fuzzing).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wapa.core.events import ChatMessage, Event, Generate, Generated, GenerationFailed

# Kinds the real adapter reports (core.GenerationFailed.kind), plus "no_answer": the request
# hangs and only the core's own generation_timeout ends it.
FAILURE_KINDS = (
    "rate_limited",
    "capacity",
    "timeout",
    "server_error",
    "auth",
    "daily_quota",
    "bad_request",
    "no_answer",
)

_OWNER = re.compile(r"personal assistant of (.+?), answering")
_CONTACT = re.compile(r"You are writing to (.+?)\.(?:\s|$)")
_GROUP_LINE = re.compile(r"^([^:\n]{1,60}): (.*)$", re.DOTALL)


@dataclass
class ScheduledFailure:
    """`count` requests made at or after `after` (epoch seconds) fail with `kind`."""

    kind: str
    count: int = 1
    after: float = float("-inf")

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(
                f"model failure kind {self.kind!r} is unknown (known: {', '.join(FAILURE_KINDS)})"
            )
        if self.count < 1:
            raise ValueError(f"model failure count must be >= 1, got {self.count}")


@dataclass
class FakeModel:
    """`answer(request, now)` returns the results to deliver later, as (delay, event) pairs.

    - `latency`: seconds before an answer or a fast failure arrives.
    - `timeout_after`: seconds before a "timeout" failure is reported (the adapter's own timeout).
    - `failures`: scheduled failures, used up in order of the list.
    - `replies`: canned texts used for the next requests, in order (to test reply hygiene);
      after they run out the built reply is used.
    - `failure_rates`: kind -> probability per request, drawn from `random.Random(seed)`.
    """

    latency: float = 0.8
    timeout_after: float = 30.0
    failures: list[ScheduledFailure] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    failure_rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._replies = list(self.replies)
        for kind in self.failure_rates:
            if kind not in FAILURE_KINDS:
                raise ValueError(f"model failure kind {kind!r} is unknown")

    def answer(self, request: Generate, now: float) -> list[tuple[float, Event]]:
        self.requests += 1
        kind = self._failure(now)
        if kind == "no_answer":
            return []
        if kind == "timeout":
            return [
                (self.timeout_after, GenerationFailed(request.request_id, kind, "fake timeout"))
            ]
        if kind:
            return [(self.latency, GenerationFailed(request.request_id, kind, f"fake {kind}"))]
        text = self._replies.pop(0) if self._replies else reply_for(request.messages)
        return [(self.latency, Generated(request.request_id, text))]

    def _failure(self, now: float) -> str:
        for rule in self.failures:
            if rule.count > 0 and now >= rule.after:
                rule.count -= 1
                return rule.kind
        if self.failure_rates:
            draw = self._rng.random()
            for kind, rate in sorted(self.failure_rates.items()):
                if draw < rate:
                    return kind
                draw -= rate
        return ""


def reply_for(messages: Sequence[ChatMessage]) -> str:
    """The fake model's answer: greets the contact, names the owner, quotes the last message."""
    system = messages[0].content if messages and messages[0].role == "system" else ""
    m = _OWNER.search(system)
    owner = m.group(1) if m else "The owner"
    m = _CONTACT.search(system)
    name = m.group(1) if m else ""
    last = next((x.content for x in reversed(messages) if x.role == "user"), "")
    g = _GROUP_LINE.match(last) if not name else None
    if g:
        name, last = g.group(1), g.group(2)
    words = " ".join(last.replace("'", "").split()[:6])
    greeting = f"Hi {name}!" if name else "Hi!"
    if not words:
        return f"{greeting} {owner} is busy right now and will answer personally."
    return f"{greeting} {owner} is busy right now; I'll pass on your message about '{words}'."
