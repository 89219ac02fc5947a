"""Periodic store upkeep while the runner runs: retention purges and the daily backup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from wapa.adapters.logs import log_event

if TYPE_CHECKING:
    from wapa.adapters.store import Store, StoreSettings
    from wapa.runner import Runner

log = logging.getLogger("wapa.housekeeping")
INTERVAL = 3600.0  # once an hour (and a minute after the start)


def housekeeping(
    store: Store, store_settings: StoreSettings, interval: float = INTERVAL
) -> Callable[[Runner], Coroutine[Any, Any, None]]:
    async def run(runner: Runner) -> None:
        await asyncio.sleep(min(60.0, interval))
        while True:
            try:
                report = await store.purge(
                    runner.clock(), runner.settings.policy.context_ttl, store_settings.trace_ttl
                )
                if report.total:
                    log_event(
                        log,
                        logging.INFO,
                        "purged",
                        contexts=report.contexts,
                        traces=report.traces,
                        outbox=report.outbox,
                    )
                if store_settings.backup_keep > 0:
                    made = await store.daily_backup(
                        store_settings.backup_dir, store_settings.backup_keep
                    )
                    if made is not None:
                        log_event(log, logging.INFO, "backup_made", path=str(made))
            except Exception as exc:  # upkeep must never stop the assistant
                log_event(
                    log,
                    logging.WARNING,
                    "housekeeping_failed",
                    error=f"{type(exc).__name__}: {exc}",
                )
            await asyncio.sleep(interval)

    return run
