"""Streaming an uploaded file to the staging folder, with a size limit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol

from train_jobs.errors import BadDataset, TooLarge

CHUNK = 1 << 20


class Upload(Protocol):
    """A file part of a multipart request (Starlette's UploadFile is one)."""

    filename: Optional[str]

    async def read(self, size: int = -1) -> bytes: ...


async def save_upload(upload: Upload, dest: Path, field: str, limit_bytes: int) -> Path:
    """Copy `upload` to `dest` chunk by chunk; refuse it once it passes `limit_bytes`."""
    if not upload.filename:
        raise BadDataset(f"{field}: no file given; send it as multipart form field '{field}'")
    size = 0
    with open(dest, "wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit_bytes:
                raise TooLarge(f"{field}: larger than the {limit_bytes // (1024 * 1024)} MiB upload limit; "
                               "raise max_upload_mb in the server config or upload a smaller file")
            out.write(chunk)
    return dest
