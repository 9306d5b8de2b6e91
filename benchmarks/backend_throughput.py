"""Backend throughput: images/s generated, images/s generated+scored, cache-hit cost, hit rate.

    python benchmarks/backend_throughput.py                     # the shapes world (CPU)
    python benchmarks/backend_throughput.py --backend sd-turbo  # diffusion presets (GPU)

For the shapes world it prints, at batch sizes 1, 16, 64, 256: images/s generated, images/s
generated and scored (every request a cache miss), cache-hit lookups/s and microseconds per
cache-hit lookup (requests scored before, looked up in batches of that size), and the
cache hit rate of a random-agent ImageInversion workload and of its replay. One table per
``--workers`` value: 1 renders and scores in this process, 2 shares each batch of at least 32
misses with one worker process (``make_backend("shapes", workers=2)``; the same bits). Figures
are medians of repeated timed loops. Diffusion presets are measured by ``benchmarks/diffusion_throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import prompt_gym  # noqa: F401  (registers the ids)
from prompt_gym.throughput import backend_throughput, env_steps_per_s, replay_hit_rate


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print a table (and JSON with ``--json``).

    Any backend other than ``shapes`` is handed, with every argument, to
    ``benchmarks/diffusion_throughput.py`` (which also takes ``--taesd``, ``--compile`` and
    ``--device``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="shapes")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="one table per value: processes that render and score a batch (1: this one only)",
    )
    parser.add_argument("--json", help="write the figures here too")
    args, rest = parser.parse_known_args(argv)
    if args.backend != "shapes":
        sys.path.insert(0, str(Path(__file__).parent))
        import diffusion_throughput

        diffusion_throughput.main(argv)
        return 0
    if rest:
        parser.error(f"unrecognized arguments for the shapes backend: {' '.join(rest)}")

    print(
        f"# backend throughput: {args.backend}, {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    before = env_steps_per_s("CartPole-v1", 64, mode="sync")  # the yardstick, before and after
    tables = {}
    for workers in args.workers:
        rows = backend_throughput(
            args.backend, tuple(args.batch_sizes), repeats=args.repeats, workers=workers
        )
        tables[workers] = rows
        print(f"\nworkers={workers}" + (" (this process only)" if workers == 1 else ""))
        print(
            "| batch | generated images/s | generated+scored images/s "
            "| cache-hit lookups/s | cache hit (us/lookup) |"
        )
        print("|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['batch']} | {r['generated_per_s']:,.0f} | {r['scored_per_s']:,.0f} "
                f"| {1e6 / r['cache_hit_us']:,.0f} | {r['cache_hit_us']:.2f} |"
            )
    after = env_steps_per_s("CartPole-v1", 64, mode="sync")
    yardstick = (before + after) / 2
    print(
        f"\nyardstick, same run: CartPole-v1 SyncVectorEnv(64) {yardstick:,.0f} steps/s "
        f"({before:,.0f} before the tables, {after:,.0f} after; divide by it to compare runs "
        "on machines or days of different speed)"
    )
    rates = replay_hit_rate()
    print(
        f"\ncache hit rate, random agent on ImageInversion-Shapes-v0 (64 envs x 200 steps): "
        f"first pass {rates['first_pass']:.1%}, replay {rates['replay']:.1%}"
    )
    if args.json:
        figures = {"workers": tables, "hit_rate": rates, "cartpole_sync64_steps_per_s": yardstick}
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
