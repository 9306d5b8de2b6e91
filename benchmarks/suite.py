"""The benchmark suite: every agent x every tier x several runs, on fresh image seeds.

See :mod:`prompt_gym.bench.suite` for the protocol. Outputs go to ``--out`` (default
``benchmarks/out/suite-NAME/``, git-ignored): ``results.csv``, ``summary.json``, ``suite.md``,
``aggregate.png``, ``curves.png``.

Usage::

    python benchmarks/suite.py                 # the `shapes` suite, 3 runs (about 40 minutes)
    python benchmarks/suite.py --quick         # `shapes-quick`: a few minutes on 2 cores
    python benchmarks/suite.py --tasks inversion-hard rewrite
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prompt_gym.bench.suite import SUITES, run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="shapes", choices=sorted(SUITES))
    parser.add_argument("--quick", action="store_true", help="the shapes-quick suite")
    parser.add_argument("--seeds", type=int, default=3, help="runs per agent and task")
    parser.add_argument("--tasks", nargs="+", help="only these tasks of the suite")
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args()
    name = "shapes-quick" if opts.quick else opts.suite
    out = opts.out or Path(__file__).parent / "out" / f"suite-{name}"
    run_suite(name, out, opts.seeds, opts.tasks)


if __name__ == "__main__":
    main()
