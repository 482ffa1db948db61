"""A large split's path, on tiny data with the bounds forced low: the Ray Data build streams the upload into several
bounded cache files holding the same rows in the same order as the in-process build, and training's streamed
datasets (the test split, train with its hold-out carved file by file) hold exactly the rows of the in-memory ones.

Runs on a real local Ray (started here, 2 CPUs, no server) with the bundled tokenizer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from data import sentiment_files

from train_jobs.data import preprocess
from train_jobs.data.cache_reads import carved_split, read_split, read_split_tables, split_files
from train_jobs.data.dataset import inspect_upload
from train_jobs.models.lookup import bundled_model_dir
from train_jobs.specs import PreprocessSpec

FILE_ROWS = 100


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, str]:
    """The same 700-row upload built in process and on Ray Data, the latter in files of FILE_ROWS rows at most."""
    tmp = tmp_path_factory.mktemp("stream")
    train, test = sentiment_files(tmp / "data", 700, 150)
    dataset = inspect_upload({"train": (train, train.name), "test": (test, test.name)}, "sequence_classification")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preprocess, "CACHE_FILE_ROWS", FILE_ROWS)
        patch.setattr(preprocess, "BLOCK_BYTES", 4096)  # several read blocks from one small file
        specs = {name: PreprocessSpec(job_id="stream", dataset=dataset, model_dir=str(bundled_model_dir()),
                                      max_seq_length=32, cache_dir=str(tmp / name), in_process_rows=rows)
                 for name, rows in (("here", 10**6), ("ray", 0))}
        return {name: preprocess.build_cache(spec, lambda *_: None)["path"] for name, spec in specs.items()}


def rows_of(ds: ray.data.Dataset) -> list[tuple]:
    return [(tuple(r["input_ids"]), r["labels"]) for r in ds.take_all()]


def test_the_streamed_build_writes_bounded_files_in_the_uploads_order(caches):
    for split in ("train", "test"):
        files = split_files(caches["ray"], split)
        counts = [pq.read_metadata(f).num_rows for f in files]
        assert len(files) >= (3 if split == "train" else 2) and max(counts) <= FILE_ROWS, (split, counts)
        here = pa.concat_tables(read_split_tables(caches["here"], split))
        assert pa.concat_tables(read_split_tables(caches["ray"], split)).equals(here), split


@ray.remote(num_cpus=2)
class Training:
    """Holds every CPU, as Ray Train's workers do while they read the streamed splits."""

    def ready(self) -> bool:
        return True


def test_streamed_training_datasets_hold_the_in_memory_rows(caches, tmp_path):
    path = caches["ray"]
    holder = Training.remote()
    ray.get(holder.ready.remote())
    pool = ThreadPoolExecutor(1)  # a read that needs a CPU would wait forever: fail instead
    streamed = pool.submit(rows_of, read_split(path, "test", 0)).result(timeout=120)
    pool.shutdown(wait=False)
    ray.kill(holder)  # from_arrow, before the workers start in a run, runs a task of 1 CPU
    assert streamed == rows_of(read_split(path, "test", None))
    for stratify in (True, False):
        in_memory = carved_split(path, 70, 42, stratify, None, tmp_path / "unused")
        streamed = carved_split(path, 70, 42, stratify, 0, tmp_path / f"carved-{stratify}")
        assert len(split_files(str(tmp_path / f"carved-{stratify}"), "train")) >= 3
        for a, b in zip(in_memory, streamed):
            assert rows_of(a) == rows_of(b)
