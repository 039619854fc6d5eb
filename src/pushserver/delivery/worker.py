"""The delivery worker: claims due messages in batches, sends them, writes the outcomes back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError

from pushserver.campaigns import delivery as campaign_queue
from pushserver.campaigns import repository as campaign_repository
from pushserver.db.engine import Database, is_retryable
from pushserver.db.types import utcnow
from pushserver.delivery import jobs
from pushserver.delivery.dispatch import deliver, warn_credential_problems
from pushserver.delivery.jobs import Job
from pushserver.delivery.outcomes import Outcome, Verdict
from pushserver.delivery.registry import SenderRegistry
from pushserver.errors import Unavailable
from pushserver.settings import Settings

log = logging.getLogger(__name__)

# Attempts at writing one batch's outcomes back, about three seconds apart at most in all.
_RECORD_ATTEMPTS = 6


class Worker:
    def __init__(
        self, settings: Settings, database: Database, registry: SenderRegistry, lanes: int = 2
    ) -> None:
        self._settings = settings
        self._database = database
        self._registry = registry
        self._lanes = lanes
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # One claim at a time per process: on SQLite, claims are not isolated from each other.
        self._claiming = asyncio.Lock()
        self._swept_at = 0.0

    def wake(self) -> None:
        """New work was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        log.info(
            "worker started lanes=%d batch_size=%d", self._lanes, self._settings.worker_batch_size
        )
        await asyncio.gather(*(self._lane() for _ in range(self._lanes)))
        log.info("worker stopped")

    async def _lane(self) -> None:
        idle_s = 0.01
        while not self._stopping.is_set():
            try:
                handled = await self.run_once()
            except Unavailable:
                # Claimed messages keep their lease and come back when it ends: nothing is lost.
                log.warning("database unavailable; the worker will try again")
                handled = 0
            except Exception as exc:
                if isinstance(exc, DBAPIError) and is_retryable(exc):
                    log.warning("a worker transaction lost a database conflict; trying again")
                else:
                    log.exception("worker batch failed; retrying")
                handled = 0
            if handled:
                idle_s = 0.01
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_s)
            idle_s = min(idle_s * 2, self._settings.worker_idle_s)

    async def run_once(self) -> int:
        """Claim, send and record one batch; the number of messages handled.

        Single messages are claimed first and campaign devices fill the rest of the batch, so
        a campaign neither holds up transactional pushes nor starves behind a steady trickle.
        """
        settings = self._settings
        async with self._claiming, self._database.transaction() as session:
            now = utcnow()
            messages = await jobs.claim(
                session, settings.worker_batch_size, settings.worker_lease_s, now
            )
            campaign_devices: list[Job] = []
            if len(messages) < settings.worker_batch_size:
                campaign_devices = await campaign_queue.claim(
                    session,
                    settings.worker_batch_size - len(messages),
                    settings.worker_lease_s,
                    now,
                )
        claimed = messages + campaign_devices
        if not claimed:
            await self._sweep_finished_campaigns()
            return 0

        started = time.monotonic()
        try:
            results = await deliver(claimed, self._registry, utcnow())
        except BaseException:
            async with self._database.transaction() as session:
                await jobs.release(session, [job.message_id for job in messages], utcnow())
                await campaign_queue.release(
                    session, [job.message_id for job in campaign_devices], utcnow()
                )
            raise
        await self._record(results, len(messages))
        _log_batch(results, time.monotonic() - started)
        return len(claimed)

    async def _record(self, results: Sequence[tuple[Job, Outcome | None]], split: int) -> None:
        """Write the batch's outcomes back, again if the transaction lost a deadlock or the
        database was briefly away: a batch whose outcomes are lost is sent again."""
        settings = self._settings
        for attempt in range(_RECORD_ATTEMPTS):
            try:
                async with self._database.transaction() as session:
                    if split:
                        await jobs.record(session, results[:split], settings, utcnow())
                    if split < len(results):
                        await campaign_queue.record(session, results[split:], settings, utcnow())
                return
            except (DBAPIError, Unavailable) as exc:
                retry = isinstance(exc, Unavailable) or is_retryable(exc)
                if not retry or attempt == _RECORD_ATTEMPTS - 1:
                    raise
                log.warning("recording a batch failed (%s); trying again", type(exc).__name__)
            await asyncio.sleep(0.05 * 2**attempt)

    async def _sweep_finished_campaigns(self) -> None:
        """At most once a second when idle: mark sent the campaigns whose rows are all final."""
        if time.monotonic() - self._swept_at < 1.0:
            return
        self._swept_at = time.monotonic()
        async with self._database.transaction() as session:
            await campaign_repository.mark_sent_if_done(session, None, utcnow())


def _log_batch(results: Sequence[tuple[Job, Outcome | None]], elapsed_s: float) -> None:
    warn_credential_problems(results)
    counts = Counter(outcome.verdict for _, outcome in results if outcome is not None)
    log.info(
        "batch delivered messages=%d sent=%d retry=%d failed=%d dead_tokens=%d elapsed_s=%.3f",
        len(results),
        counts[Verdict.SENT],
        counts[Verdict.RETRY] + counts[Verdict.REAUTHORIZE],
        counts[Verdict.FAILED],
        counts[Verdict.DEAD_TOKEN],
        elapsed_s,
    )
