"""The request body limit (``ApiSettings.max_body_bytes``, 1 MiB) for every endpoint:
a body declared larger (``Content-Length``) is answered 413 before it is read; one that
turns out larger while read (chunked) stops the read with the same 413 (``too_large``),
so no handler ever holds more than the limit in memory."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intercloud.api.errors import ApiError, ErrorCode, error_response


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        text = f"request body over {self.limit} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            from starlette.requests import Request

            request = Request(scope)
            await error_response(ApiError(ErrorCode.TOO_LARGE, text), request)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # an HTTPException: FastAPI's body parsing lets it through as it is
                    raise HTTPException(413, text)
            return message

        await self.app(scope, counted, send)
