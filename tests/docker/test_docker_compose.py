"""docker-compose.yml against the Compose specification's JSON schema, plus the settings the
deployment relies on (localhost-only port, grace period, read-only root, volumes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from wapa.config import BY_NAME
from wapa.core import parse_duration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} missing: install the dev extra"
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _service() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text())
    return compose["services"]["wapa"]


def _seconds(duration: str) -> float:
    """A Compose duration such as 30s, 1m30s or 1m."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_file_matches_the_compose_specification() -> None:
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  wapa:\n    image: wapa\n    restart_policy: always\n")
    result = _validate(broken)
    assert result.returncode == 1
    assert "restart_policy" in result.stdout


def test_service_reads_env_file_and_restarts() -> None:
    service = _service()
    assert service["env_file"] == ".env"
    assert service["restart"] == "unless-stopped"
    assert service["build"]["context"] == "."


def test_http_listens_inside_and_is_published_on_localhost_only() -> None:
    service = _service()
    assert service["environment"]["WAPA_HTTP_HOST"] == "0.0.0.0"
    port = service["environment"]["WAPA_HTTP_PORT"]
    assert service["ports"] == [f"127.0.0.1:8080:{port}"]


def test_stop_grace_period_outlasts_the_runner_shutdown_bound() -> None:
    variable = BY_NAME["WAPA_SHUTDOWN_TIMEOUT"]
    bound = parse_duration(variable.default, variable.name)
    # The bound covers sends under way; committing and disconnecting come after it.
    assert _seconds(_service()["stop_grace_period"]) >= bound + 10


def test_hardening() -> None:
    service = _service()
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["cap_drop"] == ["ALL"]
    assert "init" not in service, "tini is the image's ENTRYPOINT; init: true would add a second"


def test_named_volumes_hold_data_and_logs() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    mounts = dict(v.split(":", 1)[::-1] for v in compose["services"]["wapa"]["volumes"])
    assert mounts == {"/app/data": "data", "/app/logs": "logs"}
    assert set(compose["volumes"]) == {"data", "logs"}


def test_healthcheck_timing() -> None:
    check = _service()["healthcheck"]
    assert _seconds(check["timeout"]) < _seconds(check["interval"])
    assert _seconds(check["start_period"]) >= 30
    assert check["retries"] >= 2
