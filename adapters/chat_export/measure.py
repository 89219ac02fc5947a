"""How fast `wapa import-export` reads a big export, and how much memory it and `wapa replay` hold.

    python -m wapa.adapters.chat_export.measure FILE [--generate MB] [--memory] [--replay]

`--generate MB` first writes a deterministic Android export of about MB megabytes to FILE (two
authors, `DD/MM/YYYY, HH:MM - Name: text`, one message in twenty on two lines). Then, in one run
on the same file:

- **read**: the file read and split into lines, nothing else (`ExportSource.lines()`): the
  baseline every parser pays;
- **parse**: the parser's three passes (format and date order; counts; messages), lines/s counted
  per pass so it compares with the baseline;
- **import**: the whole `wapa import-export` (parse, convert, write the recording); with
  `--memory` under `tracemalloc`, giving its peak traced memory (slower: tracing costs 2-3x);
- **replay** (`--replay`): `wapa replay` on that recording, once for its CPU time per recorded
  item (`time.process_time`), once under `tracemalloc` for its peak traced memory.

Figures go to stdout as one line each; docs/replay.md quotes them. Nothing here is part of an
import: it is the measurement the docs cite, kept runnable.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from wapa.adapters.chat_export.parser import count_export
from wapa.adapters.chat_export.source import open_export

_WORDS = ["hello", "lunch", "today", "tomorrow", "meeting", "ok", "sure", "thanks", "see", "you"]
_WORDS += ["later", "call", "me", "when", "free", "great", "idea"]
OWNER = "Dana"


def generate(path: Path, size: int, seed: int = 1) -> int:
    """Write an Android export of about `size` bytes to `path`; the number of messages."""
    rnd = random.Random(seed)
    when = datetime(2019, 1, 1, 8, 0)
    written = messages = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("01/01/2019, 08:00 - Messages and calls are end-to-end encrypted.\n")
        while written < size:
            when += timedelta(minutes=rnd.randint(0, 30))
            who = "Alice Smith" if rnd.random() < 0.5 else OWNER
            text = " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(2, 14)))
            if rnd.random() < 0.05:
                text += "\n" + " ".join(rnd.choice(_WORDS) for _ in range(5))
            line = f"{when:%d/%m/%Y, %H:%M} - {who}: {text}\n"
            f.write(line)
            written += len(line.encode("utf-8"))
            messages += 1
    return messages


@dataclass(frozen=True, slots=True)
class Figures:
    lines: int
    size: int  # bytes
    messages: int
    read_s: float  # reading and splitting, once
    parse_s: float  # the parser's three passes
    import_s: float  # the whole import-export command
    import_peak: int | None  # bytes traced at the peak, with --memory
    replay_peak: int | None  # bytes traced at the peak of `wapa replay`, with --replay
    replay_items: int | None = None  # the recording's items (lines after the header)
    replay_cpu_s: float | None = None  # CPU seconds of the untraced `wapa replay`

    @property
    def read_rate(self) -> float:
        return self.lines / self.read_s

    @property
    def parse_rate(self) -> float:
        """Lines per second per pass (the parser reads the file three times)."""
        return 3 * self.lines / self.parse_s

    def report(self) -> list[str]:
        mib = 1024 * 1024
        out = [
            f"file: {self.size / mib:.1f} MiB, {self.lines:,} lines, {self.messages:,} messages",
            f"read and split: {self.read_s:.2f} s, {self.read_rate:,.0f} lines/s",
            f"parse (3 passes): {self.parse_s:.2f} s, {self.parse_rate:,.0f} lines/s per pass "
            f"({self.read_rate / self.parse_rate:.0f}x the read)",
            f"import-export: {self.import_s:.2f} s, {self.lines / self.import_s:,.0f} lines/s"
            + (" (traced)" if self.import_peak is not None else ""),
        ]
        if self.import_peak is not None:
            out.append(f"import-export peak traced memory: {self.import_peak / mib:.1f} MiB")
        if self.replay_items and self.replay_cpu_s is not None:
            out.append(
                f"replay: {self.replay_items:,} recorded items, {self.replay_cpu_s:.2f} s CPU, "
                f"{1e6 * self.replay_cpu_s / self.replay_items:,.0f} µs per item"
            )
        if self.replay_peak is not None:
            out.append(f"replay peak traced memory: {self.replay_peak / mib:.1f} MiB")
        return out


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _peak(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _cli(argv: list[str]) -> None:
    from wapa.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"wapa {' '.join(argv)}: exit {code}")


def measure(path: Path, *, memory: bool = False, replay: bool = False) -> Figures:
    source = open_export(path)
    lines = 0

    def read() -> None:
        nonlocal lines
        lines = sum(1 for _ in source.lines())

    messages = 0

    def parse() -> None:
        nonlocal messages
        parsed, again = count_export(source.lines, str(path))
        messages = parsed.count
        for _ in again():
            pass

    read_s = _timed(read)
    parse_s = _timed(parse)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chat.jsonl"
        argv = ["import-export", str(path), "--owner", OWNER, "-o", str(out)]
        start = time.perf_counter()
        import_peak = _peak(lambda: _cli(argv)) if memory else None
        if import_peak is None:
            _cli(argv)
        import_s = time.perf_counter() - start
        replay_peak = items = cpu = None
        if replay:
            with out.open("rb") as f:
                items = sum(1 for _ in f) - 1
            started = time.process_time()
            _cli(["replay", str(out)])
            cpu = time.process_time() - started
            replay_peak = _peak(lambda: _cli(["replay", str(out)]))
    return Figures(
        lines,
        path.stat().st_size,
        messages,
        read_s,
        parse_s,
        import_s,
        import_peak,
        replay_peak,
        items,
        cpu,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wapa.adapters.chat_export.measure")
    p.add_argument("file", type=Path)
    p.add_argument("--generate", type=float, metavar="MB", help="write a generated export first")
    p.add_argument("--memory", action="store_true", help="trace the import's peak memory")
    p.add_argument("--replay", action="store_true", help="trace `wapa replay`'s peak memory")
    args = p.parse_args(argv)
    if args.generate:
        generate(args.file, int(args.generate * 1_000_000))
    for line in measure(args.file, memory=args.memory, replay=args.replay).report():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
