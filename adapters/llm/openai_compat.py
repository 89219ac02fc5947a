"""A second provider speaking the OpenAI chat-completions API: `POST {base}/chat/completions`.

Covers OpenAI itself, a local Ollama (`http://localhost:11434/v1`), a llama.cpp server, vLLM,
and Cloudflare's own `/accounts/{id}/ai/v1` endpoint (metered in neurons like /ai/run: the
factory gives it the account's neuron meter when the URL points at Cloudflare). Health is
`GET {base}/models`, which costs no generation.
"""

from __future__ import annotations

from typing import Any

from wapa.adapters.llm.base import Provider, Reply
from wapa.adapters.llm.config import OpenAISettings
from wapa.adapters.llm.errors import ModelError
from wapa.core.events import ChatMessage


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class OpenAICompatClient(Provider):
    name = "openai"

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

    async def _send(self, messages: tuple[ChatMessage, ...], timeout: float) -> Reply:
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": self.settings.max_tokens,
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
        if not 200 <= status < 300:
            raise self._error(status, data, headers)
        if not isinstance(data, dict):
            raise self._bad("the answer is not a JSON object", status)
        if "error" in data or data.get("success") is False:
            raise self._error(status if status >= 400 else 500, data, headers)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._bad("the answer has no choices", status)
        message = choices[0].get("message")
        text = message.get("content") if isinstance(message, dict) else None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Reply(
            text=self.reply_text(text, status),
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
        )

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
        if status == 404 and error.kind == "no_model":  # a server without a /models route
            return {"ok": True, "kind": "", "detail": "reachable (no /models endpoint)"}
        return {"ok": False, "kind": error.kind, "detail": str(error)}
