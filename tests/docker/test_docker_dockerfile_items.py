"""The Dockerfile's details from issue 16: the BuildKit syntax line that `RUN --mount` needs,
comments that name files that exist, libmagic pinned per Debian release of the base image,
and no pip or setuptools left in the runtime venv (checked on the replayed build)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.docker.test_docker_dockerfile import DOCKERFILE, ROOT, load_stages, run_flags


def test_the_first_line_is_the_syntax_directive() -> None:
    first = DOCKERFILE.read_text().splitlines()[0]
    assert first == "# syntax=docker/dockerfile:1"
    assert any("--mount=" in i.args for stage in load_stages()[1] for i in stage.all("RUN"))


@pytest.mark.parametrize("name", ["Dockerfile", "docker-compose.yml"])
def test_every_file_a_comment_names_exists(name: str) -> None:
    text = (ROOT / name).read_text()
    named = set(re.findall(r"\b((?:tests|docs)/[\w/.-]+\.(?:py|md))\b", text))
    assert named, f"{name} names no test or doc file any more: drop this test"
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"{name} names files that do not exist: {missing}"


def _install_step() -> str:
    final = load_stages()[1][-1]
    return next(i.args for i in final.all("RUN") if "libmagic" in i.args)


@pytest.mark.parametrize(
    ("codename", "package"),
    [("bookworm", "libmagic1='1:5.44-*'"), ("trixie", "libmagic1t64='1:5.46-*'")],
)
def test_libmagic_is_pinned_for_each_supported_debian_release(codename: str, package: str) -> None:
    """The case branch each release takes, run by sh with apt-get replaced by echo."""
    _, command = run_flags(_install_step())
    command = command.replace(". /etc/os-release", f"VERSION_CODENAME={codename}")
    command = command.replace("apt-get", "echo apt-get").replace("rm -rf", "echo rm -rf")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert f"apt-get install -y --no-install-recommends {package.replace(chr(39), '')} " in (
        result.stdout
    )
    assert "tini=0.19.0-*" in result.stdout


def test_another_debian_release_stops_the_build_with_a_message() -> None:
    _, command = run_flags(_install_step())
    command = command.replace(". /etc/os-release", "VERSION_CODENAME=forky")
    command = command.replace("apt-get", "echo apt-get")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert "no libmagic pin for Debian forky; add one" in result.stderr


def test_the_bases_the_structure_test_allows_are_the_ones_pinned() -> None:
    source = (ROOT / "tests" / "docker" / "test_docker_dockerfile.py").read_text()
    allowed = re.search(r"slim-\(([\w|]+)\)", source)
    assert allowed is not None
    step = _install_step()
    for codename in allowed.group(1).split("|"):
        assert f"{codename})" in step, f"no libmagic pin for {codename}"


def test_the_builder_removes_pip_and_setuptools_from_the_venv() -> None:
    _, install = run_flags(load_stages()[1][0].last("RUN").args)
    steps = install.split(" && ")
    assert steps[0] == "/opt/venv/bin/pip install ."
    assert steps[1] == "/opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools"
