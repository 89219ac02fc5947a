"""The pytest plugin (entry point `pytest11`): `pytest FOLDER` runs each scenario file as a test.

Each case runs pytest in a subprocess on a small project in a temporary folder, as a user would.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

OK = """name: One delayed reply
chats:
  alice: {}
script:
  - {at: 0s, chat: alice, text: "Hi! Are you free tomorrow?"}
expect:
  - {reply: alice, at: 2m}
"""
BAD = """name: Expects silence but gets a reply
chats:
  alice: {}
script:
  - {at: 0s, chat: alice, text: "hello"}
expect:
  - {no_reply: alice}
"""
BROKEN = """name: Broken
chats:
  alice: {}
script:
  - {at: 0s, chat: alice, txet: "typo"}
"""
COMPOSE = "services:\n  app:\n    image: x\nname: not-a-scenario\n"


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scenarios" / "more").mkdir(parents=True)
    (tmp_path / "scenarios" / "ok.yaml").write_text(OK)
    (tmp_path / "scenarios" / "more" / "bad.yml").write_text(BAD)
    (tmp_path / "scenarios" / "broken.yaml").write_text(BROKEN)
    (tmp_path / "scenarios" / "compose.yaml").write_text(COMPOSE)
    return tmp_path


def _cases(report: Path) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for c in ET.parse(report).getroot().iter("testcase")}


def test_each_scenario_is_a_test_with_its_expectations_as_the_message(project: Path) -> None:
    r = _pytest(project, "scenarios", "--junitxml", "r.xml", "-rA")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 failed, 1 passed" in r.stdout and "error" not in r.stdout.splitlines()[-1]
    cases = _cases(project / "r.xml")
    assert set(cases) == {"One delayed reply", "Expects silence but gets a reply", "broken"}
    failure = cases["Expects silence but gets a reply"].find("failure")
    assert failure is not None
    assert "expect[0] (line 7): expected no reply in alice" in (failure.text or "")
    assert "rerun: wapa simulate" in (failure.text or "")
    broken = cases["broken"].find("failure")
    assert broken is not None and "broken.yaml:5:" in (broken.text or "")
    assert (
        cases["One delayed reply"].get("classname") == "scenarios.ok.yaml"
    )  # pytest names it from the node id


def test_k_and_seed_work(project: Path) -> None:
    r = _pytest(project, "scenarios", "-k", "delayed or silence", "-v", "--wapa-seed", "7")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "scenarios/ok.yaml::One delayed reply PASSED" in r.stdout
    assert "1 failed, 1 passed, 1 deselected" in r.stdout
    assert "--seed 7" in r.stdout  # the rerun command in the failure


def test_xdist_runs_scenarios_in_parallel(project: Path) -> None:
    pytest.importorskip("xdist")
    r = _pytest(project, "scenarios", "-n", "2", "--junitxml", "r2.xml", "-x")
    assert r.returncode in (1, 2), r.stdout + r.stderr  # 2: interrupted by -x
    assert len(_cases(project / "r2.xml")) >= 1  # -x stops the session at the first failure
    r = _pytest(project, "scenarios", "-n", "2", "--junitxml", "r2.xml")
    assert len(_cases(project / "r2.xml")) == 3


def test_a_plain_pytest_run_collects_no_yaml(project: Path) -> None:
    """Over `testpaths` (a project's own test run) nothing changes; nor are YAML files that are
    test data of a Python package collected, unless named."""
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    tests = project / "tests"
    (tests / "data").mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    (tests / "test_x.py").write_text("def test_x(): pass\n")
    (tests / "data" / "s.yaml").write_text(BAD)
    r = _pytest(project, "--co", "-q")
    assert "tests/test_x.py::test_x" in r.stdout and ".yaml" not in r.stdout, r.stdout
    r = _pytest(project, "tests", "tests/data/s.yaml", "--co", "-q")
    assert "tests/test_x.py::test_x" in r.stdout, r.stdout
    assert "tests/data/s.yaml::Expects silence but gets a reply" in r.stdout, r.stdout
    r = _pytest(project, "tests", "scenarios", "--co", "-q", "-p", "no:wapa")
    assert ".yaml" not in r.stdout and ".yml" not in r.stdout, r.stdout
