"""The model service: what the runner wraps around a model client.

    service = ModelService(client_from_settings(settings), metrics=metrics, max_concurrent=4)
    service.restore_usage(await store.get_value(USAGE_KEY))   # at start
    event = await service.generate(generate_effect)            # Generated | GenerationFailed
    usage = service.usage_json()                               # with the next commit, if not None
    ...; service.mark_saved(usage)                             # once that commit is durable

- `generate` never raises (except `CancelledError`): a `ModelError` becomes
  `GenerationFailed(kind, detail)`, any other exception kind `internal` (logged
  `model_call_crashed`). At most `max_concurrent` generations run at once.
- The auth lockout: after a reply failed with `auth`, every later one fails at once with kind
  `auth` and "model credentials rejected earlier; fix them and restart", without calling the
  client. It is the policy's own `AuthLockout` when the client is a `ModelChain` (one rule,
  the same object), else the service's.
- Metrics (`wapa.adapters.metrics.Metrics`): `model_requests`, `model_failures{kind}`,
  `model_retries`, `model_latency`, `model_neurons`, `model_tokens{direction}`,
  `generations_in_flight`; log events `generated`, `model_failed`, `model_auth_rejected`.
- `state` for health: `not_configured` (no client), `unknown` (nothing asked yet), `ok`,
  `failing (KIND)`, `auth_rejected`; `budget_left` (neurons, None without a budget). Both
  events carry `budget_left` for the core's status.
- The day's neuron spend and quota block (`NeuronMeter.export`) as JSON for the store:
  `usage_json()` is None while unchanged since the last `mark_saved`; `restore_usage(text)`
  takes back what was saved (a damaged value is logged `model_usage_unreadable` and ignored).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from wapa.adapters.llm.base import LLMClient
from wapa.adapters.llm.errors import ModelError
from wapa.adapters.llm.policy import Answer, AuthLockout, GiveUp, crash_event, outcome_event
from wapa.adapters.logs import log_event
from wapa.adapters.metrics import Metrics
from wapa.core.events import Generate, Generated, GenerationFailed

log = logging.getLogger("wapa.model")

NOT_CONFIGURED = "no model configured"
AUTH_HINT = (
    "check CLOUDFLARE_API_TOKEN / CLOUDFLARE_ACCOUNT_ID (or OPENAI_API_KEY); "
    "no more model calls until restart"
)


class ModelService:
    def __init__(
        self,
        client: LLMClient | None,
        *,
        metrics: Metrics | None = None,
        max_concurrent: int = 4,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        self.client = client
        self.metrics = metrics or Metrics()
        # prometheus_client's labels() checks and locks at every call: each child looked up once
        self._tokens_in = self.metrics.model_tokens.labels("input")
        self._tokens_out = self.metrics.model_tokens.labels("output")
        self.monotonic = monotonic
        self._slots = asyncio.Semaphore(max_concurrent)
        lockout = getattr(client, "lockout", None)
        self.lockout: AuthLockout = lockout if isinstance(lockout, AuthLockout) else AuthLockout()
        self.state = "unknown" if client is not None else "not_configured"
        self._saved: str | None = None

    # ------------------------------------------------------------------ generation

    async def generate(self, g: Generate) -> Generated | GenerationFailed:
        m = self.metrics
        if self.client is None:
            m.model_failures.labels("unavailable").inc()
            return GenerationFailed(g.request_id, "unavailable", NOT_CONFIGURED)
        refusal = self.lockout.refusal()
        if refusal is not None:
            m.model_failures.labels(refusal.kind).inc()
            return outcome_event(g.request_id, GiveUp(refusal), self.budget_left)
        async with self._slots:
            m.generations_in_flight.inc()
            m.model_requests.inc()
            started = self.monotonic()
            try:
                result = await self.client.generate(g.messages)
            except asyncio.CancelledError:
                raise
            except ModelError as exc:
                m.model_latency.observe(max(0.0, self.monotonic() - started))
                return self._failed(g, exc)
            except Exception as exc:  # a bug, never a crash of the runner
                m.model_latency.observe(max(0.0, self.monotonic() - started))
                log_event(
                    log, logging.ERROR, "model_call_crashed", exc_info=True, request_id=g.request_id
                )
                m.model_failures.labels("internal").inc()
                if not self.lockout.tripped:
                    self.state = "failing (internal)"
                return crash_event(g.request_id, exc, self.budget_left)
            finally:
                m.generations_in_flight.dec()
        attempts = max(1, int(result.attempts or 1))
        m.model_retries.inc(attempts - 1)
        m.model_latency.observe(max(0.0, float(result.latency_s)))
        m.model_neurons.inc(max(0.0, float(result.neurons or 0.0)))
        self._tokens_in.inc(max(0, int(result.input_tokens or 0)))
        self._tokens_out.inc(max(0, int(result.output_tokens or 0)))
        if not self.lockout.tripped:
            self.state = "ok"
        log_event(
            log,
            logging.INFO,
            "generated",
            request_id=g.request_id,
            model=str(result.model),
            attempts=attempts,
            latency_s=round(float(result.latency_s), 3),
            chars=len(result.text),
            text=result.text,
        )
        return outcome_event(g.request_id, Answer(result), self.budget_left)

    def _failed(self, g: Generate, exc: ModelError) -> GenerationFailed:
        kind = exc.kind
        self.metrics.model_failures.labels(kind).inc()
        self.lockout.observe(exc)
        if kind == "auth":
            log_event(
                log,
                logging.ERROR,
                "model_auth_rejected",
                request_id=g.request_id,
                error=str(exc)[:1000],
                hint=AUTH_HINT,
            )
        else:
            log_event(
                log,
                logging.WARNING,
                "model_failed",
                request_id=g.request_id,
                kind=kind,
                error=str(exc)[:1000],
            )
        # once locked out, a call that was already under way does not make health green again
        self.state = "auth_rejected" if self.lockout.tripped else f"failing ({kind})"
        event = outcome_event(g.request_id, GiveUp(exc), self.budget_left)
        assert isinstance(event, GenerationFailed)
        return event

    # ------------------------------------------------------------------ health

    @property
    def budget_left(self) -> float | None:
        """Neurons left today (None: no budget, or no client)."""
        left = getattr(getattr(self.client, "stats", None), "budget_left", None)
        return float(left) if isinstance(left, int | float) else None

    @property
    def healthy(self) -> bool:
        return self.state != "auth_rejected"

    def component(self) -> dict[str, Any]:
        """The model's part of /healthz."""
        report: dict[str, Any] = {"state": self.state}
        left = self.budget_left
        if left is not None:
            report["budget_left"] = round(left, 1)
        return report

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    # ------------------------------------------------------------------ the saved daily usage

    def _meter(self) -> Any:
        meter = getattr(self.client, "meter", None)
        return meter if callable(getattr(meter, "export", None)) else None

    def usage_json(self) -> str | None:
        """The day's spend and quota block as JSON when they changed since the last
        `mark_saved` (to save with the next commit), else None."""
        meter = self._meter()
        if meter is None:
            return None
        try:
            text = json.dumps(meter.export(), sort_keys=True)
        except Exception:  # accounting must never stop a commit
            return None
        return None if text == self._saved else text

    def mark_saved(self, text: str) -> None:
        """`text` (from `usage_json`) is now in the store."""
        self._saved = text

    def restore_usage(self, text: str | None) -> bool:
        """Take back the usage saved before the last stop: a restart (or a restart loop) never
        hands the day's neuron budget out again. A damaged value is logged and ignored.
        Returns whether anything was restored."""
        meter = self._meter()
        if meter is None or text is None:
            return False
        try:
            meter.restore(json.loads(text))
            state = meter.export()
        except Exception as exc:  # a damaged value costs the saved spend, never the start
            log_event(
                log,
                logging.WARNING,
                "model_usage_unreadable",
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return False
        self._saved = json.dumps(state, sort_keys=True)
        log_event(
            log,
            logging.INFO,
            "model_usage_restored",
            day=state.get("day"),
            neurons_today=round(float(state.get("spent", 0.0)), 2),
            blocked_until=state.get("blocked_until", 0.0),
        )
        return True
