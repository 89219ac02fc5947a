"""The model's state as its results report it: `status` names the budget left or a rejection
of the credentials, the core remembers both across a restart, and old states still load."""

from __future__ import annotations

import json

from wapa.core import Assistant, Generate, Generated, GenerationFailed, Notice

from tests.support.core_run import OWNER, Run

BASE = {
    0: "wapa is active: 0 replies pending, 0 chats cooling down, 0 replies today (UTC), "
    "1 chat known.",
    1: "wapa is active: 0 replies pending, 1 chat cooling down, 1 reply today (UTC), 1 chat known.",
}


def _status(run: Run) -> str:
    effects = run.owner("status", chat=OWNER, dt=1)
    return next(e.text for e in effects if isinstance(e, Notice))


def test_status_says_nothing_about_the_model_before_any_result(run: Run) -> None:
    assert "budget" not in run.a.status(run.t)
    assert "credentials" not in run.a.status(run.t)


def test_status_ends_with_the_latest_budget_a_result_reported(run: Run) -> None:
    run.msg("hello")
    run.advance_until(Generate)
    gen = run.pending()[0]
    run.feed(Generated(gen.request_id, "Hi! Gilad is away.", budget_left=9876.4))
    run.advance(60)
    assert _status(run) == BASE[1] + (" Model budget left today: 9876 neurons.")
    # a result without a figure keeps the last known one; a failure with one updates it
    run.msg("more", dt=6 * 3600)
    run.advance_until(Generate)
    gen = run.pending()[0]
    run.feed(GenerationFailed(gen.request_id, "capacity", budget_left=120.0))
    assert _status(run).endswith(" Model budget left today: 120 neurons.")
    run.msg("again", dt=60)
    run.advance_until(Generate)
    gen = run.pending()[0]
    run.feed(Generated(gen.request_id, "Noted, I will tell him."))
    assert _status(run).endswith(" Model budget left today: 120 neurons.")


def test_an_auth_failure_is_named_until_a_later_answer(run: Run) -> None:
    run.msg("hello")
    run.advance_until(Generate)
    run.fail("auth")
    assert _status(run) == BASE[0] + (
        " The model's credentials were rejected: fix them and restart."
    )
    run.msg("hello?", dt=60)
    run.advance_until(Generate)
    run.answer()
    assert _status(run).endswith("1 chat known.")  # one reply pending, nothing on the model


def test_an_auth_failure_is_named_before_a_known_budget(run: Run) -> None:
    """The model service always knows a budget (the free daily allocation at least): the
    rejected credentials, which the owner must fix, are what status names then."""
    run.msg("hello")
    run.advance_until(Generate)
    run.fail("rate_limited")
    run.feed(GenerationFailed("r99", "auth", budget_left=50))  # late, still about the model
    assert _status(run).endswith(" The model's credentials were rejected: fix them and restart.")
    run.feed(Generated("r98", "late", budget_left=40))  # the model answers again
    assert _status(run).endswith(" Model budget left today: 40 neurons.")


def test_the_last_failure_decides_whether_credentials_are_named(run: Run) -> None:
    run.feed(GenerationFailed("r1", "auth"))
    assert "credentials were rejected" in run.a.status(run.t)
    run.feed(GenerationFailed("r2", "timeout"))
    assert "credentials" not in run.a.status(run.t)


def test_bad_budget_figures_are_ignored(run: Run) -> None:
    for bad in (float("nan"), float("inf"), True, "9000"):
        run.feed(Generated("r1", "x", budget_left=bad))  # type: ignore[arg-type]
    assert "budget" not in run.a.status(run.t)
    run.feed(Generated("r1", "x", budget_left=7))
    assert run.a.status(run.t).endswith(" Model budget left today: 7 neurons.")


def test_the_model_state_survives_export_and_restore(run: Run) -> None:
    run.feed(GenerationFailed("r1", "auth"))
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    assert "credentials were rejected" in Assistant.restore(state).status(run.t)
    run.feed(Generated("r2", "x", budget_left=4321.0))
    state = json.loads(json.dumps(run.a.export(), allow_nan=False))
    assert state["budget_left"] == 4321.0
    assert Assistant.restore(state).status(run.t).endswith(" 4321 neurons.")


def test_a_state_saved_before_the_model_fields_still_restores(run: Run) -> None:
    run.msg("hello")
    state = run.a.export()
    del state["budget_left"], state["model_auth_failed"]
    restored = Assistant.restore(json.loads(json.dumps(state)), run.policy, run.persona)
    assert restored.status(run.t).endswith("1 chat known.")


def test_the_echo_of_a_status_notice_with_the_budget_is_ours(run: Run) -> None:
    run.feed(Generated("r1", "x", budget_left=100.0))
    text = _status(run)
    run.owner(text, chat=OWNER, dt=1)
    assert run.codes(OWNER)[-1] == "echo"
