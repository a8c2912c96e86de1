"""What one client can make the server store: every request body is capped in bytes (one upload and its
form, never a thousand files), and uploads are refused while the app's folder is over its byte budget, so
that an exposed app cannot fill the disk. An ASGI middleware, given to gradio's FastAPI app at launch."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from .uploads import MAX_UPLOAD_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 256 * 1024  # one file at the upload cap plus its multipart form
FOLDER_BYTES = 512 * 1024 * 1024  # uploads wait while the app's files (uploads, results) take more than this


class TooLarge(Exception):
    """A request body went over the cap while it streamed in."""


def folder_bytes(folder: Path) -> int:
    """The bytes of the regular files in `folder` and its sub-folders (gradio's layout: <folder>/<hash>/<name>)."""
    total, todo = 0, [folder]
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:  # deleted meanwhile by the cache cleaner
                continue
    return total


class RequestLimit:
    """ASGI middleware: 413 for a request body over `max_bytes` (announced or streamed), 507 for an upload
    while `folder` holds more than `budget` bytes."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], folder: Path,
                 max_bytes: int = MAX_REQUEST_BYTES, budget: int = FOLDER_BYTES) -> None:
        self.app, self.folder, self.max_bytes, self.budget = app, folder, max_bytes, budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            await _refuse(send, 413, f"request body over the limit of {self.max_bytes:,} bytes: upload one image "
                                     f"of at most {MAX_UPLOAD_BYTES // 1024 // 1024} MB at a time")
            return
        if scope["path"].rstrip("/").endswith("/upload") and folder_bytes(self.folder) > self.budget:
            await _refuse(send, 507, "the server's space for uploads is full; try again in a few minutes")
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except TooLarge:
            if started:
                raise
            await _refuse(send, 413, f"request body over the limit of {self.max_bytes:,} bytes")


async def _refuse(send: Send, status: int, text: str) -> None:
    """A plain-text error response."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": text.encode()})
