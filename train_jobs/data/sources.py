"""Datasets by URI: each split's URI parsed and checked before anything is read.

A URI names a file or a folder of shards in one of the stores the server reaches
(s3://, gs://, hf://datasets/..., or file:// under the configured data roots).
Credentials never come in a URI: each store reads them from the server's own
environment (the AWS or Google credential chain, HF_TOKEN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict

from train_jobs.errors import BadDataset, Forbidden
from train_jobs.files import is_inside

Scheme = Literal["s3", "gs", "hf", "file"]
SCHEMES = ("s3", "gs", "hf", "file")
URI_SPLITS = ("train", "test", "validation")  # validation is optional
FORMS = "s3://bucket/path, gs://bucket/path, hf://datasets/<org>/<name>[/<file>] or file:///path"


class DataSource(BaseModel):
    """One split's source: the URI as given, and the path its store's filesystem takes."""

    model_config = ConfigDict(frozen=True)

    field: str  # the form field it came in (train_uri), for the errors
    uri: str
    scheme: Scheme
    path: str  # bucket/key (s3, gs), datasets/<org>/<name>/... (hf), an absolute path (file)

    def shard_uri(self, path: str) -> str:
        """The URI of one shard under this source, as errors name it."""
        return f"file://{path}" if self.scheme == "file" else f"{self.scheme}://{path}"


def _bad(field: str, uri: str, problem: str) -> BadDataset:
    return BadDataset(f"{field} {uri}: {problem}")


def parse_uri(field: str, uri: str, data_roots: list[str]) -> DataSource:
    """The checked source for `uri`; 400 for a malformed URI or scheme, 403 for a path outside `data_roots`."""
    uri = uri.strip()
    if not uri:
        raise BadDataset(f"{field}: empty URI; give {FORMS}")
    try:
        if any(ord(c) < 32 for c in uri):  # a NUL or a line break is no part of a path or key
            raise ValueError("control characters")
        parts = urlsplit(uri)
    except ValueError as e:
        raise BadDataset(f"{field}: not a URI ({e}); give {FORMS}") from None
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:  # named without the URI, which would echo the credentials back
        raise BadDataset(f"{field}: a URI may not carry credentials; the server reads them from its environment "
                         "(the AWS or Google credential chain, HF_TOKEN)")
    if scheme not in SCHEMES:
        raise _bad(field, uri, f"scheme {scheme + '://' if scheme else '(none)'} is not one the server reads; "
                               f"give {FORMS}")
    if parts.query or parts.fragment:
        raise _bad(field, uri, "a URI here takes no ?query or #fragment")
    path = unquote(parts.path)
    if scheme == "file":
        return _local(field, uri, parts.netloc, path, data_roots)
    if not parts.netloc:
        raise _bad(field, uri, f"no {'bucket' if scheme != 'hf' else 'repository'} named; give {FORMS}")
    if scheme == "hf":
        repo = [p for p in path.split("/") if p]
        if parts.netloc != "datasets" or len(repo) < 2:
            raise _bad(field, uri, "a Hub URI names a dataset repository: hf://datasets/<org>/<name>[/<file>]")
        return DataSource(field=field, uri=uri, scheme="hf", path="datasets/" + "/".join(repo))
    return DataSource(field=field, uri=uri, scheme=scheme, path=(parts.netloc + path).rstrip("/"))


def _local(field: str, uri: str, host: str, path: str, data_roots: list[str]) -> DataSource:
    if host not in ("", "localhost"):
        raise _bad(field, uri, "a file:// URI names a path on the server (file:///path), not on another host")
    if not path.startswith("/"):
        raise _bad(field, uri, "a file:// URI takes an absolute path (file:///path)")
    resolved = Path(path).resolve()  # symlinks resolved: a link out of a root is outside it
    if not any(is_inside(resolved, Path(root)) for root in data_roots):
        raise Forbidden(f"{field} {uri}: outside the folders datasets may be read from "
                        f"({', '.join(data_roots) or 'none configured'})",
                        hint="move the data under one of them, or add its folder to the server's data_roots")
    return DataSource(field=field, uri=uri, scheme="file", path=str(resolved))


def parse_sources(fields: dict[str, str], data_roots: list[str]) -> dict[str, DataSource]:
    """Split -> source for the `<split>_uri` form fields: train and test required, validation optional."""
    for split in ("train", "test"):
        if not fields.get(f"{split}_uri", "").strip():
            raise BadDataset(f"{split}_uri: no URI given; send train_uri and test_uri (and optionally "
                             f"validation_uri) as form fields, or the files as train_file and test_file")
    return {split: parse_uri(f"{split}_uri", fields[f"{split}_uri"], data_roots)
            for split in URI_SPLITS if fields.get(f"{split}_uri", "").strip()}
