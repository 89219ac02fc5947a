"""Runner figures: overhead and event-loop lag under load, idle memory, and the soak test.

Load (`runner_overhead_p99_ms`, `loop_lag_p99_ms`): the real `app.runner.Runner` in this
process, with the real console transport (its stdin fed on schedule from a thread, its stdout
captured), the real SQLite store (a temporary file, the default synchronous=FULL), the real
Cloudflare client talking over HTTP to `wapa fake-cloudflare` in a subprocess (so the server
does not share this interpreter), JSON logging at INFO into /dev/null, and a zero-delay policy
(no response delay, no typing time, no caps). Each of N chats sends one message; arrivals are
Poisson at `RATE` per second. Per chat: time from the line entering the console to the
`[send]` line leaving it, minus the model call's own latency, measured around the model
client. Loop lag: a task asking to sleep 5 ms measures how late it wakes, during the load.

Idle memory (`idle_rss_mb`): `wapa run --transport console` in a subprocess with the WhatsApp
adapter (neonize) imported first, as `wapa run` on WhatsApp loads it; VmRSS once /healthz
answers and a second has passed. Same-run baselines: a bare interpreter, and one that only
imported neonize.

Soak (`wapa bench --soak SECONDS`): `wapa run --transport console` in a subprocess (neonize
not loaded, so growth is measured against the runner's own memory) driven with steady traffic,
10 messages/s over 200 chats with a 1-second cooldown (so every message is answered); VmRSS
after a warm-up and at the end."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

ROOT = Path(__file__).resolve().parents[1]
MODEL_LATENCY = 0.02  # seconds the fake server takes per generation
RATE = 20.0  # messages per second during the load
FAST_RATE = 500.0  # the same load again at this rate: does the runner keep up?
WARMUP = 10  # chats answered before the measured ones (first connection, first commits)
OWNER_NAME = "Gilad"
_TAG = re.compile(r"#([cgw]\d+)\b")
_PRELOAD_NEONIZE = "import wapa.adapters.whatsapp.client"

ZERO_DELAY = {
    "WAPA_RESPONSE_DELAY": "0",
    "WAPA_URGENT_DELAY": "0",
    "WAPA_TYPING_MIN": "0",
    "WAPA_TYPING_MAX": "0",
    "WAPA_CAPS_PER_CHAT_PER_DAY": "0",
    "WAPA_CAPS_PER_HOUR": "0",
    "WAPA_CAPS_PER_DAY": "0",
    "WAPA_MAX_CONCURRENT_GENERATIONS": "32",
    "AI_DAILY_NEURON_BUDGET": "off",
    "WAPA_OWNER_ID": "owner",
    "WAPA_OWNER_NAME": OWNER_NAME,
    "WAPA_SEED": "1",
    "WAPA_LOG_LEVEL": "info",
    "WAPA_BACKUP_KEEP": "0",
}


class BenchError(RuntimeError):
    """The benchmark could not run (a subprocess did not start, a reply never came)."""


# ---------------------------------------------------------------------- helpers


def _clean_env() -> dict[str, str]:
    """This process's environment without any wapa/model settings (the user's must not leak
    into the benchmark), unbuffered."""
    prefixes = ("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` in MiB (VmRSS), or None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def _percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100.0 * len(ordered))))
    return ordered[rank - 1]


def _read_until(proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float) -> str:
    """The first stdout line of `proc` matching `pattern` (lines before it are dropped)."""
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if pattern.search(line):
                found.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise BenchError(f"no line matching {pattern.pattern!r} within {timeout:g}s")
    return found[0]


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def fake_cloudflare(latency: float = MODEL_LATENCY) -> Iterator[dict[str, str]]:
    """`wapa fake-cloudflare` in a subprocess; yields the variables that point wapa at it."""
    cmd = [sys.executable, "-m", "app", "fake-cloudflare", "--port", "0", "--latency", str(latency)]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        env: dict[str, str] = {}
        for name in ("CLOUDFLARE_API_BASE", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
            line = _read_until(proc, re.compile(rf"^\s*{name}="), 20.0)
            env[name] = line.split("=", 1)[1]
        yield env
    finally:
        _stop(proc)


def _get(url: str, timeout: float = 2.0) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


# ---------------------------------------------------------------------- load


def _schedule(chats: int, rate: float, seed: int = 5) -> list[tuple[float, str, str]]:
    """(offset in seconds, chat, console line): one message per chat, Poisson arrivals; one
    chat in five is a group whose message mentions the owner. `WARMUP` chats (named w...)
    come first, then a one-second pause."""
    rng = random.Random(seed)
    out, t = [], 0.0
    words = (
        "are you free tomorrow",
        "can you send me the file",
        "what time is the meeting",
        "call me when you can",
        "let me know about friday",
        "thanks for yesterday",
    )
    for i in range(WARMUP):
        t += 0.05
        out.append((t, f"w{i:05d}", f"w{i:05d}: hello #w{i:05d}"))
    t += 1.0
    for i in range(chats):
        t += rng.expovariate(rate)
        if i % 5 == 0:
            chat = f"g{i:05d}"
            line = f"{chat}/member{rng.randrange(20)}: @{OWNER_NAME} {rng.choice(words)} #{chat}"
        else:
            chat = f"c{i:05d}"
            line = f"{chat}: hi! {rng.choice(words)}? #{chat}"
        out.append((t, chat, line))
    return out


class _Feeder:
    """The console's stdin: yields each line at its time and notes when it went in."""

    def __init__(self, schedule: list[tuple[float, str, str]]) -> None:
        self.schedule = schedule
        self.t_in: dict[str, float] = {}
        self.done = threading.Event()

    def __iter__(self) -> Iterator[str]:
        t0 = time.perf_counter()
        for at, chat, line in self.schedule:
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.t_in[chat] = time.perf_counter()
            yield line + "\n"
        self.done.set()


class _Capture(io.TextIOBase):
    """The console's stdout: notes when each chat's first `[send]` line came out."""

    def __init__(self) -> None:
        self.t_out: dict[str, float] = {}
        self.problems: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if s.startswith("[send] "):
            head = s[7:].split(":", 1)[0]
            self.t_out.setdefault(head.split(" (quoting", 1)[0], time.perf_counter())
        elif s.startswith("[error]"):
            self.problems.append(s.strip())
        return len(s)


class _TimedModel:
    """Wraps the real model client and notes how long each chat's call took."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.latency: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:  # stats, aclose, ... of the real client
        return getattr(self.inner, name)

    async def generate(self, messages: Sequence[Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return await self.inner.generate(messages)
        finally:
            spent = time.perf_counter() - t0
            for m in reversed(messages):
                content = m.get("content") if isinstance(m, dict) else getattr(m, "content", "")
                found = _TAG.search(content or "")
                if found:
                    self.latency.setdefault(found.group(1), spent)
                    break


async def _load(
    chats: int, rate: float, server_env: dict[str, str], tmp: Path, sync: str = "full"
) -> dict[str, Any]:
    from wapa.adapters.console import ConsoleTransport
    from wapa.adapters.llm import client_from_settings, settings_from_env
    from wapa.adapters.logs import flush_logging, setup_logging
    from wapa.adapters.store import Store
    from wapa.config import load_settings
    from wapa.runner import Runner

    env = {**ZERO_DELAY, **server_env, "WAPA_DB": str(tmp / "runner.db"), "WAPA_HTTP_PORT": "0"}
    settings = load_settings(env)
    n = settings.max_concurrent_generations  # the pool's limits as `wapa run` sets them
    model = _TimedModel(client_from_settings(settings_from_env(env), connections=n))
    feeder, capture = _Feeder(_schedule(chats, rate)), _Capture()
    transport = ConsoleTransport(
        settings.persona.owner_id,
        settings.persona.owner_name,
        stdin=cast(TextIO, feeder),  # iterated line by line, as the console reads stdin
        stdout=cast(TextIO, capture),  # a TextIOBase that notes the time of each line
    )
    store = await Store.open(settings.db, None, sync=sync)  # closed by the runner when it stops
    runner = Runner(settings, transport, store, model, http=False, install_signals=False)

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    setup_logging("INFO", stream=sink, background=True)  # as `wapa run` does
    lags: list[float] = []
    loop = asyncio.get_running_loop()

    async def sample_lag() -> None:
        interval = 0.005
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            lags.append(max(0.0, loop.time() - before - interval))

    began, cpu0, loop_cpu0 = time.perf_counter(), time.process_time(), time.thread_time()
    task = asyncio.create_task(runner.run())
    sampler = asyncio.create_task(sample_lag())
    deadline = began + chats / rate * 3 + 60.0
    try:
        while (
            len(capture.t_out) < chats + WARMUP
            and time.perf_counter() < deadline
            and not task.done()
        ):
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - began
        cpu = time.process_time() - cpu0
        loop_cpu = time.thread_time() - loop_cpu0  # this thread: the event loop's
    finally:
        sampler.cancel()
        runner.request_stop("benchmark done")
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await asyncio.wait_for(task, 30)
        flush_logging()  # the listener thread writes to `sink`: stop it before closing
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        sink.close()
    done = [
        c
        for c in capture.t_out
        if c in feeder.t_in and c in model.latency and not c.startswith("w")
    ]
    if len(done) < chats:
        raise BenchError(
            f"only {len(done)} of {chats} chats got a reply within {wall:.0f}s "
            f"({'; '.join(capture.problems[:3])})"
        )
    overhead = [(capture.t_out[c] - feeder.t_in[c] - model.latency[c]) * 1000 for c in done]
    e2e = [(capture.t_out[c] - feeder.t_in[c]) * 1000 for c in done]
    latency = [model.latency[c] * 1000 for c in done]
    return {
        "runner_chats": chats,
        "runner_rate_per_s": rate,
        "runner_wall_s": wall,
        # this process's CPU time over the load (runner, console threads, logging; the model
        # server is another process) per message
        "runner_cpu_ms_per_msg": cpu * 1000 / (chats + WARMUP),
        # of which the event loop's thread (the rest: the store's writer thread, the logs'
        # thread, the console's stdin reader)
        "runner_loop_cpu_ms_per_msg": loop_cpu * 1000 / (chats + WARMUP),
        "runner_overhead_p50_ms": _percentile(overhead, 50),
        "runner_overhead_p99_ms": _percentile(overhead, 99),
        "runner_end_to_end_p99_ms": _percentile(e2e, 99),
        "runner_model_latency_p50_ms": _percentile(latency, 50),
        "loop_lag_p50_ms": _percentile(lags, 50) * 1000,
        "loop_lag_p99_ms": _percentile(lags, 99) * 1000,
        "loop_lag_max_ms": max(lags, default=0.0) * 1000,
    }


# ---------------------------------------------------------------------- idle memory


class _Process:
    """A subprocess whose stdout is drained by a thread (so it never blocks on a full pipe);
    lines matching `watch` are kept."""

    def __init__(self, cmd: list[str], env: dict[str, str], watch: str = "") -> None:
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.watch = re.compile(watch) if watch else None
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}
        self._seen = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            key = line[: line.find("]") + 1] if line.startswith("[") else ""
            with self._seen:
                self.counts[key] = self.counts.get(key, 0) + 1
                if self.watch is not None and self.watch.search(line):
                    self.lines.append(line.strip())
                self._seen.notify_all()

    def wait_for(self, timeout: float) -> str:
        with self._seen:
            if not self._seen.wait_for(
                lambda: bool(self.lines) or self.proc.poll() is not None, timeout
            ):
                raise BenchError(f"no line matching {self.watch.pattern if self.watch else ''!r}")
            if not self.lines:
                raise BenchError(f"the process exited with status {self.proc.returncode}")
            return self.lines[0]

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        _stop(self.proc)


def _start_runner(env: dict[str, str], preload: str = "") -> tuple[_Process, float]:
    """`wapa run --transport console` (optionally importing `preload` first), up and healthy;
    returns it and its VmRSS right after /healthz answered 200."""
    code = f"{preload}\nimport sys\nfrom wapa.cli import main\nsys.exit(main(sys.argv[1:]))"
    p = _Process(
        [sys.executable, "-c", code, "run", "--transport", "console"], env, watch=r"^\[http\] "
    )
    try:
        port = int(p.wait_for(60.0).rsplit(":", 1)[1])
        end = time.monotonic() + 30.0
        while _get(f"http://127.0.0.1:{port}/healthz") != 200:
            if time.monotonic() > end or p.proc.poll() is not None:
                raise BenchError("wapa run never answered /healthz with 200")
            time.sleep(0.1)
    except BaseException:
        p.stop()
        raise
    return p, rss_mb(p.proc.pid) or 0.0


def _bare_rss(code: str) -> float | None:
    """VmRSS of `python -c <code>` once it has run `code` (then it waits on stdin)."""
    script = f"{code}\nimport sys\nprint('ready', flush=True)\nsys.stdin.read()"
    p = _Process([sys.executable, "-c", script], _clean_env(), watch="^ready")
    try:
        p.wait_for(60.0)
        return rss_mb(p.proc.pid)
    finally:
        p.stop()


def _runner_env(server_env: dict[str, str], tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **_clean_env(),
        **ZERO_DELAY,
        **server_env,
        "WAPA_DB": str(tmp / "idle.db"),
        "WAPA_HTTP_PORT": "0",
        "WAPA_HTTP_HOST": "127.0.0.1",
        **extra,
    }


def _idle_rss(server_env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """VmRSS of the idle runner with neonize imported first as `wapa run` on WhatsApp imports
    it, read one second after /healthz answered, and its baselines: the bare interpreter,
    `python -c "import neonize"`, and the runner without neonize (`baseline_rss_runner_mb`:
    what is wapa's own, with what it shares with neonize: asyncio, ssl, httpx). Each figure is
    the median of 3 fresh processes, the four kinds interleaved so a machine that drifts moves
    them alike; `*_samples` keeps every reading."""
    import statistics

    if rss_mb(os.getpid()) is None:
        return {"idle_rss_mb": None, "idle_rss_note": "no /proc on this system"}

    def idle(preload: str, run: int) -> float | None:
        home = tmp / f"idle-{run}-{'neonize' if preload else 'runner'}"
        home.mkdir(parents=True, exist_ok=True)
        proc, _ = _start_runner(_runner_env(server_env, home), preload)
        try:
            time.sleep(1.0)
            return rss_mb(proc.proc.pid)
        finally:
            proc.stop()

    samples: dict[str, list[float | None]] = {
        "idle_rss_mb": [],
        "baseline_rss_runner_mb": [],
        "baseline_rss_python_mb": [],
        "baseline_rss_python_neonize_mb": [],
    }
    for run in range(3):
        samples["idle_rss_mb"].append(idle(_PRELOAD_NEONIZE, run))
        samples["baseline_rss_runner_mb"].append(idle("", run))
        samples["baseline_rss_python_mb"].append(_bare_rss("pass"))
        samples["baseline_rss_python_neonize_mb"].append(_bare_rss("import neonize"))
    out: dict[str, Any] = {}
    for key, values in samples.items():
        read = [v for v in values if v is not None]
        out[key] = statistics.median(read) if read else None
        out[f"{key}_samples"] = [round(v, 2) if v is not None else None for v in values]
    return out


def runner_figures(quick: bool, chats: int | None = None) -> dict[str, Any]:
    """Load figures for `chats` chats (default 1,000; quick 200), then idle memory. The full
    run repeats the load with `WAPA_DB_SYNC=normal` (keys ending `_sync_normal`)."""
    chats = chats if chats is not None else (200 if quick else 1000)
    with tempfile.TemporaryDirectory(prefix="wapa-bench-") as tmp, fake_cloudflare() as server:
        out = asyncio.run(_load(chats, RATE, server, Path(tmp)))
        fast = asyncio.run(_load(chats, FAST_RATE, server, Path(tmp) / "fast"))
        for key in (
            "runner_overhead_p50_ms",
            "runner_overhead_p99_ms",
            "runner_cpu_ms_per_msg",
            "runner_loop_cpu_ms_per_msg",
        ):
            out[f"{key}_at_{FAST_RATE:.0f}"] = fast[key]
        out[f"runner_wall_s_at_{FAST_RATE:.0f}"] = fast["runner_wall_s"]
        # the model call as the client times it at that rate (the server's 20 ms, the wire,
        # the client's own work and the loop's lag while the answer waits to be read)
        out[f"runner_model_latency_p50_ms_at_{FAST_RATE:.0f}"] = fast["runner_model_latency_p50_ms"]
        if not quick:
            normal = asyncio.run(_load(chats, RATE, server, Path(tmp) / "normal", "normal"))
            for key in ("runner_overhead_p50_ms", "runner_overhead_p99_ms", "loop_lag_p99_ms"):
                out[f"{key}_sync_normal"] = normal[key]
        out.update(_idle_rss(server, Path(tmp)))
    return out


# ---------------------------------------------------------------------- soak


def soak(
    seconds: float, progress: Callable[[str], None], rate: float = 10.0, chats: int = 200
) -> dict[str, Any]:
    """Drive `wapa run --transport console` with `rate` messages per second, round-robin over
    `chats` chats in shuffled rounds, for `seconds`; resident memory after a warm-up (a fifth
    of the time, at most a minute: by then every chat's context is full at the default rate,
    so what grows after it is not filling bounded state) and at the end.
    Goal: growth < 5 % over 10 minutes."""
    if seconds <= 0:
        raise BenchError(f"expected a number of seconds > 0, got {seconds:g}")
    if rss_mb(os.getpid()) is None:
        raise BenchError("needs /proc to read resident memory (Linux)")
    warmup = min(60.0, seconds / 5)
    rng = random.Random(11)
    order = list(range(chats))
    with tempfile.TemporaryDirectory(prefix="wapa-soak-") as tmp, fake_cloudflare() as server:
        env = _runner_env(server, Path(tmp), WAPA_COOLDOWN="1s", WAPA_LOG_LEVEL="info")
        proc, launch = _start_runner(env)
        samples: list[tuple[float, float]] = []
        sent = 0
        try:
            t0 = time.monotonic()
            next_report = t0 + 10.0
            start_rss: float | None = None
            while (now := time.monotonic()) < t0 + seconds:
                if proc.proc.poll() is not None:
                    raise BenchError(f"wapa run exited with status {proc.proc.returncode}")
                if sent % chats == 0:
                    rng.shuffle(order)
                c = order[sent % chats]
                proc.say(f"c{c:05d}: message {sent} {rng.choice(('hello', 'are you there?'))}")
                sent += 1
                if start_rss is None and now - t0 >= warmup:
                    start_rss = rss_mb(proc.proc.pid)
                if now >= next_report:
                    rss = rss_mb(proc.proc.pid) or 0.0
                    samples.append((now - t0, rss))
                    replies = proc.counts.get("[send]", 0)
                    progress(
                        f"soak: {now - t0:.0f}/{seconds:.0f}s, rss {rss:.1f} MB, "
                        f"{sent} messages in, {replies} replies"
                    )
                    next_report += 10.0
                time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
            end_rss = rss_mb(proc.proc.pid) or 0.0
            replies = proc.counts.get("[send]", 0)
        finally:
            proc.stop()
    start = start_rss or launch
    return {
        "soak_seconds": seconds,
        "soak_messages": sent,
        "soak_replies": replies,
        "soak_backlog": sent - replies,  # messages not answered yet at the end (falling behind?)
        "soak_rss_launch_mb": launch,
        "soak_rss_start_mb": start,
        "soak_rss_end_mb": end_rss,
        "soak_rss_max_mb": max([end_rss, *(s[1] for s in samples)]),
        "soak_rss_growth_pct": (end_rss - start) / start * 100 if start else None,
        "soak_warmup_seconds": warmup,
        "soak_samples": [[round(t, 1), round(r, 2)] for t, r in samples],
    }
