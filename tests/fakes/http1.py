"""HTTP/1.1 for clients that do not negotiate HTTP/2 (OAuth token fetches, control calls).

Low traffic only, so ``h11`` does the parsing. A fake whose real service is HTTP/2 only (APNs)
answers its provider paths here with 505, as a reminder that the sender must speak HTTP/2.
"""

from __future__ import annotations

import asyncio
import itertools

import h11

from .core import ANSWER, DROP, Request, Response, Site

_serials = itertools.count(1_000_000)


class H1Connection:
    def __init__(self, site: Site, transport: asyncio.Transport) -> None:
        self.site = site
        self.transport = transport
        self.serial = next(_serials)
        self.loop = asyncio.get_running_loop()
        self.conn = h11.Connection(h11.SERVER)
        self.closed = False
        self.busy = False
        self.requests = 0
        self.current: h11.Request | None = None
        self.body: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None
        self.close_after = False
        self.counted = False
        site.connections.add(self)

    def apply_settings(self) -> None:
        """HTTP/1.1 has no settings to announce."""

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.conn.receive_data(data)
        self.process()

    def process(self) -> None:
        while not self.busy and not self.closed:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError:
                self.send_simple(400, b"bad request")
                self.close()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.current = event
                self.body = []
            elif isinstance(event, h11.Data):
                self.body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.busy = True
                self.request_complete()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def request_complete(self) -> None:
        event = self.current
        assert event is not None
        self.requests += 1
        site = self.site
        faults = site.faults
        if faults.drop_after is not None and faults.take_drop(self.requests):
            site.stats.drops += 1
            self.abort()
            return
        headers = [(bytes(name), bytes(value)) for name, value in event.headers]
        authority = b""
        for name, value in headers:
            if name == b"host":
                authority = value
        request = Request(
            bytes(event.method),
            bytes(event.target),
            authority,
            headers,
            b"".join(self.body),
            self,
            0,
        )
        try:
            result = site.handle(request)
        except Exception as exc:  # a bug in a fake must show, not hang the client
            self.loop.call_exception_handler(
                {"message": "fake handler failed", "exception": exc, "protocol": self}
            )
            result = Response(500, [], b"fake handler failed")
        if faults.goaway_after is not None and faults.take_goaway(self.requests):
            # HTTP/1.1's GOAWAY: answer with "connection: close", then close.
            site.stats.goaways += 1
            self.close_after = True
        if isinstance(result, Response):
            self.dispatch(result)
        else:
            task = asyncio.ensure_future(result)
            task.add_done_callback(self.async_done)

    def async_done(self, task: asyncio.Future[Response]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        self.dispatch(Response(500, [], repr(exc).encode()) if exc else task.result())

    def dispatch(self, response: Response) -> None:
        if response.action != ANSWER:
            if response.action == DROP:
                self.site.stats.drops += 1
                self.abort()
            return
        if response.delay:
            self.timer = self.loop.call_later(response.delay, self.send_response, response)
            return
        self.send_response(response)

    def send_response(self, response: Response) -> None:
        if self.closed:
            return
        self.timer = None
        headers = [
            *response.headers,
            (b"content-length", str(len(response.body)).encode()),
        ]
        if self.close_after:
            headers.append((b"connection", b"close"))
        out = self.conn.send(h11.Response(status_code=response.status, headers=headers))
        if response.body:
            out += self.conn.send(h11.Data(data=response.body))
        out += self.conn.send(h11.EndOfMessage())
        self.transport.write(out)
        if response.deliver is not None:
            self.site.count_delivered(response.deliver)
        if self.close_after or self.conn.our_state is h11.MUST_CLOSE:
            self.close()
            return
        try:
            self.conn.start_next_cycle()
        except h11.LocalProtocolError:
            self.close()
            return
        self.busy = False
        self.process()

    def send_simple(self, status: int, body: bytes) -> None:
        try:
            out = self.conn.send(
                h11.Response(
                    status_code=status,
                    headers=[
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                )
            )
            out += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        self.transport.write(out)

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.site.connections.discard(self)
