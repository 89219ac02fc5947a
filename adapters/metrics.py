"""Prometheus metrics of one runner, in their own registry (tests build as many as they like).

Names follow Prometheus conventions: counters end in `_total`, units in the name.
"""

from __future__ import annotations

import os
import resource

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "resident_memory_bytes"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.messages_in = Counter(
            "wapa_messages_in_total", "Inbound messages handed to the core", ["kind"], registry=r
        )
        self.bad_events = Counter(
            "wapa_bad_events_total", "Inbound events that could not be handled", registry=r
        )
        self.replies_sent = Counter(
            "wapa_replies_sent_total", "Replies WhatsApp accepted", registry=r
        )
        self.send_failures = Counter(
            "wapa_send_failures_total", "Replies that could not be sent", registry=r
        )
        self.notices = Counter("wapa_notices_total", "Notices sent to the owner", registry=r)
        self.decisions = Counter(
            "wapa_decisions_total", "Core decisions by reason code", ["reason"], registry=r
        )
        self.model_requests = Counter(
            "wapa_model_requests_total", "Generations asked of the model", registry=r
        )
        self.model_retries = Counter(
            "wapa_model_retries_total", "Extra attempts inside generations", registry=r
        )
        self.model_failures = Counter(
            "wapa_model_failures_total",
            "Generations that failed, by error kind",
            ["kind"],
            registry=r,
        )
        self.model_latency = Histogram(
            "wapa_model_latency_seconds",
            "Time for one generation, retries included",
            buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
            registry=r,
        )
        self.model_neurons = Counter(
            "wapa_model_neurons_total", "Cloudflare neurons spent", registry=r
        )
        self.model_tokens = Counter(
            "wapa_model_tokens_total", "Model tokens", ["direction"], registry=r
        )
        self.pending_chats = Gauge(
            "wapa_pending_chats", "Chats with a reply waiting, generating or typing", registry=r
        )
        self.cooling_chats = Gauge("wapa_cooling_chats", "Chats in a cooldown", registry=r)
        self.known_chats = Gauge("wapa_known_chats", "Chats the core holds", registry=r)
        self.generations_in_flight = Gauge(
            "wapa_generations_in_flight", "Model calls under way", registry=r
        )
        self.loop_lag = Gauge(
            "wapa_event_loop_lag_seconds", "Last measured asyncio event-loop lag", registry=r
        )
        self.rss = Gauge(
            "wapa_resident_memory_bytes", "Resident set size of the process", registry=r
        )
        self.lifecycle = Counter(
            "wapa_lifecycle_events_total", "Transport lifecycle events", ["kind"], registry=r
        )
        self.component_ok = Gauge(
            "wapa_component_healthy", "1 when a component is healthy", ["component"], registry=r
        )
        self.store_errors = Counter("wapa_store_errors_total", "Failed store commits", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_bytes() -> int:
    """Current RSS from /proc/self/statm; where that is missing, the peak from getrusage."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
