"""HTTP/2 connection pools to the providers, behind one small interface.

Each pool holds a few long-lived connections (one client each) and bounds the requests in
flight on each, so the server never exceeds a provider's stream limit or opens a connection per
request. Every request has a timeout; every response body is read in full.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    status: int
    body: bytes
    retry_after: str | None = None


class TransportError(Exception):
    """The request got no HTTP answer: connection refused or dropped, timeout, GOAWAY."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class PoolConfig:
    connections: int
    streams_per_connection: int
    connect_timeout_s: float
    timeout_s: float
    ca_file: Path | None = None
    http2_only: bool = False


class _Connection:
    __slots__ = ("client", "streams", "warm")

    def __init__(self, client: Client, streams: int) -> None:
        self.client = client
        self.streams = asyncio.Semaphore(streams)
        self.warm = asyncio.Lock()


class Pool:
    def __init__(self, config: PoolConfig) -> None:
        self._config = config
        self._timeout = timedelta(seconds=config.timeout_s)
        ca_pem = config.ca_file.read_bytes() if config.ca_file else None
        self._connections = [
            _Connection(self._build_client(ca_pem), config.streams_per_connection)
            for _ in range(config.connections)
        ]
        self._next = itertools.cycle(self._connections)
        self._warmed: set[int] = set()

    def _build_client(self, ca_pem: bytes | None) -> Client:
        builder = (
            ClientBuilder()
            .connect_timeout(timedelta(seconds=self._config.connect_timeout_s))
            .timeout(self._timeout)
            .pool_max_idle_per_host(1)
            .http2_keep_alive_interval(timedelta(seconds=60))
            .http2_keep_alive_while_idle(True)
            .tcp_nodelay(True)
            .follow_redirects(False)
            .gzip(False)
        )
        if ca_pem is not None:
            builder = builder.add_root_certificate_pem(ca_pem)
        if self._config.http2_only:
            builder = builder.http2_prior_knowledge()
        else:
            # HTTP/2 is opt-in in this client: without it every request in flight would open
            # an HTTP/1.1 connection of its own. ALPN still falls back to HTTP/1.1.
            builder = builder.http2(True)
        return builder.build()

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout_s: float | None = None,
    ) -> ProviderResponse:
        connection = next(self._next)
        key = id(connection)
        if key not in self._warmed:
            # A cold client opens one connection per concurrent request; one request alone
            # first makes the rest share its connection.
            async with connection.warm:
                if key not in self._warmed:
                    response = await self._send(connection, url, headers, body, timeout_s)
                    self._warmed.add(key)
                    return response
        async with connection.streams:
            return await self._send(connection, url, headers, body, timeout_s)

    async def _send(
        self,
        connection: _Connection,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout_s: float | None,
    ) -> ProviderResponse:
        request = connection.client.post(url).headers(headers).body_bytes(body)
        if timeout_s is not None:
            request = request.timeout(timedelta(seconds=timeout_s))
        try:
            response = await request.build().send()
            content = bytes(await response.bytes())
        except PyreqwestError as exc:
            message = str(exc)
            raise TransportError(message, timed_out="timed out" in message.lower()) from exc
        status = response.status
        # Only refusals (429, 503) carry a Retry-After worth reading.
        retry_after = response.get_header("retry-after") if status >= 300 else None
        return ProviderResponse(status, content, retry_after)

    async def close(self) -> None:
        for connection in self._connections:
            await connection.client.close()
