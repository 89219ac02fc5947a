"""`wapa config --check`: the exit status agrees with the words (0 and "configuration ok";
2 and "configuration not ok" with each problem on stderr), as a subprocess sees it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.console_process import ROOT, clean_env

GOOD = {
    "CLOUDFLARE_API_TOKEN": "t",
    "CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
}


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wapa", "config", "--check"],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_good_configuration_exits_0() -> None:
    result = _check(**GOOD)
    assert (result.returncode, result.stdout, result.stderr) == (0, "configuration ok\n", "")


@pytest.mark.parametrize(
    ("env", "problems", "said"),
    [
        ({"WAPA_COOLDOWN": "soon"}, 1, "WAPA_COOLDOWN: expected a duration"),
        ({"WAPA_COOLDOWNN": "2h"}, 1, "WAPA_COOLDOWNN: unknown variable"),
        ({"CLOUDFLARE_ACCOUNT_ID": ""}, 1, "CLOUDFLARE_ACCOUNT_ID"),
    ],
)
def test_a_bad_configuration_exits_2_and_says_not_ok(
    env: dict[str, str], problems: int, said: str
) -> None:
    result = _check(**{**GOOD, **env})
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
    plural = "problem" if problems == 1 else "problems"
    assert result.stdout == (
        f"configuration not ok: {problems} {plural} (listed on stderr); exit status 2\n"
    )
