"""Deploying a backend preset as a Ray Serve app: :func:`deploy` and :func:`serve_backend`.

``make_backend(NAME, service="ray", replicas=N, ...)`` comes here: the service options
(:data:`SERVICE_OPTIONS`) configure the app, every other override goes to the preset, built by
each replica. A replica takes one GPU on GPU presets and one CPU on :data:`CPU_PRESETS`
(``num_gpus`` / ``num_cpus`` override both). Serve runs without its HTTP proxies: callers use
``DeploymentHandle``\\ s. A ``cache_dir`` override is each replica's own SQLite cache on its
node: it must be a node-local path (a replica refuses a network file system), and replicas on
one node share the file safely.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from prompt_gym.backends.served.backend import RETRIES, TIMEOUT_S, connect
from prompt_gym.backends.served.connection import ensure_ray, require_ray
from prompt_gym.backends.served.deployment import backend_deployment

if TYPE_CHECKING:
    from prompt_gym.backends.factory import BackendSpec
    from prompt_gym.backends.reward_backend import RewardBackend

SERVICE_OPTIONS = (
    "service",
    "replicas",
    "app",
    "max_batch_size",
    "batch_wait_timeout_s",
    "max_ongoing_requests",
    "router",
    "num_cpus",
    "num_gpus",
    "address",
    "retries",
    "timeout_s",
)
"""``make_backend`` keywords that configure the service instead of the preset."""
CPU_PRESETS = frozenset({"shapes", "shapes-v3", "tiny"})
"""Presets whose replicas take a CPU by default; every other preset's take a GPU."""
MAX_BATCH_SIZE = 64
"""Default most rows ``@serve.batch`` merges into one replica batch."""
BATCH_WAIT_S = 0.005
"""Default seconds ``@serve.batch`` waits for more requests before a batch runs."""
MAX_ONGOING = 128
"""Default requests a replica takes at once (queued for its batches)."""
ROUTERS = {
    "round-robin": "ray.serve.experimental.round_robin_router:RoundRobinRouter",
    "power-of-two": "ray.serve._private.request_router:PowerOfTwoChoicesRequestRouter",
}
"""How a caller's requests are spread over the replicas (Serve request routers).

``round-robin`` (:data:`DEFAULT_ROUTER`) sends each next request to the next replica. Serve's
own ``power-of-two`` router picks the shorter of two queues from a cached queue length; when one
caller sends a batch's requests at once, it sent them all to one replica here
(``benchmarks/ray_scaling.py`` on 2 shared cores: 2 replicas scored 0.82x to 1.08x of one;
round-robin 1.31x to 2.09x)."""
DEFAULT_ROUTER = "round-robin"


def replica_resources(
    preset: str, num_cpus: float | None, num_gpus: float | None
) -> dict[str, float]:
    """``ray_actor_options`` resources of one replica of ``preset``.

    >>> replica_resources("shapes", None, None), replica_resources("sd-turbo", None, None)
    ({'num_cpus': 1.0, 'num_gpus': 0.0}, {'num_cpus': 1.0, 'num_gpus': 1.0})
    """
    gpus = 0.0 if preset in CPU_PRESETS else 1.0
    return {
        "num_cpus": 1.0 if num_cpus is None else float(num_cpus),
        "num_gpus": gpus if num_gpus is None else float(num_gpus),
    }


def deploy(
    spec: BackendSpec,
    *,
    app: str | None = None,
    replicas: int = 1,
    max_batch_size: int = MAX_BATCH_SIZE,
    batch_wait_timeout_s: float = BATCH_WAIT_S,
    max_ongoing_requests: int = MAX_ONGOING,
    router: str = DEFAULT_ROUTER,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
) -> str:
    """Deploy ``spec`` as a Serve app on the connected cluster (replacing one of that name).

    Args:
        spec: The preset and overrides each replica builds its backend from.
        app: The app name (default: the preset name); callers reach it as ``ray://APP``.
        replicas: Replicas (one backend each).
        max_batch_size: Most rows merged into one replica batch.
        batch_wait_timeout_s: Seconds a batch waits for more requests.
        max_ongoing_requests: Requests one replica takes at once.
        router: How requests are spread over the replicas, a key of :data:`ROUTERS`.
        num_cpus: CPUs per replica (default 1).
        num_gpus: GPUs per replica (default 1, or 0 for :data:`CPU_PRESETS`).

    Returns:
        The app name.

    Raises:
        ValueError: For a bad option (before anything is deployed), or if the replicas fail
            to start (with the replica's error).
    """
    app = spec.name if app is None else app
    _check_deploy(
        app,
        replicas,
        max_batch_size,
        batch_wait_timeout_s,
        max_ongoing_requests,
        num_cpus,
        num_gpus,
        router,
    )
    require_ray()
    from ray import serve
    from ray.serve.config import RequestRouterConfig

    serve.start(proxy_location="Disabled")
    target = (
        backend_deployment(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)
        .options(
            num_replicas=replicas,
            max_ongoing_requests=max_ongoing_requests,
            request_router_config=RequestRouterConfig(request_router_class=ROUTERS[router]),
            ray_actor_options=replica_resources(spec.name, num_cpus, num_gpus),
        )
        .bind(spec)
    )
    try:
        serve.run(target, name=app, route_prefix=None)
    except RuntimeError as err:
        reason = _failure(app) or str(err)
        serve.delete(app)
        raise ValueError(
            f"the replicas of {spec.name!r} (app {app!r}) failed to start: {reason}"
        ) from err
    return app


def serve_backend(
    spec: BackendSpec,
    *,
    service: str = "ray",
    address: str | None = None,
    retries: int = RETRIES,
    timeout_s: float = TIMEOUT_S,
    **options: Any,
) -> RewardBackend:
    """Deploy ``spec`` (:func:`deploy`) and return a backend connected to it.

    Without an address or ``RAY_ADDRESS``, and outside a Ray job, a local Ray is started.

    Args:
        spec: The preset and overrides each replica builds its backend from.
        service: ``"ray"`` (the one kind of service).
        address: The Ray cluster.
        retries: The caller's retries of a call whose replica died.
        timeout_s: The caller's seconds to wait for one call.
        **options: :func:`deploy`'s options.

    Raises:
        ValueError: For an unknown service or option, without the ``ray`` extra, or if the
            replicas fail to start.
    """
    if service != "ray":
        raise ValueError(f"service must be 'ray' (Ray Serve), got {service!r}")
    unknown = sorted(set(options) - set(SERVICE_OPTIONS))
    if unknown:
        raise ValueError(f"service options are {list(SERVICE_OPTIONS)}; got {unknown}")
    _check_deploy(
        options.get("app", spec.name),
        options.get("replicas", 1),
        options.get("max_batch_size", MAX_BATCH_SIZE),
        options.get("batch_wait_timeout_s", BATCH_WAIT_S),
        options.get("max_ongoing_requests", MAX_ONGOING),
        options.get("num_cpus"),
        options.get("num_gpus"),
        options.get("router", DEFAULT_ROUTER),
    )
    ensure_ray(address, start_local=True)
    app = deploy(spec, **options)
    return connect(app, address=address, retries=retries, timeout_s=timeout_s)


def _failure(app: str) -> str:
    """The last line of the error a failed app's replicas raised (``""`` if Serve has none)."""
    from ray import serve

    for deployment in serve.status().applications[app].deployments.values():
        lines = [line.strip() for line in deployment.message.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return ""


def _check_deploy(
    app: Any,
    replicas: Any,
    max_batch_size: Any,
    wait_s: Any,
    max_ongoing: Any,
    num_cpus: Any = None,
    num_gpus: Any = None,
    router: Any = DEFAULT_ROUTER,
) -> None:
    """One ``ValueError`` for the first bad deploy option."""
    if not isinstance(app, str) or not app or "/" in app:
        raise ValueError(f"app must be a non-empty name without '/', got {app!r}")
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {sorted(ROUTERS)}, got {router!r}")
    for name, value in (
        ("replicas", replicas),
        ("max_batch_size", max_batch_size),
        ("max_ongoing_requests", max_ongoing),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if (
        isinstance(wait_s, bool)
        or not isinstance(wait_s, int | float)
        or not 0 <= wait_s < math.inf
    ):
        raise ValueError(f"batch_wait_timeout_s must be >= 0 seconds, got {wait_s!r}")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6
        ):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
