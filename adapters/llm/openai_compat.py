"""A second provider speaking the OpenAI chat-completions API: `POST {base}/chat/completions`.

Covers OpenAI itself, a local Ollama (`http://localhost:11434/v1`), a llama.cpp server, vLLM,
and Cloudflare's own `/accounts/{id}/ai/v1` endpoint (metered in neurons like /ai/run: the
factory meters it when the URL points at Cloudflare). Health is `GET {base}/models`, which
costs no generation; a server without that route (404, or Cloudflare's /ai/v1: 405, code 7001)
counts as reachable. `parse_chat` is the pure parsing of an answer.
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
from wapa.adapters.llm.config import OpenAISettings
from wapa.adapters.llm.errors import ModelError
from wapa.core.events import ChatMessage

NAME = "openai"


def parse_chat(
    status: int, body: Any, headers: Mapping[str, str], *, model: str, provider: str = NAME
) -> Reply:
    """A `/chat/completions` answer as a Reply, or the ModelError it means. Pure."""
    if not 200 <= status < 300:
        raise http_error(status, body, headers, provider=provider, model=model)
    if not isinstance(body, dict):
        raise bad_response(
            "the answer is not a JSON object", status, provider=provider, model=model
        )
    if "error" in body or body.get("success") is False:
        raise http_error(
            status if status >= 400 else 500, body, headers, provider=provider, model=model
        )
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad_response("the answer has no choices", status, provider=provider, model=model)
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else None
    tokens_in, tokens_out = usage_tokens(body.get("usage"))
    return Reply(
        text=billed_text(text, status, (tokens_in, tokens_out), provider=provider, model=model),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
    )


class OpenAICompatClient(Provider):
    name = NAME

    def __init__(self, *, openai: OpenAISettings, **kwargs: Any) -> None:
        kwargs.setdefault("group", f"openai:{openai.base_url}")
        kwargs.setdefault("model", openai.model)
        super().__init__(**kwargs)
        self.oa = openai

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.oa.api_key:
            headers["Authorization"] = f"Bearer {self.oa.api_key}"
        return headers

    async def send(
        self, messages: tuple[ChatMessage, ...], timeout: float, max_tokens: int | None = None
    ) -> Reply:
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens or self.settings.max_tokens,
            "temperature": min(self.settings.temperature, 2.0),  # OpenAI's range is 0..2
            "stream": False,
        }
        status, data, headers = await self._request(
            "POST",
            f"{self.oa.base_url}/chat/completions",
            headers=self._headers(),
            timeout=timeout,
            body=body,
        )
        return self.parse(status, data, headers)

    def parse(self, status: int, body: Any, headers: Mapping[str, str]) -> Reply:
        return parse_chat(status, body, headers, model=self.model, provider=self.name)

    async def health(self) -> dict[str, Any]:
        self.stats.health_checks += 1
        try:
            status, data, headers = await self._request(
                "GET",
                f"{self.oa.base_url}/models",
                headers=self._headers(),
                timeout=min(10.0, self.settings.timeout),
            )
        except ModelError as exc:
            return {"ok": False, "kind": exc.kind, "detail": str(exc)}
        if 200 <= status < 300:
            listed = None
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                ids = {m.get("id") for m in data["data"] if isinstance(m, dict)}
                listed = self.model in ids
            return {"ok": True, "kind": "", "detail": "reachable", "model_listed": listed}
        error = self._error(status, data, headers)
        # a server without a /models route: 404, or 405 (code 7001) from Cloudflare's /ai/v1
        if status == 405 or (status == 404 and error.kind == "no_model"):
            return {"ok": True, "kind": "", "detail": "reachable (no /models endpoint)"}
        return {"ok": False, "kind": error.kind, "detail": str(error)}
