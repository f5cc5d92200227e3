"""Request limits of the labelling app: body size, requests in flight, and a rate per token.

An ASGI middleware in front of the FastAPI app, so the same limits hold in every front end
(the feedback actor's server, ``rlhp label``, Ray Serve). It answers before the app reads
or parses anything:

- **413** when a body is larger than ``max_body_bytes`` (a declared ``Content-Length`` is
  refused unread; a chunked body is read only up to the limit). The API's bodies are a few
  hundred bytes of JSON.
- **401** for an API call without a bearer token, body unread.
- **429** when ``max_concurrent`` requests are already in flight, or when a token sends more
  than ``rate_per_s`` requests per second sustained (bursts of ``burst`` allowed), with a
  ``Retry-After`` header.

Every refusal is JSON ``{"error": "..."}``, like the app's own errors. The limits are per
process: each front end keeps its own counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from rlhp.feedback_app.config import FeedbackConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_TRACKED_TOKENS = 10_000  # token buckets kept (least recently used dropped first)


@dataclass(frozen=True)
class RequestLimits:
    """The limits (defaults: ``FeedbackConfig``'s). ``rate_per_s=0`` turns rate limiting off."""

    max_body_bytes: int = 16_384
    max_concurrent: int = 64
    rate_per_s: float = 10.0
    burst: int = 60

    @classmethod
    def from_config(cls, cfg: FeedbackConfig) -> RequestLimits:
        return cls(
            max_body_bytes=cfg.max_body_bytes,
            max_concurrent=cfg.max_concurrent_requests,
            rate_per_s=cfg.rate_limit_per_s,
            burst=cfg.rate_limit_burst,
        )


class TokenBuckets:
    """One token bucket per key: ``burst`` requests at once, refilled at ``rate_per_s``."""

    def __init__(
        self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate_per_s, float(burst), clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # level, time

    def take(self, key: str) -> float:
        """0.0 if ``key`` may send a request now (and count it), else seconds to wait."""
        now = self.clock()
        level, then = self._buckets.pop(key, (self.burst, now))
        level = min(self.burst, level + (now - then) * self.rate)
        wait = 0.0 if level >= 1.0 else (1.0 - level) / self.rate
        self._buckets[key] = (level - 1.0 if wait == 0.0 else level, now)
        if len(self._buckets) > _MAX_TRACKED_TOKENS:
            self._buckets.popitem(last=False)
        return wait


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _refuse(send: Send, status: int, message: str, retry_after_s: float = 0.0) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after_s > 0:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after_s))).encode()))
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is never read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    """Wraps an ASGI app with :class:`RequestLimits` (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, limits: RequestLimits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app, self.limits = app, limits
        self.buckets = TokenBuckets(limits.rate_per_s, limits.burst, clock)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lim = self.limits
        if self.in_flight >= lim.max_concurrent:
            await _refuse(
                send,
                429,
                f"the labelling app is busy ({self.in_flight} requests in flight, the limit "
                "feedback.max_concurrent_requests); try again in a second",
                1.0,
            )
            return
        self.in_flight += 1
        try:
            await self._limited(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        lim = self.limits
        too_big = (
            f"request body over {lim.max_body_bytes} bytes (feedback.max_body_bytes); the "
            "labelling API takes small JSON bodies"
        )
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > lim.max_body_bytes):
            await _refuse(send, 413, too_big)
            return
        if "/api/" in scope.get("path", ""):
            token = _bearer(scope)
            if token is None:
                await _refuse(
                    send,
                    401,
                    "missing labeller token: open the link the run gave you (…/#token=…) or "
                    "send `Authorization: Bearer <token>`",
                )
                return
            if lim.rate_per_s > 0:
                key = hashlib.sha256(token.encode()).hexdigest()[:32]
                wait = self.buckets.take(key)
                if wait > 0:
                    await _refuse(
                        send,
                        429,
                        f"too many requests for this labeller token (at most "
                        f"{lim.rate_per_s:g}/s, bursts of {lim.burst}: "
                        f"feedback.rate_limit_per_s); try again in {wait:.1f} s",
                        wait,
                    )
                    return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > lim.max_body_bytes:
                await _refuse(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then the connection's own."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
