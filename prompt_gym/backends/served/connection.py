"""Reaching Ray and a Serve app: the import, the cluster, the handle, and the errors.

Every function here imports ``ray`` when it runs, never at module import, so ``import
prompt_gym`` works without the ``ray`` extra; :func:`require_ray` turns its absence into one
``ValueError`` that says how to install it.

Which cluster: an address passed explicitly, else ``RAY_ADDRESS``, else (for
:func:`~prompt_gym.backends.served.deploy.serve_backend` only) a new local Ray, else the
cluster ``ray start`` runs on this node (``address="auto"``). A process that is already
connected (a Ray actor, a driver after ``ray.init``) keeps its connection.
"""

from __future__ import annotations

import os
from typing import Any

INSTALL = "pip install 'prompt-gym[ray]'"
_CONNECTED_PID: int | None = None
"""The process that connected to Ray through this module (a forked child is not it)."""


class ServiceUnavailableError(RuntimeError):
    """A served backend's app is gone, or its replicas kept dying or stopped answering."""


def require_ray() -> Any:
    """The ``ray`` module, with Serve importable.

    Raises:
        ValueError: If the ``ray`` extra is not installed (one line: how to install it).
    """
    try:
        import ray
        import ray.serve
    except ImportError as err:
        raise ValueError(
            f"served backends need the 'ray' extra: {INSTALL} (import failed: {err})"
        ) from err
    return ray


def ensure_ray(address: str | None = None, *, start_local: bool = False) -> str:
    """Connect this process to a Ray cluster (unless it is connected); return the GCS address.

    Args:
        address: The cluster (``"HOST:PORT"``, ``"auto"``); ``None``: ``RAY_ADDRESS``, else a
            new local Ray if ``start_local``, else ``"auto"`` (the node's ``ray start`` cluster).
        start_local: Start a local Ray when no address is given or set.

    Raises:
        ValueError: Without the ``ray`` extra; if no cluster answers at the address; or if this
            process was forked from one connected to Ray (a connection does not survive
            ``fork``).
    """
    global _CONNECTED_PID
    ray = require_ray()
    if ray.is_initialized():
        if _CONNECTED_PID is not None and os.getpid() != _CONNECTED_PID:
            raise ValueError(
                "this process was forked from one connected to Ray, and a Ray connection does "
                "not survive fork: start env workers with 'spawn' (AsyncVectorEnv(..., "
                "context='spawn')) or as Ray actors"
            )
    else:
        target = address or os.environ.get("RAY_ADDRESS") or (None if start_local else "auto")
        try:
            ray.init(address=target, include_dashboard=False if target is None else None)
        except ConnectionError as err:
            raise ValueError(
                f"no Ray cluster at {target!r}: start one with `ray start --head` (and "
                f"`ray start --address HEAD:6379` on each GPU node), then set RAY_ADDRESS or "
                f"pass the address ({err})"
            ) from err
    _CONNECTED_PID = os.getpid()
    return str(ray.get_runtime_context().gcs_address)


def app_handle(app: str) -> Any:
    """The ``DeploymentHandle`` of Serve app ``app`` (this process must be connected).

    Raises:
        ValueError: If the cluster runs no Serve app of that name (listing the ones it runs).
    """
    require_ray()
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        return serve.get_app_handle(app)
    except RayServeException as err:
        try:
            running = sorted(serve.status().applications)
        except RayServeException:
            running = []
        raise ValueError(
            f"no prompt-gym service {app!r} on this Ray cluster (running apps: {running}); "
            f"start it with `prompt-gym serve NAME --app {app}` ({err})"
        ) from err


def retryable_errors() -> tuple[type[BaseException], ...]:
    """Errors of a call whose replica died or went away: the call is sent again."""
    from ray.exceptions import NodeDiedError, RayActorError, WorkerCrashedError
    from ray.serve.exceptions import ReplicaUnavailableError

    return (RayActorError, ReplicaUnavailableError, WorkerCrashedError, NodeDiedError)


def gone_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the app itself is gone (deleted, failed, Serve shut down)."""
    from ray.serve.exceptions import RayServeException

    return (RayServeException,)
