"""ServiceClient's retries, on a fake handle: which errors are resent, how often, and the errors
a caller sees. The live kill test (tests/test_ray_service.py) cannot choose who resends."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "ray", reason="the Ray tests need the 'ray' extra: pip install 'prompt-gym[ray]'"
)
from ray.exceptions import RayActorError
from ray.serve.exceptions import RayServeException

from prompt_gym.backends.served import client as client_module
from prompt_gym.backends.served.client import ServiceClient
from prompt_gym.backends.served.connection import ServiceUnavailableError


class Response:
    """A DeploymentResponse that returns ``value`` or raises ``error``."""

    def __init__(self, value: object, error: BaseException | None) -> None:
        self.value, self.error = value, error

    def result(self, timeout_s: float) -> object:
        if self.error is not None:
            raise self.error
        return self.value


class Method:
    """``handle.score``: ``.remote(x)`` answers ``2 * x``, after ``failures[x]`` errors."""

    def __init__(self, failures: dict[int, list[BaseException]]) -> None:
        self.failures, self.sent = failures, []

    def remote(self, x: int) -> Response:
        self.sent.append(x)
        queue = self.failures.get(x, [])
        return Response(2 * x, queue.pop(0) if queue else None)


class Handle:
    def __init__(self, failures: dict[int, list[BaseException]]) -> None:
        self.score = Method(failures)


def client(failures: dict[int, list[BaseException]], retries: int = 2) -> ServiceClient:
    out = ServiceClient("app", retries=retries, timeout_s=1.0)
    out._handle = Handle(failures)
    return out


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch) -> None:
    monkeypatch.setattr(client_module, "BACKOFF_S", 0.0)


def test_calls_whose_replica_died_are_resent_alone_and_answers_keep_order() -> None:
    c = client({1: [RayActorError()], 3: [RayActorError(), RayActorError()]})
    assert c.call_many("score", [(0,), (1,), (2,), (3,)]) == [0, 2, 4, 6]
    assert c._handle.score.sent == [0, 1, 2, 3, 1, 3, 3]  # only the failed calls go again
    assert c.stats.as_dict()["served_retries"] == 3


def test_replicas_that_keep_dying_give_up_after_the_retries() -> None:
    c = client({5: [RayActorError()] * 3}, retries=2)
    with pytest.raises(ServiceUnavailableError, match="died 3 times while answering score"):
        c.call_many("score", [(4,), (5,)])
    assert c._handle.score.sent == [4, 5, 5, 5]


def test_an_app_that_is_gone_is_not_retried() -> None:
    c = client({0: [RayServeException("deleted")]})
    with pytest.raises(ServiceUnavailableError, match="service 'app' is gone"):
        c.call("score", 0)
    assert c._handle.score.sent == [0]


def test_no_answer_in_time_is_one_error_naming_the_timeout() -> None:
    c = client({0: [TimeoutError()]})
    with pytest.raises(ServiceUnavailableError, match=r"did not answer score within 1\.0 s"):
        c.call("score", 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"router": "random"}, r"router must be one of \['power-of-two', 'round-robin'\]"),
        ({"replicas": 0}, "replicas must be a positive integer, got 0"),
        ({"max_ongoing_requests": 1.5}, "max_ongoing_requests must be a positive integer"),
        ({"batch_wait_timeout_s": -1}, "batch_wait_timeout_s must be >= 0 seconds"),
        ({"app": "a/b"}, "app must be a non-empty name without '/'"),
        ({"service": "http"}, "service must be 'ray'"),
    ],
)
def test_bad_service_options_are_refused_before_ray_starts(options, message) -> None:
    from prompt_gym.backends import make_backend

    with pytest.raises(ValueError, match=message):
        make_backend("shapes", **{"service": "ray", **options})
