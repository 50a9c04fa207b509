"""The ASGI guard in front of the app: API key, body size and body timeout, before any route runs."""

from __future__ import annotations

import asyncio
import json
import secrets

OPEN_PATHS = ("/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
KEY_MESSAGE = "missing or wrong API key: send it in the X-API-Key header"


class RequestGuard:
    """ASGI middleware in front of the app: the API key (when set; every path but OPEN_PATHS) is checked
    before any of the body is read, then bodies over `max_bytes` get 413 (on Content-Length and as read)
    and a body that stalls gets 408. A plain ASGI layer costs less per request than a FastAPI dependency."""

    def __init__(self, app, max_bytes: int, timeout_s: float | None = None, api_key: str | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s  # a client that stalls mid-body gets 408 instead of holding the request forever
        self.api_key = None if api_key is None else api_key.encode()

    async def _reply(self, send, status: int, detail: str, close: bool = False):
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + ([(b"connection", b"close")] if close else [])})
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send, size):
        await self._reply(send, 413, f"request body of {size} bytes is over the limit of {self.max_bytes} "
                                     f"(limits.max_body_bytes); send fewer vectors per request", close=True)

    async def _timed_out(self, send, total):
        await self._reply(send, 408, f"request body incomplete after {self.timeout_s} s ({total} bytes received; "
                                     f"limits.body_timeout_s)", close=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        if self.api_key is not None and scope.get("path") not in OPEN_PATHS:
            given = next((v for k, v in headers if k == b"x-api-key"), None)
            if given is None or not secrets.compare_digest(given, self.api_key):
                # refused before its body is read: close, so a client cannot hold the connection with a slow body
                return await self._reply(send, 401, KEY_MESSAGE, close=True)
        for k, v in headers:
            if k == b"content-length" and v.isdigit() and int(v) > self.max_bytes:
                return await self._too_large(send, int(v))
        chunks, total = [], 0
        while True:
            try:
                msg = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                return await self._timed_out(send, total)
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                return await self._too_large(send, f"at least {total}")
            if not msg.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
