"""The server side of HTTP/2 (RFC 9113) as the fakes need it, on an asyncio protocol.

Written for the fakes rather than taken from the ``h2`` package because ``h2`` spends about ten
times the fake's own work per request (state machines, events, validation); the benchmark needs
the fake to outrun the sender by a wide margin. It keeps the rules a client can observe: the
preface and SETTINGS exchange with acknowledgement, HPACK with its dynamic table, CONTINUATION,
padding, flow control both ways, PING, RST_STREAM, stream limits (REFUSED_STREAM above
SETTINGS_MAX_CONCURRENT_STREAMS), and GOAWAY with the real last stream id. Server push and
priorities are not used; PRIORITY frames are accepted and ignored.
"""

from __future__ import annotations

import asyncio
import itertools
import struct

from .core import ANSWER, DROP, Request, Response, Site
from .hpackcodec import HpackDecoder, HpackError, encode_response

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA = 0
HEADERS = 1
PRIORITY = 2
RST_STREAM = 3
SETTINGS = 4
PUSH_PROMISE = 5
PING = 6
GOAWAY = 7
WINDOW_UPDATE = 8
CONTINUATION = 9

FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

NO_ERROR = 0
PROTOCOL_ERROR = 1
INTERNAL_ERROR = 2
FLOW_CONTROL_ERROR = 3
STREAM_CLOSED = 5
FRAME_SIZE_ERROR = 6
REFUSED_STREAM = 7
CANCEL = 8
COMPRESSION_ERROR = 9
ENHANCE_YOUR_CALM = 11

SETTINGS_HEADER_TABLE_SIZE = 1
SETTINGS_ENABLE_PUSH = 2
SETTINGS_MAX_CONCURRENT_STREAMS = 3
SETTINGS_INITIAL_WINDOW_SIZE = 4
SETTINGS_MAX_FRAME_SIZE = 5

DEFAULT_WINDOW = 65535
MAX_WINDOW = 2**31 - 1
OUR_MAX_FRAME = 16384
# A large connection window so clients never stall on it; refilled when half is used.
CONNECTION_WINDOW = 1 << 24
STREAM_REFILL = DEFAULT_WINDOW // 2
MAX_BODY = 1 << 20
GOAWAY_GRACE = 1.0

_frame_header = struct.Struct(">BHBBI")
_pack_header = _frame_header.pack
_unpack_header = _frame_header.unpack_from
_pack_u32 = struct.Struct(">I").pack
_pack_setting = struct.Struct(">HI").pack

_serials = itertools.count(1)


class ConnectionError_(Exception):  # the trailing underscore keeps the builtin usable
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return _pack_header(length >> 16, length & 0xFFFF, kind, flags, stream_id) + payload


class Stream:
    __slots__ = ("body", "body_size", "ended", "headers", "pending", "recv_unacked", "sid", "timer")

    def __init__(self, sid: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.sid = sid
        self.headers = headers
        self.body: list[bytes] = []
        self.body_size = 0
        self.ended = False
        self.recv_unacked = 0
        self.pending: bytes | None = None  # response body waiting for flow-control credit
        self.timer: asyncio.TimerHandle | None = None


class H2Connection:
    """One HTTP/2 connection; ``transport`` is the TLS transport from asyncio."""

    def __init__(self, site: Site, transport: asyncio.Transport) -> None:
        self.site = site
        self.transport = transport
        self.serial = next(_serials)
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.preface_done = False
        self.closed = False
        self.decoder = HpackDecoder()
        self.streams: dict[int, Stream] = {}
        self.last_sid = 0
        self.requests = 0
        self.going_away = False
        self.goaway_sent = False
        self.goaway_sid = 0
        self.counted = False
        self.continuation: tuple[int, list[bytes], bool] | None = None
        self.peer_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = 16384
        self.stream_windows: dict[int, int] = {}
        self.recv_unacked = 0
        self.limit = site.faults.max_concurrent_streams
        self.pending_count = 0
        self.batch: list[bytes] | None = None
        site.connections.add(self)
        settings = _pack_setting(SETTINGS_MAX_CONCURRENT_STREAMS, self.limit) + _pack_setting(
            SETTINGS_ENABLE_PUSH, 0
        )
        transport.write(
            frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, _pack_u32(CONNECTION_WINDOW - DEFAULT_WINDOW))
        )

    # Output.

    def emit(self, data: bytes) -> None:
        if self.batch is not None:
            self.batch.append(data)
        elif not self.closed:
            self.transport.write(data)

    def apply_settings(self) -> None:
        """Announce the site's current stream limit (a fault knob) on this live connection."""
        limit = self.site.faults.max_concurrent_streams
        if limit == self.limit or self.closed:
            return
        # Like nghttp2, a lowered limit binds at once: streams above it are refused with
        # REFUSED_STREAM, which clients retry, rather than waiting for the acknowledgement.
        self.limit = limit
        self.emit(frame(SETTINGS, 0, 0, _pack_setting(SETTINGS_MAX_CONCURRENT_STREAMS, limit)))

    # Input.

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        # Frames written while handling this read go out in one write at the end.
        self.batch = batch = []
        failure: ConnectionError_ | None = None
        try:
            self.process_frames(data)
        except ConnectionError_ as exc:
            failure = exc
            batch.append(self.goaway_frame(self.last_sid, exc.code, str(exc).encode()))
        finally:
            self.batch = None
        if batch and not self.closed:
            self.transport.write(b"".join(batch))
        if failure is not None:
            self.close()

    def process_frames(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        if not self.preface_done:
            if len(buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(buf)):
                    raise ConnectionError_(PROTOCOL_ERROR, "bad connection preface")
                return
            if buf[: len(PREFACE)] != PREFACE:
                raise ConnectionError_(PROTOCOL_ERROR, "bad connection preface")
            pos = len(PREFACE)
            self.preface_done = True
        size = len(buf)
        batch = self.batch
        assert batch is not None
        while size - pos >= 9 and not self.closed:
            hi, lo, kind, flags, sid = _unpack_header(buf, pos)
            length = (hi << 16) | lo
            if length > OUR_MAX_FRAME:
                raise ConnectionError_(FRAME_SIZE_ERROR, "frame larger than advertised")
            end = pos + 9 + length
            if end > size:
                break
            payload = bytes(buf[pos + 9 : end])
            pos = end
            sid &= 0x7FFFFFFF
            if self.continuation is not None and kind != CONTINUATION:
                raise ConnectionError_(PROTOCOL_ERROR, "expected CONTINUATION")
            if kind == DATA:
                self.on_data(flags, sid, payload)
            elif kind == HEADERS:
                self.on_headers(flags, sid, payload)
            elif kind == WINDOW_UPDATE:
                self.on_window_update(sid, payload)
            elif kind == SETTINGS:
                self.on_settings(flags, sid, payload)
            elif kind == RST_STREAM:
                self.on_rst_stream(sid, payload)
            elif kind == PING:
                if sid or length != 8:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad PING")
                if not flags & FLAG_ACK:
                    batch.append(frame(PING, FLAG_ACK, 0, payload))
            elif kind == CONTINUATION:
                self.on_continuation(flags, sid, payload)
            elif kind == GOAWAY:
                pass  # the client stops opening streams; it closes the socket itself
            elif kind == PRIORITY:
                if length != 5 or not sid:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad PRIORITY")
            elif kind == PUSH_PROMISE:
                raise ConnectionError_(PROTOCOL_ERROR, "clients cannot push")
        del buf[:pos]

    def on_headers(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid or not sid & 1:
            raise ConnectionError_(PROTOCOL_ERROR, "HEADERS on an invalid stream id")
        start = 0
        end = len(payload)
        if flags & FLAG_PADDED:
            if not payload:
                raise ConnectionError_(FRAME_SIZE_ERROR, "padded frame without pad length")
            end -= payload[0]
            start = 1
        if flags & FLAG_PRIORITY:
            start += 5
        if end < start:
            raise ConnectionError_(PROTOCOL_ERROR, "padding longer than the frame")
        block = payload[start:end]
        end_stream = bool(flags & FLAG_END_STREAM)
        if not flags & FLAG_END_HEADERS:
            self.continuation = (sid, [block], end_stream)
            return
        self.headers_complete(sid, block, end_stream)

    def on_continuation(self, flags: int, sid: int, payload: bytes) -> None:
        pending = self.continuation
        if pending is None or pending[0] != sid:
            raise ConnectionError_(PROTOCOL_ERROR, "unexpected CONTINUATION")
        pending[1].append(payload)
        if flags & FLAG_END_HEADERS:
            self.continuation = None
            self.headers_complete(sid, b"".join(pending[1]), pending[2])

    def headers_complete(self, sid: int, block: bytes, end_stream: bool) -> None:
        try:
            headers = self.decoder.decode(block)
        except HpackError as exc:
            raise ConnectionError_(COMPRESSION_ERROR, str(exc)) from exc
        stream = self.streams.get(sid)
        if stream is not None:
            # Trailers: they must end the stream.
            if stream.ended or not end_stream:
                self.reset_stream(sid, PROTOCOL_ERROR)
                return
            stream.ended = True
            self.request_complete(stream)
            return
        if sid <= self.last_sid:
            raise ConnectionError_(STREAM_CLOSED, "HEADERS on a closed stream")
        self.last_sid = sid
        if self.going_away:
            # Above the GOAWAY's last stream id: never processed, so the client may resend it.
            self.site.stats.ignored_after_goaway += 1
            return
        if len(self.streams) >= self.limit:
            self.site.stats.refused += 1
            self.emit(frame(RST_STREAM, 0, sid, _pack_u32(REFUSED_STREAM)))
            return
        stream = Stream(sid, headers)
        self.streams[sid] = stream
        self.stream_windows[sid] = self.peer_initial_window
        if end_stream:
            stream.ended = True
            self.request_complete(stream)

    def on_data(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise ConnectionError_(PROTOCOL_ERROR, "DATA on stream 0")
        length = len(payload)
        self.recv_unacked += length
        if self.recv_unacked >= CONNECTION_WINDOW // 2:
            self.emit(frame(WINDOW_UPDATE, 0, 0, _pack_u32(self.recv_unacked)))
            self.recv_unacked = 0
        stream = self.streams.get(sid)
        if stream is None or stream.ended:
            if sid > self.last_sid:
                raise ConnectionError_(PROTOCOL_ERROR, "DATA on an idle stream")
            if stream is not None:
                self.reset_stream(sid, STREAM_CLOSED)
            # Otherwise the stream was refused, reset or ignored after GOAWAY: drop the frame.
            return
        if flags & FLAG_PADDED:
            if not payload or payload[0] >= length:
                raise ConnectionError_(PROTOCOL_ERROR, "bad padding")
            payload = payload[1 : length - payload[0]]
        if payload:
            stream.body.append(payload)
            stream.body_size += len(payload)
            if stream.body_size > MAX_BODY:
                self.reset_stream(sid, ENHANCE_YOUR_CALM)
                return
        if flags & FLAG_END_STREAM:
            stream.ended = True
            self.request_complete(stream)
            return
        stream.recv_unacked += length
        if stream.recv_unacked >= STREAM_REFILL:
            self.emit(frame(WINDOW_UPDATE, 0, sid, _pack_u32(stream.recv_unacked)))
            stream.recv_unacked = 0

    def on_window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "bad WINDOW_UPDATE")
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if not sid:
            if not increment:
                raise ConnectionError_(PROTOCOL_ERROR, "zero WINDOW_UPDATE")
            self.peer_window += increment
            if self.peer_window > MAX_WINDOW:
                raise ConnectionError_(FLOW_CONTROL_ERROR, "connection window overflow")
            self.flush_pending()
            return
        window = self.stream_windows.get(sid)
        if window is None:
            return
        if not increment:
            self.reset_stream(sid, PROTOCOL_ERROR)
            return
        window += increment
        if window > MAX_WINDOW:
            self.reset_stream(sid, FLOW_CONTROL_ERROR)
            return
        self.stream_windows[sid] = window
        stream = self.streams.get(sid)
        if stream is not None and stream.pending is not None:
            self.flush_pending()

    def on_settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise ConnectionError_(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & FLAG_ACK:
            if payload:
                raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS ack with payload")
            return
        if len(payload) % 6:
            raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS length")
        for offset in range(0, len(payload), 6):
            ident = int.from_bytes(payload[offset : offset + 2], "big")
            value = int.from_bytes(payload[offset + 2 : offset + 6], "big")
            if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionError_(FLOW_CONTROL_ERROR, "initial window too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                windows = self.stream_windows
                for key in windows:
                    windows[key] += delta
            elif ident == SETTINGS_MAX_FRAME_SIZE:
                if not 16384 <= value <= 16777215:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad max frame size")
                self.peer_max_frame = value
            elif ident == SETTINGS_ENABLE_PUSH and value > 1:
                raise ConnectionError_(PROTOCOL_ERROR, "bad enable push")
        self.emit(frame(SETTINGS, FLAG_ACK, 0))
        self.flush_pending()

    def on_rst_stream(self, sid: int, payload: bytes) -> None:
        if not sid or len(payload) != 4:
            raise ConnectionError_(PROTOCOL_ERROR, "bad RST_STREAM")
        if sid > self.last_sid:
            raise ConnectionError_(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
        stream = self.streams.pop(sid, None)
        self.stream_windows.pop(sid, None)
        if stream is not None:
            self.site.stats.resets += 1
            if stream.timer is not None:
                stream.timer.cancel()
            self.maybe_finish_goaway()

    # Requests and answers.

    def request_complete(self, stream: Stream) -> None:
        method = path = authority = b""
        regular = []
        for name, value in stream.headers:
            if name[:1] == b":":
                if name == b":path":
                    path = value
                elif name == b":method":
                    method = value
                elif name == b":authority":
                    authority = value
            else:
                regular.append((name, value))
        if not path or not method:
            self.reset_stream(stream.sid, PROTOCOL_ERROR)
            return
        if not authority:
            for name, value in regular:
                if name == b"host":
                    authority = value
        self.requests += 1
        site = self.site
        faults = site.faults
        if faults.drop_after is not None and faults.take_drop(self.requests):
            self.drop()
            return
        body = stream.body
        request = Request(
            method,
            path,
            authority,
            regular,
            body[0] if len(body) == 1 else b"".join(body),
            self,
            stream.sid,
        )
        stream.body = []
        stream.headers = []
        try:
            result = site.handle(request)
        except Exception as exc:  # a bug in a fake must show, not hang the client
            self.loop.call_exception_handler(
                {"message": "fake handler failed", "exception": exc, "protocol": self}
            )
            result = Response(500, [], b"fake handler failed")
        if (
            faults.goaway_after is not None
            and not self.going_away
            and faults.take_goaway(self.requests)
        ):
            self.start_goaway(stream.sid)
        if isinstance(result, Response):
            self.dispatch(stream, result)
        else:
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda done: self.async_done(stream, done))

    def async_done(self, stream: Stream, task: asyncio.Future[Response]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        self.dispatch(stream, Response(500, [], repr(exc).encode()) if exc else task.result())

    def dispatch(self, stream: Stream, response: Response) -> None:
        if response.action != ANSWER:
            if response.action == DROP:
                self.drop()
            # HANG: the stream stays open until the client resets it or goes away.
            return
        if response.delay:
            stream.timer = self.loop.call_later(
                response.delay, self.send_response, stream, response
            )
            return
        self.send_response(stream, response)

    def send_response(self, stream: Stream, response: Response) -> None:
        sid = stream.sid
        if self.closed or self.streams.get(sid) is not stream:
            return
        stream.timer = None
        block = encode_response(response.status, response.headers)
        body = response.body
        end_flag = 0 if body else FLAG_END_STREAM
        max_frame = self.peer_max_frame
        if len(block) <= max_frame:
            self.emit(frame(HEADERS, FLAG_END_HEADERS | end_flag, sid, block))
        else:
            chunks = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
            self.emit(frame(HEADERS, end_flag, sid, chunks[0]))
            for chunk in chunks[1:-1]:
                self.emit(frame(CONTINUATION, 0, sid, chunk))
            self.emit(frame(CONTINUATION, FLAG_END_HEADERS, sid, chunks[-1]))
        if body:
            stream.pending = body
            self.pending_count += 1
            self.send_pending(stream)
        else:
            self.stream_done(stream)
        if response.deliver is not None:
            self.site.count_delivered(response.deliver)

    def send_pending(self, stream: Stream) -> None:
        body = stream.pending
        assert body is not None
        sid = stream.sid
        window = min(self.peer_window, self.stream_windows.get(sid, 0))
        sent = 0
        while sent < len(body) and window > 0:
            size = min(len(body) - sent, window, self.peer_max_frame)
            last = sent + size == len(body)
            self.emit(frame(DATA, FLAG_END_STREAM if last else 0, sid, body[sent : sent + size]))
            sent += size
            window -= size
            self.peer_window -= size
            self.stream_windows[sid] -= size
        if sent == len(body):
            stream.pending = None
            self.pending_count -= 1
            self.stream_done(stream)
        else:
            stream.pending = body[sent:]

    def flush_pending(self) -> None:
        if not self.pending_count:
            return
        # The count is only a hint (resets forget to lower it); recount from the streams.
        waiting = [s for s in self.streams.values() if s.pending is not None]
        self.pending_count = len(waiting)
        for stream in waiting:
            if self.peer_window <= 0:
                break
            self.send_pending(stream)

    def stream_done(self, stream: Stream) -> None:
        del self.streams[stream.sid]
        del self.stream_windows[stream.sid]
        if self.going_away:
            self.maybe_finish_goaway()

    def reset_stream(self, sid: int, code: int) -> None:
        stream = self.streams.pop(sid, None)
        self.stream_windows.pop(sid, None)
        if stream is not None and stream.timer is not None:
            stream.timer.cancel()
        self.emit(frame(RST_STREAM, 0, sid, _pack_u32(code)))

    # Faults and shutdown.

    def goaway_frame(self, last_sid: int, code: int, debug: bytes = b"") -> bytes:
        return frame(GOAWAY, 0, 0, _pack_u32(last_sid) + _pack_u32(code) + debug)

    def start_goaway(self, last_sid: int) -> None:
        """Stop at ``last_sid``: answer the streams at or below it, ignore those above, then
        send GOAWAY naming it and close.

        The GOAWAY goes out after those answers rather than before them: both orders are
        legal, but some clients (the ``h2`` package among them) treat a received GOAWAY as the
        end and fail on answers that follow it.
        """
        self.going_away = True
        self.goaway_sid = last_sid
        self.site.stats.goaways += 1
        for sid in [s for s in self.streams if s > last_sid]:
            stream = self.streams.pop(sid)
            self.stream_windows.pop(sid, None)
            if stream.timer is not None:
                stream.timer.cancel()
            self.site.stats.ignored_after_goaway += 1
        # Streams held by a delay or a hang must not keep the client uninformed for long.
        self.loop.call_later(GOAWAY_GRACE, self.send_goaway)
        self.maybe_finish_goaway()

    def send_goaway(self) -> None:
        if self.goaway_sent or self.closed:
            return
        self.goaway_sent = True
        self.emit(self.goaway_frame(self.goaway_sid, self.site.faults.goaway_code))

    def maybe_finish_goaway(self) -> None:
        if self.going_away and not self.streams and not self.closed:
            self.send_goaway()
            if self.batch is not None:
                # Inside data_received: close once this batch has been written.
                self.loop.call_soon(self.close)
            else:
                self.close()

    def drop(self) -> None:
        """Close the TCP connection at once: no GOAWAY, no answer, no TLS close_notify."""
        if self.closed:
            return
        self.site.stats.drops += 1
        if self.batch:
            self.transport.write(b"".join(self.batch))
        self.batch = None
        self.closed = True
        self.cancel_timers()
        self.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        if self.batch:
            self.transport.write(b"".join(self.batch))
            self.batch = []
        self.closed = True
        self.cancel_timers()
        self.transport.close()

    def cancel_timers(self) -> None:
        for stream in self.streams.values():
            if stream.timer is not None:
                stream.timer.cancel()
        self.streams.clear()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.cancel_timers()
        self.site.connections.discard(self)
