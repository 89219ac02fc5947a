"""Core figures: messages through the core, timer fires, memory per chat, prompt size.

Each figure is measured next to a baseline in the same run (a bare Python loop doing the
least work of the same shape), so the ratio survives noisy or slower machines."""

from __future__ import annotations

import gc
import heapq
import random
import time
import tracemalloc
from collections import deque
from collections.abc import Callable

from wapa.core import Assistant, Message, Persona, Policy
from wapa.core.context import Entry as ContextEntry
from wapa.core.context import build_prompt, prompt_tokens

PERSONA = Persona(owner_id="owner", owner_name="Gilad", assistant_name="Dana")
START = 1_767_603_600.0  # 2026-01-05 09:00 UTC


def _text(rng: random.Random, i: int, size: int = 80) -> str:
    words = (
        "hello",
        "tomorrow",
        "meeting",
        "lunch",
        "thanks",
        "call",
        "later",
        "maybe",
        "project",
        "photos",
        "dinner",
        "weekend",
        "question",
        "quick",
        "update",
    )
    out = f"#{i} "
    while len(out) < size:
        out += rng.choice(words) + " "
    return out[:size]


def traffic(n: int, chats: int, seed: int = 1) -> list[Message]:
    """Mixed direct/group traffic (1 chat in 5 is a group; 1 group message in 4 mentions the
    owner) over `chats` chats."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = rng.randrange(chats)
        group = c % 5 == 0
        mention = group and rng.random() < 0.25
        out.append(
            Message(
                chat=f"g{c}" if group else f"c{c}",
                sender=f"p{rng.randrange(1000)}",
                id=f"m{i}",
                text=_text(rng, i),
                is_group=group,
                sender_name="Someone",
                group_title="Team" if group else "",
                participants=8 if group else 0,
                mentions=("owner",) if mention else (),
            )
        )
    return out


def _rate(n: int, fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return n / max(time.perf_counter() - t0, 1e-9)


def core_msgs_per_s(n: int, chats: int = 10_000) -> dict[str, float]:
    msgs = traffic(n, chats)
    a = Assistant(Policy(), PERSONA, seed=1)

    def run_core() -> None:
        handle, t = a.handle, START
        for i, m in enumerate(msgs):
            handle(m, t + i * 0.01)

    def run_baseline() -> None:  # the least a chat store could do: append to a bounded deque
        store: dict[str, deque[tuple[float, str]]] = {}
        t = START
        for i, m in enumerate(msgs):
            q = store.get(m.chat)
            if q is None:
                q = store[m.chat] = deque(maxlen=10)
            q.append((t + i * 0.01, m.text))

    core = _rate(n, run_core)
    base = _rate(n, run_baseline)
    return {"core_msgs_per_s": core, "baseline_msgs_per_s": base, "core_msgs_ratio": base / core}


def core_timer_fires_per_s(pending: int) -> dict[str, float]:
    """`pending` chats with one due reply each; every fire marks read, starts typing and builds
    a prompt (caps off: with the default 30 replies an hour, nearly every fire would be a cheap
    `capped` drop)."""
    msgs = [
        Message(f"c{i}", f"c{i}", f"m{i}", m.text, sender_name="Someone")
        for i, m in enumerate(traffic(pending, pending))
    ]
    a = Assistant(
        Policy.from_mapping({"caps": {"per_chat_per_day": 0, "per_hour": 0, "per_day": 0}}),
        PERSONA,
        seed=1,
    )
    for i, m in enumerate(msgs):
        a.handle(m, START + i * 1e-4)
    due = a.next_deadline()
    assert due is not None
    fired = _rate(pending, lambda: a.on_timer(START + 10 * 86400))

    def baseline() -> None:
        heap = [(START + i, i, f"c{i}") for i in range(pending)]
        heapq.heapify(heap)
        while heap:
            heapq.heappop(heap)

    return {"core_timer_fires_per_s": fired, "baseline_heap_pops_per_s": _rate(pending, baseline)}


def bytes_per_chat(chats: int) -> dict[str, float]:
    """Memory of the core per chat holding a full 10-message context of 80-character messages,
    against the same texts held in a bare dict of deques."""
    rng = random.Random(2)
    texts = [[_text(rng, c * 10 + k) for k in range(10)] for c in range(chats)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    a = Assistant(Policy(), PERSONA, seed=1)
    t = START
    for k in range(10):
        for c in range(chats):
            m = Message(f"c{c}", f"c{c}", f"m{c}-{k}", texts[c][k])
            a.handle(m, t)
            t += 1e-3
    gc.collect()
    core = (tracemalloc.get_traced_memory()[0] - before) / chats
    tracemalloc.stop()
    del a
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    plain: dict[str, deque[str]] = {}
    for c in range(chats):
        plain[f"c{c}"] = deque((texts[c][k] for k in range(10)), maxlen=10)
    gc.collect()
    base = (tracemalloc.get_traced_memory()[0] - before) / chats
    tracemalloc.stop()
    return {"bytes_per_chat": core, "baseline_bytes_per_chat": base}


def prompt_tokens_full_context() -> dict[str, float]:
    """Estimated prompt tokens for a full 10-message context of 80-character messages, and the
    old design's prompt, which sent the context twice (as history and again inside the
    system prompt)."""
    rng = random.Random(3)
    policy = Policy()
    context = [
        ContextEntry(
            START + i, "contact" if i % 2 == 0 else "assistant", "Alice", _text(rng, i), f"m{i}"
        )
        for i in range(policy.max_context)
    ]
    prompt = build_prompt(context, PERSONA, policy, is_group=False, contact_name="Alice")
    ours = prompt_tokens(prompt)
    history = "\n".join(
        f"{e.name if e.who == 'contact' else 'Assistant'}: {e.text}" for e in context
    )
    old = ours + (len(history) + 3) // 4 + 4
    return {"prompt_tokens_full_context": ours, "prompt_tokens_old_design": old}
