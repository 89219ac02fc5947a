"""`wapa simulate` loads only what a scenario uses (issue 18: start-up was mostly imports).

A scenario that commits to memory needs no HTTP client, no SQLite store stack, no HTTP server
and no XML; these come back easily through one module-level import, so a fresh interpreter
runs the suite's memory scenarios and says which of them it loaded. The lazy package names
(`wapa.adapters.llm`, `wapa.adapters.store`) are checked against their modules."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Not needed by a scenario that commits to memory (each with what loads it where it is used).
NOT_NEEDED = (
    "httpx",  # adapters.llm.base: only a real provider's request
    "prometheus_client",  # adapters.llm.service, adapters.metrics: the runner
    "aiosqlite",  # adapters.store.store: restart_from: store
    "cryptography",  # adapters.store.crypto: a store with a key
    "asyncio",  # sim.durable.DurableState, adapters.llm.base's requests
    "http.server",  # sim.cloudflare_http: `wapa fake-cloudflare`
    "xml.etree.ElementTree",  # sim.junit: --junit
    "wapa.config",  # sim.scenario.did_you_mean: a wrong name
    "wapa.adapters.store.store",
    "tenacity",  # nowhere: adapters.llm.policy computes its backoff curve (a test dependency)
)

_PROBE = """
import json, sys
from pathlib import Path
from wapa.sim.suite import run_paths, to_json
files = [Path(p) for p in sys.argv[1:]]
outcomes = run_paths(files)
to_json(outcomes)
print(json.dumps({"passed": all(o.passed for o in outcomes), "n": len(outcomes),
                  "loaded": [m for m in json.loads(sys.stdin.read()) if m in sys.modules]}))
"""


def _scenarios(*, store: bool) -> list[str]:
    """The suite's scenario files that restart from the SQLite store (or those that do not)."""
    return [
        str(p)
        for p in sorted((ROOT / "scenarios").glob("*.yaml"))
        if ("restart_from: store" in p.read_text(encoding="utf-8")) == store
    ]


def _probe(
    script: str, files: list[str], modules: list[str], env: dict[str, str] | None = None
) -> dict[str, object]:
    """Run `script` on `files` in a fresh interpreter; it is given `modules` on stdin and
    prints, as its last line, a JSON object saying (among what it ran) which of them loaded."""
    done = subprocess.run(
        [sys.executable, "-c", script, *files],
        input=json.dumps(modules),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_memory_scenarios_load_no_store_http_or_xml() -> None:
    files = _scenarios(store=False)
    assert len(files) > 50  # the suite, less its few store scenarios
    result = _probe(_PROBE, files, list(NOT_NEEDED))
    assert result["n"] == len(files) and result["passed"]
    assert result["loaded"] == []


def test_a_store_scenario_still_loads_the_store() -> None:
    """The other side: the modules above are deferred, not gone (but a store without a key
    needs no cryptography)."""
    store = _scenarios(store=True)[:1]
    assert store
    result = _probe(
        _PROBE, store, ["aiosqlite", "asyncio", "wapa.adapters.store.store", "cryptography"]
    )
    assert result["passed"]
    assert result["loaded"] == ["aiosqlite", "asyncio", "wapa.adapters.store.store"]


@pytest.mark.parametrize("package", ["wapa.adapters.llm", "wapa.adapters.store"])
def test_lazy_package_names_are_their_modules_objects(package: str) -> None:
    module = importlib.import_module(package)
    where: dict[str, str] = module._WHERE
    assert sorted(where) == sorted(module.__all__)
    for name, sub in where.items():
        assert getattr(module, name) is getattr(importlib.import_module(f"{package}.{sub}"), name)
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nothing_of_that_name'"):
        module.nothing_of_that_name  # noqa: B018


_CLI_PROBE = """
import json, sys
from wapa.cli import main
code = main(["simulate", *sys.argv[1:]])
print(json.dumps({"code": code, "loaded": [m for m in json.loads(sys.stdin.read()) if m in sys.modules]}))
"""


def test_the_cli_loads_no_report_writers_it_was_not_asked_for() -> None:
    """`wapa simulate` itself: without --junit, --github (or GitHub Actions) and --report, the
    JUnit and HTML writers stay unloaded, as do the modules above."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAPA_"))}
    modules = ["wapa.sim.junit", "wapa.sim.report_html", *NOT_NEEDED]
    result = _probe(_CLI_PROBE, _scenarios(store=False)[:5], modules, env)
    assert result == {"code": 0, "loaded": []}
