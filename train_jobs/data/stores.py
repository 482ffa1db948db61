"""A pyarrow filesystem per URI scheme, and a store's failure as a sentence saying what to fix.

pyarrow's filesystems are what Ray Data's readers take, so the check of a sample
and the preprocessing read the same store the same way. Credentials come from
each store's standard chain in the reading process, never from a setting.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from train_jobs.data.sources import DataSource
from train_jobs.errors import BadDataset, SessionError
from train_jobs.specs import StoreOptions

# Substrings of the stores' own errors -> what they mean to the user.
_REASONS = (
    (("NO_SUCH_BUCKET", "NoSuchBucket", "bucket does not exist"), "no such bucket"),
    (("ACCESS_DENIED", "AccessDenied", "Forbidden"), "access denied: the server's credentials may not read it"),
    (("credentials", "Credentials", "INVALID_ACCESS_KEY", "SIGNATURE_DOES_NOT_MATCH", "OAuth2", "authenticate"),
     "no valid credentials: give the server's environment credentials for this store (the AWS or Google "
     "credential chain, HF_TOKEN)"),
    (("curlCode: 28", "imed out", "Timeout", "timeout"), "no answer in time"),
    (("NETWORK_CONNECTION", "curlCode", "Could not connect", "Connection refused", "ConnectError"),
     "the store could not be reached"),
    (("RepositoryNotFound", "Repository Not Found"), "no such repository or file"),
)


def filesystem(scheme: str, options: StoreOptions) -> pafs.FileSystem:
    """The filesystem that reads `scheme`'s paths (DataSource.path) with the server's settings."""
    if scheme == "file":
        return pafs.LocalFileSystem()
    if scheme == "s3":
        kwargs = {"connect_timeout": options.timeout_s, "request_timeout": options.timeout_s,
                  "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2)}
        if options.s3_endpoint_url:  # an S3-compatible store: MinIO, Ceph, a test's moto server
            url = urlsplit(options.s3_endpoint_url)
            kwargs.update(endpoint_override=url.netloc + url.path.rstrip("/"), scheme=url.scheme or "https")
        return pafs.S3FileSystem(**kwargs)
    if scheme == "gs":
        return pafs.GcsFileSystem(retry_time_limit=timedelta(seconds=options.timeout_s))
    if scheme == "hf":
        from huggingface_hub import HfFileSystem

        from train_jobs.models.hub import limit_hub_requests

        limit_hub_requests(options.hub_timeout_s)
        hub = HfFileSystem(endpoint=options.hub_endpoint) if options.hub_endpoint else HfFileSystem()
        return pafs.PyFileSystem(pafs.FSSpecHandler(hub))
    raise ValueError(f"no filesystem for scheme {scheme!r}")


def read_failure(source: DataSource, exc: BaseException, shard: str = "") -> SessionError:
    """`exc`, raised reading `source` (one `shard` of it, when named), as a 400 naming the URI and the reason."""
    if isinstance(exc, SessionError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    reason = next((meaning for marks, meaning in _REASONS if any(m in text for m in marks)), None)
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    where = f"{source.field} {source.uri}" + (f" (shard {shard})" if shard else "")
    return BadDataset(f"{where}: cannot be read: {reason + ' (' + detail + ')' if reason else detail}",
                      hint="check the URI, and that the server can reach the store with its credentials")
