"""Hostile input stopped at the edge, before any route sees it: one place, every route.

PostgreSQL cannot store a NUL character in text, Python's JSON parser recurses once per
level of nesting, and a lone UTF-16 surrogate cannot be encoded for the database: each used
to surface as a 500 wherever such a value reached SQL. Here:

- a NUL in the path, the query string or a header value is refused at once (400);
- a request body is inspected as it streams to the route: a JSON body (once complete) may
  nest at most ``MAX_JSON_DEPTH`` levels and hold no NUL or unpaired surrogate in any key
  or string; a form body (urlencoded, or the text fields and file names of a multipart
  one; file contents are data) holds no NUL. A body a route never reads is never inspected.

Refusals are ``{code, message, details}`` with status 400, codes ``nul_character``,
``json_too_deep`` and ``bad_unicode``. Under a prefix with its own error format (Open311)
the app passes a renderer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.http.asgi import refuse_while_reading

# JSON bodies of this API nest at most a handful of levels (a batch of points: 3).
MAX_JSON_DEPTH = 32

# Renders a refusal under a path prefix: (status, code, message, path) → response.
Renderer = Callable[[int, str, str, str], Response]


class GuardError(HTTPException):
    """Hostile input found; an HTTPException so that FastAPI's body parsing passes it on."""

    def __init__(self, code: str, message: str, where: str) -> None:
        super().__init__(status_code=400, detail=message)
        self.code = code
        self.where = where


def _nul(where: str) -> GuardError:
    return GuardError(
        "nul_character",
        f"The {where} holds a NUL character (U+0000), which no field accepts; remove it.",
        where,
    )


def _query_nul(query: bytes) -> GuardError:
    """Name the query parameter that holds the NUL, so the message says what to fix."""
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return _nul(f"query parameter {key.replace(chr(0), '')!r}")
    return _nul("query string")


def check_scope(scope: Scope) -> GuardError | None:
    """A NUL in the path, the query string or a header value."""
    raw_path = scope.get("raw_path") or b""
    if "\x00" in scope.get("path", "") or b"%00" in raw_path:
        return _nul("URL path")
    query = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return _query_nul(query)
    for name, value in scope.get("headers", []):
        if b"\x00" in value or b"\x00" in name:
            return _nul(f"header {name.decode('latin-1', 'replace')!r}")
    return None


# ---- JSON ---------------------------------------------------------------------------------
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _DEPTH_STEP)


# A JSON string: quotes around anything but quote and backslash, or an escaped character
# (the unrolled form keeps the regular expression engine linear).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(_DEPTH_STEP[b] for b in brackets))


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_json(body: bytes) -> GuardError | None:
    """Too deep, or a NUL or unpaired surrogate in a key or string; None when clean (or not
    JSON at all: the route's own parser answers that)."""
    if b"\x00" in body:
        return _nul("JSON body")
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        return GuardError(
            "json_too_deep",
            f"The JSON body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted.",
            "JSON body",
        )
    if b"\\u" not in body:
        return None  # no escape: the bytes are already checked
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    for text in _strings(value):
        if "\x00" in text:
            return _nul("JSON body")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return GuardError(
                "bad_unicode",
                "The JSON body holds an unpaired UTF-16 surrogate (such as \\ud800), which is "
                "not a character; send valid Unicode.",
                "JSON body",
            )
    return None


# ---- forms --------------------------------------------------------------------------------
class _MultipartScan:
    """Scans a multipart body as it streams: NUL in a text field or in a part's headers."""

    def __init__(self, boundary: bytes) -> None:
        self.found: GuardError | None = None
        self._header = bytearray()
        self._headers: list[bytes] = []
        self._text_part = False
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_data,
                "on_header_value": self._header_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
            },
        )

    def _begin(self) -> None:
        self._headers.clear()
        self._text_part = False

    def _header_data(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_end(self) -> None:
        self._headers.append(bytes(self._header))
        self._header.clear()

    def _headers_done(self) -> None:
        disposition = b""
        for line in self._headers:
            if b"\x00" in line or b"%00" in line:
                self.found = self.found or _nul("name of a form field or file")
            if line.lower().startswith(b"content-disposition"):
                disposition = line.partition(b":")[2] if b":" in line else line[19:]
        _, options = parse_options_header(disposition.strip())
        self._text_part = b"filename" not in options and b"filename*" not in options

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._text_part and data.find(b"\x00", start, end) >= 0:
            self.found = self.found or _nul("form field")

    def feed(self, chunk: bytes) -> GuardError | None:
        try:
            self.parser.write(chunk)
        except Exception:
            self.parser = None  # type: ignore[assignment]
        return self.found


class _BodyCheck:
    """Inspects one request body chunk by chunk; ``feed`` returns a refusal or None."""

    def __init__(self, content_type: bytes) -> None:
        media, options = parse_options_header(content_type)
        media = media.lower()
        self.kind: str | None = None
        self._chunks: list[bytes] = []
        self._tail = b""
        self._multipart: _MultipartScan | None = None
        if media == b"application/json" or media.endswith(b"+json"):
            self.kind = "json"
        elif media == b"application/x-www-form-urlencoded":
            self.kind = "urlencoded"
        elif media == b"multipart/form-data" and options.get(b"boundary"):
            self.kind = "multipart"
            self._multipart = _MultipartScan(options[b"boundary"])

    def feed(self, chunk: bytes, more: bool) -> GuardError | None:
        if self.kind == "json":
            self._chunks.append(chunk)
            return None if more else check_json(b"".join(self._chunks))
        if self.kind == "urlencoded":
            window = self._tail + chunk  # '%00' may straddle two chunks
            self._tail = window[-2:]
            if b"\x00" in window or b"%00" in window:
                return _nul("form")
            return None
        if self._multipart is not None and self._multipart.parser is not None:
            return self._multipart.feed(chunk)
        return None


def _default_renderer(status: int, code: str, message: str, path: str) -> Response:
    from gis_service.http.errors import error_body

    return JSONResponse(error_body(code, message), status_code=status)


class InputGuardMiddleware:
    """The edge check of every request (see the module docstring)."""

    def __init__(self, app: ASGIApp, renderers: dict[str, Renderer] | None = None) -> None:
        self.app = app
        self.renderers = sorted((renderers or {}).items(), key=lambda kv: -len(kv[0]))

    def render(self, error: GuardError, path: str) -> Response:
        """The refusal in the format of the path's API."""
        for prefix, renderer in self.renderers:
            if path.startswith(prefix):
                return renderer(error.status_code, error.code, str(error.detail), path)
        return _default_renderer(error.status_code, error.code, str(error.detail), path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        problem = check_scope(scope)
        if problem is not None:
            await self.render(problem, path)(scope, receive, send)
            return
        content_type = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"")
        check = _BodyCheck(content_type) if content_type else None  # no type: not inspected
        if check is None or check.kind is None:
            await self.app(scope, receive, send)
            return

        async def checked_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                found = check.feed(message.get("body", b""), message.get("more_body", False))
                if found is not None:
                    raise found
            return message

        async def refuse(exc: Exception) -> None:
            assert isinstance(exc, GuardError)
            await self.render(exc, path)(scope, receive, send)

        await refuse_while_reading(self.app, scope, checked_receive, send, GuardError, refuse)
