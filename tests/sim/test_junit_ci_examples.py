"""The CI examples in docs/examples/ cannot rot: each passes its CI system's schema (the ones
check-jsonschema has built in), and every `wapa ...` command in them parses with today's CLI."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from wapa.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SCHEMAS = {
    "github-workflow.yml": "vendor.github-workflows",
    "gitlab-ci.yml": "vendor.gitlab-ci",
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_example_passes_its_schema(name: str) -> None:
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} missing: install the dev extra"
    r = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", SCHEMAS[name], str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _scripts(node: Any) -> list[str]:
    """Every shell line under `run:` (GitHub) or `script:` (GitLab)."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "before_script"):
                lines = value if isinstance(value, list) else [value]
                out.extend(str(x) for x in lines)
            else:
                out.extend(_scripts(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_scripts(item))
    return out


def _wapa_commands(text: str) -> list[list[str]]:
    commands = []
    for script in _scripts(yaml.safe_load(text)):
        script = re.sub(r"\$\{\{[^}]*\}\}", "1", script)  # GitHub expressions
        script = re.sub(r"\$CI_NODE_(INDEX|TOTAL)", "1", script)  # GitLab's parallel index
        for line in script.replace("\n", " ").split("&&"):
            words = shlex.split(line.split(">")[0])
            if words and words[0] == "wapa":
                commands.append(words[1:])
    return commands


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_wapa_command_in_the_example_parses(name: str) -> None:
    commands = _wapa_commands((EXAMPLES / name).read_text())
    assert {c[0] for c in commands} >= {"simulate", "fuzz", "bench"}
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: wapa {' '.join(argv)} does not parse")
