"""Request bodies: refused over the configured size, and always read as JSON.

Every body of the API is JSON, so a client that sends none or another content type (curl's
form default, say) is answered as if it had said ``application/json``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushserver.api.handlers import error_response


class JsonBodies:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return

        # Read the body up front so a stream without a length is held to the same limit.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)

        body = b"".join(chunks)
        if body:
            scope = dict(scope)
            scope["headers"] = [
                (name, value) for name, value in scope["headers"] if name != b"content-type"
            ] + [(b"content-type", b"application/json")]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "ERROR_PAYLOAD_TOO_LARGE",
            f"the request body is over the limit of {self.max_body_bytes} bytes",
        )
        await response(scope, receive, send)
