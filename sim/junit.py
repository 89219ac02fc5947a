"""Results where CI systems read them: JUnit XML and GitHub Actions workflow commands.

`simulate_junit` turns `wapa simulate`'s outcomes into one JUnit XML document: one
`<testsuite name="wapa simulate">` with one `<testcase>` per scenario (`classname` from the
file's path, dotted as pytest does, `name` the scenario's name, `time` the wall-clock seconds),
a failed expectation as `<failure>` carrying the same explanation the text output gives, a
broken file (or a simulation that stopped or crashed) as `<error>` with "file:line: what". The
seeds are in the suite's `<properties>` (`seed` when `--seed` overrode them, and one
`seed <file>` per scenario): the common JUnit schema (Jenkins' junit-10.xsd, which pytest's
`--junitxml` also follows) allows properties on a suite, not on a test case.

`fuzz_junit` does the same for `wapa fuzz` (one test case per seed, the violations and the
replay command in the failure). `github_annotations` prints failures as `::error file=...,
line=...::` workflow commands, pointing at the failed expectation's line.

The documents use only the schema's elements and attributes (checked in
tests/sim/test_junit.py against a copy of that shape, and parsed with junitparser).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from wapa.core.digest import counted

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from wapa.sim.suite import Outcome

_EXPECTATION_LINE = re.compile(r"^expect\[\d+\] \(line (\d+)\)")
# XML 1.0 cannot carry most control characters, even escaped: they become U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def classname(file: str) -> str:
    """`scenarios/sub/cooldown.yaml` -> `scenarios.sub.cooldown` (how pytest names modules)."""
    path = PurePath(file)
    parts = [p for p in path.with_suffix("").parts if p not in ("/", ".", "..")]
    return ".".join(parts) or file


def failure_line(failure: str) -> int | None:
    """The scenario file's line a failure message points at (`expect[N] (line L): ...`)."""
    m = _EXPECTATION_LINE.match(failure)
    return int(m.group(1)) if m else None


def _seconds(x: float) -> str:
    return f"{max(x, 0.0):.3f}"


@dataclass
class Case:
    """One JUnit test case, before it is written out."""

    classname: str
    name: str
    seconds: float = 0.0
    failure: str = ""  # the full explanation; empty when it passed
    error: str = ""  # broken or crashed: the full explanation
    error_type: str = "error"
    stdout: str = ""


def _summary(text: str, more: int) -> str:
    first = text.splitlines()[0] if text else ""
    return first + (f" (and {more} more)" if more else "")


def outcome_case(o: Outcome) -> Case:
    case = Case(classname(o.file), o.name, o.seconds)
    if o.error:
        case.error = "\n\n".join(o.failures) or o.error
        r = o.result
        case.error_type = "broken" if r is None else "simulation_error"
    elif not o.passed:
        case.failure = "\n\n".join(o.failures)
    if o.seed is not None:
        case.stdout = f"seed {o.seed}; rerun: wapa simulate {o.file} --seed {o.seed}"
    return case


def _document(
    suite: str, cases: Sequence[Case], properties: Iterable[tuple[str, str]]
) -> ET.Element:
    # ElementTree is loaded only when XML is written: `wapa simulate` imports this module for
    # the GitHub annotations on every run, with or without --junit.
    import xml.etree.ElementTree as ET

    failures = sum(bool(c.failure) for c in cases)
    errors = sum(bool(c.error) for c in cases)
    total = sum(c.seconds for c in cases)
    counts = {
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": str(errors),
        "time": _seconds(total),
    }
    root = ET.Element("testsuites", {"name": suite, **counts})
    ts = ET.SubElement(root, "testsuite", {"name": suite, **counts, "skipped": "0"})
    props = list(properties)
    if props:
        holder = ET.SubElement(ts, "properties")
        for name, value in props:
            ET.SubElement(holder, "property", {"name": _clean(name), "value": _clean(value)})
    for c in cases:
        tc = ET.SubElement(
            ts,
            "testcase",
            {"classname": _clean(c.classname), "name": _clean(c.name), "time": _seconds(c.seconds)},
        )
        for tag, text, kind in (
            ("failure", c.failure, "expectation"),
            ("error", c.error, c.error_type),
        ):
            if text:
                parts = text.split("\n\n")
                el = ET.SubElement(
                    tc,
                    tag,
                    {"message": _clean(_summary(text, len(parts) - 1)), "type": kind},
                )
                el.text = _clean(text)
        if c.stdout:
            ET.SubElement(tc, "system-out").text = _clean(c.stdout)
    return root


def _serialise(root: ET.Element) -> str:
    import xml.etree.ElementTree as ET  # see _document

    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def simulate_junit(outcomes: Sequence[Outcome], seed: int | None = None) -> str:
    """JUnit XML for `wapa simulate` (`seed`: the `--seed` override, if any)."""
    props: list[tuple[str, str]] = []
    if seed is not None:
        props.append(("seed", str(seed)))
    props.extend((f"seed {o.file}", str(o.seed)) for o in outcomes if o.seed is not None)
    return _serialise(_document("wapa simulate", [outcome_case(o) for o in outcomes], props))


def fuzz_junit(runs: Sequence[dict[str, Any]], properties: dict[str, str]) -> str:
    """JUnit XML for `wapa fuzz`: `runs` are the JSON objects of each seed's run."""
    cases = []
    for run in runs:
        case = Case(
            "wapa.fuzz",
            f"seed {run['seed']}",
            float(run.get("seconds", 0.0)),
            stdout=f"replay: {run['replay']}",
        )
        if not run["ok"]:
            from wapa.core import utc_text

            lines = [
                f"{utc_text(v['t'])}  {v['chat']}  {v['rule']}: {v['detail']}"
                for v in run["violations"]
            ]
            case.failure = (
                f"{counted(len(lines), 'invariant violation')} with seed {run['seed']}\n"
                + "\n".join(lines)
                + f"\nreplay exactly with:\n  {run['replay']}"
            )
        cases.append(case)
    return _serialise(_document("wapa fuzz", cases, sorted(properties.items())))


# ---------------------------------------------------------------- GitHub Actions


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_error(message: str, file: str = "", line: int | None = None, title: str = "") -> str:
    """One `::error ...::message` workflow command (GitHub Actions annotations)."""
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
        if line:
            props.append(f"line={line}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = "::error " + ",".join(props) if props else "::error"
    return f"{head}::{_escape_data(message)}"


def github_annotations(outcomes: Sequence[Outcome]) -> list[str]:
    """One `::error` per failed expectation (at its line) and per broken file (at the line the
    loader named)."""
    out = []
    for o in outcomes:
        if o.passed:
            continue
        for f in o.failures:
            line = failure_line(f) if not o.error else o.line
            out.append(workflow_error(f, o.file, line, o.name))
    return out


def github_actions() -> bool:
    """Running inside GitHub Actions (it sets GITHUB_ACTIONS=true)."""
    import os

    return os.environ.get("GITHUB_ACTIONS") == "true"
