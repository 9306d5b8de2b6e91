"""Env steps/s for every Shapes id, with CartPole measured in the same run as a yardstick.

    python benchmarks/env_throughput.py

Random valid actions (uniform over the action mask). Columns: the single env, the native vector
env at 16 / 64 / 256 envs and ``SyncVectorEnv`` at 64 (all on the id's shared backend, so later
columns get cache hits from earlier ones), then the native vector env at 64 envs on a backend of
its own with empty caches (the id's preset, ``shapes`` or ``shapes-v3``), in one process and
with ``--workers`` processes (default 2: ``make_backend(preset, workers=2)``). Vector figures count sub-env steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym

import prompt_gym
from prompt_gym.backends import make_backend
from prompt_gym.throughput import env_steps_per_s


def main() -> int:
    """Measure and print a markdown table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ids", nargs="+", default=[i for i in prompt_gym.ENV_IDS if "-Shapes-" in i]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--workers", type=int, default=2, help="processes of the last column")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    rows = []
    fresh = {w: f"native 64, own backend, workers={w}" for w in (1, args.workers)}
    cols = ["single", *(f"native {n}" for n in args.sizes), "SyncVectorEnv 64", *fresh.values()]
    print("| env | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for env_id in [*args.ids, "CartPole-v1"]:
        row = {"env": env_id, "single": env_steps_per_s(env_id, None)}
        if env_id != "CartPole-v1":
            for n in args.sizes:
                row[f"native {n}"] = env_steps_per_s(env_id, n)
        row["SyncVectorEnv 64"] = env_steps_per_s(env_id, 64, mode="sync")
        for workers, col in fresh.items():
            if env_id != "CartPole-v1":
                preset = gym.spec(env_id).kwargs["backend"]  # shapes or shapes-v3
                backend = make_backend(preset, workers=workers)  # empty caches
                row[col] = env_steps_per_s(env_id, 64, env_kwargs={"backend": backend})
                backend.close()
        rows.append(row)
        cells = [f"{row[c]:,.0f}" if c in row else "-" for c in cols]
        print(f"| {env_id} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
