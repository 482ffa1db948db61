"""A real S3-compatible server on 127.0.0.1 (moto's, from PyPI) for the tests of datasets by URI.

moto is installed by scripts/setup.sh as its own step (see there). Reading processes find the dummy credentials
in their environment, through the standard AWS chain, as a real deployment's would.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


@contextlib.contextmanager
def s3_server(port: int = 0) -> Iterator[str]:
    """An S3 server on 127.0.0.1 (`port`, or one the system picks) while the block runs; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


def bucket(endpoint: str, name: str):
    """A new bucket `name` on the server; returns the boto3 client to put objects with."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return client


def as_csv(table: pa.Table, delimiter: str = ",") -> bytes:
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(delimiter=delimiter))
    return out.getvalue()


def as_parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def put_shards(client, bucket_name: str, prefix: str, table: pa.Table, shards: int, fmt: str) -> str:
    """`table` split in `shards` consecutive parts under `prefix`/ as CSV (a header each) or Parquet; its URI."""
    step = -(-table.num_rows // shards)
    encode = as_csv if fmt == "csv" else as_parquet
    for i in range(shards):
        body = encode(table.slice(i * step, step))
        client.put_object(Bucket=bucket_name, Key=f"{prefix}/part-{i:05d}.{fmt}", Body=body)
    return f"s3://{bucket_name}/{prefix}"
