"""``prompt-gym serve NAME --replicas N``: deploy a backend preset on a running Ray cluster.

The command connects to the cluster (``--address``, else ``RAY_ADDRESS``, else the node's
``ray start`` cluster), deploys the preset as the Serve app ``--app`` (default: the preset
name) and returns; the app keeps running on the cluster. Envs anywhere in the cluster reach it
as ``backend="ray://APP"`` (``prompt-gym train ... --env-kwargs backend:ray://APP``). Stop it
with ``serve shutdown`` (Ray's CLI) or ``ray stop``.
"""

from __future__ import annotations

import argparse

from prompt_gym.checks import parse_env_kwargs, positive_int

HELP = "serve a backend preset on a running Ray cluster (Ray Serve; the 'ray' extra)"


def add_serve_command(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command to the ``prompt-gym`` parser."""
    from prompt_gym.backends.served.deploy import (
        BATCH_WAIT_S,
        DEFAULT_ROUTER,
        MAX_BATCH_SIZE,
        MAX_ONGOING,
        ROUTERS,
    )

    serve = sub.add_parser("serve", help=HELP, description=__doc__.splitlines()[0])
    serve.add_argument("name", help="backend preset (prompt-gym list shows them)")
    serve.add_argument("--replicas", type=positive_int, default=1, help="replicas (one per GPU)")
    serve.add_argument("--app", help="Serve app name (default: the preset name); ray://APP")
    serve.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or 'auto')")
    serve.add_argument(
        "--max-batch-size",
        type=positive_int,
        default=MAX_BATCH_SIZE,
        help="most rows merged into one replica batch",
    )
    serve.add_argument(
        "--batch-wait-s",
        type=float,
        default=BATCH_WAIT_S,
        help="seconds a replica batch waits for more requests",
    )
    serve.add_argument(
        "--max-ongoing-requests",
        type=positive_int,
        default=MAX_ONGOING,
        help="requests one replica takes at once",
    )
    serve.add_argument(
        "--router",
        choices=sorted(ROUTERS),
        default=DEFAULT_ROUTER,
        help="how requests are spread over the replicas",
    )
    serve.add_argument("--num-cpus", type=float, help="CPUs per replica (default 1)")
    serve.add_argument(
        "--num-gpus", type=float, help="GPUs per replica (default 1; 0 on shapes and tiny)"
    )
    serve.add_argument(
        "--cache-dir", help="each replica's disk cache: a node-local path (never NFS)"
    )
    serve.add_argument(
        "--backend-kwargs",
        nargs="+",
        metavar="KEY:VALUE",
        help="preset overrides, e.g. resolution:128",
    )
    serve.set_defaults(fn=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Deploy ``args.name`` on the cluster; print how envs reach it."""
    from prompt_gym.backends.factory import BackendSpec
    from prompt_gym.backends.registry import BACKENDS
    from prompt_gym.backends.served.connection import ensure_ray
    from prompt_gym.backends.served.deploy import deploy

    if args.name not in BACKENDS:
        raise ValueError(f"unknown backend {args.name!r}; known backends: {sorted(BACKENDS)}")
    overrides = parse_env_kwargs(args.backend_kwargs)
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    address = ensure_ray(args.address)
    app = deploy(
        BackendSpec(args.name, overrides),
        app=args.app,
        replicas=args.replicas,
        max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_s,
        max_ongoing_requests=args.max_ongoing_requests,
        router=args.router,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
    )
    print(f"serving {args.name} as ray://{app} ({args.replicas} replicas) on {address}")
    print(f"  envs: gym.make(ID, backend='ray://{app}') or --env-kwargs backend:ray://{app}")
    return 0
