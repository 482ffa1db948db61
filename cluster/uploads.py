"""Streaming a multipart upload straight to its staging files, under a size limit.

The body is parsed as it arrives (python-multipart's parser), so no part is
spooled anywhere first, and the limit holds whatever Content-Length says: a
chunked body has none. The parser's file work (open, write, close, unlink) runs
in a worker thread, a batch of chunks at a time: on slow shared storage a write
that stalls holds this upload only, not the replica's event loop (and every
other request on it, /predict included).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from train_jobs.errors import BadDataset, InvalidParameters, TooLarge

MiB = 1 << 20
FORM_OVERHEAD = MiB  # part headers and boundaries, on top of the files themselves
MAX_HEADER_BYTES = 16 << 10
MAX_FIELD_BYTES = 4 << 10  # a plain form field's value (a dataset URI)
WRITE_BATCH = 128 << 10  # body bytes handed to the writing thread at once: few hops, the limits still near
# field -> where its file goes, given the client's file name
Destinations = dict[str, Callable[[str], Path]]


@dataclass
class UploadStream:
    """A request body as it arrives: its Content-Type header and its chunks."""

    content_type: str
    chunks: AsyncIterator[bytes]


def body_limit(limit_bytes: int, files: int) -> int:
    """The most a multipart body carrying `files` files of at most `limit_bytes` each may hold."""
    return files * limit_bytes + FORM_OVERHEAD


class _Parts:
    """python-multipart's callbacks: each part named in `dest` is written to its file as its bytes come."""

    def __init__(self, dest: Destinations, limit_bytes: int, setting: str, values: tuple[str, ...] = ()):
        self.dest, self.limit_bytes, self.setting = dest, limit_bytes, setting
        self.saved: dict[str, tuple[Path, str]] = {}
        self.wanted = set(values or ())  # plain fields kept (a dataset URI), as bytes until the body ends
        self.values: dict[str, bytearray] = {}
        self._value_of: Optional[str] = None
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._name = self._value = b""
        self._field: Optional[str] = None
        self._out: Optional[BinaryIO] = None
        self._size = 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._close, "on_end": self._end}

    def too_large(self, what: str, limit_bytes: Optional[int] = None) -> TooLarge:
        limit = f"{(limit_bytes or self.limit_bytes) / MiB:g} MiB"
        return TooLarge(f"{what}: larger than the {limit} upload limit" +
                        (f" for {len(self.dest)} files of {self.limit_bytes / MiB:g} MiB" if limit_bytes else "") +
                        f"; raise {self.setting} in the server config or upload a smaller file")

    def _begin(self) -> None:
        self._headers, self._field, self._size, self._value_of = {}, None, 0, None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]
        self._check_header()

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._check_header()

    def _check_header(self) -> None:
        if len(self._name) + len(self._value) > MAX_HEADER_BYTES:
            raise BadDataset(f"a multipart part header is longer than {MAX_HEADER_BYTES} bytes")

    def _header_end(self) -> None:
        self._headers[self._name.strip().lower()] = self._value.strip()
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        field = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        if field in self.wanted and not filename:
            self._value_of = field
            self.values[field] = bytearray()
            return
        if field not in self.dest or not filename:  # a plain field, an empty file input or a part not asked for
            return
        if field in self.saved:
            raise BadDataset(f"{field} was sent twice; send each file once")
        path = self.dest[field](filename)
        self._out = open(path, "wb")
        self._field = field
        self.saved[field] = (path, filename)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._value_of is not None:
            self.values[self._value_of] += data[start:end]
            if len(self.values[self._value_of]) > MAX_FIELD_BYTES:
                raise BadDataset(f"{self._value_of}: longer than {MAX_FIELD_BYTES} bytes")
            return
        if self._out is None:
            return  # read and dropped: the whole body's limit still counts it
        self._size += end - start
        if self._size > self.limit_bytes:
            raise self.too_large(self._field)
        self._out.write(data[start:end])

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _end(self) -> None:
        self.ended = True

    def discard(self) -> None:
        self._close()
        for path, _ in self.saved.values():
            path.unlink(missing_ok=True)


def _boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise InvalidParameters("send the files as a multipart/form-data body (curl -F field=@file)")
    return options[b"boundary"]


async def save_parts(body: UploadStream, dest: Destinations, limit_bytes: int, setting: str = "max_upload_mb",
                     required: tuple[str, ...] = (), values: Optional[dict[str, str]] = None
                     ) -> dict[str, tuple[Path, str]]:
    """Write the file parts named in `dest` to their paths as the body streams in; returns field -> (path, the
    client's file name). The plain fields named by `values`' keys are kept there (values sent are filled in, the
    others removed). Past `limit_bytes` in one file, or past what the files may take together in the whole
    body, reading stops with 413 naming the server `setting`. Any failure leaves no file behind."""
    parts = _Parts(dest, limit_bytes, setting, tuple(values or ()))
    parser = MultipartParser(_boundary(body.content_type), parts.callbacks())
    budget, seen = body_limit(limit_bytes, len(dest)), 0
    loop = asyncio.get_running_loop()
    pending: list[bytes] = []
    batched = 0
    writing: Optional[asyncio.Future] = None

    async def feed(last: bool = False) -> None:
        nonlocal writing, pending, batched
        # Shielded: a cancelled request does not cancel the write under way, which the clean-up then waits for.
        writing = loop.run_in_executor(None, _feed, parser, pending, last)
        pending, batched = [], 0
        await asyncio.shield(writing)

    try:
        async for chunk in body.chunks:
            seen += len(chunk)
            if seen > budget:
                raise parts.too_large("the request body", budget)
            pending.append(chunk)
            batched += len(chunk)
            if batched >= WRITE_BATCH:
                await feed()
        await feed(last=True)
        if not parts.ended:
            raise BadDataset("the multipart body ended before its closing boundary; send it again")
        if values is not None:
            values.clear()
            values.update({k: bytes(v).decode("utf-8", "replace") for k, v in parts.values.items()})
        for field in required:
            if field not in parts.saved:
                raise InvalidParameters(f"{field}: no file given; send it as multipart form field '{field}'",
                                        field=field)
    except MultipartParseError as e:
        await _discard(parts, writing)
        raise BadDataset(f"the multipart body could not be read: {e}") from None
    except BaseException:
        await asyncio.shield(_discard(parts, writing))  # a cancelled request leaves no file either
        raise
    return parts.saved


async def _discard(parts: _Parts, writing: Optional[asyncio.Future]) -> None:
    """Remove what the upload wrote, once the thread's last write has ended (it could open a file after)."""
    if writing is not None:
        await asyncio.wait([writing])
    await asyncio.to_thread(parts.discard)


def _feed(parser: MultipartParser, chunks: list[bytes], last: bool = False) -> None:
    """Parse `chunks` (the parts' callbacks open and write their files), in the writing thread."""
    for chunk in chunks:
        parser.write(chunk)
    if last:
        parser.finalize()


def staged_name(stem: str, filename: Optional[str]) -> str:
    """A safe file name for a staged upload: the stem, with the client's suffix only when it is a short
    plain one (the format is read from the client's name separately)."""
    suffix = Path(filename or "").suffix.lower()
    return stem + (suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ".upload")


def staged_path(staging: Path, split: str, filename: Optional[str]) -> Path:
    """Where a split's uploaded file is staged."""
    return staging / staged_name(split, filename)
