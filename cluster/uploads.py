"""Streaming an uploaded file to the staging folder, with a size limit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Protocol

from train_jobs.errors import BadDataset, TooLarge

CHUNK = 1 << 20


class Upload(Protocol):
    """A file part of a multipart request (Starlette's UploadFile is one)."""

    filename: Optional[str]

    async def read(self, size: int = -1) -> bytes: ...


async def save_upload(upload: Upload, dest: Path, field: str, limit_bytes: int,
                      setting: str = "max_upload_mb") -> Path:
    """Copy `upload` to `dest` chunk by chunk; refuse it once it passes `limit_bytes` (the server `setting`),
    leaving nothing behind."""
    if not upload.filename:
        raise BadDataset(f"{field}: no file given; send it as multipart form field '{field}'")
    size = 0
    try:
        with open(dest, "wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit_bytes:
                    raise TooLarge(f"{field}: larger than the {limit_bytes // (1024 * 1024)} MiB upload limit; "
                                   f"raise {setting} in the server config or upload a smaller file")
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def staged_name(stem: str, filename: Optional[str]) -> str:
    """A safe file name for a staged upload: the stem, with the client's suffix only when it is a short
    plain one (the format is read from the client's name separately)."""
    suffix = Path(filename or "").suffix.lower()
    return stem + (suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ".upload")
