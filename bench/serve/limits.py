"""Request limits on every endpoint, as ASGI middleware in front of the app.

- token: an upload's token is checked first (one indexed lookup), so a client without a valid
  one gets its 401/403 before it may take an upload slot or send a byte of its body; the
  token's id reaches the app as request.state.upload_token_id;
- size: an upload body may hold max_body_bytes, any other request's body max_other_body_bytes;
  counted while it streams in, whatever Content-Length claims (413);
- time: the whole body must arrive within body_timeout_s (408), so a client trickling bytes
  cannot hold a connection and a worker;
- concurrency: at most max_concurrent_uploads uploads, with bodies of at most
  max_upload_bytes_in_flight together (Content-Length, or max_body_bytes when not declared), are
  read, checked and stored at once; more get 429 with Retry-After (the upload client waits and
  retries). A checked row takes several times its CSV size, so this bounds the server's memory;
  one upload is always let in;
- memory: before the response to a large upload (LARGE_BODY_BYTES) ends, when no other upload
  is in flight, and once uploads have stopped for IDLE_RELEASE_S, the collector runs and
  glibc's malloc_trim hands freed heap back to the system, so the server shrinks back towards
  its idle size after a burst of uploads too (never during one: a collection walks every
  object of the heap while the uploads in flight wait).

The body is read here, before the app runs, and replayed to it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LARGE_BODY_BYTES = 2_000_000  # after an upload this big, give memory back
IDLE_RELEASE_S = 0.5  # give memory back when no upload has run for this long


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10_000_000
    max_other_body_bytes: int = 65_536
    body_timeout_s: float = 60.0
    max_concurrent_uploads: int = 16
    max_upload_bytes_in_flight: int = 32_000_000
    upload_paths: frozenset[str] = frozenset({"/api/results", "/api/quality"})


class _TooSlow(Exception):
    pass


class _TooBig(Exception):
    pass


class RequestLimits:
    """ASGI middleware enforcing `Limits` (see the module docstring)."""

    def __init__(self, app: Callable[..., Awaitable[None]], limits: Limits,
                 authorise_upload: Callable[[str | None], int | None]) -> None:
        """authorise_upload: an upload's Authorization header -> its token id, or raises
        HttpProblem (bench/serve/security.py `authorise`); it runs in a thread."""
        self.app = app
        self.limits = limits
        self.authorise_upload = authorise_upload
        self.uploads_in_flight = 0
        self.upload_bytes_in_flight = 0
        self.uploads_seen = 0  # uploads begun; an idle release checks none began meanwhile
        self.released_at = 0  # uploads_seen when memory was last given back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lim = self.limits
        upload = scope["method"] == "POST" and scope["path"] in lim.upload_paths
        if upload:
            from starlette.concurrency import run_in_threadpool

            from bench.serve.security import BASE_HEADERS, HttpProblem

            try:
                token_id = await run_in_threadpool(self.authorise_upload,
                                                   _header(scope, b"authorization"))
            except HttpProblem as refused:
                await _answer(send, refused.status, refused.errors[0].message,
                              {**BASE_HEADERS, **refused.headers, "Connection": "close"})
                return
            scope.setdefault("state", {})["upload_token_id"] = token_id
        limit = lim.max_body_bytes if upload else lim.max_other_body_bytes
        declared = _header(scope, b"content-length")
        size = int(declared) if declared is not None and declared.isdigit() else None
        too_big = (f"the upload is larger than {limit} bytes; split the file" if upload else
                   f"this request's body is larger than {limit} bytes")
        if size is not None and size > limit:
            await _answer(send, 413, too_big, {"Connection": "close"})
            return
        reserved = (limit if size is None else size) if upload else 0
        if upload and self.uploads_in_flight and (
                self.uploads_in_flight >= lim.max_concurrent_uploads
                or self.upload_bytes_in_flight + reserved > lim.max_upload_bytes_in_flight):
            await _answer(send, 429, "too many uploads are in progress; retry shortly",
                          {"Retry-After": "1", "Connection": "close"})
            return
        self.uploads_in_flight += upload
        self.upload_bytes_in_flight += reserved
        self.uploads_seen += upload
        try:
            try:
                body, disconnected = await _read_body(receive, limit, lim.body_timeout_s)
            except _TooBig:
                await _answer(send, 413, too_big, {"Connection": "close"})
                return
            except _TooSlow:
                await _answer(send, 408, f"the request body did not arrive within "
                                         f"{lim.body_timeout_s:g} s; send it at once",
                              {"Connection": "close"})
                return
            if disconnected:
                return
            if len(body) >= LARGE_BODY_BYTES:
                send = _releasing(send, lambda: self.uploads_in_flight <= 1)
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.uploads_in_flight -= upload
            self.upload_bytes_in_flight -= reserved
            if upload and not self.uploads_in_flight:
                seen = self.uploads_seen
                asyncio.get_running_loop().call_later(IDLE_RELEASE_S, self._release_if_idle,
                                                      seen)

    def _release_if_idle(self, seen: int) -> None:
        """Memory back once uploads stopped: none began since `seen`, none is running."""
        if self.uploads_seen == seen and not self.uploads_in_flight and self.released_at != seen:
            self.released_at = seen
            asyncio.get_running_loop().run_in_executor(None, release_memory)


async def _read_body(receive: Receive, limit: int, timeout_s: float) -> tuple[bytes, bool]:
    """(body, disconnected): the whole body within `limit` bytes and `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TooSlow
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except asyncio.TimeoutError:
            raise _TooSlow from None
        if message["type"] == "http.disconnect":
            return b"", True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooBig
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # the disconnect, whenever it comes
    return replay


def _releasing(send: Send, alone: Callable[[], bool]) -> Send:
    """`send` that gives memory back just before the response ends, if `alone()` (no other
    upload is in flight): the handler has returned by then, so what it built is garbage, and
    the client sees the smaller server."""
    async def wrapped(message: Message) -> None:
        if (message["type"] == "http.response.body" and not message.get("more_body", False)
                and alone()):
            await asyncio.get_running_loop().run_in_executor(None, release_memory)
        await send(message)
    return wrapped


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


async def _answer(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps({"errors": [{"line": None, "column": None, "message": message}]}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in
            {"X-Content-Type-Options": "nosniff", **headers}.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim") if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_release_lock = threading.Lock()


def release_memory() -> None:
    """Frees what a large upload left behind and returns it to the system where libc can;
    skipped while another thread is already doing it."""
    if not _release_lock.acquire(blocking=False):
        return
    try:
        gc.collect()
        trim = _malloc_trim()
        if trim is not None:
            trim(0)
    finally:
        _release_lock.release()
