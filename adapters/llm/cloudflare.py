"""Cloudflare Workers AI: `POST {base}/accounts/{account_id}/ai/run/{model}` with a Bearer token,
or `POST {gateway}/{model}` through an AI Gateway. One client per model; the fallback chain
orders them. Health is a token verification (`GET /user/tokens/verify`, then the account-token
variant `GET /accounts/{id}/tokens/verify`), which costs no neurons.
"""

from __future__ import annotations

from typing import Any

from wapa.adapters.llm.base import Provider, Reply
from wapa.adapters.llm.config import CloudflareSettings
from wapa.adapters.llm.errors import ModelError
from wapa.core.events import ChatMessage


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class CloudflareClient(Provider):
    name = "cloudflare"

    def __init__(self, *, cloudflare: CloudflareSettings, **kwargs: Any) -> None:
        kwargs.setdefault("group", f"cloudflare:{cloudflare.account_id}")
        super().__init__(**kwargs)
        self.cf = cloudflare

    @property
    def run_url(self) -> str:
        if self.cf.gateway_url:
            return f"{self.cf.gateway_url}/{self.model}"
        return f"{self.cf.api_base}/accounts/{self.cf.account_id}/ai/run/{self.model}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.cf.api_token}", "Accept": "application/json"}

    async def _send(self, messages: tuple[ChatMessage, ...], timeout: float) -> Reply:
        body = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
        }
        status, data, headers = await self._request(
            "POST", self.run_url, headers=self._headers(), timeout=timeout, body=body
        )
        if not 200 <= status < 300 or not isinstance(data, dict) or data.get("success") is False:
            if 200 <= status < 300 and not isinstance(data, dict):
                raise self._bad("the answer is not a JSON object", status)
            raise self._error(status, data, headers)
        result = data.get("result")
        if not isinstance(result, dict):
            raise self._bad("the answer has no result object", status)
        text: Any = result.get("response")
        if text is None:  # newer models answer in the chat-completions shape
            choices = result.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                text = (choices[0].get("message") or {}).get("content")
        usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
        return Reply(
            text=self.reply_text(text, status),
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
        )

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
