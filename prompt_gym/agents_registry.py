"""Where the agents plug into the CLI: ``AGENTS`` and the ``train`` / ``eval`` sub-commands.

Agents live in ``prompt_gym.agents`` (the top-level ``agents/`` folder) and need the ``agents``
extra; this module imports none of them until a command runs.

Settings resolve in one order: the agent's ``Args`` defaults, then ``--config FILE.yaml``, then
the flags given on the command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AgentEntry:
    """An agent the CLI knows.

    Attributes:
        module: A trainable agent's module has ``Args``, ``env_kwargs(args)``,
            ``train(args, resume)`` and ``load_policy(path)``; a baseline's has ``evaluate``.
        fixed: ``Args`` fields the name implies (``algo`` for the two PPOs).
        description: One line for ``--help``.
        evaluate: For a baseline (nothing to train): the name of its
            ``evaluate(env_id, episodes, seed, env_kwargs) -> list[Episode]`` in ``module``.
    """

    module: str
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    evaluate: str | None = None


AGENTS: dict[str, AgentEntry] = {
    "reinforce": AgentEntry(
        "prompt_gym.agents.reinforce",
        {},
        "REINFORCE, the ImagePrompt policy (per target or across targets)",
    ),
    "ppo": AgentEntry("prompt_gym.agents.sb3_ppo", {"algo": "ppo"}, "Stable-Baselines3 PPO"),
    "maskable-ppo": AgentEntry(
        "prompt_gym.agents.sb3_ppo", {"algo": "maskable-ppo"}, "sb3-contrib MaskablePPO"
    ),
    "lm-ppo": AgentEntry(
        "prompt_gym.agents.lm_ppo",
        {},
        "GPT-2 prompt rewriter: SFT + PPO with a KL penalty (Promptist)",
    ),
    "random": AgentEntry(
        "prompt_gym.agents.common", {}, "masked uniform baseline (eval only)", "evaluate_random"
    ),
    "greedy": AgentEntry(
        "prompt_gym.agents.greedy",
        {},
        "greedy CLIP-Interrogator-style baseline (eval only)",
        "evaluate",
    ),
}
"""Agent name -> where it lives; ``train`` takes the trainable ones, ``eval --agent`` baselines."""

TRAINABLE = [name for name, entry in AGENTS.items() if entry.evaluate is None]
BASELINES = [name for name, entry in AGENTS.items() if entry.evaluate is not None]

# CLI flag -> Args field
_TRAIN_FLAGS = {
    "env": "env_id",
    "total_timesteps": "total_timesteps",
    "num_envs": "num_envs",
    "seed": "seed",
    "logdir": "logdir",
    "backend": "backend",
}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(AGENTS[name].module)
    except ImportError as err:
        raise ValueError(
            f"agent {name!r} needs the 'agents' extra: pip install 'prompt-gym[agents]' ({err})"
        ) from err


def cmd_train(args: argparse.Namespace) -> int:
    """Train an agent; print where the run, its TensorBoard logs and its curve are."""
    from prompt_gym.agents import common

    flags = {field_: getattr(args, flag) for flag, field_ in _TRAIN_FLAGS.items()}
    if args.resume:
        info = common.read_run_info(Path(args.resume))
        name = info["agent"]
        given = sorted(
            f"--{k.replace('_', '-')}"
            for k, v in vars(args).items()
            if v is not None and k in {*_TRAIN_FLAGS, "agent", "config"} - {"total_timesteps"}
        )
        if given:
            raise ValueError(
                f"--resume takes every setting from the run; only --total-timesteps may change (got {given})"
            )
        module = _module(name)
        run_args = common.make_args(module.Args, info["args"], total_timesteps=args.total_timesteps)
        print(f"resuming {args.resume} from {common.find_checkpoint(args.resume).name}")
    else:
        if args.agent is None or args.env is None:
            raise ValueError("train needs --env ID and --agent NAME (or --resume RUN_DIR)")
        name = args.agent
        module = _module(name)
        config = common.load_config(args.config) if args.config else {}
        run_args = common.make_args(module.Args, {**config, **AGENTS[name].fixed}, **flags)
    try:
        summary = module.train(run_args, resume=args.resume)
    except KeyboardInterrupt:
        return 130
    _print_train_summary(name, run_args, summary)
    return 0


def _print_train_summary(name: str, run_args: Any, s: dict[str, Any]) -> None:
    from prompt_gym.agents import common

    ev, rnd = s["eval"], s["random_eval"]
    lines = {
        "run directory": str(s["run_dir"]),
        "tensorboard": f"tensorboard --logdir {s['run_dir']}",
        "learning curve": str(s["curve_png"]),
        "checkpoint": str(s["checkpoint"]),
        "steps": f"{s['global_step']} env steps in {s['seconds']:.1f} s ({s['global_step'] / max(s['seconds'], 1e-9):.0f} steps/s)",
        "train return": f"{s['final_return']:.4f} (mean over the last tenth of training)",
        "eval return": f"{ev['mean_return']:.4f} +- {ev['ci95']:.4f} (greedy, {ev['episodes']} episodes) "
        f"vs random {rnd['mean_return']:.4f} +- {rnd['ci95']:.4f}",
    }
    if "mean_final_similarity" in ev:
        lines["eval similarity"] = (
            f"{ev['mean_final_similarity']:.4f} (random {rnd['mean_final_similarity']:.4f})"
        )
    if s["best_prompt"]:
        b = s["best_prompt"]
        lines["best prompt"] = f"{b['prompt']!r} (return {b['return']:.4f}, {b['target']})"
    print(f"{name} on {run_args.env_id} done.")
    common.print_report(lines)


def load_policy(path: str | Path) -> tuple[Any, str, Any]:
    """The greedy policy of a checkpoint file or run directory: ``(policy, agent name, Args)``."""
    from prompt_gym.agents import common

    ckpt = common.find_checkpoint(path)
    meta = ckpt.with_suffix(".state.pt") if ckpt.suffix == ".zip" else ckpt
    name = common.load_checkpoint(meta)["agent"]
    if name not in TRAINABLE:
        raise ValueError(f"{ckpt} was written by unknown agent {name!r}")
    policy, run_args = _module(name).load_policy(ckpt)
    return policy, name, run_args


def cmd_eval(args: argparse.Namespace) -> int:
    """Deterministic evaluation episodes of a checkpoint or a baseline; print (and save) the numbers."""
    from prompt_gym.agents import common

    if (args.checkpoint is None) == (args.agent is None):
        raise ValueError("eval needs exactly one of --checkpoint PATH and --agent NAME")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    env_kwargs: dict[str, Any] = {}
    options = None
    if args.checkpoint is not None:
        policy, name, run_args = load_policy(args.checkpoint)
        module = _module(name)
        env_kwargs = module.env_kwargs(run_args)
        options = getattr(module, "reset_options", lambda a: None)(run_args)
        env_id = args.env or run_args.env_id
        source = str(common.find_checkpoint(args.checkpoint))
    else:
        name, env_id, source = args.agent, args.env, args.agent
        if name not in BASELINES:
            raise ValueError(
                f"--agent {name} needs a --checkpoint to evaluate; without one: {BASELINES}"
            )
        if env_id is None:
            raise ValueError(f"eval --agent {name} needs --env ID")
    if args.backend:
        env_kwargs["backend"] = args.backend
    if args.checkpoint is not None:
        episodes = common.evaluate(policy, env_id, args.episodes, args.seed, env_kwargs, options)
    else:
        baseline = getattr(_module(name), AGENTS[name].evaluate)
        episodes = baseline(env_id, args.episodes, args.seed, env_kwargs)
    result = {
        "agent": name,
        "checkpoint": source,
        "seed": args.seed,
        **common.summarize(episodes, env_id),
    }
    print(
        f"{name} on {env_id}: mean return {result['mean_return']:.4f} +- {result['ci95']:.4f} (95% CI, {result['episodes']} episodes)"
    )
    for key in ("mean_final_similarity", "mean_relevance", "mean_aesthetic", "mean_prompt_length"):
        if key in result:
            print(f"  {key}: {result[key]:.4f}")
    for ex in result["examples"]:
        print(f"  seed {ex['seed']}: return {ex['return']:.4f}  {ex.get('prompt', '')!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=_json_default))
        print(f"wrote {args.json}")
    return 0


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def add_agent_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``eval``."""
    train = sub.add_parser(
        "train", help="train an agent (TensorBoard logs, checkpoints, curve PNG)"
    )
    train.add_argument("--env", help="env id, e.g. ImageInversion-Shapes-v0")
    train.add_argument("--agent", choices=TRAINABLE)
    train.add_argument(
        "--total-timesteps", type=int, help="environment steps (default: the agent's)"
    )
    train.add_argument("--num-envs", type=int, help="sub-envs of the vector env")
    train.add_argument("--seed", type=int)
    train.add_argument("--logdir", help="parent of the fresh run directory (default runs/)")
    train.add_argument("--backend", help="backend preset overriding the id's default")
    train.add_argument("--config", help="YAML file of the agent's Args fields")
    train.add_argument(
        "--resume", help="continue the run in this directory from its latest checkpoint"
    )
    train.set_defaults(fn=cmd_train)

    ev = sub.add_parser("eval", help="deterministic evaluation of a checkpoint or a baseline")
    ev.add_argument("--env", help="env id (default: the checkpoint's)")
    ev.add_argument("--checkpoint", help="run directory (its latest checkpoint) or checkpoint file")
    ev.add_argument(
        "--agent", choices=list(AGENTS), help=f"a baseline instead: {', '.join(BASELINES)}"
    )
    ev.add_argument("--episodes", type=int, default=100)
    ev.add_argument("--seed", type=int, default=10_000, help="episode i is reset with seed + i")
    ev.add_argument("--backend", help="backend preset overriding the id's default")
    ev.add_argument("--json", help="also write the results to this JSON file")
    ev.set_defaults(fn=cmd_eval)
