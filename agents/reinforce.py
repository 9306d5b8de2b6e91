"""REINFORCE with Monte-Carlo returns: the ImagePrompt policy, per target or across targets.

ImagePrompt trains a small policy (an MLP with one hidden layer of 128 ReLU units, a softmax over
the candidate tokens, Adam) from whole episodes. This file offers that policy (``policy="mlp"``:
observation -> 128 -> actions; the token order is only meaningful for one fixed target, so use it
with ``target_index``) and a policy that generalises across targets (``policy="candidates"``, the
default): it scores each candidate token by a shared MLP over ``[state, c_i, t*c_i, u*c_i,
t.c_i, u.c_i]`` (``t`` target, ``u`` current image, ``c_i`` candidate embedding) plus a STOP
logit from the state, so its output does not depend on a fixed token order.

Each update collects ``num_envs`` whole episodes in lockstep from the native vector env
(one backend call per step), re-seeded from ``(seed, update)`` so a resumed run meets the same
episodes as an uninterrupted one. Options: a baseline (running mean of the return-to-go at each
step, or a learned value), an entropy bonus, action masking (masked logits; without it the env
penalises invalid actions).

Usage::

    prompt-gym train --env ImageInversion-Shapes-v0 --agent reinforce
    prompt-gym train --env ImageInversion-Shapes-v0 --agent reinforce --config per_target.yaml
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from prompt_gym.agents.checkpoints import (
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from prompt_gym.agents.episodes import Episode, Policy, collect_episodes
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
    episode_scalars,
    log_examples,
    progress_bar,
    top_prompts,
)
from torch import nn
from torch.distributions import Categorical

AGENT = "reinforce"


# ===================================================================================== args
@dataclass
class Args:
    """Settings of a REINFORCE run (``--config FILE.yaml`` takes any of these fields)."""

    env_id: str = "ImageInversion-Shapes-v0"
    """Env id to train on (a family with an ``action_mask`` observation)."""
    seed: int = 1
    """Seed of torch, NumPy, Python and of every episode's reset."""
    total_timesteps: int = 12_000
    """Environment steps to train for (whole updates: the run stops at the first update past it)."""
    num_envs: int = 16
    """Sub-envs of the native vector env = episodes per update."""
    backend: str | None = None
    """Backend preset overriding the id's default (e.g. ``shapes``)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments (e.g. ``{"level": "attributes"}``)."""
    target_index: int | None = None
    """Train on this one target of the target set (the paper's per-target learner); ``None``: all."""
    policy: str = "candidates"
    """``candidates`` (scores each candidate; generalises across targets) or ``mlp`` (obs -> 128 -> actions)."""
    hidden: int = 128
    """Hidden units of every MLP."""
    learning_rate: float = 3e-3
    """Adam learning rate."""
    gamma: float = 1.0
    """Discount of the Monte-Carlo return."""
    baseline: str = "mean"
    """``none``, ``mean`` (running mean of the return-to-go at each step index) or ``value`` (learned)."""
    baseline_decay: float = 0.9
    """Decay of the running-mean baseline."""
    vf_coef: float = 0.5
    """Weight of the value loss (``baseline="value"``)."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    norm_adv: bool = True
    """Normalise the advantages of each batch to zero mean and unit variance."""
    mask_actions: bool = True
    """Mask invalid actions in the logits; without it the env penalises them (``invalid_action="penalize"``)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""
    torch_threads: int = 1
    """torch CPU threads."""
    logdir: str = "runs"
    """Parent of the run directory."""
    examples_every: int = 25
    """Log an image grid (target | generated) and example prompts every this many updates."""
    save_every: int = 10
    """Save a checkpoint every this many updates (and at the end)."""
    eval_episodes: int = 32
    """Deterministic evaluation episodes at the end (and for the random baseline)."""
    eval_seed: int = 10_000
    """Seed of evaluation episode 0 (episode ``i`` uses ``eval_seed + i``)."""


def check_args(args: Args) -> None:
    """Reject bad settings before any work starts."""
    choices = {"policy": ("candidates", "mlp"), "baseline": ("none", "mean", "value")}
    for name, allowed in choices.items():
        if getattr(args, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {getattr(args, name)!r}")
    for name in (
        "total_timesteps",
        "num_envs",
        "hidden",
        "save_every",
        "examples_every",
        "eval_episodes",
    ):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.gamma <= 1 or not 0 <= args.baseline_decay < 1:
        raise ValueError("gamma must be in (0, 1] and baseline_decay in [0, 1)")


# ===================================================================================== env
def env_kwargs(args: Args) -> dict[str, Any]:
    """Keyword arguments of every env of the run."""
    kwargs = dict(args.env_kwargs)
    if args.backend is not None:
        kwargs["backend"] = args.backend
    if not args.mask_actions:
        kwargs.setdefault("invalid_action", "penalize")
    return kwargs


def reset_options(args: Args) -> dict[str, Any] | None:
    """Reset options: the fixed target of a per-target run."""
    return None if args.target_index is None else {"target_index": args.target_index}


def check_spaces(args: Args, obs_space: spaces.Space, action_space: spaces.Space) -> None:
    """The env must have a discrete action, a Dict observation with an ``action_mask``."""
    if not isinstance(action_space, spaces.Discrete) or not isinstance(obs_space, spaces.Dict):
        raise ValueError(f"{args.env_id}: REINFORCE needs a Discrete action and a Dict observation")
    if "action_mask" not in obs_space.spaces:
        raise ValueError(
            f"{args.env_id} has no action_mask observation; REINFORCE supports "
            "the ImageInversion and PromptRewrite families"
        )
    if args.policy == "candidates" and "candidates" not in obs_space.spaces:
        raise ValueError(f"{args.env_id} has no candidate tokens: use policy='mlp' there")


# ===================================================================================== model
def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """``n_in -> hidden -> n_out`` with a ReLU."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def as_tensors(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Batched numpy observations -> torch tensors."""
    return {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}


def flatten_obs(space: spaces.Dict, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Every key but ``action_mask`` as one float vector per row (one-hot for discrete keys)."""
    parts = []
    for key, sub in space.spaces.items():
        if key == "action_mask":
            continue
        x = obs[key]
        if isinstance(sub, spaces.MultiDiscrete):
            x = nn.functional.one_hot(x.long(), int(sub.nvec.max())).flatten(1)
        elif isinstance(sub, spaces.Discrete):
            x = nn.functional.one_hot(x.long(), int(sub.n))
        parts.append(x.float().flatten(1))
    return torch.cat(parts, dim=1)


class MLPPolicy(nn.Module):
    """The ImagePrompt policy: observation -> ``hidden`` ReLU -> one logit per action."""

    def __init__(self, obs_space: spaces.Dict, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.obs_space = obs_space
        n_in = flatten_obs(obs_space, as_tensors(_batch(obs_space.sample()))).shape[1]
        self.actor = mlp(n_in, hidden, n_actions)
        self.critic = mlp(n_in, hidden, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, A)`` and values ``(B,)``."""
        x = flatten_obs(self.obs_space, obs)
        return self.actor(x), self.critic(x).squeeze(-1)


class CandidatePolicy(nn.Module):
    """Scores each candidate token with one shared MLP; STOP and the value come from the state.

    State ``s = [t*u, sim, t.u, fraction of tokens chosen]``; candidate ``i``'s logit is
    ``f([s, c_i, t*c_i, u*c_i, t.c_i, u.c_i])``; STOP's is ``g(s)``.
    """

    def __init__(self, obs_space: spaces.Dict, n_actions: int, hidden: int) -> None:
        super().__init__()
        dim = obs_space["target"].shape[0]
        self.n_tokens = obs_space["candidates"].shape[0]
        self.max_tokens = obs_space["chosen"].shape[0]
        self.token = mlp(dim + 3 + 3 * dim + 2, hidden, 1)
        self.stop = mlp(dim + 3, hidden, 1)
        self.critic = mlp(dim + 3, hidden, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, n_tokens + 1)`` (STOP last) and values ``(B,)``."""
        t, u, c = obs["target"].float(), obs["current"].float(), obs["candidates"].float()
        sim = obs["similarity"].float()
        chosen = (obs["chosen"] < self.n_tokens).float().sum(1, keepdim=True) / self.max_tokens
        state = torch.cat([t * u, sim, (t * u).sum(1, keepdim=True), chosen], dim=1)
        n = c.shape[1]
        cand = torch.cat(
            [
                state[:, None].expand(-1, n, -1),
                c,
                t[:, None] * c,
                u[:, None] * c,
                (t[:, None] * c).sum(2, keepdim=True),
                (u[:, None] * c).sum(2, keepdim=True),
            ],
            dim=2,
        )
        logits = torch.cat([self.token(cand).squeeze(-1), self.stop(state)], dim=1)
        return logits, self.critic(state).squeeze(-1)


def make_model(args: Args, obs_space: spaces.Dict, action_space: spaces.Discrete) -> nn.Module:
    """The policy network named by ``args.policy``."""
    cls = CandidatePolicy if args.policy == "candidates" else MLPPolicy
    return cls(obs_space, int(action_space.n), args.hidden)


def _batch(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[None] for k, v in obs.items()}


def distribution(
    model: nn.Module, obs: dict[str, torch.Tensor], masked: bool
) -> tuple[Categorical, torch.Tensor]:
    """The action distribution (invalid logits set to -1e9 when ``masked``) and the values."""
    logits, values = model(obs)
    if masked:
        mask = obs["action_mask"].bool()
        mask = mask | ~mask.any(dim=1, keepdim=True)  # a finished episode's action is ignored
        logits = logits.masked_fill(~mask, -1e9)
    return Categorical(logits=logits), values


def make_policy(model: nn.Module, masked: bool, deterministic: bool) -> Policy:
    """A batched numpy policy: sample, or take the most likely action."""

    @torch.no_grad()
    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        dist, _ = distribution(model, as_tensors(obs), masked)
        return (dist.probs.argmax(1) if deterministic else dist.sample()).numpy()

    return policy


# ===================================================================================== rollout
def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted reward-to-go at each step.

    >>> returns_to_go(np.array([1.0, 0.0, 2.0]), 0.5).tolist()
    [1.5, 1.0, 2.0]
    """
    out, running = np.zeros(len(rewards)), 0.0
    for i in range(len(rewards) - 1, -1, -1):
        running = rewards[i] + gamma * running
        out[i] = running
    return out


# ===================================================================================== update
class RunningBaseline:
    """Running mean of the return-to-go at each step index (exponential, ``decay``)."""

    def __init__(self, decay: float, values: list[float] | None = None) -> None:
        self.decay, self.values = decay, list(values or [])

    def __call__(self, steps: np.ndarray) -> np.ndarray:
        """The baseline at each step index (0 where nothing was seen yet)."""
        table = np.array([*self.values, 0.0])
        return table[np.minimum(steps, len(self.values))]

    def update(self, steps: np.ndarray, returns: np.ndarray) -> None:
        """Fold a batch's mean return-to-go at each step index into the running means."""
        for t in np.unique(steps):
            mean = float(returns[steps == t].mean())
            if t < len(self.values):
                self.values[t] = self.decay * self.values[t] + (1 - self.decay) * mean
            else:
                self.values.append(mean)


def update(
    args: Args,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    baseline: RunningBaseline,
    episodes: list[Episode],
) -> dict[str, float]:
    """One policy-gradient step on a batch of whole episodes; returns the ``losses/`` scalars."""
    obs = as_tensors({k: np.concatenate([e.obs[k] for e in episodes]) for k in episodes[0].obs})
    actions = torch.as_tensor(np.concatenate([e.actions for e in episodes]))
    returns_np = np.concatenate([returns_to_go(e.rewards, args.gamma) for e in episodes])
    steps = np.concatenate([np.arange(e.length) for e in episodes])
    returns = torch.as_tensor(returns_np, dtype=torch.float32)

    dist, values = distribution(model, obs, args.mask_actions)
    logp, entropy = dist.log_prob(actions), dist.entropy().mean()
    if args.baseline == "value":
        advantages = returns - values.detach()
    elif args.baseline == "mean":
        advantages = returns - torch.as_tensor(baseline(steps), dtype=torch.float32)
        baseline.update(steps, returns_np)
    else:
        advantages = returns
    if args.norm_adv and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -(logp * advantages).mean()
    value_loss = 0.5 * ((values - returns) ** 2).mean()
    loss = policy_loss - args.ent_coef * entropy
    if args.baseline == "value":
        loss = loss + args.vf_coef * value_loss
    optimizer.zero_grad()
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
    optimizer.step()
    out = {
        "losses/policy_loss": policy_loss.item(),
        "losses/entropy": entropy.item(),
        "losses/grad_norm": float(grad_norm),
        "losses/advantage_std": float(advantages.std()) if len(advantages) > 1 else 0.0,
    }
    if args.baseline == "value":
        out["losses/value_loss"] = value_loss.item()
    return out


# ===================================================================================== train
CHECKPOINT_KEYS = ("agent", "args", "model", "optimizer", "baseline", "state", "rng")
"""What a checkpoint holds (plain types and tensors: it loads with ``weights_only=True``)."""


def train(args: Args, resume: str | Path | None = None) -> dict[str, Any]:
    """Train, logging to a fresh run directory (or continuing ``resume``, a run directory).

    Returns:
        A summary: ``run_dir``, ``checkpoint``, ``curve_png``, ``global_step``, ``seconds``,
        ``final_return`` (mean over the last updates), ``eval`` and ``random_eval`` (see
        :func:`~prompt_gym.agents.episodes.summarize`), ``best_prompt``.
    """
    check_args(args)
    seed_everything(args.seed, args.torch_threads)
    kwargs, options = env_kwargs(args), reset_options(args)
    venv = gym.make_vec(
        args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    check_spaces(args, venv.single_observation_space, venv.single_action_space)
    backend = venv.unwrapped.backend
    model = make_model(args, venv.single_observation_space, venv.single_action_space)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    baseline = RunningBaseline(args.baseline_decay)
    state: dict[str, Any] = {"global_step": 0, "update": 0, "curve": [], "best": [], "seconds": 0.0}
    if resume is not None:
        run_dir = Path(resume)
        ckpt = load_checkpoint(find_checkpoint(run_dir), CHECKPOINT_KEYS)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        baseline.values = list(ckpt["baseline"])
        state = ckpt["state"]
        set_rng_states(ckpt["rng"])
    else:
        run_dir = new_run_dir(args.logdir, args.env_id, AGENT, args.seed)
    write_run_info(run_dir, AGENT, args)
    sample = make_policy(model, args.mask_actions, deterministic=False)
    greedy = make_policy(model, args.mask_actions, deterministic=True)

    def save() -> Path:
        ckpt = {
            "agent": AGENT,
            "args": dataclasses.asdict(args),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "baseline": baseline.values,
            "state": state,
            "rng": rng_states(),
        }
        return save_checkpoint(ckpt, checkpoint_path(run_dir, state["global_step"]))

    start, t0, step0 = (
        time.perf_counter() - state["seconds"],
        time.perf_counter(),
        state["global_step"],
    )
    bar = progress_bar(args.total_timesteps, state["global_step"], desc=AGENT)
    purge = state["global_step"] + 1 if resume else None
    with RunLogger(run_dir, purge_step=purge, args=args) as log:
        try:
            while state["global_step"] < args.total_timesteps:
                # rollout: num_envs whole episodes, seeded from (seed, update)
                seeds = episode_seeds(args.seed, state["update"], args.num_envs)
                episodes = collect_episodes(venv, sample, seeds, options)
                state["global_step"] += sum(e.length for e in episodes)
                state["update"] += 1

                # update
                losses = update(args, model, optimizer, baseline, episodes)

                # logging
                step, charts = state["global_step"], episode_scalars(episodes)
                state["seconds"] = time.perf_counter() - start
                state["curve"].append((step, charts["charts/episodic_return"], state["seconds"]))
                state["best"] = top_prompts(state["best"], episodes)
                charts["charts/sps"] = (step - step0) / (time.perf_counter() - t0)
                log.scalars({**charts, **losses}, step)
                log.backend(backend, step)
                bar.update(step - bar.n)
                bar.set_postfix(ret=f"{charts['charts/episodic_return']:.3f}", refresh=False)
                if state["update"] % args.examples_every == 0:
                    log_examples(log, args.env_id, kwargs, greedy, state, options)
                if state["update"] % args.save_every == 0:
                    save()
        except KeyboardInterrupt:
            print_interrupted(run_dir, state["global_step"])
            raise
        finally:
            bar.close()
        checkpoint = save()
        summary = finish_run(log, run_dir, AGENT, args, greedy, kwargs, options, state)
    venv.close()
    return {**summary, "checkpoint": checkpoint}


# ===================================================================================== eval
def load_policy(path: str | Path) -> tuple[Policy, Args]:
    """The greedy policy of a checkpoint file (``.pt``), and its run's ``Args``."""
    ckpt = load_checkpoint(Path(path), CHECKPOINT_KEYS)
    args = make_args(Args, ckpt["args"])
    env = gym.make(args.env_id, **env_kwargs(args))
    model = make_model(args, env.observation_space, env.action_space)
    env.close()
    model.load_state_dict(ckpt["model"])
    model.eval()
    return make_policy(model, args.mask_actions, deterministic=True), args


evaluate = checkpoint_evaluate(load_policy, AGENT)
