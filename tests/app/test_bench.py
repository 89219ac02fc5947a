"""`wapa bench`: every section runs (at tiny sizes) and reports every key as a number.

Speed is never asserted: these run on shared CI machines. What is checked is that each
figure is measured (present, numeric, finite, positive where it is a rate), that baselines
come with it, and that the CLI prints the JSON object and the Markdown table with every key."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout
from typing import Any

import pytest
from wapa.bench import cli, core_bench
from wapa.bench.fuzz_bench import fuzz_figures
from wapa.bench.runner_bench import MODEL_LATENCY, _percentile, rss_mb, runner_figures, soak
from wapa.bench.sim_bench import sim_speedup
from wapa.bench.startup_bench import startup_figures
from wapa.bench.store_bench import store_msgs_per_s
from wapa.core import sends


def _numeric(result: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert key in result, f"{key} missing from {sorted(result)}"
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value), (key, value)


def test_simulation_speed_with_its_baseline() -> None:
    r = sim_speedup(quick=True, chats=20, days=0.5)
    _numeric(r, "sim_speedup", "sim_speedup_with_faults", "baseline_sim_speedup", "sim_messages")
    assert r["sim_speedup"] > 0 and r["baseline_sim_speedup"] > 0
    assert r["sim_messages"] > 0  # the traffic was not empty: the figure measured something


def test_store_throughput_with_raw_sqlite_baselines() -> None:
    r = store_msgs_per_s(quick=True, n=40)
    keys = (
        "store_msgs_per_s",
        "store_ratio",
        "baseline_sqlite_rows_per_s",
        "baseline_sqlite_msgs_per_s",
        "store_msgs_per_s_encrypted",
        "store_msgs_per_s_sync_normal",
        "baseline_sqlite_batch_rows_per_s",
        "store_cpu_us_per_msg",
        "baseline_sqlite_cpu_us_per_msg",
        "store_cpu_ratio",
    )
    _numeric(r, *keys)
    assert all(r[k] > 0 for k in keys)
    # the rounds alternate store and baseline; each round is kept, the figure is their median
    assert len(r["_samples"]["store_ratio"]) == r["store_rounds"] == 3
    # exporting the changed chats is part of the store's time, never more than all of it
    assert 0 <= r["store_export_cpu_us_per_msg"] <= r["store_cpu_us_per_msg"]
    # so is aiosqlite's thread (SQLite's own work), which does some work at every commit
    assert 0 < r["store_thread_cpu_us_per_msg"] <= r["store_cpu_us_per_msg"]
    # the raw baseline writes at least one chat row and the global row per message
    assert r["baseline_sqlite_rows_per_s"] >= 2 * r["baseline_sqlite_msgs_per_s"] * 0.99


@pytest.fixture(scope="module")
def runner_result() -> dict[str, Any]:
    """One tiny runner measurement (it takes seconds: subprocesses, real time), shared."""
    if rss_mb(1) is None:
        pytest.skip("needs /proc")
    return runner_figures(quick=True, chats=8)


def test_runner_figures_and_idle_memory(runner_result: dict[str, Any]) -> None:
    r = runner_result
    _numeric(
        r,
        "runner_overhead_p50_ms",
        "runner_overhead_p99_ms",
        "loop_lag_p99_ms",
        "idle_rss_mb",
        "baseline_rss_python_mb",
        "baseline_rss_python_neonize_mb",
    )
    assert r["runner_chats"] == 8
    assert r["runner_overhead_p50_ms"] <= r["runner_overhead_p99_ms"]
    assert r["runner_end_to_end_p99_ms"] >= r["runner_model_latency_p50_ms"] > 0
    assert r["runner_model_latency_p50_ms_at_500"] >= MODEL_LATENCY * 1000  # the server's own
    for rate in ("", "_at_500"):  # the event loop's thread is part of the process
        loop, process = r[f"runner_loop_cpu_ms_per_msg{rate}"], r[f"runner_cpu_ms_per_msg{rate}"]
        assert 0 < loop <= process + 0.01
    # the idle runner holds at least a bare interpreter; neonize adds to a bare interpreter
    assert r["idle_rss_mb"] > r["baseline_rss_python_mb"] > 0
    assert r["baseline_rss_python_neonize_mb"] > r["baseline_rss_python_mb"]


@pytest.mark.skipif(rss_mb(1) is None, reason="needs /proc")
def test_soak_reports_memory_at_start_and_end() -> None:
    lines: list[str] = []
    r = soak(2.5, lines.append, rate=20.0, chats=10)
    _numeric(
        r,
        "soak_rss_launch_mb",
        "soak_rss_start_mb",
        "soak_rss_end_mb",
        "soak_rss_growth_pct",
        "soak_messages",
        "soak_replies",
    )
    assert r["soak_messages"] >= 40  # 20 per second for 2.5 s, give or take the pacing
    assert r["soak_rss_end_mb"] > 0


def test_soak_refuses_a_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--soak", "-3"]) == 1
    assert "seconds > 0" in capsys.readouterr().err


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 50) == 50.0
    assert _percentile(values, 99) == 99.0
    assert _percentile([3.0], 99) == 3.0
    assert _percentile([], 99) == 0.0


def _tiny_sections(runner: dict[str, Any]) -> Any:
    """The real sections at sizes a test can afford (the runner's, measured once above)."""
    return lambda quick: [
        ("core messages", lambda: core_bench.core_msgs_per_s(500, chats=50, repeats=2)),
        ("core timers", lambda: core_bench.core_timer_fires_per_s(300)),
        ("memory per chat", lambda: core_bench.bytes_per_chat(100, steady_chats=5)),
        ("prompt size", core_bench.prompt_tokens_full_context),
        ("start-up", lambda: startup_figures(quick, runs=1)),
        ("simulation speed", lambda: sim_speedup(quick, chats=10, days=0.25)),
        ("fuzz scaling", lambda: fuzz_figures(quick, chats=5)),
        ("store", lambda: store_msgs_per_s(quick, n=20)),
        ("runner", lambda: runner),
    ]


def test_cli_json_and_markdown_carry_every_key(
    monkeypatch: pytest.MonkeyPatch, runner_result: dict[str, Any]
) -> None:
    monkeypatch.setattr(cli, "_sections", _tiny_sections(runner_result))
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["--quick", "--json"]) == 0
    result = json.loads(out.getvalue())
    assert result["errors"] == {}
    _numeric(
        result,
        *cli.GOALS,
        "store_msgs_per_s_encrypted",
        "baseline_msgs_per_s",
        "baseline_sim_speedup",
        "baseline_sqlite_rows_per_s",
        "cores",
    )
    for key in ("python", "arch", "cpu_model"):
        assert isinstance(result[key], str) and result[key]
    table = cli.markdown(result)
    for key in cli.GOALS:
        assert f"| {key} |" in table
    assert "n/a" not in table
    # a goal that is only reported shows no "met"
    assert "| prompt_tokens_full_context |" in table
    row = next(x for x in table.splitlines() if x.startswith("| prompt_tokens_full_context |"))
    assert row.endswith("|  |") and "yes" not in row
    # the core section took several rounds: its figures carry their spread
    assert result["spread"]["core_us_per_msg"]["n"] == 2
    assert "load_average" in result and isinstance(result["noisy"], bool)


def test_memory_per_chat_counts_the_texts_the_core_keeps() -> None:
    """The texts are made while tracing: the core's figure holds at least the baseline's
    (the same texts in deques), and 10 texts of 80 characters are more than 800 bytes."""
    r = core_bench.bytes_per_chat(200, steady_chats=20)
    assert r["baseline_bytes_per_chat"] > 10 * 80
    assert r["bytes_per_chat"] > r["baseline_bytes_per_chat"]
    assert r["bytes_per_chat_steady"] > r["bytes_per_chat"] * 0.5


def test_steady_state_fills_every_bounded_structure() -> None:
    a = core_bench.steady_state(3)
    chat = a.chats["c1"]
    assert len(chat.context) == a.policy.max_context
    assert len(chat.seen) == 8 * a.policy.remembered_ids  # 8-byte hashes
    assert len(chat.sends) == 8 * sends.SIZE  # packed records


def test_a_busy_machine_is_flagged() -> None:
    assert cli.noisy([0.2, 3.5], cores=2)
    assert not cli.noisy([0.2, 1.1], cores=2)
    text = cli.noisy_warning({"load_average": {"min": 2.0, "max": 3.5}, "cores": 2})
    assert "2.00-3.50" in text and "ratios" in text


def test_start_up_and_fuzz_scaling_measure_fresh_processes() -> None:
    r = startup_figures(quick=True, runs=1)
    _numeric(r, "help_s", "help_cpu_s", "baseline_python_s", "simulate_scenarios_s")
    assert r["help_s"] > 0 and r["simulate_scenarios_s"] > r["baseline_python_s"] * 0.5
    f = fuzz_figures(quick=True, chats=5)
    _numeric(f, "fuzz_us_per_msg_ratio", "fuzz_rss_ratio", "fuzz_rss_mb_long")
    assert f["fuzz_messages_long"] > 0 and f["fuzz_violations"] == 0
