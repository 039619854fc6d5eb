"""Binding a site to a TLS listening socket, choosing HTTP/2 or HTTP/1.1 per connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, cast

from .core import Site
from .http1 import H1Connection
from .http2 import H2Connection
from .tls import FakeCA

H2_PREFACE_START = b"PRI "


class FakeProtocol(asyncio.Protocol):
    """Hands the connection to HTTP/2 or HTTP/1.1 as ALPN decided (or the first bytes say)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.impl: H2Connection | H1Connection | None = None
        self.transport: asyncio.Transport | None = None
        self.early = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but behaves as one.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == "h2":
            self._attach(H2Connection(self.site, transport))
        elif alpn == "http/1.1":
            self._attach(H1Connection(self.site, transport))

    def _attach(self, impl: H2Connection | H1Connection) -> None:
        self.impl = impl
        # Straight to the connection on every later read, without this object in between.
        self.data_received = impl.data_received  # type: ignore[method-assign]

    def data_received(self, data: bytes) -> None:
        # Only without ALPN: the HTTP/2 preface or anything else, which is taken as HTTP/1.1.
        data = self.early + data
        if len(data) < len(H2_PREFACE_START) and H2_PREFACE_START.startswith(data):
            self.early = data
            return
        self.early = b""
        assert self.transport is not None
        if data.startswith(H2_PREFACE_START):
            self._attach(H2Connection(self.site, self.transport))
        else:
            self._attach(H1Connection(self.site, self.transport))
        self.data_received(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.impl is not None:
            self.impl.connection_lost(exc)


def listening_socket(host: str = "127.0.0.1", port: int = 0, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def site_url(site: Site, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    site.hosts = [host, "localhost"]
    return f"https://{shown}:{port}"


async def serve_site(site: Site, ca: FakeCA, sock: socket.socket) -> asyncio.Server:
    """Serve ``site`` on an already listening socket; sets ``site.url``."""
    loop = asyncio.get_running_loop()
    context = ca.server_context(site.alpn)
    server = await loop.create_server(
        lambda: FakeProtocol(site), sock=sock, ssl=context, ssl_handshake_timeout=10
    )
    site.url = site_url(site, sock)
    return server


async def close_site(site: Site, server: asyncio.Server | None) -> None:
    if server is not None:
        server.close()
    for connection in list(site.connections):
        connection.close()
    if server is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it is, through uvicorn[standard]): its TLS is much faster."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: Any = uvloop.new_event_loop()
    return loop  # type: ignore[no-any-return]
