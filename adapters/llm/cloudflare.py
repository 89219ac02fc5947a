"""Cloudflare Workers AI: `POST {base}/accounts/{account_id}/ai/run/{model}` with a Bearer token,
or `POST {gateway}/{model}` through an AI Gateway. One client per model; the fallback chain
orders them. Health is a token verification (`GET /user/tokens/verify`, then the account-token
variant `GET /accounts/{id}/tokens/verify`), which costs no neurons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wapa.adapters.llm.base import (
    Provider,
    Reply,
    bad_response,
    billed_text,
    http_error,
    usage_tokens,
)
from wapa.adapters.llm.config import CloudflareSettings
from wapa.adapters.llm.errors import ModelError
from wapa.core.events import ChatMessage

NAME = "cloudflare"


def run_result(
    status: int, body: Any, headers: Mapping[str, str], *, model: str, provider: str = NAME
) -> dict[str, Any]:
    """The `result` object of a successful `/ai/run/{model}` envelope, or the ModelError the
    answer means (an error envelope, a non-JSON success, a success without a result). Every
    Workers AI task (text, speech, images) shares this envelope."""
    if not 200 <= status < 300 or not isinstance(body, dict) or body.get("success") is False:
        if 200 <= status < 300 and not isinstance(body, dict):
            raise bad_response(
                "the answer is not a JSON object", status, provider=provider, model=model
            )
        raise http_error(status, body, headers, provider=provider, model=model)
    result = body.get("result")
    if not isinstance(result, dict):
        raise bad_response(
            "the answer has no result object", status, provider=provider, model=model
        )
    return result


def parse_run(
    status: int, body: Any, headers: Mapping[str, str], *, model: str, provider: str = NAME
) -> Reply:
    """An `/ai/run/{model}` answer (decoded JSON, or the text when it was not JSON) as a
    Reply, or the ModelError it means. Pure: the simulator parses its fake answers with it."""
    result = run_result(status, body, headers, model=model, provider=provider)
    text: Any = result.get("response")
    if text is None:  # newer models answer in the chat-completions shape
        choices = result.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            text = (choices[0].get("message") or {}).get("content")
    tokens_in, tokens_out = usage_tokens(result.get("usage"))
    return Reply(
        text=billed_text(text, status, (tokens_in, tokens_out), provider=provider, model=model),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
    )


class CloudflareClient(Provider):
    name = NAME

    def __init__(self, *, cloudflare: CloudflareSettings, **kwargs: Any) -> None:
        kwargs.setdefault("group", f"cloudflare:{cloudflare.account_id}")
        kwargs.setdefault("metered", True)
        super().__init__(**kwargs)
        self.cf = cloudflare

    @property
    def run_url(self) -> str:
        if self.cf.gateway_url:
            return f"{self.cf.gateway_url}/{self.model}"
        return f"{self.cf.api_base}/accounts/{self.cf.account_id}/ai/run/{self.model}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.cf.api_token}", "Accept": "application/json"}

    async def send(
        self, messages: tuple[ChatMessage, ...], timeout: float, max_tokens: int | None = None
    ) -> Reply:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens or self.settings.max_tokens,
            "temperature": self.settings.temperature,
        }
        if self.settings.reject_if_busy:  # a busy model answers 429/3040 at once (capacity)
            body["options"] = {"rejectIfBusy": True}
        status, data, headers = await self._request(
            "POST", self.run_url, headers=self._headers(), timeout=timeout, body=body
        )
        return self.parse(status, data, headers)

    def parse(self, status: int, body: Any, headers: Mapping[str, str]) -> Reply:
        return parse_run(status, body, headers, model=self.model, provider=self.name)

    async def health(self) -> dict[str, Any]:
        """Verify the token: user tokens at /user/tokens/verify, account-owned tokens at
        /accounts/{id}/tokens/verify. No generation, no neurons."""
        self.stats.health_checks += 1
        urls = (
            f"{self.cf.api_base}/user/tokens/verify",
            f"{self.cf.api_base}/accounts/{self.cf.account_id}/tokens/verify",
        )
        error: ModelError | None = None
        for url in urls:
            try:
                status, data, headers = await self._request(
                    "GET", url, headers=self._headers(), timeout=min(10.0, self.settings.timeout)
                )
            except ModelError as exc:
                return {"ok": False, "kind": exc.kind, "detail": str(exc)}
            result = data.get("result") if isinstance(data, dict) else None
            if 200 <= status < 300 and isinstance(result, dict):
                token_status = result.get("status")
                ok = token_status == "active"
                return {
                    "ok": ok,
                    "kind": "" if ok else "auth",
                    "detail": f"token {token_status}",
                    "expires_on": result.get("expires_on"),
                }
            error = self._error(status, data, headers)
            if error.kind != "auth":
                break
        assert error is not None
        return {"ok": False, "kind": error.kind, "detail": str(error)}
