"""Run directories, settings, seeding and the end of a run: the plumbing around every algorithm.

* :func:`new_run_dir` makes a fresh ``<logdir>/<env>__<agent>__s<seed>__<time>`` directory and
  :func:`write_run_info` / :func:`read_run_info` keep its ``run.json`` (agent, env, args);
* :func:`make_args` / :func:`load_config` resolve an ``Args`` dataclass (defaults, YAML, flags);
* :func:`seed_everything`, :func:`rng_states` / :func:`set_rng_states` (saved in checkpoints for
  exact resumes) and :func:`episode_seeds` (the reset seeds of each batch);
* :func:`finish_run` ends a run (greedy and random evaluation, examples, curve PNG, summary).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import typing
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from prompt_gym.agents.checkpoints import find_checkpoint
from prompt_gym.agents.episodes import Policy, evaluate_policy, summarize
from prompt_gym.agents.random_agent import RandomPolicy
from prompt_gym.agents.tb import CURVE_PNG, RunLogger, log_examples, plot_curve

from prompt_gym.checks import check_type
from prompt_gym.envs.image_inversion import ImageInversionEnv

RUN_INFO = "run.json"
"""The settings file of a run directory."""


def new_run_dir(logdir: str | Path, env_id: str, agent: str, seed: int) -> Path:
    """Create and return a fresh run directory ``<logdir>/<env>__<agent>__s<seed>__<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(logdir) / f"{env_id}__{agent}__s{seed}__{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def write_run_info(run_dir: Path, agent: str, args: Any) -> None:
    """Write ``run.json``: the agent name and its ``Args`` (a dataclass), for resume and eval."""
    info = {"agent": agent, "args": dataclasses.asdict(args)}
    (run_dir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """Read a run directory's ``run.json``.

    Raises:
        FileNotFoundError: If ``run_dir`` is not a run directory.
        ValueError: If its ``run.json`` is not the JSON mapping :func:`write_run_info` writes.
    """
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {RUN_INFO})")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is corrupt: not valid JSON ({err})") from err
    if not isinstance(info, dict) or not {"agent", "args"} <= set(info):
        raise ValueError(f"{path} is corrupt: not a mapping with 'agent' and 'args'")
    return info


def make_args(cls: type, config: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """Build an ``Args`` dataclass from its defaults, then ``config``, then non-``None`` overrides.

    Raises:
        ValueError: On a key that is not a field of ``cls``, naming the valid ones.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class A:
    ...     lr: float = 0.1
    ...     seed: int = 1
    >>> make_args(A, {"lr": 0.5}, seed=None)
    A(lr=0.5, seed=1)
    """
    names = [f.name for f in dataclasses.fields(cls)]
    values = dict(config or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for {cls.__module__}; valid: {names}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: check_type(f"setting {k}", v, hints[k]) for k, v in values.items()})


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of ``Args`` fields (``--config FILE.yaml``).

    Only plain YAML is read (``yaml.safe_load``: a ``!!python`` tag is an error, never code).

    Raises:
        ValueError: If the file is not valid YAML or does not hold a mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ValueError(f"{path}{at}: {problem}; --config takes a plain YAML mapping") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


# --------------------------------------------------------------------------------- seeding
def seed_everything(seed: int, threads: int) -> None:
    """Seed Python, NumPy and torch, and cap torch's CPU threads."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def rng_states() -> dict[str, Any]:
    """The global random states (Python, NumPy, torch), for a checkpoint.

    Only ints, floats, strings, tuples and a tensor, so that the checkpoint loads with
    ``torch.load(weights_only=True)``; :func:`set_rng_states` restores them exactly.
    """
    numpy = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),  # (version, 625 ints, gauss_next)
        "numpy": {
            "bit_generator": str(numpy["bit_generator"]),
            "key": tuple(int(k) for k in numpy["state"]["key"]),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore states saved by :func:`rng_states`."""
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    numpy = states["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy["bit_generator"],
            "state": {"key": np.array(numpy["key"], dtype=np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(states["torch"])


def episode_seeds(seed: int, index: int, n: int) -> list[int]:
    """``n`` reset seeds for batch ``index`` of a run, a pure function of ``(seed, index)``.

    Rollouts re-seed their envs from it, so a resumed run meets the same episodes.

    >>> episode_seeds(1, 0, 2) == episode_seeds(1, 0, 2) != episode_seeds(1, 1, 2)
    True
    """
    return [int(s) for s in np.random.SeedSequence([seed, index]).generate_state(n)]


def finish_run(
    log: RunLogger,
    run_dir: Path,
    agent: str,
    args: Any,
    policy: Policy,
    env_kwargs: dict[str, Any],
    options: dict[str, Any] | None,
    state: dict[str, Any],
) -> dict[str, Any]:
    """End of a run: greedy and random evaluation, the last examples, the curve PNG, a summary.

    Returns:
        ``run_dir``, ``curve_png``, ``global_step``, ``seconds``, ``final_return`` (mean
        training return over the last tenth of updates), ``eval`` and ``random_eval`` (see
        :func:`~prompt_gym.agents.episodes.summarize`), ``best_prompt`` and ``curve``
        (``(step, return, seconds)`` rows).
    """
    log_examples(log, args.env_id, env_kwargs, policy, state, options)
    final = summarize(
        evaluate_policy(
            policy, args.env_id, args.eval_episodes, args.eval_seed, env_kwargs, options
        ),
        args.env_id,
    )
    rand = summarize(
        evaluate_policy(
            RandomPolicy(args.eval_seed),
            args.env_id,
            args.eval_episodes,
            args.eval_seed,
            env_kwargs,
            options,
        ),
        args.env_id,
    )
    log.scalars(
        {"eval/mean_return": final["mean_return"], "eval/random_mean_return": rand["mean_return"]},
        state["global_step"],
    )
    curve = state["curve"]
    tail = [p[1] for p in curve[-max(1, len(curve) // 10) :]]
    final_return = float(np.mean(tail)) if tail else float("nan")
    log.hparams(
        args,
        {
            "eval_mean_return": final["mean_return"],
            "random_mean_return": rand["mean_return"],
            "final_train_return": final_return,
        },
        state["global_step"],
    )
    png = plot_curve(
        curve,
        run_dir / CURVE_PNG,
        f"{agent} on {args.env_id} (seed {args.seed})",
        rand["mean_return"],
        evals=[(state["global_step"], final["mean_return"], final["ci95"])],
        best=caption_oracle(args.env_id, env_kwargs, args.eval_episodes, args.eval_seed, options),
    )
    return {
        "run_dir": run_dir,
        "curve_png": png,
        "global_step": state["global_step"],
        "seconds": state["seconds"],
        "final_return": final_return,
        "eval": final,
        "random_eval": rand,
        "best_prompt": state["best"][0] if state["best"] else None,
        "curve": list(curve),
    }


def caption_oracle(
    env_id: str,
    env_kwargs: dict[str, Any],
    episodes: int,
    seed: int,
    options: dict[str, Any] | None = None,
) -> float | None:
    """The best-achievable line of a learning curve, where the env knows one.

    On an ImageInversion id whose return is the final similarity (``reward_mode`` ``delta`` or
    ``terminal``), each evaluation episode's target caption scored on that episode's seeds
    (the benchmark's oracle); the mean over the ``episodes`` evaluation episodes. ``None``
    elsewhere: dense returns are sums of similarities, targets without a caption have no
    oracle, and the rewrite families have no known optimum.
    """
    env = gym.make(env_id, **env_kwargs)
    u = env.unwrapped
    try:
        if not isinstance(u, ImageInversionEnv) or u.reward_mode == "dense":
            return None
        values = []
        for i in range(episodes):
            env.reset(seed=seed + i, options=options)
            if not u.target.caption:
                return None
            values.append(u.evaluate_prompt(u.target.caption))
        return float(np.mean(values))
    finally:
        env.close()


def print_interrupted(run_dir: Path, step: int) -> None:
    """Tell the user how to continue an interrupted run (from its latest checkpoint)."""
    try:
        latest = find_checkpoint(run_dir).name
    except FileNotFoundError:
        latest = "none yet: it will start over"
    print(f"\ninterrupted at step {step}; latest checkpoint: {latest}")
    print(f"continue with: prompt-gym train --resume {run_dir}")


def print_report(lines: dict[str, str]) -> None:
    """Print ``key: value`` lines, aligned."""
    width = max(len(k) for k in lines)
    for key, value in lines.items():
        print(f"{key + ':':{width + 1}s} {value}")
