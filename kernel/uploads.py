"""Streaming ``multipart/form-data`` reading: the file part of an upload arrives as an async byte
stream straight from the socket, never gathered in memory or spooled to a temporary file. Every
upload route reads its file this way (attachments, plugin packages); declare the body in
``/openapi.json`` with ``Route(body_content=file_upload())``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from kernel.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

ENVELOPE_ALLOWANCE = 64 * 1024
"""Bytes of multipart framing and small fields tolerated on top of the file size limit."""

Event = tuple[str, Any]


class _Collector:
    """python-multipart callbacks recording what one ``write`` found, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self._name.lower()] = self._value
        self._name = self._value = b""

    def on_headers_finished(self) -> None:
        self.events.append(("part", self.headers))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", data[start:end]))

    def on_part_end(self) -> None:
        self.events.append(("end", None))


def _decode(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class MultipartFile:
    """The first part named ``field`` that carries a filename, read as a stream.

    Use :meth:`open` (which reads up to the part's headers), then iterate :meth:`chunks` once.
    """

    def __init__(self, events: AsyncIterator[Event], filename: str, declared_type: str | None) -> None:
        self._events = events
        self.filename = filename
        self.declared_type = declared_type

    @classmethod
    async def open(cls, request: Request, field: str, max_file_bytes: int) -> MultipartFile:
        """Start reading ``request``'s body: 415 unless it is multipart/form-data, 400 if malformed,
        413 if it declares more than the limit allows, 422 if no file part named ``field`` exists."""
        content_type, params = parse_options_header(request.headers.get("content-type"))
        if content_type != b"multipart/form-data":
            raise UnsupportedMediaType(f"expected multipart/form-data with a {field!r} file part")
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("the multipart body declares no boundary", slug="malformed-multipart")
        limit = max_file_bytes + ENVELOPE_ALLOWANCE
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the file is limited to {max_file_bytes} bytes", limit=max_file_bytes)
        events = _parse(request, boundary, limit, max_file_bytes)
        async for kind, value in events:
            if kind != "part":
                continue
            _, options = parse_options_header(value.get(b"content-disposition"))
            if options.get(b"name") == field.encode() and b"filename" in options:
                declared_type = value.get(b"content-type")
                return cls(events, _decode(options[b"filename"]), _decode(declared_type) if declared_type else None)
        raise ValidationFailed(
            f"the multipart body has no file part named {field!r}",
            errors=[{"loc": ["body", field], "msg": "Field required", "type": "missing"}],
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; the rest of the body is read (and ignored) afterwards."""
        async for kind, value in self._events:
            if kind == "data":
                if value:
                    yield value
            elif kind == "end":
                break
        async for _ in self._events:
            pass


async def _parse(request: Request, boundary: bytes, limit: int, max_file_bytes: int) -> AsyncIterator[Event]:
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"the file is limited to {max_file_bytes} bytes", limit=max_file_bytes)
            parser.write(chunk)
            for event in collector.events:
                yield event
            collector.events.clear()
        parser.finalize()
    except FormParserError as exc:
        raise BadRequest(f"malformed multipart body: {exc}", slug="malformed-multipart") from None
    for event in collector.events:
        yield event
