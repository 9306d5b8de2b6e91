"""A caller's served backend: :func:`connect` to a running app, and :class:`ServedSpec`.

:func:`connect` asks the app for its :class:`~.replica.ServiceInfo` (one round trip) and builds
a :class:`~prompt_gym.backends.reward_backend.RewardBackend` of the served components
(:mod:`.components`) with the replica's name, version, configs and world, so its cache keys,
results and env data are the in-process backend's. Its memory cache sits in front of the
service; it has no disk cache of its own (that lives with the replicas, on their nodes). It
pickles as a :class:`ServedSpec`, which connects again, by app name, in the process that
unpickles it. The caller's stats gain ``served_*`` counters: requests sent (``served_requests``)
and rows (``served_rows``), and the requests and rows of the replica batches they were merged
into (``served_batch_requests`` / ``served_batch_rows``: more requests than were sent means
batches merged callers), and ``served_retries``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from prompt_gym.backends.reward_backend import RewardBackend
from prompt_gym.backends.served.client import ServiceClient
from prompt_gym.backends.served.components import (
    ServedCaptioner,
    ServedCompute,
    ServedGenerator,
    ServedScorer,
)
from prompt_gym.backends.served.connection import ensure_ray
from prompt_gym.backends.served.replica import ServiceInfo

RETRIES = 3
"""Default times a call whose replica died is sent again."""
TIMEOUT_S = 300.0
"""Default seconds to wait for one call's answer."""


@dataclass(frozen=True)
class ServedSpec:
    """How to reach a served backend again: calling the spec connects to the app.

    Rebuilding makes no call to the app (a backend is unpickled while Ray deserializes a
    task's arguments, where a blocking call would hang): the spec carries the app's
    :class:`~.replica.ServiceInfo`, and the first call checks the app still answers it.

    Attributes:
        app: The Serve app name.
        address: The Ray cluster's address, for a process that is not connected yet.
        options: The caller options :func:`connect` took.
        info: What the app answered when the backend was first connected.
    """

    app: str
    address: str | None
    options: dict[str, Any]
    info: ServiceInfo

    def __call__(self) -> RewardBackend:
        """A new caller backend of the app (empty memory cache)."""
        ensure_ray(self.address)
        client = ServiceClient(
            self.app,
            retries=self.options["retries"],
            timeout_s=self.options["timeout_s"],
            expect=self.info,
        )
        return _build(client, self.info, self.address, self.options)


def connect(
    app: str,
    *,
    address: str | None = None,
    memory_cache_size: int = 200_000,
    keep_images: int = 0,
    retries: int = RETRIES,
    timeout_s: float = TIMEOUT_S,
    **unknown: Any,
) -> RewardBackend:
    """A backend whose scoring runs on the Serve app ``app`` (``make_backend("ray://APP")``).

    Args:
        app: The app, as :func:`~.deploy.serve_backend` or ``prompt-gym serve --app`` named it.
        address: The Ray cluster (default: this process's connection, ``RAY_ADDRESS``, else
            the node's ``ray start`` cluster).
        memory_cache_size: Entries of the caller's memory cache (``0`` disables it).
        keep_images: Generated images the caller keeps for rendering (``0``: none).
        retries: Times a call whose replica died is sent again.
        timeout_s: Seconds to wait for one call's answer.
        **unknown: Nothing else is accepted (the preset's options belong to the service).

    Raises:
        ValueError: For an unknown or bad option, without the ``ray`` extra, without a reachable cluster,
            or if the cluster runs no app ``app``; all before any request is scored.
    """
    if unknown:
        raise ValueError(
            f"a connection to service {app!r} has no option {sorted(unknown)}; it takes "
            "address, memory_cache_size, keep_images, retries and timeout_s (the preset's "
            "options are set when the service is deployed)"
        )
    _check_options(app, memory_cache_size, keep_images, retries, timeout_s)
    gcs = ensure_ray(address)
    client = ServiceClient(app, retries=retries, timeout_s=float(timeout_s))
    client.handle  # noqa: B018  (an app that is not there fails here, before any work)
    options = {
        "memory_cache_size": memory_cache_size,
        "keep_images": keep_images,
        "retries": retries,
        "timeout_s": float(timeout_s),
    }
    return _build(client, client.call("info"), address or gcs, options)


def _build(
    client: ServiceClient, info: ServiceInfo, address: str | None, options: dict[str, Any]
) -> RewardBackend:
    """The caller backend of the served components (its spec and stats wired up)."""
    generator = ServedGenerator(client, info.generator_config)
    backend = RewardBackend(
        generator,
        ServedScorer(client, info.scorer_config, info.dim, info.has_aesthetic),
        ServedCaptioner(client),
        name=info.name,
        version=info.version,
        memory_cache_size=options["memory_cache_size"],
        keep_images=options["keep_images"],
        world=info.world,
        compute=ServedCompute(client, generator, info.max_batch_size),
    )
    client.stats = backend.stats
    backend.spec = ServedSpec(client.app, address, options, info)
    return backend


def _check_options(
    app: Any, memory_cache_size: Any, keep_images: Any, retries: Any, timeout_s: Any
) -> None:
    """One ``ValueError`` for the first bad caller option."""
    if not isinstance(app, str) or not app:
        raise ValueError(f"the service app must be a non-empty name, got {app!r}")
    for name, value in (
        ("memory_cache_size", memory_cache_size),
        ("keep_images", keep_images),
        ("retries", retries),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s < math.inf
    ):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
