"""Requests per API key over a moving window, counted in this process.

Off unless ``PUSH_SERVER_RATE_LIMIT`` is set (``"100/second"``, ``"6000/minute"``). A key over
its rate gets 429 ``ERROR_RATE_LIMITED`` with ``Retry-After``, before its body is read. Each
server process counts on its own: behind N processes a key may make up to N times the rate.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from pushserver.errors import RateLimited


class RequestRate:
    def __init__(self, rate: str) -> None:
        self._rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def admit(self, caller: str) -> None:
        """Count one request of ``caller``; RateLimited when it is over the rate."""
        if await self._limiter.hit(self._rate, caller):
            return
        stats = await self._limiter.get_window_stats(self._rate, caller)
        wait_s = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"over the rate of {self._rate} for this API key; try again in {wait_s} s",
            retry_after_s=wait_s,
        )
