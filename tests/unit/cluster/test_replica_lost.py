"""A call to the model's replica that meets a lost replica (cluster/serving.py, `replica_answer`): 503 with
`Retry-After` and a hint, not a 500; every other error goes on unchanged. No Ray runtime: the errors are Ray's and
Serve's own classes, raised by the awaited call as a DeploymentResponse raises them."""

from __future__ import annotations

import asyncio

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError
from ray.serve.exceptions import ReplicaUnavailableError

from cluster.serving import RETRY_AFTER_S, ModelUnavailable, replica_answer
from train_jobs.errors import WrongState


async def raising(exc: BaseException):
    raise exc


async def answering(value):
    return value


def wrapped(cause: BaseException) -> RayTaskError:
    """The error of a task that waited on the call, as Ray wraps the first error."""
    return RayTaskError("predict", "Traceback (most recent call last): ...", cause)


def test_an_answer_passes_through():
    assert asyncio.run(replica_answer(answering([{"label": "pos"}]))) == [{"label": "pos"}]


@pytest.mark.parametrize("lost", [
    ActorDiedError(),
    ActorUnavailableError("the connection to the replica was lost", None),
    ReplicaUnavailableError("model#abc"),
    wrapped(ActorDiedError()),
], ids=["died", "unavailable", "serve-replica-unavailable", "wrapped-died"])
def test_a_lost_replica_is_503_with_retry_after_and_a_hint(lost):
    with pytest.raises(ModelUnavailable) as exc:
        asyncio.run(replica_answer(raising(lost)))
    err = exc.value
    assert err.status_code == 503 and err.headers == {"Retry-After": str(RETRY_AFTER_S)}
    assert "replica" in err.message and "GET /deploy/{key}" in err.hint and f"retry in {RETRY_AFTER_S} s" in err.hint
    assert err.__cause__ is lost  # the log keeps what Ray said


@pytest.mark.parametrize("other", [
    ValueError("a bug in the replica"),
    WrongState("the model deployment is deploying", state="deploying"),
    wrapped(ValueError("a bug in the replica")),
], ids=["bug", "session-error", "wrapped-bug"])
def test_other_errors_go_on_unchanged(other):
    with pytest.raises(type(other)) as exc:
        asyncio.run(replica_answer(raising(other)))
    assert exc.value is other
