"""`wapa run --transport console` in a subprocess, driven line by line.

The real runner on the real clock: tests that use it wait by polling its output with a
timeout, and keep the delays to a second or two.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
PASSED_ON = ("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_")  # settings a test gives explicitly


def clean_env(**settings: str) -> dict[str, str]:
    """The test process's environment without any wapa or model setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PASSED_ON)}
    return {**env, "PYTHONUNBUFFERED": "1", **settings}


class ConsoleWapa:
    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wapa", "run", "--transport", "console", *args],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._drain_err, args=(self.proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def _drain_err(self, stream: IO[str]) -> None:
        for line in stream:
            self.stderr.append(line)

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = 20.0) -> str:
        """The next output line matching `pattern` (the lines before it are kept in `seen`)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line matching {pattern!r}; got:\n"
                    + "\n".join(self.seen)
                    + "\nstderr:\n"
                    + "".join(self.stderr[-20:])
                )
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if rx.search(line):
                return line

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful stop); the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.read_to_end()
        return code

    def crash(self) -> None:
        """SIGKILL: the process dies at once, as in a power cut."""
        self.proc.kill()
        self.proc.wait(10)
        self.read_to_end()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def read_to_end(self, timeout: float = 10.0) -> None:
        """After the process has exited: wait until both output pipes are read to their end, so
        `stderr` and `seen` hold every line it wrote (the reader threads may lag behind the
        exit on a busy machine)."""
        end = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(max(0.0, end - time.monotonic()))
        self._drain()

    def _drain(self) -> None:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
