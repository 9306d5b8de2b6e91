"""Scale-out on Ray: scored images/s against replicas, and the cost of a service round trip.

For each replica count, the preset is deployed as a Serve app and one caller scores batches
of fresh (prompt, seed) requests (``--batch`` rows, sent as requests of ``--max-batch-size``
rows that are in flight together, so the router spreads them over the replicas); the figure is
the median images/s of ``--repeats`` batches, and the ratio to one replica and to the
in-process backend. The same preset in-process with as many worker processes as the most
replicas (``workers=N``) is this machine's own ceiling for N-way parallel scoring. The round-trip
overhead is the median extra time of a served call over the same call in-process (one fresh
row, and a batch of 64 fresh rows), with one replica; it is set against the in-process
batch-64 step of the same preset and against a reference GPU step (``--reference-step-ms``,
an SD-Turbo batch of 64 at 512px; measure it with ``--backend sd-turbo`` on a GPU machine).

Examples:
    python benchmarks/ray_scaling.py                        # shapes, 1 and 2 CPU replicas
    python benchmarks/ray_scaling.py --backend sd-turbo --replicas 1 2 4 8 --num-gpus 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from typing import Any

import numpy as np

from prompt_gym.backends import make_backend
from prompt_gym.backends.factory import BackendSpec
from prompt_gym.backends.served import connect, deploy
from prompt_gym.backends.served.connection import ensure_ray
from prompt_gym.backends.served.deploy import DEFAULT_ROUTER, MAX_ONGOING, ROUTERS
from prompt_gym.checks import parse_env_kwargs

PROMPTS = [
    "a red circle on a blue background",
    "a green square, striped, glowing",
    "a yellow star on a black background",
    "a purple egg, pastel, soft light",
    "a shaded orange sphere and a small blue cube",
]
_SEEDS = itertools.count(10**9)


def fresh(n: int) -> tuple[list[str], list[int]]:
    """``n`` requests never scored before (new seeds)."""
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)], [next(_SEEDS) for _ in range(n)]


def median_seconds(backend: Any, n: int, repeats: int) -> float:
    """Median seconds of ``backend.score`` on ``n`` fresh requests."""
    times = []
    for _ in range(repeats):
        prompts, seeds = fresh(n)
        start = time.perf_counter()
        backend.score(prompts, seeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="shapes")
    parser.add_argument("--backend-kwargs", nargs="+", default=["resolution:128"])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=512, help="rows per scored batch")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--batch-wait-s", type=float, default=0.005)
    parser.add_argument(
        "--max-ongoing-requests", type=int, default=MAX_ONGOING, help="requests one replica takes"
    )
    parser.add_argument("--router", choices=sorted(ROUTERS), default=DEFAULT_ROUTER)
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica")
    parser.add_argument("--num-gpus", type=float, default=None, help="GPUs per replica")
    parser.add_argument("--reference-step-ms", type=float, default=300.0)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    overrides = parse_env_kwargs(args.backend_kwargs)
    if "RAY_ADDRESS" not in os.environ:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    address = ensure_ray()
    spec = BackendSpec(args.backend, overrides)
    local = make_backend(args.backend, **overrides)
    median_seconds(local, args.batch, 1)  # warm up
    local_rate = args.batch / median_seconds(local, args.batch, args.repeats)
    print(
        f"{args.backend} {overrides}: batch {args.batch}, cluster {address}, {os.cpu_count()} CPUs"
    )
    print(f"in-process: {local_rate:8.0f} images/s")
    most = max(args.replicas)
    pool = make_backend(args.backend, workers=most, **overrides)  # this machine's own ceiling
    median_seconds(pool, args.batch, 1)
    pool_rate = args.batch / median_seconds(pool, args.batch, args.repeats)
    pool.close()
    print(
        f"in-process, {most} worker processes: {pool_rate:8.0f} images/s  x{pool_rate / local_rate:.2f}"
    )
    rows, one = [], None
    for replicas in args.replicas:
        app = f"bench-{args.backend}-{replicas}"
        deploy(
            spec,
            app=app,
            replicas=replicas,
            max_batch_size=args.max_batch_size,
            batch_wait_timeout_s=args.batch_wait_s,
            max_ongoing_requests=args.max_ongoing_requests,
            router=args.router,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
        )
        served = connect(app)
        median_seconds(served, args.batch, 2)  # warm up every replica
        rate = args.batch / median_seconds(served, args.batch, args.repeats)
        one = rate if one is None else one
        row = {
            "replicas": replicas,
            "images_per_s": rate,
            "speedup": rate / one,
            "of_in_process": rate / local_rate,
        }
        if replicas == args.replicas[0]:
            row.update(overhead(local, served, args.repeats * 3))
        rows.append(row)
        print(
            f"{replicas} replicas: {rate:8.0f} images/s  x{rate / one:.2f} of {args.replicas[0]}, "
            f"x{rate / local_rate:.2f} of in-process"
        )
        from ray import serve

        serve.delete(app)
    first = rows[0]
    share = first["overhead_ms_64"] / args.reference_step_ms
    print(
        f"round trip ({args.replicas[0]} replica): +{first['overhead_ms_1']:.2f} ms per 1-row "
        f"call ({first['local_ms_1']:.2f} ms in-process), +{first['overhead_ms_64']:.2f} ms per "
        f"64-row call ({first['local_ms_64']:.2f} ms in-process); "
        f"{100 * share:.1f}% of a {args.reference_step_ms:.0f} ms reference GPU step"
    )
    if args.json:
        with open(args.json, "w") as f:
            figures = {"backend": args.backend, "overrides": overrides, "rows": rows}
            figures.update(
                in_process=local_rate, worker_pool={"workers": most, "images_per_s": pool_rate}
            )
            json.dump(figures, f, indent=2)


def overhead(local: Any, served: Any, repeats: int) -> dict[str, float]:
    """Median ms of a 1-row and a 64-row fresh call, in-process and served, and the differences."""
    out = {}
    for n in (1, 64):
        a = np.median([median_seconds(local, n, 1) for _ in range(repeats)]) * 1e3
        b = np.median([median_seconds(served, n, 1) for _ in range(repeats)]) * 1e3
        out.update({f"local_ms_{n}": a, f"served_ms_{n}": b, f"overhead_ms_{n}": b - a})
    return {k: float(v) for k, v in out.items()}


if __name__ == "__main__":
    main()
