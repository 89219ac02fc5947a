"""Unknown variable names are reported with the closest known name, never silently ignored:
`wapa config --check` and `wapa doctor` fail, `wapa run` warns once per name and starts, and a
`--config` file with an unknown key is refused (the file is wapa's alone). The model's
variables are part of the table: near misses of their names are reported too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from wapa.cli import main as wapa
from wapa.commands.doctor import FAIL, diagnose, report
from wapa.config import ConfigError, closest_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("WAPA_", "CLOUDFLARE_", "AI_", "OPENAI_")


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("WAPA_COOLDOWNN", "WAPA_COOLDOWN"),
        ("WAPA_RESPONSE_DELAI", "WAPA_RESPONSE_DELAY"),
        ("wapa_db_key", "WAPA_DB_KEY"),
        ("WAPA_DBKEY", "WAPA_DB_KEY"),
        ("WAPA_QUIET_HOUR", "WAPA_QUIET_HOURS"),
        ("WAPA_ZZZZ", ""),  # sharing the prefix does not make a name close
    ],
)
def test_closest_name(name: str, closest: str) -> None:
    assert closest_name(name) == closest


def test_unknown_wapa_environment_variables_are_reported() -> None:
    env = {
        "WAPA_COOLDOWNN": "2h",
        "WAPA_ZZZZ": "1",
        "WAPA_COOLDOWN": "1h",  # known
        "RESPONSE_DELAY_MS": "1000",  # known (the original assistant's name)
        "PATH": "/usr/bin",  # not wapa's
        "CLOUDFLARE_API_TOKEN": "t",  # known, read by the model adapter
        "AI_SOMETHING_ELSE": "x",  # only WAPA_ names are wapa's alone
    }
    s = load_settings(env)
    assert [u.name for u in s.unknown] == ["WAPA_COOLDOWNN", "WAPA_ZZZZ"]
    assert str(s.unknown[0]) == (
        "WAPA_COOLDOWNN: unknown variable, ignored; did you mean WAPA_COOLDOWN?"
    )
    assert "wapa config --markdown" in str(s.unknown[1])
    assert s.policy.cooldown == 3600.0  # the misspelt one changed nothing
    assert load_settings({"WAPA_COOLDOWN": "1h", "HOME": "/root"}).unknown == ()


def test_an_unknown_config_file_key_is_refused_in_the_style_it_was_written(
    tmp_path: Path,
) -> None:
    f = tmp_path / "wapa.yaml"
    f.write_text("cooldwon: 2h\nresponse_delay: 30s\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(f))
    assert str(info.value) == (f"cooldwon (in {f}): unknown variable; did you mean cooldown?")
    f.write_text("WAPA_COOLDWON: 2h\nzzzz: 1\nrespons_delay: 3s\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(f))
    message = str(info.value)
    assert message.startswith(
        f"WAPA_COOLDWON (in {f}): unknown variable; did you mean WAPA_COOLDOWN?"
    )
    assert "Also unknown: zzzz, respons_delay (did you mean response_delay?)." in message
    assert "\n" not in message


def test_config_check_fails_naming_the_unknown_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAPA_COOLDOWNN", "2h")
    assert wapa(["config", "--check"]) == 2
    captured = capsys.readouterr()
    assert "configuration ok" not in captured.out
    assert "wapa config: WAPA_COOLDOWNN: unknown variable" in captured.err
    assert "did you mean WAPA_COOLDOWN?" in captured.err
    monkeypatch.delenv("WAPA_COOLDOWNN")
    for name in [n for n in os.environ if n.upper().startswith(PREFIXES)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "t")
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef")
    assert wapa(["config", "--check"]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_config_check_reads_the_model_and_store_settings_as_run_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every problem `wapa run` would stop on (or warn about) before starting, one line each."""
    for name in [n for n in os.environ if n.upper().startswith(PREFIXES)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "t")  # but no account id
    monkeypatch.setenv("AI_MAX_TOKEN", "100")  # a typo of AI_MAX_TOKENS
    assert wapa(["config", "--check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        "wapa config: CLOUDFLARE_ACCOUNT_ID: not set (CLOUDFLARE_API_TOKEN is)"
    )
    assert err[1:] == [
        "wapa config: AI_MAX_TOKEN: unknown variable, ignored; did you mean AI_MAX_TOKENS?"
    ]
    monkeypatch.setenv("AI_TIMEOUT", "forever")  # a wrong value stops at once, as in `run`
    assert wapa(["config", "--check"]) == 2
    assert capsys.readouterr().err.startswith("wapa config: AI_TIMEOUT: expected a duration")


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("AI_MAX_TOKEN", "AI_MAX_TOKENS"),
        ("AI_TEMPERAUTRE", "AI_TEMPERATURE"),
        ("CLOUDFLARE_ACOUNT_ID", "CLOUDFLARE_ACCOUNT_ID"),
        ("OPENAI_BASEURL", "OPENAI_BASE_URL"),
        ("AI_MODEL", "AI_MODEL_NAME"),  # cut short at an underscore
        ("ai_model_name", "AI_MODEL_NAME"),  # the environment is case-sensitive
        ("WAPA_AI_MODEL_NAME", "AI_MODEL_NAME"),
        # other tools' names with the same prefixes are left alone
        ("CLOUDFLARE_ZONE_ID", None),
        ("CLOUDFLARE_API_KEY", None),
        ("CLOUDFLARE_DNS_API_TOKEN", None),
        ("CLOUDFLARE_EMAIL", None),
        ("OPENAI_ORG_ID", None),
        ("OPENAI_API_BASE", None),
        ("AI_SOMETHING_ELSE", None),
        ("CF_API_TOKEN", None),
    ],
)
def test_the_model_variables_are_known_to_the_unknown_name_check(
    name: str, meant: str | None
) -> None:
    unknown = load_settings({name: "x"}).unknown
    if meant is None:
        assert unknown == ()
    else:
        assert [(u.name, u.suggestion) for u in unknown] == [(name, meant)]
    assert load_settings({v: "x" for v in ("AI_MODEL_NAME", "OPENAI_MODEL")}).unknown == ()


async def test_doctor_fails_naming_the_unknown_variable(tmp_path: Path) -> None:
    env = {"WAPA_DB": str(tmp_path / "w.db"), "WAPA_HTTP_PORT": "0", "WAPA_COOLDOWNN": "2h"}
    checks = await diagnose(env, transport="console", skip_model=True)
    bad = [c for c in checks if c.status == FAIL]
    assert len(bad) == 1 and bad[0].what == "config"
    assert bad[0].detail.startswith("WAPA_COOLDOWNN: unknown variable")
    assert bad[0].fix == "rename it to WAPA_COOLDOWN, or remove it"
    out = StringIO()
    assert report(checks, out) == 1
    assert "FAIL  config: WAPA_COOLDOWNN" in out.getvalue()
    del env["WAPA_COOLDOWNN"]
    checks = await diagnose(env, transport="console", skip_model=True)
    assert not [c for c in checks if c.status == FAIL]


async def test_doctor_fails_on_an_unknown_config_file_key(tmp_path: Path) -> None:
    f = tmp_path / "wapa.yaml"
    f.write_text("cooldwon: 2h\n")
    env = {"WAPA_DB": str(tmp_path / "w.db"), "WAPA_HTTP_PORT": "0"}
    [check] = await diagnose(env, str(f), transport="console", skip_model=True)
    assert check.status == FAIL and check.detail.startswith("cooldwon (in ")
    assert check.fix.startswith("rename or remove the key")


def _run_console(
    env_extra: dict[str, str], tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)}
    env.update(
        {
            "WAPA_DB": str(tmp_path / "w.db"),
            "WAPA_HTTP_PORT": "0",
            "CLOUDFLARE_API_TOKEN": "fake-token",
            "CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
            "CLOUDFLARE_API_BASE": "http://127.0.0.1:9/client/v4",  # never called: no messages
            **env_extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "wapa", "run", "--transport", "console", "--exit-on-eof", *args],
        input="",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_run_warns_once_per_unknown_variable_and_starts(tmp_path: Path) -> None:
    secret = "hunter2-do-not-log"
    result = _run_console({"WAPA_COOLDOWNN": "2h", "WAPA_DBKEY": secret}, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    warned = [x for x in lines if x["event"] == "config_unknown_variable"]
    assert [(x["level"], x["variable"], x["did_you_mean"]) for x in warned] == [
        ("warning", "WAPA_COOLDOWNN", "WAPA_COOLDOWN"),
        ("warning", "WAPA_DBKEY", "WAPA_DB_KEY"),
    ]
    assert any(x["event"] == "started" for x in lines)
    assert secret not in result.stderr + result.stdout  # a value is never logged


def test_run_refuses_an_unknown_config_file_key(tmp_path: Path) -> None:
    f = tmp_path / "wapa.yaml"
    f.write_text("cooldwon: 2h\n")
    result = _run_console({}, tmp_path, "--config", str(f))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"wapa run: cooldwon (in {f}): unknown variable; did you mean cooldown?"
    )
