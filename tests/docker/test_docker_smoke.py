"""The image without a Docker engine: replay the Dockerfile's builder steps (COPY and RUN) into a
fresh virtualenv under tmp_path, then start the final stage's CMD with the console transport
and the image's environment, and run its HEALTHCHECK command against it.

Container paths (/opt/venv, /src, /app) are mapped to the same paths under a temporary root.
What cannot run here, and why that is acceptable:
- the final stage's RUN steps (apt-get of libmagic1 and tini, useradd): system packages and
  users; libmagic is on this machine, which the neonize import below relies on;
- the ENTRYPOINT `tini --`: it only forwards signals, so the SIGTERM goes to `wapa run` directly;
- the pip cache mount: pip uses its ordinary cache here, which only makes the install faster.
The environment is layered as Compose does: image ENV < env_file (.env.example, as a user
copies it to .env) < the service's `environment:`; only the port and model credentials differ.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.docker.test_docker_dockerfile import (
    ROOT,
    Stage,
    env_pairs,
    exec_form,
    healthcheck_command,
    load_stages,
    run_flags,
)

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT = 300.0
START_TIMEOUT = 45.0
STOP_TIMEOUT = 25.0
_OWN_PREFIXES = ("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_")


def _literal(value: str) -> Callable[[re.Match[str]], str]:
    """A `re.sub` replacement that inserts `value` as it is (backslashes included)."""
    return lambda _: value


@dataclass
class Image:
    rootfs: Path
    prefixes: list[str]  # container paths mapped under rootfs, longest first
    final: Stage
    base_env: dict[str, str]  # this machine's environment, cleaned

    def host(self, text: str) -> str:
        """Rewrite container paths in a command or value to their place under rootfs."""
        for prefix in self.prefixes:
            pattern = rf"(?<![\w./]){re.escape(prefix)}(?=[/:\s]|$)"
            replacement = str(self.rootfs) + prefix
            text = re.sub(pattern, _literal(replacement), text)
        return text

    def path(self, container_path: str) -> Path:
        return Path(self.host(container_path))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def _clean_environment(shim: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
        and not key.startswith(_OWN_PREFIXES)
    }
    env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _container_paths(stages: list[Stage]) -> list[str]:
    paths: set[str] = set()
    for stage in stages:
        paths.update(i.args for i in stage.all("WORKDIR"))
        for copy in stage.all("COPY"):
            words = copy.args.split()
            if words[0].startswith("--from="):
                paths.update(words[1:])
        for volume in stage.all("VOLUME"):
            paths.update(exec_form(volume.args))
        for run in stage.all("RUN"):
            match = re.search(r"-m venv (\S+)", run.args)
            if match:
                paths.add(match.group(1))
    return sorted(paths, key=len, reverse=True)


def _copy(sources: list[str], destination: Path, into_directory: bool) -> None:
    """Docker's COPY: a directory's contents go to the destination, a file into it or as it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for source in sources:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, destination, ignore=ignore, dirs_exist_ok=True)
        else:
            target = destination / origin.name if into_directory else destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def _build(image: Image, builder: Stage) -> None:
    env = dict(image.base_env)
    cwd = image.rootfs
    for instruction in builder.instructions:
        if instruction.keyword == "ENV":
            for key, value in env_pairs(instruction.args).items():
                env[key] = _expand(image.host(value), env)
        elif instruction.keyword == "WORKDIR":
            cwd = image.path(instruction.args)
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = instruction.args.split()
            assert not any(s.startswith("--") for s in sources), instruction
            target = image.path(destination) if destination.startswith("/") else cwd / destination
            into_directory = destination.endswith(("/", ".")) or len(sources) > 1
            _copy(sources, target, into_directory)
        elif instruction.keyword == "RUN":
            _, command = run_flags(instruction.args)
            result = subprocess.run(
                ["sh", "-c", image.host(command)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
            )
            assert result.returncode == 0, (
                f"Dockerfile:{instruction.line} RUN {command} failed:\n{result.stderr[-3000:]}"
            )
        else:
            assert instruction.keyword in {"ARG", "LABEL"}, f"not replayed: {instruction}"


def _env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose's env_file reads them (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        values[key.strip()] = value.strip()
    return values


def _runtime_environment(image: Image) -> dict[str, str]:
    env = dict(image.base_env)
    for instruction in image.final.all("ENV"):
        for key, value in env_pairs(instruction.args).items():
            env[key] = _expand(image.host(value), env)
    env.update(_env_file(ROOT / ".env.example"))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env.update({k: str(v) for k, v in compose["services"]["wapa"]["environment"].items()})
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    base = tmp_path_factory.mktemp("image")
    shim = base / "shim"
    shim.mkdir()
    interpreter = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    for name in ("python", "python3"):
        (shim / name).symlink_to(interpreter)
    _, stages = load_stages()
    builder, final = stages[0], stages[-1]
    built = Image(base / "rootfs", _container_paths(stages), final, _clean_environment(shim))
    built.rootfs.mkdir()
    _build(built, builder)
    for copy in final.all("COPY"):
        flag, source, destination = copy.args.split()
        assert flag == "--from=builder" and source == destination, "only the venv is copied"
    for volume in final.all("VOLUME"):
        for path in exec_form(volume.args):
            built.path(path).mkdir(parents=True, exist_ok=True)
    built.path(final.last("WORKDIR").args).mkdir(parents=True, exist_ok=True)
    yield built


def test_the_runtime_venv_has_no_pip_or_setuptools(image: Image) -> None:
    venv = image.path("/opt/venv")
    assert (venv / "bin" / "wapa").exists() and not (venv / "bin" / "pip").exists()
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print([m for m in ('pip', 'setuptools') if u.find_spec(m)])",
        ],
        env={**image.base_env, "PYTHONNOUSERSITE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (found.returncode, found.stdout.strip()) == (0, "[]"), found.stderr


def test_the_install_steps_give_a_working_wapa(image: Image) -> None:
    env = _runtime_environment(image)
    cwd = image.path(image.final.last("WORKDIR").args)
    wapa = shutil.which("wapa", path=env["PATH"])
    assert wapa is not None and Path(wapa).is_relative_to(image.rootfs), wapa
    help_text = subprocess.run(
        ["wapa", "--help"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0, help_text.stderr
    for command in ("run", "pair", "healthcheck", "backup"):
        if (ROOT / "app" / "commands" / f"{command}.py").exists():
            assert re.search(rf"\b{command}\b", help_text.stdout), command
    # neonize loads its native library and python-magic loads libmagic at import.
    imported = subprocess.run(
        ["python", "-c", "import magic, neonize.aioze.client; print(neonize.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert Path(imported.stdout.strip()).is_relative_to(image.rootfs)
    # The HEALTHCHECK with nothing listening: unhealthy, exit 1 (not 2, which Docker reserves).
    nothing = subprocess.run(
        healthcheck_command(image.final.last("HEALTHCHECK").args),
        env={**env, "WAPA_HTTP_PORT": str(_free_port())},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nothing.returncode == 1, nothing.stdout + nothing.stderr


def _start_fake_cloudflare(
    env: dict[str, str], cwd: Path, log: Path
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """`wapa fake-cloudflare` from the image's venv; returns the variables it prints."""
    process = subprocess.Popen(
        ["wapa", "fake-cloudflare", "--port", str(_free_port()), "--token", "smoke-test"],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        printed = dict(re.findall(r"^\s+(CLOUDFLARE_\w+)=(\S+)$", log.read_text(), re.M))
        if "CLOUDFLARE_ACCOUNT_ID" in printed:
            return process, printed
        assert process.poll() is None, f"fake-cloudflare exited: {log.read_text()[-2000:]}"
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"fake-cloudflare did not start: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.skipif(
    not (ROOT / "app" / "commands" / "run.py").exists(),
    reason="`wapa run` (app/commands/run.py, the runner issue) has not landed yet",
)
@pytest.mark.skipif(
    not (ROOT / "app" / "commands" / "fake_cloudflare.py").exists(),
    reason="`wapa fake-cloudflare` (app/commands/fake_cloudflare.py) has not landed yet",
)
def test_the_image_command_runs_is_healthy_and_stops_on_sigterm(
    image: Image, tmp_path: Path
) -> None:
    env = _runtime_environment(image)
    cwd = image.path(image.final.last("WORKDIR").args)
    fake, model_env = _start_fake_cloudflare(env, cwd, tmp_path / "fake-cloudflare.log")
    assert set(model_env) == {
        "CLOUDFLARE_API_BASE",
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_ACCOUNT_ID",
    }, model_env
    env.update(model_env)  # what a user writes into .env
    env["WAPA_HTTP_PORT"] = str(_free_port())  # the only change to the image's settings
    command = [*exec_form(image.final.last("CMD").args), "--transport", "console"]
    stderr_log = tmp_path / "wapa-run.stderr"
    runner = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # as in a container started without -i: stdin at EOF
        stdout=(tmp_path / "wapa-run.stdout").open("wb"),
        stderr=stderr_log.open("wb"),
    )
    try:
        health = healthcheck_command(image.final.last("HEALTHCHECK").args)
        last = ""
        deadline = time.monotonic() + START_TIMEOUT
        healthy = False
        while time.monotonic() < deadline and not healthy:
            assert runner.poll() is None, (
                f"{shlex.join(command)} exited with {runner.returncode}:\n"
                f"{stderr_log.read_text()[-3000:]}"
            )
            check = subprocess.run(
                health, env=env, cwd=cwd, capture_output=True, text=True, timeout=30
            )
            healthy, last = check.returncode == 0, check.stdout + check.stderr
            if not healthy:
                time.sleep(0.3)
        assert healthy, (
            f"HEALTHCHECK never passed; last answer: {last}\n" + (stderr_log.read_text()[-3000:])
        )
        assert env["WAPA_HTTP_HOST"] == "0.0.0.0"  # reached through loopback, as in the image
        runner.send_signal(signal.SIGTERM)
        try:
            status = runner.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"no exit within {STOP_TIMEOUT} s of SIGTERM:\n{stderr_log.read_text()[-3000:]}"
            ) from None
        assert status == 0, f"exit {status} after SIGTERM:\n{stderr_log.read_text()[-3000:]}"
    finally:
        _stop(runner)
        _stop(fake)
