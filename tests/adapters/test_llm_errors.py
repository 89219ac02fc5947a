"""Every Cloudflare error fixture (and the OpenAI-style shapes) maps to the right kind, retry
decision and message; codes may be missing, so the text and status must suffice."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wapa.adapters.llm import ERRORS, KINDS, ModelError, classify
from wapa.adapters.llm.errors import BadResponseError, ServerError, parse_retry_after

from tests.support.llm import fixture

# fixture, status, kind, retryable, code, words the message must contain
CASES = [
    ("run_auth_401.json", 401, "auth", False, 10000, ["CLOUDFLARE_API_TOKEN", "not retried"]),
    (
        "run_bad_header_400.json",
        400,
        "auth",
        False,
        6111,
        ["Authorization header", "CLOUDFLARE_API_TOKEN"],
    ),
    (
        "run_capacity_429.json",
        429,
        "capacity",
        True,
        3040,
        ["Capacity", "try again in a few minutes"],
    ),
    (
        "run_context_413.json",
        413,
        "context_too_long",
        False,
        5021,
        ["context window", "WAPA_MAX_CONTEXT"],
    ),
    ("run_daily_quota_429.json", 429, "daily_quota", False, 4006, ["00:00 UTC", "Workers Paid"]),
    (
        "run_internal_500.json",
        500,
        "server_error",
        True,
        3043,
        ["Internal server error", "try again"],
    ),
    ("run_no_model_400.json", 400, "no_model", False, 5007, ["No such model", "AI_MODEL_NAME"]),
    (
        "run_rate_limit_429.json",
        429,
        "rate_limited",
        True,
        3021,
        ["rate limiting", "wait a minute"],
    ),
]


@pytest.mark.parametrize(("name", "status", "kind", "retryable", "code", "words"), CASES)
def test_fixture_maps_to_kind(
    name: str, status: int, kind: str, retryable: bool, code: int, words: list[str]
) -> None:
    err = classify(status, fixture(name), provider="cloudflare", model="@cf/x")
    assert err.kind == kind
    assert err.retryable is retryable
    assert err.status == status
    assert err.code == code
    text = str(err)
    assert "\n" not in text
    assert f"code {code}" in text and kind in text
    for word in words:
        assert word in text


def _without_codes(body: Any) -> Any:
    body = copy.deepcopy(body)
    for err in body["errors"]:
        err.pop("code", None)
        for sub in err.get("error_chain", ()):
            sub.pop("code", None)
    return body


@pytest.mark.parametrize(("name", "status", "kind", "retryable", "code", "words"), CASES)
def test_kind_survives_missing_codes(
    name: str, status: int, kind: str, retryable: bool, code: int, words: list[str]
) -> None:
    err = classify(status, _without_codes(fixture(name)))
    assert (err.kind, err.retryable, err.code) == (kind, retryable, None)


@pytest.mark.parametrize(("name", "status", "kind", "retryable", "code", "words"), CASES)
def test_kind_from_text_alone_even_with_an_unhelpful_status(
    name: str, status: int, kind: str, retryable: bool, code: int, words: list[str]
) -> None:
    err = classify(400, _without_codes(fixture(name)))
    assert err.kind == kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "auth"),
        (403, "auth"),
        (404, "no_model"),
        (408, "timeout"),
        (413, "context_too_long"),
        (429, "rate_limited"),
        (500, "server_error"),
        (502, "server_error"),
        (503, "capacity"),
        (504, "timeout"),
        (400, "bad_request"),
        (422, "bad_request"),
    ],
)
def test_status_alone(status: int, kind: str) -> None:
    assert classify(status, None).kind == kind
    assert classify(status, "").kind == kind


def test_daily_quota_text_wins_over_429_rate_limit_status() -> None:
    body = {
        "success": False,
        "errors": [{"message": "you have used up your daily free allocation"}],
    }
    assert classify(429, body).kind == "daily_quota"
    assert classify(429, {"errors": [{"code": 3036, "message": "x"}]}).kind == "daily_quota"


def test_authentication_error_text_is_auth_whatever_the_status() -> None:
    assert classify(400, {"errors": [{"message": "Authentication error"}]}).kind == "auth"
    # a routing error (wrong account id or API base) is not a credentials problem
    assert (
        classify(403, {"errors": [{"code": 7003, "message": "Could not route to /x"}]}).kind
        == "bad_route"
    )


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided: sk-...",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            "auth",
        ),
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 4097 tokens.",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
            "context_too_long",
        ),
        (
            429,
            {
                "error": {
                    "message": "You exceeded your current quota",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            },
            "daily_quota",
        ),
        (
            429,
            {
                "error": {
                    "message": "Rate limit reached for requests",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            },
            "rate_limited",
        ),
        (
            404,
            {
                "error": {
                    "message": "The model `gpt-9` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
            "no_model",
        ),
        (404, {"error": 'model "llama9" not found, try pulling it first'}, "no_model"),  # Ollama
        (
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens",
                "type": "BadRequestError",
                "code": 400,
            },
            "context_too_long",
        ),  # vLLM
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size",
                    "type": "exceed_context_size_error",
                }
            },
            "context_too_long",
        ),  # llama.cpp
        (500, {"error": {"message": "boom", "type": "server_error"}}, "server_error"),
        (529, {"error": {"message": "Overloaded", "type": "overloaded_error"}}, "capacity"),
        (
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "server_error",
        ),
        (200, "not json at all", "bad_response"),
    ],
)
def test_other_shapes(status: int, body: Any, kind: str) -> None:
    assert classify(status, body, provider="openai").kind == kind


def test_html_is_reduced_to_its_title() -> None:
    err = classify(502, "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000)
    assert "502 Bad Gateway" in str(err) and len(str(err)) < 400


def test_openai_auth_advice_names_the_openai_variables() -> None:
    err = classify(
        401, {"error": {"message": "bad key", "code": "invalid_api_key"}}, provider="openai"
    )
    assert "OPENAI_API_KEY" in str(err) and "CLOUDFLARE" not in str(err)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    err = classify(429, fixture("run_rate_limit_429.json"), retry_after="12")
    assert err.retry_after == 12.0


def test_taxonomy_is_complete_and_consistent() -> None:
    expected = {
        "auth",
        "bad_request",
        "no_model",
        "model_access",
        "account_blocked",
        "bad_route",
        "context_too_long",
        "rate_limited",
        "capacity",
        "daily_quota",
        "budget",
        "server_error",
        "bad_response",
        "timeout",
        "unreachable",
    }
    assert set(KINDS) == expected
    retryable = {k for k, cls in ERRORS.items() if cls.retryable}
    assert retryable == {
        "rate_limited",
        "capacity",
        "server_error",
        "bad_response",
        "timeout",
        "unreachable",
    }
    for kind, cls in ERRORS.items():
        err = cls("detail", status=500, code=1, provider="cloudflare", model="m")
        assert isinstance(err, ModelError) and err.kind == kind
        assert "\n" not in str(err) and err.hint in str(err) or kind == "auth"
    assert issubclass(BadResponseError, ServerError)


def test_errors_pickle_and_keep_their_fields() -> None:
    err = classify(
        429, fixture("run_capacity_429.json"), provider="cloudflare", model="m", retry_after="3"
    )
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.kind, again.code, again.status, again.retry_after, str(again)) == (
        type(err),
        err.kind,
        err.code,
        err.status,
        err.retry_after,
        str(err),
    )


def test_long_details_are_cut() -> None:
    err = classify(500, {"errors": [{"code": 3043, "message": "x" * 10_000}]})
    assert len(err.detail) <= 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "errors",
                    "error",
                    "code",
                    "message",
                    "type",
                    "object",
                    "error_chain",
                    "success",
                    "result",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(status=st.integers(0, 999), body=json_values | st.binary(max_size=60))
def test_classify_never_raises(status: int, body: object) -> None:
    err = classify(status, body, retry_after="x")
    assert isinstance(err, ModelError) and err.kind in KINDS and "\n" not in str(err)
