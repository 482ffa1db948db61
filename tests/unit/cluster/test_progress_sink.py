"""A run's progress reports to the session (cluster/jobs.py, TrainingProgressSink): a session actor that is away
(restarting, or killed and not yet back) is looked up again and training goes on; any other error is counted, and
MAX_REPORT_FAILURES in a row end the run with a message saying why, which the job reports as is from behind Ray
Train's wrapping. No Ray runtime: the errors are Ray's own classes, raised by the call as `ray.get` raises them."""

from __future__ import annotations

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayTaskError
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback
from ray.train.v2.api.exceptions import WorkerGroupError

from cluster.jobs import MAX_REPORT_FAILURES, ProgressRefused, SessionLink, TrainingProgressSink, causes
from train_jobs.errors import CheckpointDidNotFit


def raising(exc: BaseException):
    def ask():
        raise exc
    return ask


def refused() -> RayTaskError:
    """What `ray.get` raises when the session's method raised."""
    trace = 'Traceback (most recent call last):\n  File "session_runs.py", line 9, in training_progress\nValueError: a bug'
    return RayTaskError("training_progress", trace, ValueError("a bug")).as_instanceof_cause()


def sink_finding(new_handle) -> TrainingProgressSink:
    return TrainingProgressSink(SessionLink("the dead handle", find=lambda: new_handle), "run-1")


def test_the_answer_says_whether_to_stop():
    sink = sink_finding("unused")
    assert sink.answer(lambda: True) is True and sink.answer(lambda: False) is False


@pytest.mark.parametrize("away", [ActorDiedError(), ActorUnavailableError("restarting", None), GetTimeoutError()],
                         ids=["died", "unavailable", "timed-out"])
def test_a_session_actor_that_is_away_is_found_again_and_never_stops_the_run(away):
    sink = sink_finding("the new handle")
    for _ in range(3 * MAX_REPORT_FAILURES):
        assert sink.answer(raising(away)) is False
    assert sink.link.handle == "the new handle"


def test_one_not_there_yet_keeps_the_handle_and_goes_on():
    def not_created_yet():
        raise ValueError("Failed to look up actor")  # what ray.get_actor raises for a name nobody holds

    sink = TrainingProgressSink(SessionLink("the dead handle", find=not_created_yet), "run-1")
    assert sink.answer(raising(ActorDiedError())) is False and sink.link.handle == "the dead handle"


def test_other_errors_in_a_row_end_the_run_saying_why():
    sink = sink_finding("unused")
    for _ in range(MAX_REPORT_FAILURES - 1):
        assert sink.answer(raising(refused())) is False
    with pytest.raises(ProgressRefused) as exc:
        sink.answer(raising(refused()))
    assert f"{MAX_REPORT_FAILURES} times in a row" in str(exc.value) and "ValueError: a bug" in str(exc.value)


def test_an_answer_between_errors_starts_the_count_again():
    sink = sink_finding("unused")
    for _ in range(3):
        for _ in range(MAX_REPORT_FAILURES - 1):
            assert sink.answer(raising(refused())) is False
        assert sink.answer(lambda: False) is False


@pytest.mark.parametrize("ended", [CheckpointDidNotFit("the checkpoint of step 50 did not fit"),
                                   ProgressRefused("refused 5 times")], ids=["checkpoint", "progress"])
def test_a_run_that_ended_itself_is_found_behind_ray_trains_wrapping(ended):
    failed = WorkerGroupError("rank 0 failed", {0: UserExceptionWithTraceback(ended, "Traceback ...")})
    try:
        raise RuntimeError("fit failed") from failed
    except RuntimeError as e:
        assert ended in list(causes(e))
