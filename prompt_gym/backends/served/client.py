"""Calls to a Serve app through its ``DeploymentHandle``, with bounded retries and clear errors.

:class:`ServiceClient` sends every call of a batch at once (so the router spreads them over
the replicas and ``@serve.batch`` can merge them with other callers'), then waits for each. A
call whose replica died on the way (``RayActorError`` / ``ActorDiedError``, Serve's
``ReplicaUnavailableError``, a crashed worker or node) is sent again, to whichever replica the
router picks, up to ``retries`` times with a short back-off; results are deterministic in
(prompt, seed), so a retried call returns the same bits. The caller's backend stores results
only after the whole call succeeded, so nothing is lost or stored twice. An app that is gone,
replicas that keep dying, or no answer within ``timeout_s`` raise one
:class:`~.connection.ServiceUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prompt_gym.backends.results import BackendStats
from prompt_gym.backends.served.connection import (
    ServiceUnavailableError,
    app_handle,
    gone_errors,
    retryable_errors,
)

BACKOFF_S = 0.1
"""Seconds before the first retry; doubled for each next one."""


class ServiceClient:
    """One Serve app's handle and how to call it.

    The handle is looked up on the first call, not when the client is made: a served backend
    is unpickled while Ray deserializes a task's arguments, where a blocking call would hang.

    Args:
        app: The app name.
        retries: Times a call whose replica died is sent again (``0``: never).
        timeout_s: Seconds to wait for one call's answer.
        expect: The app's ``info()`` the caller was built from (a pickled backend's); the
            first call checks that the app still answers it.

    Attributes:
        stats: Where retries are counted (``served_retries``); set by
            :func:`~.backend.connect` to the caller backend's stats.
    """

    def __init__(self, app: str, *, retries: int, timeout_s: float, expect: Any = None) -> None:
        self.app, self.retries, self.timeout_s = app, retries, timeout_s
        self.stats = BackendStats()
        self._expect = expect
        self._handle: Any = None

    @property
    def handle(self) -> Any:
        """The app's ``DeploymentHandle`` (looked up, and checked, on first use).

        Raises:
            ServiceUnavailableError: If the app now serves other settings than ``expect``.
        """
        if self._handle is None:
            self._handle = app_handle(self.app)
            if self._expect is not None and self.call("info") != self._expect:
                self._handle = None
                raise ServiceUnavailableError(
                    f"the service {self.app!r} was redeployed with other settings since this "
                    f"backend was made; connect again with make_backend('ray://{self.app}')"
                )
        return self._handle

    def call(self, method: str, *args: Any) -> Any:
        """One call of deployment method ``method``; see the module docstring."""
        return self.call_many(method, [args])[0]

    def call_many(self, method: str, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Calls of ``method``, one per argument tuple, all in flight together; their results.

        Raises:
            ServiceUnavailableError: If the app is gone, a call's replicas died more than
                ``retries`` times, or a call was not answered within ``timeout_s``.
        """
        retryable, gone = retryable_errors(), gone_errors()
        out: list[Any] = [None] * len(calls)
        pending = {i: self._send(method, args) for i, args in enumerate(calls)}
        for attempt in range(self.retries + 1):
            failed: dict[int, BaseException] = {}
            for i, response in pending.items():
                try:
                    out[i] = response.result(timeout_s=self.timeout_s)
                except retryable as err:
                    failed[i] = err
                except gone as err:
                    raise ServiceUnavailableError(
                        f"the prompt-gym service {self.app!r} is gone ({type(err).__name__}: "
                        f"{err}); start it again with `prompt-gym serve NAME --app {self.app}`"
                    ) from err
                except TimeoutError as err:
                    raise ServiceUnavailableError(
                        f"the prompt-gym service {self.app!r} did not answer {method} within "
                        f"{self.timeout_s} s"
                    ) from err
            if not failed:
                return out
            if attempt == self.retries:
                err = next(iter(failed.values()))
                raise ServiceUnavailableError(
                    f"the replicas of service {self.app!r} died {self.retries + 1} times while "
                    f"answering {method} ({type(err).__name__}); giving up"
                ) from err
            self.stats.count("served_retries", len(failed))
            time.sleep(BACKOFF_S * 2**attempt)
            pending = {i: self._send(method, calls[i]) for i in failed}
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send(self, method: str, args: tuple[Any, ...]) -> Any:
        """Send one call; its ``DeploymentResponse``."""
        return getattr(self.handle, method).remote(*args)
