"""A run's progress reports to the session (cluster/jobs.py, TrainingProgressSink): a session actor that is away
(restarting, or killed and not yet back) is looked up again and training goes on; any other error is counted, and
MAX_REPORT_FAILURES in a row end the run with a message saying why, which the job reports as is from behind Ray
Train's wrapping. No Ray runtime: the errors are Ray's own classes, raised by the call as `ray.get` raises them."""

from __future__ import annotations

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayTaskError
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback
from ray.train.v2.api.exceptions import WorkerGroupError

from cluster.jobs import (
    AWAY_WAIT_S,
    FINISH_RETRY_S,
    MAX_REPORT_FAILURES,
    ProgressRefused,
    SessionLink,
    TrainingProgressSink,
    causes,
)
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


class Clock:
    """time.monotonic and time.sleep for SessionLink's wait: each sleep moves the clock on, at once."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    import cluster.jobs

    fake = Clock()
    monkeypatch.setattr(cluster.jobs.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(cluster.jobs.time, "sleep", fake.sleep)
    return fake


class Session:
    """A call to the session that raises `error` until `seconds` have passed, then takes the job's end."""

    def __init__(self, seconds: float, clock: Clock, error: BaseException):
        self.seconds, self.clock, self.error = seconds, clock, error
        self.told = False

    def __call__(self) -> None:
        if self.clock.now < self.seconds:
            raise self.error
        self.told = True


def test_a_jobs_end_waits_for_a_session_actor_away_longer_than_other_errors_are_retried(clock):
    # The job's end used to be given up after FINISH_RETRY_S whatever the error: a session actor killed for good
    # and created again only later never learnt it, and said `training` for good.
    link = SessionLink("the dead handle", find=lambda: "the new handle")
    session = Session(FINISH_RETRY_S + 60, clock, ActorDiedError())
    link.until_delivered(session)
    assert session.told and link.handle == "the new handle"


def test_a_jobs_end_the_session_refuses_is_given_up_after_its_retries(clock):
    link = SessionLink("the handle", find=lambda: "the handle")
    session = Session(AWAY_WAIT_S, clock, refused())
    link.until_delivered(session)
    assert not session.told and FINISH_RETRY_S < clock.now < FINISH_RETRY_S + 5


def test_a_session_actor_away_for_good_is_given_up_to_the_outcome_file(clock):
    link = SessionLink("the dead handle", find=lambda: "the dead handle")
    session = Session(10 * AWAY_WAIT_S, clock, ActorDiedError())
    link.until_delivered(session)
    assert not session.told and AWAY_WAIT_S < clock.now < AWAY_WAIT_S + 5
