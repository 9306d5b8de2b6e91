"""Stable-Baselines3 PPO and sb3-contrib MaskablePPO on the Dict observations.

The envs reach SB3 through :class:`prompt_gym.envs.sb3.SB3VecEnv` (one backend call per step for
all sub-envs; ``action_masks()`` for MaskablePPO). On ImageInversion the features extractor is
:class:`CandidateExtractor`: one small encoder shared by every candidate token reads
``[c_i, t*c_i, u*c_i, t.c_i, u.c_i, chosen_i, valid_i]``, so each candidate slot gets features
that mean the same thing whatever the target. Other Dict envs use SB3's ``CombinedExtractor``.
Plain PPO cannot mask: its envs penalise an invalid action (``invalid_action="penalize"``) and
the mask is part of what it observes.

Logging goes through SB3's own logger and callbacks: :class:`TensorBoardFormat` writes SB3's
scalars into the run's one event file (``train/policy_gradient_loss`` also as
``losses/policy_loss`` and so on), :class:`RunCallback` adds ``charts/``, ``backend/``, image
grids and prompts and the progress bar. Every rollout is one ``model.learn`` call on fresh
episodes seeded from ``(seed, rollout)`` (the previous rollout's unfinished episodes were
bootstrapped by the value function); only SB3's public API is used (``set_env``, ``learn(...,
reset_num_timesteps=False)``, ``num_timesteps``, ``get_parameters``, callbacks, the logger),
and a checkpoint holds everything a resume needs, so a resumed run reproduces an uninterrupted
one.

Usage::

    prompt-gym train --env ImageInversion-Shapes-v0 --agent maskable-ppo
    prompt-gym train --env PromptRewrite-Shapes-v0 --agent ppo --total-timesteps 20000
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from prompt_gym.agents.checkpoints import (
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    load_failure,
    prune_checkpoints,
    save_checkpoint,
)
from prompt_gym.agents.episodes import Episode, Policy
from prompt_gym.agents.protocol import checkpoint_evaluate
from prompt_gym.agents.runs import (
    episode_seeds,
    finish_run,
    make_args,
    new_run_dir,
    print_interrupted,
    rng_states,
    seed_everything,
    set_rng_states,
    write_run_info,
)
from prompt_gym.agents.tb import (
    RunLogger,
    backend_scalars,
    episode_scalars,
    log_examples,
    progress_bar,
    top_prompts,
)
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from prompt_gym.backends import RewardBackend
from prompt_gym.envs.sb3 import SB3VecEnv

ALGOS = ("ppo", "maskable-ppo")


# ===================================================================================== args
@dataclass
class Args:
    """Settings of an SB3 run (``--config FILE.yaml`` takes any of these fields)."""

    env_id: str = "ImageInversion-Shapes-v0"
    """Env id to train on (ImageInversion or PromptRewrite families)."""
    algo: str = "maskable-ppo"
    """``ppo`` (SB3) or ``maskable-ppo`` (sb3-contrib, invalid actions masked)."""
    seed: int = 1
    """Seed of SB3, torch, NumPy and of every rollout's episodes."""
    total_timesteps: int = 20_000
    """Environment steps to train for (whole rollouts)."""
    num_envs: int = 8
    """Sub-envs of the vector env."""
    backend: str | None = None
    """Backend preset overriding the id's default."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments."""
    n_steps: int = 64
    """Steps per sub-env per rollout."""
    batch_size: int = 128
    """Minibatch size."""
    n_epochs: int = 4
    """Optimisation epochs per rollout."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    gamma: float = 1.0
    """Discount (episodes are short and their rewards sum to the score)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO clip range."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip."""
    hidden: int = 64
    """Hidden units of the policy and value heads and of the candidate encoder."""
    token_features: int = 16
    """Features per candidate token from the shared encoder."""
    torch_threads: int = 1
    """torch CPU threads."""
    logdir: str = "runs"
    """Parent of the run directory."""
    examples_every: int = 10
    """Log an image grid and example prompts every this many rollouts."""
    save_every: int = 5
    """Save a checkpoint every this many rollouts (and at the end)."""
    eval_episodes: int = 32
    """Deterministic evaluation episodes at the end (and for the random baseline)."""
    eval_seed: int = 10_000
    """Seed of evaluation episode 0."""


def check_args(args: Args) -> None:
    """Reject bad settings before any work starts."""
    if args.algo not in ALGOS:
        raise ValueError(f"algo must be one of {ALGOS}, got {args.algo!r}")
    for name in (
        "total_timesteps",
        "num_envs",
        "n_steps",
        "batch_size",
        "n_epochs",
        "save_every",
        "examples_every",
        "eval_episodes",
    ):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(args, name)}")
    if (args.n_steps * args.num_envs) % args.batch_size:
        raise ValueError(
            f"batch_size ({args.batch_size}) must divide n_steps * num_envs ({args.n_steps * args.num_envs})"
        )


# ===================================================================================== env
def env_kwargs(args: Args) -> dict[str, Any]:
    """Keyword arguments of every env of the run (plain PPO gets penalised invalid actions)."""
    kwargs = dict(args.env_kwargs)
    if args.backend is not None:
        kwargs["backend"] = args.backend
    if args.algo == "ppo":
        kwargs.setdefault("invalid_action", "penalize")
    return kwargs


def reset_options(args: Args) -> None:
    """Reset options of the run's episodes: none (the SB3 agents train across targets)."""
    return None


def make_env(args: Args) -> SB3VecEnv:
    """The SB3 vector env, checked to be one SB3 can read."""
    venv = SB3VecEnv(args.env_id, num_envs=args.num_envs, **env_kwargs(args))
    space = venv.observation_space
    if not isinstance(space, spaces.Dict) or "action_mask" not in space.spaces:
        raise ValueError(
            f"{args.env_id}: the SB3 agents support the ImageInversion and PromptRewrite families"
        )
    return venv


# ===================================================================================== model
class CandidateExtractor(BaseFeaturesExtractor):
    """Per-candidate features from one shared encoder, plus state features.

    SB3 hands the extractor ``chosen`` one-hot encoded (``max_tokens`` blocks of
    ``n_tokens + 1``) and ``action_mask`` as floats.
    """

    def __init__(
        self, observation_space: spaces.Dict, token_features: int = 16, hidden: int = 64
    ) -> None:
        dim = observation_space["target"].shape[0]
        n_tokens, max_tokens = (
            observation_space["candidates"].shape[0],
            observation_space["chosen"].shape[0],
        )
        super().__init__(observation_space, features_dim=(n_tokens + 1) * token_features)
        self.n_tokens, self.max_tokens = n_tokens, max_tokens
        self.token = nn.Sequential(
            nn.Linear(3 * dim + 4, hidden), nn.ReLU(), nn.Linear(hidden, token_features), nn.ReLU()
        )
        self.state = nn.Sequential(
            nn.Linear(dim + 3, hidden), nn.ReLU(), nn.Linear(hidden, token_features), nn.ReLU()
        )

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, (n_tokens + 1) * token_features)``: candidate slots in order, then the state."""
        t, u, c = obs["target"], obs["current"], obs["candidates"]
        chosen = (
            obs["chosen"].view(-1, self.max_tokens, self.n_tokens + 1)[..., : self.n_tokens].sum(1)
        )
        valid = obs["action_mask"][:, : self.n_tokens]
        tc, uc = t[:, None] * c, u[:, None] * c
        cand = torch.cat(
            [
                c,
                tc,
                uc,
                tc.sum(2, keepdim=True),
                uc.sum(2, keepdim=True),
                chosen[..., None],
                valid[..., None],
            ],
            dim=2,
        )
        frac = chosen.sum(1, keepdim=True) / self.max_tokens
        state = torch.cat([t * u, obs["similarity"], (t * u).sum(1, keepdim=True), frac], dim=1)
        return torch.cat([self.token(cand).flatten(1), self.state(state)], dim=1)


def algo_class(algo: str) -> type:
    """``PPO`` or ``MaskablePPO``."""
    if algo == "maskable-ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    return PPO


def make_model(args: Args, venv: SB3VecEnv) -> Any:
    """A fresh PPO / MaskablePPO with the candidate extractor where the env has candidates."""
    policy_kwargs: dict[str, Any] = {"net_arch": {"pi": [args.hidden], "vf": [args.hidden]}}
    if "candidates" in venv.observation_space.spaces:
        policy_kwargs["features_extractor_class"] = CandidateExtractor
        policy_kwargs["features_extractor_kwargs"] = {
            "token_features": args.token_features,
            "hidden": args.hidden,
        }
    return algo_class(args.algo)(
        "MultiInputPolicy",
        venv,
        learning_rate=args.learning_rate,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_range,
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef,
        max_grad_norm=args.max_grad_norm,
        policy_kwargs=policy_kwargs,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )


def make_policy(model: Any, algo: str) -> Policy:
    """The greedy batched policy of a model (masked for MaskablePPO)."""

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        if algo == "maskable-ppo":
            masks = obs["action_mask"].astype(bool)
            masks[~masks.any(axis=1)] = True  # a finished episode's action is ignored
            return model.predict(obs, deterministic=True, action_masks=masks)[0]
        return model.predict(obs, deterministic=True)[0]

    return policy


# ===================================================================================== logging
class TensorBoardFormat(KVWriter):
    """SB3 logger output into the run's :class:`~prompt_gym.agents.tb.RunLogger`."""

    ALIASES: ClassVar[dict[str, str]] = {
        "train/policy_gradient_loss": "losses/policy_loss",
        "train/value_loss": "losses/value_loss",
        "train/approx_kl": "losses/approx_kl",
        "train/clip_fraction": "losses/clipfrac",
        "train/explained_variance": "losses/explained_variance",
        "train/loss": "losses/loss",
        "time/fps": "charts/sps",
    }

    def __init__(self, log: RunLogger) -> None:
        self.log = log

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        """Scalars under their SB3 name (and alias), strings as text."""
        for key, value in key_values.items():
            if "tensorboard" in (key_excluded.get(key) or ()):
                continue
            if isinstance(value, str):
                self.log.text(key, value, step)
            elif isinstance(value, int | float | np.number):
                self.log.scalars({key: float(value)}, step)
                if key in self.ALIASES:
                    self.log.scalars({self.ALIASES[key]: float(value)}, step)
                if key == "train/entropy_loss":
                    self.log.scalars({"losses/entropy": -float(value)}, step)
        self.log.writer.flush()

    def close(self) -> None:
        """The run logger is closed by its owner."""


class RunCallback(BaseCallback):
    """Episodes, ``charts/`` and ``backend/`` scalars, examples and progress, from SB3's public hooks.

    It reads each step's ``rewards``, ``dones`` and ``infos`` from ``self.locals`` and records its
    scalars in SB3's logger (dumped with SB3's own at the end of the rollout).

    Args:
        args: The run's settings.
        log: The run's logger (for image grids and prompts).
        state: The run's counters, curve and best prompts; updated at the end of every rollout.
        backend: The env's reward backend (for the ``backend/`` scalars).
    """

    def __init__(
        self, args: Args, log: RunLogger, state: dict[str, Any], backend: RewardBackend
    ) -> None:
        super().__init__()
        self.args, self.log, self.state, self.backend = args, log, state, backend
        self.start = time.perf_counter() - state["seconds"]
        self.bar = progress_bar(args.total_timesteps, state["global_step"], desc=args.algo)
        self.returns = np.zeros(args.num_envs)
        self.lengths = np.zeros(args.num_envs, dtype=np.int64)
        self.finished: list[dict[str, Any]] = []

    def _on_rollout_start(self) -> None:
        self.returns[:], self.lengths[:], self.finished = 0.0, 0, []

    def _on_step(self) -> bool:
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        self.returns += rewards
        self.lengths += 1
        for i in np.flatnonzero(dones):
            self.finished.append(
                {"return": float(self.returns[i]), "length": int(self.lengths[i]), "info": infos[i]}
            )
            self.returns[i], self.lengths[i] = 0.0, 0
        return True

    def _on_rollout_end(self) -> None:
        self.state["rollout"] += 1
        step = self.state["global_step"] = int(self.model.num_timesteps)
        self.state["seconds"] = time.perf_counter() - self.start
        if self.finished:
            episodes = [
                Episode({}, np.zeros(f["length"]), np.array([f["return"]]), f["info"], None)
                for f in self.finished
            ]
            charts = episode_scalars(episodes)
            for key, value in charts.items():
                self.logger.record(key, value)
            self.state["curve"].append(
                (step, charts["charts/episodic_return"], self.state["seconds"])
            )
            self.state["best"] = top_prompts(self.state["best"], episodes)
            self.bar.set_postfix(ret=f"{charts['charts/episodic_return']:.3f}", refresh=False)
        for key, value in backend_scalars(self.backend).items():
            self.logger.record(key, value)
        self.bar.update(step - self.bar.n)
        if self.state["rollout"] % self.args.examples_every == 0:
            policy = make_policy(self.model, self.args.algo)
            log_examples(self.log, self.args.env_id, env_kwargs(self.args), policy, self.state)


# ===================================================================================== checkpoints
def save(model: Any, args: Args, run_dir: Path, state: dict[str, Any]) -> Path:
    """``step_<N>.zip`` (SB3's own format) and ``step_<N>.state.pt`` (counters, curve, RNG).

    Only the zip's weights are ever read back (:func:`load_params`): the rest of an SB3 zip is
    cloudpickled, and unpickling a file can run code. What SB3 keeps there and a resume needs
    (its step and update counters) is in the ``.state.pt``, which loads with
    ``weights_only=True``.
    """
    path = checkpoint_path(run_dir, state["global_step"], "zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    extra = {
        "agent": args.algo,
        "args": dataclasses.asdict(args),
        "state": state,
        "rng": rng_states(),
    }
    save_checkpoint(extra, path.with_suffix(".state.pt"), keep=10**9)
    prune_checkpoints(path.parent, keep=3, ext=".zip")
    return path


def load_params(model: Any, path: Path) -> None:
    """Load the weights (policy and optimizer) of a ``step_<N>.zip`` into ``model``, safely.

    SB3 reads a zip's ``.pth`` entries with ``torch.load(weights_only=True)``; its ``data``
    entry, cloudpickled, is never read (``load_data=False``), so the zip cannot run code.

    Raises:
        ValueError: If ``path`` is not a zip of this model's weights.
    """
    from stable_baselines3.common.save_util import load_from_zip_file

    expected = set(model.get_parameters())
    try:
        with warnings.catch_warnings():  # a plain pickle's protocol warning adds nothing here
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            _, params, _ = load_from_zip_file(path, load_data=False, device="cpu")
        if set(params) != expected:
            raise ValueError(f"it holds {sorted(params)}, not {sorted(expected)}")
        model.set_parameters(params, exact_match=True, device="cpu")
    except Exception as err:  # a bad zip, a refused pickle, weights of another shape
        reason = load_failure(err)
        raise ValueError(f"{path} is not an SB3 checkpoint of this run ({reason})") from err


EXTRA_KEYS = ("agent", "args", "state", "rng")
"""What a ``step_<N>.state.pt`` holds."""


def load_extra(path: Path) -> dict[str, Any]:
    """The ``step_<N>.state.pt`` beside a ``step_<N>.zip``, with the keys :func:`save` writes.

    Raises:
        ValueError: If it is missing or is not one.
    """
    meta = path.with_suffix(".state.pt")
    if not meta.is_file():
        raise ValueError(f"{path} has no {meta.name} beside it (counters, args and RNG states)")
    return load_checkpoint(meta, keys=EXTRA_KEYS)


# ===================================================================================== train
def train(args: Args, resume: str | Path | None = None) -> dict[str, Any]:
    """Train, logging to a fresh run directory (or continuing ``resume``, a run directory).

    Each rollout is one ``model.learn(n_steps * num_envs, reset_num_timesteps=False)`` call on
    fresh episodes: :meth:`SB3VecEnv.seed` with the rollout's seed, then
    ``model.set_env(venv, force_reset=True)`` so that SB3 resets the env before collecting. SB3's
    step counter ``model.num_timesteps`` carries over between the calls; on resume it is set from
    the checkpoint, the weights and optimizer come from the zip and the RNG states from the
    ``.state.pt``, so the resumed run continues exactly where the saved one was.

    Returns:
        The same summary as :func:`prompt_gym.agents.reinforce.train`.
    """
    check_args(args)
    seed_everything(args.seed, args.torch_threads)
    venv = make_env(args)
    model = make_model(args, venv)
    state: dict[str, Any] = {
        "global_step": 0,
        "rollout": 0,
        "curve": [],
        "best": [],
        "seconds": 0.0,
    }
    if resume is not None:
        run_dir = Path(resume)
        path = find_checkpoint(run_dir)
        extra = load_extra(path)
        load_params(model, path)
        state = extra["state"]
        model.num_timesteps = state["global_step"]
        set_rng_states(extra["rng"])  # after make_model, which seeds the global RNGs
    else:
        run_dir = new_run_dir(args.logdir, args.env_id, args.algo, args.seed)
    write_run_info(run_dir, args.algo, args)
    purge = state["global_step"] + 1 if resume else None
    with RunLogger(run_dir, purge_step=purge, args=args) as log:
        model.set_logger(Logger(str(run_dir), [TensorBoardFormat(log)]))
        callback = RunCallback(args, log, state, venv.venv.backend)
        try:
            while state["global_step"] < args.total_timesteps:
                # rollout and update: SB3's, on fresh episodes seeded from (seed, rollout)
                venv.seed(episode_seeds(args.seed, state["rollout"], 1)[0])
                model.set_env(venv, force_reset=True)
                model.learn(
                    args.n_steps * args.num_envs, callback=callback, reset_num_timesteps=False
                )
                last = state["global_step"] >= args.total_timesteps
                if state["rollout"] % args.save_every == 0 and not last:
                    save(model, args, run_dir, state)
        except KeyboardInterrupt:
            print_interrupted(run_dir, state["global_step"])
            raise
        finally:
            callback.bar.close()
        checkpoint = save(model, args, run_dir, state)
        greedy = make_policy(model, args.algo)
        summary = finish_run(log, run_dir, args.algo, args, greedy, env_kwargs(args), None, state)
    venv.close()
    return {**summary, "checkpoint": checkpoint}


# ===================================================================================== eval
def load_policy(path: str | Path) -> tuple[Policy, Args]:
    """The greedy policy of a checkpoint (``step_<N>.zip``) and its run's ``Args``."""
    path = Path(path)
    args = make_args(Args, load_extra(path)["args"])
    venv = make_env(args)
    model = make_model(args, venv)
    venv.close()
    load_params(model, path)
    return make_policy(model, args.algo), args


evaluate = checkpoint_evaluate(load_policy, "the SB3 agents")
