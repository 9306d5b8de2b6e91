"""Where the agents plug into the CLI: ``AGENTS`` and the ``train`` / ``eval`` sub-commands.

Agents live in ``prompt_gym.agents`` (the top-level ``agents/`` folder) and need the ``agents``
extra; this module imports none of them until a command runs.

Settings resolve in one order: the agent's ``Args`` defaults, then ``--config FILE.yaml``, then
the flags given on the command line.

Which prompts an evaluation uses: ``eval --split {train,test}`` sets the env argument ``split``
of the ids that have one (``PromptRewrite*``); without it an env uses its own default, the train
split. The summary ``train`` prints says which split its evaluation used: LM-PPO's is the test
split (held-out prompts), the other agents' is the env's (train, for the ids with a split).

Every agent module follows :mod:`prompt_gym.agents.protocol`: ``eval`` calls the one
``evaluate(env_id, episodes, seed, env_kwargs, options, *, checkpoint)`` of a baseline or of the
agent that wrote the checkpoint, ``train`` the hooks of a trainable agent.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prompt_gym.checks import check_env, nonnegative_int, parse_env_kwargs

if TYPE_CHECKING:
    from prompt_gym.agents.protocol import Agent, TrainableAgent


@dataclass(frozen=True)
class AgentEntry:
    """An agent the CLI knows.

    Attributes:
        module: The agent's module: an :class:`~prompt_gym.agents.protocol.Agent` (a baseline)
            or, when ``trainable``, a :class:`~prompt_gym.agents.protocol.TrainableAgent`.
        trainable: ``train`` takes it and ``eval`` needs a ``--checkpoint`` of it; a baseline
            (nothing to train) is evaluated with ``eval --agent NAME``.
        fixed: ``Args`` fields the name implies (``algo`` for the two PPOs).
        description: One line for ``--help``.
    """

    module: str
    trainable: bool
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""


AGENTS: dict[str, AgentEntry] = {
    "reinforce": AgentEntry(
        "prompt_gym.agents.reinforce",
        True,
        {},
        "REINFORCE, the ImagePrompt policy (per target or across targets)",
    ),
    "ppo": AgentEntry("prompt_gym.agents.sb3_ppo", True, {"algo": "ppo"}, "Stable-Baselines3 PPO"),
    "maskable-ppo": AgentEntry(
        "prompt_gym.agents.sb3_ppo", True, {"algo": "maskable-ppo"}, "sb3-contrib MaskablePPO"
    ),
    "lm-ppo": AgentEntry(
        "prompt_gym.agents.lm_ppo.ppo",
        True,
        {},
        "GPT-2 prompt rewriter: SFT + PPO with a KL penalty (Promptist)",
    ),
    "random": AgentEntry(
        "prompt_gym.agents.random_agent", False, {}, "masked uniform baseline (eval only)"
    ),
    "greedy": AgentEntry(
        "prompt_gym.agents.greedy",
        False,
        {},
        "greedy CLIP-Interrogator-style baseline (eval only)",
    ),
    "pez": AgentEntry(
        "prompt_gym.agents.pez",
        False,
        {},
        "PEZ hard prompts by gradient through a CLIP text encoder (eval only; ImageInversion "
        "ids; on the Shapes ids through the shapes-clip proxy)",
    ),
}
"""Agent name -> where it lives; ``train`` takes the trainable ones, ``eval --agent`` baselines."""

TRAINABLE = [name for name, entry in AGENTS.items() if entry.trainable]
BASELINES = [name for name, entry in AGENTS.items() if not entry.trainable]

# CLI flag -> Args field
_TRAIN_FLAGS = {
    "env": "env_id",
    "total_timesteps": "total_timesteps",
    "num_envs": "num_envs",
    "seed": "seed",
    "logdir": "logdir",
    "backend": "backend",
    "sft": "sft",
}


def load_agent(name: str) -> Agent:
    """The module of agent ``name``, as the :class:`~prompt_gym.agents.protocol.Agent` it is.

    Raises:
        ValueError: If the ``agents`` extra is not installed.
    """
    try:
        return cast("Agent", importlib.import_module(AGENTS[name].module))
    except ImportError as err:
        raise ValueError(
            f"agent {name!r} needs the 'agents' extra: pip install 'prompt-gym[agents]' ({err})"
        ) from err


def load_trainable(name: str) -> TrainableAgent:
    """The module of trainable agent ``name``.

    Raises:
        ValueError: If ``name`` is a baseline, or the ``agents`` extra is not installed.
    """
    if not AGENTS[name].trainable:
        raise ValueError(f"agent {name!r} is a baseline with nothing to train")
    return cast("TrainableAgent", load_agent(name))


def cmd_train(args: argparse.Namespace) -> int:
    """Train an agent; print where the run, its TensorBoard logs and its curve are."""
    from prompt_gym.agents.checkpoints import find_checkpoint
    from prompt_gym.agents.runs import load_config, make_args, read_run_info

    if args.backend_service is not None:
        if args.backend:
            raise ValueError("give --backend or --backend-service, not both")
        if not args.backend_service.startswith("ray://"):
            raise ValueError(f"--backend-service takes ray://APP, got {args.backend_service!r}")
    flags = {field_: getattr(args, flag) for flag, field_ in _TRAIN_FLAGS.items()}
    flags["backend"] = args.backend_service or args.backend
    if args.resume:
        info = read_run_info(Path(args.resume))
        name = info["agent"]
        given = sorted(
            f"--{k.replace('_', '-')}"
            for k, v in vars(args).items()
            if v is not None
            and k
            in {*_TRAIN_FLAGS, "agent", "config", "env_kwargs", "backend_service"}
            - {"total_timesteps"}
        )
        if given:
            raise ValueError(
                f"--resume takes every setting from the run; only --total-timesteps may change (got {given})"
            )
        agent = load_trainable(name)
        run_args = make_args(agent.Args, info["args"], total_timesteps=args.total_timesteps)
        print(f"resuming {args.resume} from {find_checkpoint(args.resume).name}")
    else:
        if args.agent is None or args.env is None:
            raise ValueError("train needs --env ID and --agent NAME (or --resume RUN_DIR)")
        name = args.agent
        agent = load_trainable(name)
        if args.sft is not None and "sft" not in {f.name for f in dataclasses.fields(agent.Args)}:
            raise ValueError(
                f"--sft: agent {name!r} has no SFT stage (its Args have no field 'sft'); "
                "SFT pairs are for --agent lm-ppo"
            )
        config = load_config(args.config) if args.config else {}
        if args.env_kwargs:
            config["env_kwargs"] = merge_env_kwargs(config.get("env_kwargs"), args.env_kwargs)
        run_args = make_args(agent.Args, {**config, **AGENTS[name].fixed}, **flags)
    check_run_args(agent, run_args)
    try:
        summary = agent.train(run_args, resume=args.resume)
    except KeyboardInterrupt:
        return 130
    _print_train_summary(name, agent, run_args, summary)
    return 0


def merge_env_kwargs(config: Any, items: list[str]) -> dict[str, Any]:
    """The config's ``env_kwargs`` with ``--env-kwargs key:value ...`` merged over them.

    Raises:
        ValueError: If the config's ``env_kwargs`` is not a mapping, or an item is malformed.

    >>> merge_env_kwargs({"level": "objects", "n_tokens": 8}, ["level:style"])
    {'level': 'style', 'n_tokens': 8}
    """
    if config is not None and not isinstance(config, dict):
        raise ValueError(f"setting env_kwargs must be a mapping, got {config!r}")
    return {**(config or {}), **parse_env_kwargs(items)}


def check_run_args(agent: TrainableAgent, run_args: Any) -> None:
    """What every run needs, checked before its run directory is made: a seed >= 0, a
    prompt-gym env id and env kwargs that env takes.

    Raises:
        ValueError: On the first of these that is wrong.
    """
    if getattr(run_args, "seed", 0) < 0:
        raise ValueError(f"seed must be >= 0, got {run_args.seed}")
    check_env(run_args.env_id, agent.env_kwargs(run_args))


def env_split_default(env_id: str) -> str | None:
    """The default ``split`` of an id's env (``None`` when it has no such argument).

    >>> env_split_default("PromptRewrite-Shapes-v0"), env_split_default("ImageInversion-Shapes-v0")
    ('train', None)
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import prompt_gym  # noqa: F401  (registers the ids)

    creator = load_env_creator(gym.spec(env_id).entry_point)
    param = inspect.signature(creator).parameters.get("split")  # the env's declared arguments
    return None if param is None else str(param.default)


def _print_train_summary(
    name: str, agent: TrainableAgent, run_args: Any, s: dict[str, Any]
) -> None:
    from prompt_gym.agents.runs import print_report

    ev, rnd = s["eval"], s["random_eval"]
    split = s.get("eval_split")
    if split is None and env_split_default(run_args.env_id) is not None:
        split = agent.env_kwargs(run_args).get("split", env_split_default(run_args.env_id))
    where = f", {split} split" if split else ""
    lines = {
        "run directory": str(s["run_dir"]),
        "tensorboard": f"tensorboard --logdir {s['run_dir']}",
        "learning curve": str(s["curve_png"]),
        "checkpoint": str(s["checkpoint"]),
        "steps": f"{s['global_step']} env steps in {s['seconds']:.1f} s ({s['global_step'] / max(s['seconds'], 1e-9):.0f} steps/s)",
        "train return": f"{s['final_return']:.4f} (mean over the last tenth of training)",
        "eval return": f"{ev['mean_return']:.4f} +- {ev['ci95']:.4f} (greedy, {ev['episodes']} episodes{where}) "
        f"vs random {rnd['mean_return']:.4f} +- {rnd['ci95']:.4f}",
    }
    if "sft_eval" in s:
        sft = s["sft_eval"]
        lines["sft eval return"] = (
            f"{sft['mean_return']:.4f} +- {sft['ci95']:.4f} (the SFT start, same episodes)"
        )
    if "mean_final_similarity" in ev:
        lines["eval similarity"] = (
            f"{ev['mean_final_similarity']:.4f} (random {rnd['mean_final_similarity']:.4f})"
        )
    if s["best_prompt"]:
        b = s["best_prompt"]
        lines["best prompt"] = f"{b['prompt']!r} (return {b['return']:.4f}, {b['target']})"
    print(f"{name} on {run_args.env_id} done.")
    print_report(lines)


def checkpoint_run(path: str | Path) -> tuple[str, Any]:
    """Which agent wrote a checkpoint file, and its run's ``Args``: ``(agent name, Args)``.

    An SB3 ``step_<N>.zip`` is read through the ``step_<N>.state.pt`` beside it; nothing is
    unpickled (see :func:`~prompt_gym.agents.checkpoints.load_checkpoint`).

    Raises:
        ValueError: If the file is not a checkpoint of a trainable agent.
    """
    from prompt_gym.agents.checkpoints import load_checkpoint
    from prompt_gym.agents.runs import make_args

    ckpt = Path(path)
    meta = ckpt.with_suffix(".state.pt") if ckpt.suffix == ".zip" else ckpt
    state = load_checkpoint(meta, keys=("agent", "args"))
    name = state["agent"]
    if name not in TRAINABLE:
        raise ValueError(f"{ckpt} was written by unknown agent {name!r}")
    return name, make_args(load_trainable(name).Args, state["args"])


def load_policy(path: str | Path) -> tuple[Any, str, Any]:
    """The greedy policy of a checkpoint file or run directory: ``(policy, agent name, Args)``."""
    from prompt_gym.agents.checkpoints import find_checkpoint

    ckpt = find_checkpoint(path)
    name, _ = checkpoint_run(ckpt)
    policy, run_args = load_trainable(name).load_policy(ckpt)
    return policy, name, run_args


def fresh_seed_scores(
    episodes: list[Any], env_id: str, env_kwargs: dict[str, Any]
) -> dict[str, float]:
    """The protocol's score of the final prompts on fresh image seeds (see prompt_gym.bench)."""
    from prompt_gym.agents.episodes import ci95
    from prompt_gym.bench.protocol import EVAL_IMAGES, FreshScorer, final_prompts

    scorer = FreshScorer(env_id, env_kwargs, share_backend=True)
    fresh = scorer.score(final_prompts(episodes, env_id, None))
    return {
        "fresh_mean": float(fresh.mean()),
        "fresh_ci95": ci95(fresh),
        "fresh_images": EVAL_IMAGES,
    }


def cmd_eval(args: argparse.Namespace) -> int:
    """Deterministic evaluation episodes of a checkpoint or a baseline; print (and save) the numbers."""
    from prompt_gym.agents.checkpoints import find_checkpoint
    from prompt_gym.agents.episodes import summarize

    if (args.checkpoint is None) == (args.agent is None):
        raise ValueError("eval needs exactly one of --checkpoint PATH and --agent NAME")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    env_kwargs: dict[str, Any] = {}
    options = None
    ckpt: Path | None = None
    if args.checkpoint is not None:
        ckpt = find_checkpoint(args.checkpoint)
        name, run_args = checkpoint_run(ckpt)
        trainable = load_trainable(name)
        env_kwargs = trainable.env_kwargs(run_args)
        options = trainable.reset_options(run_args)
        env_id = args.env or run_args.env_id
        agent: Agent = trainable
        source = str(ckpt)
    else:
        name, env_id, source = args.agent, args.env, args.agent
        if name not in BASELINES:
            raise ValueError(
                f"--agent {name} needs a --checkpoint to evaluate; without one: {BASELINES}"
            )
        if env_id is None:
            raise ValueError(f"eval --agent {name} needs --env ID")
        agent = load_agent(name)
    if args.backend:
        env_kwargs["backend"] = args.backend
    env_kwargs.update(parse_env_kwargs(args.env_kwargs))
    check_env(env_id, env_kwargs)
    split = env_split_default(env_id)
    if args.split is not None:
        if split is None:
            raise ValueError(
                f"--split: {env_id} has no prompt split (only the PromptRewrite* ids have one); "
                "drop --split"
            )
        env_kwargs["split"] = args.split
    split = env_kwargs.get("split", split)
    from prompt_gym.progress import progress

    with progress(args.episodes, f"eval {name}"):
        episodes = agent.evaluate(
            env_id, args.episodes, args.seed, env_kwargs, options, checkpoint=ckpt
        )
    result = {
        "agent": name,
        "checkpoint": source,
        "seed": args.seed,
        "split": split,
        **summarize(episodes, env_id),
        **fresh_seed_scores(episodes, env_id, env_kwargs),
    }
    where = f", {split} split" if split else ""
    print(
        f"{name} on {env_id}: mean return {result['mean_return']:.4f} +- {result['ci95']:.4f} (95% CI, {result['episodes']} episodes{where})"
    )
    print(
        f"  fresh-seed score: {result['fresh_mean']:.4f} +- {result['fresh_ci95']:.4f} (each final "
        f"prompt on {result['fresh_images']} image seeds no env draws)"
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


ENV_KWARGS_FLAG: dict[str, Any] = {
    "nargs": "+",
    "metavar": "KEY:VALUE",
    "help": "env keyword arguments, e.g. level:style n_tokens:32 (values read as YAML; merged "
    "over the config's env_kwargs)",
}


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
    train.add_argument("--seed", type=nonnegative_int)
    train.add_argument("--logdir", help="parent of the fresh run directory (default runs/)")
    train.add_argument("--backend", help="backend preset overriding the id's default")
    train.add_argument(
        "--backend-service",
        metavar="ray://APP",
        help="a served backend (`prompt-gym serve NAME --app APP` on a Ray cluster) instead of "
        "--backend",
    )
    train.add_argument("--config", help="YAML file of the agent's Args fields")
    train.add_argument("--env-kwargs", **ENV_KWARGS_FLAG)
    train.add_argument(
        "--sft",
        metavar="PAIRS.jsonl",
        help='lm-ppo: SFT pairs, lines of {"source": ..., "target": ...} (default on the shapes '
        "world: generated)",
    )
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
    ev.add_argument(
        "--seed", type=nonnegative_int, default=10_000, help="episode i is reset with seed + i"
    )
    ev.add_argument("--backend", help="backend preset overriding the id's default")
    ev.add_argument(
        "--split",
        choices=["train", "test"],
        help="prompt split of the PromptRewrite* ids (default: the env's, train; the lm-ppo "
        "training summary reports the test split)",
    )
    ev.add_argument("--env-kwargs", **ENV_KWARGS_FLAG)
    ev.add_argument("--json", help="also write the results to this JSON file")
    ev.set_defaults(fn=cmd_eval)
