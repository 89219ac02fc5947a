"""Running scenario files: discovery, one outcome per scenario, the table and the JSON shape.

A broken file becomes a failed outcome carrying the loader's "file:line: what" error; the other
files still run. Output depends only on the files and the seed: the same inputs give
byte-identical JSON. A scenario with `restart_from: store` commits every step to a SQLite store
in a temporary folder and restarts from it; with a `store_dir`, every scenario does, each in
its own file there (`<file name>.db`), kept for inspection. With a `record_dir`, every scenario
writes a recording (adapters/recording.py, the format `wapa run` writes with `WAPA_RECORD`)
to `<file name>.jsonl` there, which `wapa replay` replays with zero divergences.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wapa.core.digest import counted
from wapa.core.records import Record
from wapa.sim.engine import SimResult, Simulation, SimulationError
from wapa.sim.expect import Checker, check, describe, fmt_offset
from wapa.sim.scenario import Scenario, ScenarioError, build_simulation, load_file

if TYPE_CHECKING:
    from wapa.adapters.recording import Recorder

SUFFIXES = (".yaml", ".yml")


@dataclass
class Outcome:
    """How one scenario file went: loaded, run and checked, or why not."""

    file: str
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    scenario: Scenario | None = None
    sim: Simulation | None = None
    error: str = ""  # the file could not be loaded or run
    line: int | None = None  # where a broken file is broken (the loader's line)
    seconds: float = 0.0  # wall-clock time to load, run and check (not in the JSON)
    seed: int | None = None  # the seed the scenario ran with

    @property
    def result(self) -> SimResult | None:
        return self.sim.result if self.sim else None

    @property
    def unchecked(self) -> bool:
        """It loaded and ran, but has no expectations: its pass says nothing."""
        return self.scenario is not None and not self.scenario.expectations and not self.error


@dataclass(frozen=True, eq=False, repr=False)
class Check(Record):
    """One expectation of a scenario and how it went."""

    where: str  # expect[0] (line 14)
    line: int
    what: str  # a reply in alice at +2m (±30s)
    status: str  # pass | fail | not run (the simulation stopped before it could be checked)
    problem: str = ""


def checks(o: Outcome) -> list[Check]:
    """Each expectation of the scenario with its mark (recomputed from the finished run)."""
    s = o.scenario
    if s is None:
        return []
    if o.error or o.sim is None:
        return [Check(e.where(), e.line, describe(e), "not run") for e in s.expectations]
    return [
        Check(e.where(), e.line, describe(e), "fail" if problem else "pass", problem)
        for e, problem in Checker(s, o.sim.result, o.sim.whatsapp).results()
    ]


NO_EXPECTATIONS = "no expectations: it passes whatever the assistant does (add an `expect:` list)"


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Scenario files under the given files and folders (sorted), and paths that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            missing.append(str(raw))
    return files, missing


@contextlib.contextmanager
def _store_file(scenario: Scenario, store: Path | None) -> Iterator[Path | None]:
    """The SQLite file the scenario restarts from: `store`, a temporary one for
    `restart_from: store`, or None (restarts from the JSON export)."""
    if store is not None or scenario.restart_from != "store":
        yield store
        return
    with tempfile.TemporaryDirectory(prefix="wapa-sim-") as tmp:
        yield Path(tmp) / "store.db"


@contextlib.contextmanager
def _recorder(
    scenario: Scenario, seed: int | None, path: Path | None, redact: bool
) -> Iterator[Recorder | None]:
    if path is None:
        yield None
        return
    from wapa.adapters.recording import Recorder

    with Recorder(
        path,
        scenario.policy,
        scenario.persona,
        scenario.seed if seed is None else seed,
        redact,
        start=scenario.start,
    ) as recorder:
        yield recorder


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    store: Path | None = None,
    record: Path | None = None,
    record_redact: bool = False,
) -> Outcome:
    """Run and check one scenario; `store`: a new SQLite file to commit to and restart from;
    `record`: a new recording file (`record_redact`: with text and numbers redacted)."""
    until = None if scenario.until is None else scenario.start + scenario.until
    sim: Simulation | None = None
    try:
        with (
            _store_file(scenario, store) as path,
            _recorder(scenario, seed, record, record_redact) as recorder,
        ):
            sim = build_simulation(scenario, seed, store=path, on_record=recorder)
            with sim:
                sim.run(until)
    except SimulationError as exc:
        return Outcome(
            scenario.file,
            scenario.name,
            False,
            [f"simulation stopped: {exc}"],
            scenario,
            sim,
            str(exc),
        )
    except Exception as exc:  # a bug in the core, the simulator or the store: report, run the rest
        what = f"simulation crashed: {type(exc).__name__}: {exc}"
        return Outcome(scenario.file, scenario.name, False, [what], scenario, sim, what)
    failures = check(scenario, sim.result, sim.whatsapp)
    return Outcome(scenario.file, scenario.name, not failures, failures, scenario, sim)


def run_file(
    path: str | Path,
    seed: int | None = None,
    store: Path | None = None,
    record: Path | None = None,
    record_redact: bool = False,
) -> Outcome:
    began = time.perf_counter()
    try:
        scenario = load_file(path)
    except ScenarioError as exc:
        outcome = Outcome(
            str(path), Path(path).stem, False, [str(exc)], error=str(exc), line=exc.line
        )
    else:
        outcome = run_scenario(scenario, seed, store, record, record_redact)
        outcome.seed = scenario.seed if seed is None else seed
    outcome.seconds = time.perf_counter() - began
    return outcome


def named_files(files: list[Path], directory: Path, suffix: str) -> list[Path]:
    """One file per scenario file in `directory`, named after it (unique: `name-2` for a second
    file of the same name in another folder), with `suffix`."""
    taken: set[str] = set()
    out = []
    for f in files:
        name, n = f.stem, 1
        while name in taken:
            n += 1
            name = f"{f.stem}-{n}"
        taken.add(name)
        out.append(directory / f"{name}{suffix}")
    return out


def store_files(files: list[Path], store_dir: Path) -> list[Path]:
    """One database file per scenario file in `store_dir`, named after it (unique)."""
    return named_files(files, store_dir, ".db")


def run_paths(
    paths: Iterable[str | Path],
    seed: int | None = None,
    store_dir: Path | None = None,
    record_dir: Path | None = None,
    record_redact: bool = False,
) -> list[Outcome]:
    """`store_dir`: every scenario restarts from a SQLite store there (see `store_files`);
    `record_dir`: every scenario that loads writes its recording there (`NAME.jsonl`)."""
    files, missing = discover(paths)
    outcomes = [
        Outcome(m, Path(m).name, False, [f"{m}: no such file or folder"], error="missing")
        for m in missing
    ]
    none: list[Path | None] = [None] * len(files)
    stores: list[Path | None] = list(store_files(files, store_dir)) if store_dir else none
    records: list[Path | None] = (
        list(named_files(files, record_dir, ".jsonl")) if record_dir else none
    )
    outcomes.extend(
        run_file(f, seed, db, rec, record_redact)
        for f, db, rec in zip(files, stores, records, strict=True)
    )
    return outcomes


# ---------------------------------------------------------------- output


def _t(x: float) -> float:
    return round(x, 3)


def to_json(outcomes: list[Outcome]) -> dict[str, Any]:
    passed = sum(o.passed for o in outcomes)
    return {
        "passed": passed,
        "failed": len(outcomes) - passed,
        "unchecked": sum(o.unchecked for o in outcomes),
        "scenarios": [outcome_json(o) for o in outcomes],
    }


def outcome_json(o: Outcome) -> dict[str, Any]:
    r, start = o.result, o.scenario.start if o.scenario else 0.0
    return {
        "name": o.name,
        "file": o.file,
        "passed": o.passed,
        "unchecked": o.unchecked,
        "expectations": [{"line": c.line, "what": c.what, "status": c.status} for c in checks(o)],
        "failures": list(o.failures),
        "sent": [{"chat": x.chat, "t": _t(x.t - start), "text": x.text} for x in r.sent]
        if r
        else [],
        "decisions": [
            {"t": _t(d.t - start), "chat": d.chat, "code": d.code, "detail": d.detail}
            for d in r.decisions
        ]
        if r
        else [],
        "generations": [
            {
                "t": _t(g.t - start),
                "chat": g.chat,
                "messages": [{"role": m.role, "content": m.content} for m in g.messages],
            }
            for g in r.generations
        ]
        if r
        else [],
    }


def table(outcomes: list[Outcome]) -> str:
    """One line per scenario: result, name, simulated span, replies sent, file."""
    rows = [("RESULT", "SCENARIO", "SPAN", "REPLIES", "FILE")]
    for o in outcomes:
        r = o.result
        result = "pass" if o.passed else ("BROKEN" if o.error and not r else "FAIL")
        if o.passed and o.unchecked:
            result = "EMPTY"  # passed, but nothing was checked
        span = fmt_offset(r.end - r.start)[1:] if r else "-"
        replies = str(len(r.sent)) if r else "-"
        rows.append((result, o.name, span, replies, o.file))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def human(outcomes: list[Outcome]) -> str:
    out = [table(outcomes), ""]
    failed = [o for o in outcomes if not o.passed]
    for o in failed:
        out.append(f"FAILED {o.name} ({o.file})")
        for f in o.failures:
            out.extend("  " + line for line in f.splitlines())
        out.append("")
    unchecked = [o for o in outcomes if o.unchecked and o.passed]
    for o in unchecked:
        out.append(f"EMPTY {o.name} ({o.file}): {NO_EXPECTATIONS}")
    if unchecked:
        out.append("")
    passed = len(outcomes) - len(failed)
    empty = f" ({len(unchecked)} with no expectations)" if unchecked else ""
    out.append(
        f"{passed} passed{empty}, {len(failed)} failed, {counted(len(outcomes), 'scenario')}"
    )
    return "\n".join(out)
