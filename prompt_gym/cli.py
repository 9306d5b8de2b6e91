"""``prompt-gym``: train and evaluate agents, invert images, rewrite prompts, list, bench, download.

Each sub-command is a function ``cmd_<name>(args) -> int``; the parser is built in one place.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from prompt_gym.backends.served.connection import ServiceUnavailableError
from prompt_gym.checks import check_env, parse_env_kwargs, positive_int


def cmd_list(args: argparse.Namespace) -> int:
    """Print the registered env ids, backend presets, components and reward configs."""
    import gymnasium as gym

    import prompt_gym
    from prompt_gym.backends.registry import BACKENDS, COMPONENTS
    from prompt_gym.rewards import BEAUTIFULPROMPT_CONFIGS, REWARD_CONFIGS, REWARD_RANGES

    print("env ids:")
    for env_id in prompt_gym.ENV_IDS:
        print(f"  {env_id:32s} backend={gym.spec(env_id).kwargs['backend']}")
    print("backends:")
    for name, preset in BACKENDS.items():
        parts = f"{preset.generator} + {preset.scorer} + {preset.captioner}"
        print(f"  {name:20s} {parts:45s} {preset.description}")
    for kind, table in COMPONENTS.items():
        print(f"{kind} presets: {', '.join(table)}")
    from prompt_gym.backends.real.presets import model_table

    print("model weights (`prompt-gym download NAME`; tiny and shapes need none):")
    for row in model_table():
        print(
            f"  {row['kind']:15s} {row['name']:19s} {row['size']:46s} {row['licence']:38s} "
            f"{row['source']}"
        )
    print("reward configs:")
    for name in ["imageprompt-i2i", *REWARD_CONFIGS]:
        lo, hi = REWARD_RANGES[name]
        print(f"  {name:26s} range [{lo}, {hi}]")
    for name in BEAUTIFULPROMPT_CONFIGS:  # PromptRewrite reward=; unbounded (see the README)
        print(f"  {name:26s} range (-inf, inf); BeautifulPrompt's 0.3 AES + 0.7 PS")
    from prompt_gym.agents_registry import AGENTS

    print(f"agents: {', '.join(AGENTS) if AGENTS else '(none installed)'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a benchmark suite (``--suite``), or print backend and env throughput."""
    if args.suite is not None or args.quick:
        from pathlib import Path

        from prompt_gym.bench.suite import run_suite

        name = "shapes-quick" if args.quick else args.suite
        out = Path(args.out or f"suite-{name}")
        run_suite(name, out, args.seeds, args.tasks)
        return 0
    from prompt_gym.progress import progress
    from prompt_gym.throughput import backend_throughput, env_steps_per_s

    env_kwargs = parse_env_kwargs(args.env_kwargs)
    check_env(args.env, env_kwargs)
    with progress(len(args.batch_sizes), f"bench {args.backend}", unit="batch size"):
        rows = backend_throughput(args.backend, tuple(args.batch_sizes), repeats=3)
    print(f"backend {args.backend}: batch | generated/s | generated+scored/s | cache hit (us)")
    for r in rows:
        print(
            f"  {r['batch']:5d} | {r['generated_per_s']:11.0f} | {r['scored_per_s']:18.0f} | {r['cache_hit_us']:.2f}"
        )
    sps = env_steps_per_s(args.env, args.num_envs, env_kwargs=env_kwargs)
    shown = " ".join(f"{k}={v}" for k, v in env_kwargs.items())
    print(f"{args.env} {shown} native vector env, {args.num_envs} envs: {sps:.0f} steps/s")
    if args.json:
        with open(args.json, "w") as f:
            figures = {"backend": rows, "env": args.env, "env_kwargs": env_kwargs}
            json.dump({**figures, "num_envs": args.num_envs, "env_steps_per_s": sps}, f, indent=2)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Prefetch a model preset into the local cache (needs a connection)."""
    try:
        from prompt_gym.backends.real.download import download
    except ImportError as err:
        print(
            f"the real backends need the 'diffusion' extra: pip install 'prompt-gym[diffusion]' ({err})"
        )
        return 2
    for path in download(args.name):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``prompt-gym`` argument parser."""
    parser = argparse.ArgumentParser(prog="prompt-gym", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "list", help="registered ids, backends, presets, reward configs, agents"
    ).set_defaults(fn=cmd_list)
    bench = sub.add_parser("bench", help="the benchmark suite (--suite), or throughput figures")
    bench.add_argument(
        "--suite", help="run this suite (shapes, shapes-quick) and write its outputs"
    )
    bench.add_argument("--quick", action="store_true", help="the shapes-quick suite")
    bench.add_argument(
        "--seeds", type=positive_int, default=3, help="suite runs per agent and task"
    )
    bench.add_argument("--tasks", nargs="+", help="only these tasks of the suite")
    bench.add_argument("--out", help="suite output folder (default suite-NAME)")
    bench.add_argument("--backend", default="shapes")
    bench.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 16, 64, 256])
    bench.add_argument(
        "--env", default="ImageInversion-Shapes-v0", help="the env whose steps/s are measured"
    )
    bench.add_argument("--num-envs", type=positive_int, default=64, help="its vector size")
    bench.add_argument(
        "--env-kwargs",
        nargs="+",
        metavar="KEY:VALUE",
        help="its keyword arguments, e.g. level:style n_tokens:32 (values read as YAML)",
    )
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.set_defaults(fn=cmd_bench)
    download = sub.add_parser("download", help="prefetch a model preset (on a connected machine)")
    download.add_argument("name")
    download.set_defaults(fn=cmd_download)
    from prompt_gym.agents_registry import add_agent_commands
    from prompt_gym.backends.served.cli import add_serve_command
    from prompt_gym.beautifulprompt_cli import add_beautifulprompt_commands
    from prompt_gym.practitioner import add_practitioner_commands

    add_agent_commands(sub)
    add_practitioner_commands(sub)
    add_serve_command(sub)
    add_beautifulprompt_commands(sub)
    return parser


def version() -> str:
    """The installed distribution's version (the package's own when it is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("prompt-gym")
    except PackageNotFoundError:
        import prompt_gym

        return prompt_gym.__version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prompt-gym`` console script; returns the exit code.

    Bad input of any kind (flags, config, env id or kwargs, files) is one ``error:`` line on
    stderr and exit code 2, before any run directory is made; ``--help`` and ``--version`` 0.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse's usage errors (2), --help and --version (0)
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        return int(args.fn(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"prompt-gym {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ServiceUnavailableError as err:  # a served backend went away mid-run: not bad input
        print(f"prompt-gym {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
