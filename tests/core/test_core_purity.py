"""core/ is pure: stdlib only, no I/O modules, no clock reads, no global randomness."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
FILES = sorted(CORE.glob("*.py"))
FORBIDDEN_MODULES = {
    "asyncio",
    "httpx",
    "sqlite3",
    "aiosqlite",
    "neonize",
    "os",
    "time",
    "socket",
    "threading",
    "subprocess",
    "requests",
    "urllib",
    "pathlib",
    "shutil",
    "io",
    "tempfile",
    "logging",
}
CLOCK_READS = re.compile(
    r"\btime\.(?:time|monotonic|perf_counter)\b|\bdatetime\.(?:now|utcnow|today)\b|"
    r"\bdate\.today\b|\bopen\("
)


def _top(module: str) -> str:
    """The top-level module, except that the core's own modules count as `wapa.core`."""
    return (
        "wapa.core"
        if module == "wapa.core" or module.startswith("wapa.core.")
        else module.split(".")[0]
    )


def _imports(path: Path) -> set[str]:
    """The modules `path` imports when it runs: an import under `if TYPE_CHECKING:` never runs
    (it is read by mypy and mypyc only: core/records.py's `mypyc_attr`), so it is left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            node.body = []  # the `else:` part runs, and is still read
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {_top(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(_top(node.module))
    return names


def test_core_has_files() -> None:
    assert {p.name for p in FILES} >= {"machine.py", "events.py", "policy.py", "context.py"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_forbidden_imports(path: Path) -> None:
    assert not _imports(path) & FORBIDDEN_MODULES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_stdlib_only(path: Path) -> None:
    outside = {m for m in _imports(path) if m not in sys.stdlib_module_names and m != "wapa.core"}
    assert outside == set() or outside == {"__future__"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_clock_reads(path: Path) -> None:
    assert CLOCK_READS.findall(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_global_randomness(path: Path) -> None:
    """Only `random.Random(seed)` instances: no module-level random.random(), shuffle, etc."""
    calls = re.findall(r"\brandom\.(\w+)\(", path.read_text(encoding="utf-8"))
    assert set(calls) <= {"Random"}


def test_no_environment_reads() -> None:
    for path in FILES:
        assert "environ" not in path.read_text(encoding="utf-8"), path.name


def test_the_checks_can_fail() -> None:
    """The patterns really match what they are meant to refuse."""
    assert CLOCK_READS.search("x = time.time()") and CLOCK_READS.search("datetime.now(UTC)")
    assert CLOCK_READS.search("date.today()") and not CLOCK_READS.search(
        "datetime.fromtimestamp(t)"
    )
    assert re.findall(r"\brandom\.(\w+)\(", "random.random()") == ["random"]
