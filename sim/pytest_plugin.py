"""pytest collects scenario files: `pytest scenarios/` runs each scenario as a test item.

Registered as the `wapa` plugin (entry point `pytest11`), so with wapa installed,
`pytest scenarios/ -k cooldown -x --junitxml r.xml -n auto` works as for any test: one item per
scenario file, named after the scenario (`scenarios/cooldown_after_reply.yaml::Cooldown after a
reply`), the failed expectations, with their explanation, as the assertion message. `-p no:wapa`
turns it off; `--wapa-seed N` overrides every scenario's seed.

What is collected, so that a project's own test run is never changed:

- only paths given on the command line: a plain `pytest` that walks `testpaths` collects no
  YAML at all;
- only `*.yaml` / `*.yml` files that look like scenarios (top-level `name:` and `script:` keys);
- not files inside a Python package (a folder with `__init__.py` in it or above it, up to the
  rootdir): YAML there is test data for Python tests (this project's tests/sim_examples holds
  deliberately failing scenarios). Name such a file itself on the command line to run it.

The simulator is imported when the first scenario runs, not when pytest starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from wapa.sim.scenario import Scenario

SUFFIXES = (".yaml", ".yml")
_TOP_KEY = re.compile(r"^(name|script)\s*:", re.MULTILINE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wapa", "wapa scenario files")
    group.addoption(
        "--wapa-seed",
        type=int,
        default=None,
        metavar="N",
        help="override every wapa scenario's seed",
    )


def _explicit(config: pytest.Config) -> list[Path]:
    """The paths given on the command line (none when pytest fell back to testpaths)."""
    args_source = getattr(pytest.Config, "ArgsSource", None)  # pytest >= 7.2
    if args_source is None or getattr(config, "args_source", None) != args_source.ARGS:
        return []
    out = []
    for arg in config.args:
        path = Path(arg.split("::")[0])
        out.append((config.invocation_params.dir / path).resolve())
    return out


def _in_package(path: Path, rootdir: Path) -> bool:
    for folder in path.parents:
        if (folder / "__init__.py").is_file():
            return True
        if folder == rootdir or folder == folder.parent:
            return False
    return False


def looks_like_scenario(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return {m.group(1) for m in _TOP_KEY.finditer(text)} == {"name", "script"}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in SUFFIXES:
        return None
    config = parent.config
    explicit = _explicit(config)
    if not explicit:
        return None
    resolved = file_path.resolve()
    if resolved not in explicit:
        if not any(p in resolved.parents for p in explicit):
            return None
        if _in_package(resolved, config.rootpath.resolve()):
            return None
    if not looks_like_scenario(file_path):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self) -> Any:
        from wapa.sim.scenario import ScenarioError, load_file

        try:
            scenario: Scenario | None = load_file(self.path)
            error = ""
        except ScenarioError as exc:
            scenario, error = None, str(exc)
        name = scenario.name if scenario else self.path.stem
        yield ScenarioItem.from_parent(self, name=name, scenario=scenario, error=error)


class ScenarioFailed(Exception):
    """A scenario's expectations did not hold (or the file is broken)."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario | None = None, error: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.error = error

    def runtest(self) -> None:
        if self.scenario is None:
            raise ScenarioFailed(f"broken scenario file: {self.error}")
        from wapa.sim.suite import run_scenario

        seed = self.config.getoption("wapa_seed")
        outcome = run_scenario(self.scenario, seed)
        if not outcome.passed:
            used = self.scenario.seed if seed is None else seed
            rerun = f"seed {used}; rerun: wapa simulate {self.path} --seed {used}"
            raise ScenarioFailed("\n\n".join([*outcome.failures, rerun]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"scenario: {self.name}"
