"""Write-first: a state change counts only once it is on disk. When the write fails (a full disk), the session is
left as it was, in memory as on disk, and files a step made for it are removed. Without Ray: the machine's
`persist` raises ENOSPC as the session actor's writer does on a full disk; the writer itself meets a real full disk
(a small tmpfs) where mounting one is permitted."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Optional

import pytest
from helpers import fill, small_disk
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback
from ray.train.v2.api.exceptions import WorkerGroupError
from test_session_machine import Harness, cache_meta

from cluster.jobs import discard_checkpoints, failure
from cluster.session_record import SessionRecord, State
from cluster.state_writer import LatestWriter
from train_jobs.errors import CheckpointDidNotFit


class FullDisk(Harness):
    """The harness, with a disk that fills up after `writes_left` more waited-for writes (None: never)."""

    def __init__(self, root: Path):
        self.writes_left: Optional[int] = None
        super().__init__(root)

    def _persist(self, record: Optional[SessionRecord], wait: bool) -> None:
        if wait and self.writes_left is not None:
            if self.writes_left == 0:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.layout.state_file("s")))
            self.writes_left -= 1
        super()._persist(record, wait)

    def fails(self, call, after_writes: int = 0) -> None:
        """`call` raises ENOSPC; memory is then what was last written, and the disk has room again."""
        self.writes_left = after_writes
        with pytest.raises(OSError) as err:
            call()
        self.writes_left = None
        assert err.value.errno == errno.ENOSPC
        last = self.saved[-1][0] if self.saved else None
        assert (self.record.model_dump() if self.record else None) == (last.model_dump() if last else None)


@pytest.fixture
def h(tmp_path) -> FullDisk:
    return FullDisk(tmp_path)


def test_a_config_change_that_cannot_be_written_changes_nothing(h):
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, {"error": "boom"})
    before = h.record.model_dump()
    assert before["state"] == "failed" and before["config"]["epochs"] != 4
    h.fails(lambda: h.machine.update_config(key, {"epochs": 4}))
    assert h.record.model_dump() == before  # still failed, epochs unchanged
    assert h.machine.update_config(key, {"epochs": 4})["state"] == "setup"  # with room again, it goes through


def test_a_run_end_that_cannot_be_written_leaves_the_run_as_on_disk(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 2, "progress": 0.5})
    before = h.record.model_dump()
    h.fails(lambda: h.machine.finish_training(spec.run_id, {"error": "No space left on device"}))
    assert h.record.model_dump() == before and h.record.state == State.training
    h.machine.finish_training(spec.run_id, {"error": "No space left on device"})  # reported again: recorded
    assert h.saved[-1][0].state == State.failed


def test_a_dataset_that_cannot_be_recorded_is_removed_and_the_old_one_kept(h):
    key = h.with_dataset()
    before = h.record.model_dump()
    staging, summary = h.stage(key)
    h.fails(lambda: h.machine.set_dataset(key, str(staging), summary))
    assert h.record.model_dump() == before
    datasets = sorted(p.name for p in h.layout.session_dir(h.record.session_id).iterdir() if p.name.startswith("d"))
    assert datasets == [Path(before["dataset"]["dir"]).name]


def test_a_session_that_cannot_be_written_leaves_no_folder(h):
    h.fails(lambda: h.machine.start(force=False))
    assert h.record is None
    assert not h.layout.sessions_dir.exists() or not any(h.layout.sessions_dir.iterdir())


def test_a_forced_start_that_wipes_then_cannot_write_leaves_no_session(h):
    h.with_dataset()
    h.fails(lambda: h.machine.start(force=True), after_writes=1)  # the wipe is written, the new session is not
    assert h.record is None and h.saved[-1][0] is None


def test_preprocess_start_that_cannot_be_written_keeps_the_job_count(h):
    key = h.with_dataset()
    before = h.record.model_dump()
    h.fails(lambda: h.machine.begin_preprocess(key))
    assert h.record.model_dump() == before and h.record.runs == 0
    spec = h.machine.begin_preprocess(key)
    h.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
    assert h.record.state == State.preprocessed


def test_recovery_keeps_what_it_wrote_before_the_disk_filled(h):
    h.importing()
    key = h.record.key
    h.upload(key)
    spec = h.machine.begin_preprocess(key)
    assert spec is not None
    h.machine = h.reloaded()
    h.fails(lambda: h.machine.recover_interrupted_jobs(), after_writes=1)
    assert h.record.state == State.setup and h.record.preprocess.status == "failed"  # written first
    assert h.record.imports.status == "running"  # not written: as on disk, and recovered on a later try
    h.machine.recover_interrupted_jobs()
    assert h.record.imports.status == "failed"


def test_progress_is_not_undone_by_a_failed_state_change(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4, "progress": 0.25})
    h.writes_left = 0
    with pytest.raises(OSError):
        h.machine.request_stop(key)
    h.writes_left = None
    assert h.record.training.live["step"] == 1 and h.record.training.stop_requested is False



def test_a_step_called_on_its_part_rolls_back_the_sessions_record(h):
    """`write_first` reaches the record through each part's core: a run's step called on the part goes back too."""
    key, spec = h.training()
    before = h.record.model_dump()
    h.fails(lambda: h.machine.runs.request_stop(key))
    assert h.record.model_dump() == before and h.machine.core.record is h.record


def test_a_step_across_parts_is_one_step(h):
    """A job that could not start (session_jobs.py) ends its run through session_runs.py: one step, undone whole."""
    _, spec = h.training()
    before = h.record.model_dump()
    h.fails(lambda: h.machine.jobs.abort_job(spec.run_id, "could not start"))
    assert h.record.model_dump() == before and h.record.state == State.training
    h.machine.jobs.abort_job(spec.run_id, "could not start")
    assert h.saved[-1][0].state == State.failed


# --- the session file's writer ---------------------------------------------------------------------------------


def test_a_state_change_write_on_a_full_disk_raises_at_once_and_keeps_the_old_file(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        writer = LatestWriter(disk / "session.json")
        writer.write(b'{"state": "training"}')
        fill(disk)
        with pytest.raises(OSError) as err:
            writer.write(b'{"state": "failed"}' + b" " * 8192)
        assert err.value.errno == errno.ENOSPC
        assert (disk / "session.json").read_bytes() == b'{"state": "training"}'
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "session.json"]  # no temp file left


def test_a_failed_progress_write_does_not_fail_the_next_state_change(tmp_path, caplog):
    with small_disk(tmp_path / "disk", "1m") as disk:
        writer = LatestWriter(disk / "session.json")
        filler = fill(disk)
        writer.submit(b"progress" * 4096)  # fails in the background: logged only
        assert writer.flush(timeout=10)
        assert any("could not write live progress" in r.getMessage() for r in caplog.records)
        assert not (disk / "session.json").exists()
        filler.unlink()
        writer.write(b'{"state": "stopped"}')
        assert (disk / "session.json").read_bytes() == b'{"state": "stopped"}'


def test_a_queued_progress_snapshot_never_overwrites_a_newer_state_change(tmp_path):
    writer = LatestWriter(tmp_path / "session.json")
    for i in range(200):
        writer.submit(f"progress {i}".encode())
        writer.write(f"state {i}".encode())
    assert writer.flush(timeout=10)  # every queued snapshot written or dropped
    assert (tmp_path / "session.json").read_text() == "state 199"


def test_a_run_that_filled_the_disk_has_its_checkpoints_discarded_to_free_the_space_to_record_it(h):
    _, spec = h.training()
    partial = Path(spec.storage_path) / "checkpoint_000002"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"half a model")
    (Path(spec.search_dir) / "trial_0").mkdir(parents=True)
    Path(spec.results_dir).mkdir(parents=True)
    discard_checkpoints(spec)
    assert not Path(spec.storage_path).exists() and not Path(spec.search_dir).exists()
    assert Path(spec.results_dir).is_dir()


def test_a_run_whose_worker_met_a_full_disk_has_its_checkpoints_discarded_too(h):
    """A training worker's ENOSPC reaches the job wrapped by Ray Train (WorkerGroupError, the rank's error kept in
    `worker_failures` with its traceback text): still a full disk, so the checkpoints go."""
    _, spec = h.training()
    partial = Path(spec.storage_path) / "checkpoint_000002"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"half a model")
    full = OSError(errno.ENOSPC, "No space left on device", str(Path(spec.results_dir) / "history.json"))
    failed = WorkerGroupError("rank 0 failed", {0: UserExceptionWithTraceback(full, "Traceback ...")})
    assert "No space left" in failure(spec, failed)
    assert not Path(spec.storage_path).exists()


def test_a_run_that_ended_itself_keeps_its_message(h):
    _, spec = h.training()
    ended = CheckpointDidNotFit("the checkpoint of step 20 (14.0 MB) did not fit in the storage root /data")
    failed = WorkerGroupError("rank 0 failed", {0: UserExceptionWithTraceback(ended, "Traceback ...")})
    assert failure(spec, failed) == str(ended)


def test_a_closed_writer_ends_its_thread_after_what_was_submitted(tmp_path):
    writer = LatestWriter(tmp_path / "closing.json")
    writer.submit(b"last")
    writer.close()
    threads = [t for t in threading.enumerate() if t.name == "writer:closing.json"]
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads)
    assert (tmp_path / "closing.json").read_bytes() == b"last"
