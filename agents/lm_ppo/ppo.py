"""LM-PPO: a GPT-2 prompt rewriter trained with SFT then PPO (Promptist; BeautifulPrompt).

Pipeline, on any ``PromptRewriteTokens-*`` id:

1. **SFT** (:mod:`prompt_gym.agents.lm_ppo.sft`): teacher forcing on ``x [SEP] y [EOS]`` pairs from
   ``--sft PAIRS.jsonl``; the shapes world generates its own pairs (plain prompt -> the modifier
   combination its backend scores best). The result initialises the policy, the value model's
   body and the frozen reference.
2. **PPO** (Ziegler et al. 2019, trl's classic trainer): each update resets ``num_envs`` episodes
   (re-seeded from ``(seed, update)``), generates one rewrite per episode by sampling or by
   diverse beam search keeping one beam at random (Promptist), and replays the tokens through the
   native vector env (:func:`~prompt_gym.agents.lm_rollout.replay`: one backend call per step
   for all episodes that end there). The
   per-token reward is ``-beta (log pi - log pi_ref)`` with the env's score added at the last
   token; ``beta`` follows the adaptive KL controller. GAE, whitened advantages, clipped policy
   and value losses, ``ppo_epochs`` passes over ``num_minibatches`` minibatches, gradient clipping.

The policy's logits over the env's ``vocab_size`` ids are the action distribution (see
:mod:`prompt_gym.agents.lm_ppo.models` for the id layout and the model presets).

Defaults are small and fast for the shapes world with the tiny GPT-2; :func:`promptist_args`
gives the paper's settings for ``gpt2`` on ``PromptRewriteTokens-v0``.

Usage::

    prompt-gym train --env PromptRewriteTokens-Shapes-v0 --agent lm-ppo
    # Promptist's settings (see promptist_args) in a YAML of Args fields, with your SFT pairs:
    prompt-gym train --env PromptRewriteTokens-v0 --agent lm-ppo --config promptist.yaml \
        --sft pairs.jsonl
    # the held-out prompts (what the training summary reports), or the training prompts:
    prompt-gym eval --checkpoint RUN_DIR --split test
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
from prompt_gym.agents.checkpoints import (
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    require_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from prompt_gym.agents.episodes import Episode, Policy, summarize
from prompt_gym.agents.lm_ppo import losses as ppo_losses
from prompt_gym.agents.lm_ppo import sft as lm_sft
from prompt_gym.agents.lm_ppo.models import (
    TINY,
    Batch,
    ValueModel,
    build_policy,
    diverse_beam_search,
    frozen_copy,
    policy_from_config,
    response_logits,
    response_values,
    sample,
)
from prompt_gym.agents.lm_ppo.reward_scaling import SCALINGS, RunningMoments, shape_scores
from prompt_gym.agents.lm_rollout import (
    LMPolicy,
    episode_rows,
    evaluate_model,
    make_venv,
    model_rewriter,
    random_rewriter,
    replay,
    reset_episodes,
    rewrites_markdown,
    rollout_scalars,
    run_rewriter,
)
from prompt_gym.agents.runs import (
    episode_seeds,
    make_args,
    new_run_dir,
    rng_states,
    seed_everything,
    set_rng_states,
    write_run_info,
)
from prompt_gym.agents.tb import (
    CURVE_PNG,
    RunLogger,
    plot_curve,
    progress_bar,
    prompts_markdown,
    top_prompts,
)
from torch import nn

from prompt_gym.backends import RewardBackend
from prompt_gym.envs.prompt_rewrite_tokens import TokenSpace
from prompt_gym.envs.prompt_sets import load_modifiers

AGENT = "lm-ppo"
SFT_FILE = "sft.pt"
SFT_KEYS = ("model_config", "policy", "stats")
"""What ``sft.pt`` (and an ``sft_init`` file) holds."""
CHECKPOINT_KEYS = (
    "agent",
    "args",
    "model_config",
    "policy",
    "value",
    "optimizer",
    "kl",
    "state",
    "rng",
)
"""What a checkpoint holds (plain types and tensors: it loads with ``weights_only=True``)."""
PAIRS_FILE = "sft_pairs.jsonl"


# ===================================================================================== args
@dataclass
class Args:
    """Settings of an LM-PPO run (``--config FILE.yaml`` takes any of these fields)."""

    env_id: str = "PromptRewriteTokens-Shapes-v0"
    """A ``PromptRewriteTokens-*`` id."""
    seed: int = 1
    """Seed of torch, NumPy, Python and of every episode's reset."""
    total_timesteps: int = 80_000
    """Environment steps (generated tokens, EOS included) to train for, in whole updates."""
    total_updates: int | None = None
    """Also stop after this many PPO updates (Promptist: 12k); ``None``: steps only."""
    num_envs: int = 128
    """Episodes per PPO batch (Promptist: 256)."""
    backend: str | None = None
    """Backend preset overriding the id's default."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments (e.g. ``{"max_new_tokens": [15, 40]}``)."""
    model: str = TINY
    """``tiny`` (offline, sized to the env), ``gpt2``, ``distilgpt2`` or a local model directory."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    torch_threads: int = 1
    """torch CPU threads (1 is fastest for the tiny model on a shared CPU)."""
    # --- SFT
    sft: str | None = None
    """JSONL of ``{"source", "target"}`` pairs (``--sft``); ``None``: generated (shapes world)."""
    sft_init: str | None = None
    """A run's ``sft.pt`` to start from instead of running SFT (shares one SFT model across runs)."""
    sft_steps: int = 400
    """SFT optimiser steps (0 skips SFT: the policy starts from the model as loaded)."""
    sft_batch_size: int = 32
    """SFT batch size (Promptist: 256)."""
    sft_learning_rate: float = 1e-3
    """SFT AdamW learning rate (Promptist: 5e-5)."""
    sft_weight_decay: float = 0.1
    """SFT weight decay (Promptist: 0.1)."""
    sft_pair_seeds: int = 2
    """Image seeds each generated pair is scored on (shapes world)."""
    sft_pair_prompts: int | None = None
    """Use only this many training prompts for generated pairs (``None``: all)."""
    sft_reward: str | None = None
    """Reward config that ranks the generated pairs (``None``: the env's; a text-only reward,
    whose judge renders nothing, needs an image one such as ``promptist-v1``)."""
    # --- PPO
    learning_rate: float = 3e-4
    """Adam learning rate of policy and value model (Promptist: 5e-5)."""
    adam_betas: tuple[float, float] = (0.9, 0.95)
    """Adam betas (Promptist's RL setting)."""
    adam_eps: float = 1e-6
    """Adam epsilon."""
    weight_decay: float = 1e-6
    """Weight decay (Promptist's RL setting)."""
    ppo_epochs: int = 4
    """Passes over each batch (Promptist: 4)."""
    num_minibatches: int = 2
    """Minibatches per pass (Promptist: 1)."""
    gamma: float = 1.0
    """Discount over tokens."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """Policy ratio clip."""
    clip_range_value: float = 5.0
    """Value clip around the rollout's values, in reward units (promptist-v1 spans several)."""
    vf_coef: float = 2.3
    """Value loss weight (Promptist: 2.3)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip, applied to the policy and to the value model separately."""
    whiten_advantages: bool = True
    """Normalise advantages over the batch's tokens."""
    init_kl_coef: float = 0.2
    """Initial KL coefficient beta (Promptist: 0.2)."""
    adaptive_kl: bool = True
    """Adapt beta toward ``kl_target`` (Ziegler et al.); False keeps it fixed (Promptist)."""
    kl_target: float = 6.0
    """Target KL per response, nats."""
    kl_horizon: float = 10_000
    """Horizon of the adaptive controller, in responses."""
    reward_scaling: str = "none"
    """``none`` or ``running`` (scores divided by their running std; trlx, BeautifulPrompt)."""
    reward_clip: float | None = None
    """Clip the (scaled) scores to ``[-c, c]`` (BeautifulPrompt: 10); ``None``: no clip."""
    rollout: str = "sample"
    """``sample`` (temperature sampling) or ``beam`` (diverse beam search, one beam at random)."""
    temperature: float = 1.0
    """Sampling temperature."""
    num_beams: int = 8
    """Beams of diverse beam search (Promptist: 8)."""
    num_beam_groups: int = 8
    """Beam groups of diverse beam search."""
    diversity_penalty: float = 1.0
    """Hamming diversity penalty (Promptist: 1.0)."""
    # --- logging
    logdir: str = "runs"
    """Parent of the run directory."""
    examples_every: int = 10
    """Log sample rewrites every this many updates."""
    save_every: int = 25
    """Save a checkpoint every this many updates (and at the end)."""
    eval_episodes: int = 64
    """Greedy-decoding evaluation episodes on the test split at the end."""
    eval_seed: int = 10_000
    """Seed of evaluation episode 0."""


def promptist_args(**overrides: Any) -> Args:
    """Promptist's settings (paper, Sec. 3.2 and App. A) for ``gpt2`` on ``PromptRewriteTokens-v0``.

    Batch 256, Adam lr 5e-5 betas (0.9, 0.95) eps 1e-6 weight decay 1e-6, 4 PPO epochs with one
    minibatch, value coefficient 2.3, KL coefficient 0.2 (fixed), diverse beam search with 8 beams
    and penalty 1.0, 12k PPO steps; SFT batch 256, lr 5e-5, weight decay 0.1, 15k steps.
    ``max_new_tokens`` is drawn from 15..75 by the env (its default).
    """
    values: dict[str, Any] = {
        "env_id": "PromptRewriteTokens-v0",
        "model": "gpt2",
        "num_envs": 256,
        "total_timesteps": 10**12,
        "total_updates": 12_000,
        "learning_rate": 5e-5,
        "num_minibatches": 1,
        "adaptive_kl": False,
        "rollout": "beam",
        "sft_steps": 15_000,
        "sft_batch_size": 256,
        "sft_learning_rate": 5e-5,
        "eval_episodes": 256,
    }
    values.update(overrides)
    return Args(**values)


def check_args(args: Args) -> None:
    """Reject bad settings before any work starts."""
    if args.rollout not in ("sample", "beam"):
        raise ValueError(f"rollout must be 'sample' or 'beam', got {args.rollout!r}")
    if args.total_updates is not None and args.total_updates < 1:
        raise ValueError(f"total_updates must be None or >= 1, got {args.total_updates}")
    for name in ("total_timesteps", "num_envs", "ppo_epochs", "num_minibatches", "eval_episodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(args, name)}")
    if args.num_minibatches > args.num_envs:
        raise ValueError("num_minibatches must be <= num_envs")
    if args.rollout == "beam" and args.num_beams % args.num_beam_groups:
        raise ValueError("num_beams must be a multiple of num_beam_groups")
    if args.temperature <= 0 or not 0 < args.gamma <= 1 or not 0 <= args.gae_lambda <= 1:
        raise ValueError("temperature must be > 0, gamma in (0, 1], gae_lambda in [0, 1]")
    if args.reward_scaling not in SCALINGS:
        raise ValueError(f"reward_scaling must be one of {SCALINGS}, got {args.reward_scaling!r}")
    if args.reward_clip is not None and args.reward_clip <= 0:
        raise ValueError(f"reward_clip must be None or > 0, got {args.reward_clip}")
    for name in ("sft", "sft_init"):
        if getattr(args, name) is not None and not Path(getattr(args, name)).is_file():
            raise ValueError(f"{name}={getattr(args, name)}: no such file")


# ===================================================================================== env
def env_kwargs(args: Args) -> dict[str, Any]:
    """Keyword arguments of every env of the run."""
    kwargs = dict(args.env_kwargs)
    if isinstance(kwargs.get("max_new_tokens"), list):
        kwargs["max_new_tokens"] = tuple(kwargs["max_new_tokens"])
    if args.backend is not None:
        kwargs["backend"] = args.backend
    return kwargs


def reset_options(args: Args) -> None:
    """Reset options of the run's episodes: none (each episode draws its prompt)."""
    return None


# ===================================================================================== model
def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ===================================================================================== sft
def check_sft_source(args: Args, venv: gym.vector.VectorEnv) -> None:
    """A real backend needs ``sft`` pairs (or ``sft_init``, or ``sft_steps=0``).

    Raises:
        ValueError: If SFT would run without pairs on a backend that cannot generate them.
    """
    wants_pairs = args.sft_steps > 0 and args.sft is None and args.sft_init is None
    if wants_pairs and not venv.unwrapped.backend.world.procedural:
        raise ValueError(
            f"{args.env_id} needs SFT pairs: pass sft=PAIRS.jsonl (lines of "
            '{"source": plain prompt, "target": engineered prompt}), sft_init=SFT.pt, or '
            "sft_steps=0 to start PPO from the model as loaded"
        )


def sft_pairs(args: Args, venv: gym.vector.VectorEnv, run_dir: Path) -> list[tuple[str, str]]:
    """The SFT pairs: ``args.sft``, or generated on the shapes world (saved in the run dir)."""
    if args.sft is not None:
        return lm_sft.read_pairs(args.sft)
    u = venv.unwrapped
    prompts = list(u.prompt_set[: args.sft_pair_prompts])
    pairs = lm_sft.shapes_pairs(
        u.backend,
        prompts,
        load_modifiers(u.backend),
        args.sft_reward or u.reward_name,
        seeds=list(range(args.sft_pair_seeds)),
    )
    lm_sft.write_pairs(pairs, run_dir / PAIRS_FILE)
    return pairs


def run_sft(
    args: Args,
    policy: nn.Module,
    space: TokenSpace,
    pairs: list[tuple[str, str]],
    log: RunLogger,
) -> dict[str, float]:
    """Fine-tune ``policy`` in place on the pairs; return its loss before and after."""
    data = lm_sft.tokenize_pairs(pairs, space.tokenizer, space.sep, space.max_source, space.max_new)
    before = lm_sft.eval_sft_loss(policy, data, space.vocab)
    curve = lm_sft.train_sft(
        policy,
        data,
        space.vocab,
        args.sft_steps,
        args.sft_batch_size,
        args.sft_learning_rate,
        args.sft_weight_decay,
        seed=args.seed,
        log=lambda step, loss: log.scalars({"sft/loss": loss}, step) if step % 10 == 0 else None,
    )
    after = lm_sft.eval_sft_loss(policy, data, space.vocab)
    table = ["| source | target |", "|---|---|", *(f"| {s} | {t} |" for s, t in pairs[:8])]
    log.text("text/sft_pairs", "\n".join(table), 0)
    return {"sft_loss_before": before, "sft_loss_after": after, "sft_steps": len(curve)}


# ===================================================================================== rollout
@dataclass
class Rollout:
    """One PPO batch: the token sequences and what the models said about them."""

    batch: Batch
    scores: torch.Tensor
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    episodes: list[Episode]


def generate(
    args: Args,
    policy: nn.Module,
    space: TokenSpace,
    queries: list[list[int]],
    limits: list[int],
    rng: np.random.Generator,
) -> list[list[int]]:
    """Responses for a rollout: samples, or one diverse beam per query chosen at random."""
    if args.rollout == "sample":
        return sample(policy, queries, limits, space.vocab, space.eos, temperature=args.temperature)
    beams = diverse_beam_search(
        policy,
        queries,
        limits,
        space.vocab,
        space.eos,
        args.num_beams,
        args.num_beam_groups,
        args.diversity_penalty,
    )
    return [b[int(rng.integers(len(b)))] for b in beams]


@torch.no_grad()
def collect(
    args: Args,
    venv: gym.vector.VectorEnv,
    policy: nn.Module,
    ref: nn.Module,
    value_model: ValueModel,
    space: TokenSpace,
    seeds: list[int],
    rng: np.random.Generator,
) -> Rollout:
    """Reset, generate, replay through the env, and score with policy, reference and value."""
    queries, limits = reset_episodes(venv, seeds)
    policy.eval()
    responses = generate(args, policy, space, queries, limits, rng)
    episodes = replay(venv, responses, seeds)
    device = next(policy.parameters()).device
    batch = Batch(queries, responses, space.pad, device)
    logprobs = ppo_losses.logprobs_of(response_logits(policy, batch, space.vocab), batch.responses)
    ref_logprobs = ppo_losses.logprobs_of(response_logits(ref, batch, space.vocab), batch.responses)
    values = response_values(value_model, batch)
    scores = torch.tensor([e.ret for e in episodes], dtype=torch.float32, device=device)
    mask = batch.response_mask
    return Rollout(batch, scores, logprobs * mask, ref_logprobs * mask, values * mask, episodes)


# ===================================================================================== update
def ppo_update(
    args: Args,
    policy: nn.Module,
    value_model: ValueModel,
    optimizer: torch.optim.Optimizer,
    kl_ctl: ppo_losses.AdaptiveKLController,
    ro: Rollout,
    vocab: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """PPO epochs on one rollout; returns the ``losses/`` and ``objective/`` scalars."""
    mask = ro.batch.response_mask
    kl_coef = kl_ctl.value
    rewards, kl = ppo_losses.kl_penalized_rewards(
        ro.scores, ro.logprobs, ro.ref_logprobs, mask, kl_coef
    )
    advantages, returns = ppo_losses.gae(rewards, ro.values, mask, args.gamma, args.gae_lambda)
    if args.whiten_advantages:
        advantages = ppo_losses.masked_whiten(advantages, mask)
    n = len(ro.batch)
    size = int(np.ceil(n / args.num_minibatches))
    stats: dict[str, list[float]] = {}
    policy.train()
    value_model.train()
    for _ in range(args.ppo_epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            idx = order[start : start + size].to(mask.device)
            mb, m = ro.batch.select(idx), mask[idx]
            logits = response_logits(policy, mb, vocab)
            logprobs = ppo_losses.logprobs_of(logits, mb.responses)
            values = response_values(value_model, mb)
            pg_loss, approx_kl, clip_frac = ppo_losses.clipped_policy_loss(
                logprobs, ro.logprobs[idx], advantages[idx], m, args.clip_range
            )
            vf_loss = ppo_losses.clipped_value_loss(
                values, ro.values[idx], returns[idx], m, args.clip_range_value
            )
            loss = pg_loss + args.vf_coef * vf_loss
            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
            nn.utils.clip_grad_norm_(value_model.parameters(), args.max_grad_norm)
            optimizer.step()
            for key, value in (
                ("losses/policy_loss", pg_loss),
                ("losses/value_loss", vf_loss),
                ("losses/approx_kl", approx_kl),
                ("losses/clipfrac", clip_frac),
                (
                    "losses/entropy",
                    ppo_losses.masked_mean(ppo_losses.entropy_of(logits.detach()), m),
                ),
                ("losses/grad_norm", grad_norm),
            ):
                stats.setdefault(key, []).append(float(value.detach()))
    policy.eval()
    value_model.eval()
    seq_kl = kl.sum(1).mean().item()
    kl_ctl.update(seq_kl, n)
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    out.update(
        {
            "objective/kl": seq_kl,
            "objective/kl_penalty": float(-kl_coef * seq_kl),
            "objective/score": ro.scores.mean().item(),
            "charts/kl_coef": kl_coef,
        }
    )
    return out


# ===================================================================================== logging
def log_update(
    args: Args,
    log: RunLogger,
    backend: RewardBackend,
    state: dict[str, Any],
    ro: Rollout,
    losses: dict[str, float],
    sps: float,
) -> float:
    """Record one update in ``state`` (curve, best prompts) and TensorBoard; return its mean return.

    Scalars: ``charts/`` (episodic return, reward parts, response length, length-limit rate,
    sps, kl_coef), ``losses/`` (policy, value, approx_kl, clipfrac, entropy, grad_norm),
    ``objective/`` (kl, kl_penalty, score) and ``backend/``; the text ``text/sample_rewrites``
    on the first and every ``examples_every``-th update.
    """
    step, charts = state["global_step"], rollout_scalars(ro.episodes)
    charts["charts/sps"] = sps
    state["curve"].append((step, charts["charts/episodic_return"], state["seconds"]))
    state["best"] = top_prompts(state["best"], ro.episodes)
    log.scalars({**charts, **losses}, step)
    log.backend(backend, step)
    if state["update"] % args.examples_every == 0 or state["update"] == 1:
        log.text("text/sample_rewrites", rewrites_markdown(episode_rows(ro.episodes[:8])), step)
    return charts["charts/episodic_return"]


def log_final_eval(
    log: RunLogger,
    args: Args,
    state: dict[str, Any],
    summaries: dict[str, dict[str, Any]],
    final: list[Episode],
) -> None:
    """The end of a run: ``eval/`` scalars (PPO, SFT, random), HParams, rewrites, best prompts."""
    step = state["global_step"]
    log.scalars(
        {
            "eval/mean_return": summaries["eval"]["mean_return"],
            "eval/sft_mean_return": summaries["sft_eval"]["mean_return"],
            "eval/random_mean_return": summaries["random_eval"]["mean_return"],
        },
        step,
    )
    log.hparams(
        args,
        {
            "eval_mean_return": summaries["eval"]["mean_return"],
            "sft_mean_return": summaries["sft_eval"]["mean_return"],
            "random_mean_return": summaries["random_eval"]["mean_return"],
        },
        step,
    )
    log.text("text/eval_rewrites", rewrites_markdown(episode_rows(final[:16])), step)
    log.text("text/best_prompts", prompts_markdown(state["best"]), step)


# ===================================================================================== train
def train(args: Args, resume: str | Path | None = None) -> dict[str, Any]:
    """SFT then PPO, logging to a fresh run directory (or continuing ``resume``).

    Returns:
        ``run_dir``, ``checkpoint``, ``curve_png``, ``global_step``, ``seconds``,
        ``final_return``, ``eval`` and ``random_eval`` (greedy decoding on the **test split**,
        episodes ``eval_seed + i``, see :func:`~prompt_gym.agents.episodes.summarize`),
        ``sft_eval`` (the SFT policy on the same episodes), ``eval_split`` (``"test"``),
        ``best_prompt``, ``curve``, ``sft`` (SFT losses). ``prompt-gym eval --checkpoint RUN
        --split test --seed EVAL_SEED --episodes EVAL_EPISODES`` reproduces ``eval``; without
        ``--split`` it evaluates on the env's default, the train split.
    """
    check_args(args)
    seed_everything(args.seed, args.torch_threads)
    device = resolve_device(args.device)
    kwargs = env_kwargs(args)
    venv = make_venv(args.env_id, args.num_envs, kwargs)
    space = TokenSpace.of(venv)
    backend = venv.unwrapped.backend
    if resume is None:
        check_sft_source(args, venv)
    ckpt: dict[str, Any] | None = None
    if resume is not None:
        run_dir = Path(resume)
        ckpt = load_checkpoint(find_checkpoint(run_dir), CHECKPOINT_KEYS)
    else:
        run_dir = new_run_dir(args.logdir, args.env_id, AGENT, args.seed)
    write_run_info(run_dir, AGENT, args)

    # model: an SFT'd policy (the run's own on resume, or sft_init), else a fresh one to fine-tune
    sft_file = run_dir / SFT_FILE if resume is not None else args.sft_init
    if sft_file is not None:
        sft = load_checkpoint(Path(sft_file), SFT_KEYS)
        policy = policy_from_config(sft["model_config"])
        policy.load_state_dict(sft["policy"])
    else:
        policy = build_policy(args.model, space.vocab, space.length, space.tokenizer)
    policy.to(device).eval()

    purge = ckpt["state"]["global_step"] + 1 if ckpt is not None else None
    with RunLogger(run_dir, purge_step=purge, args=args) as log:
        # SFT: the initial policy and the frozen reference
        if resume is None:
            sft_stats: dict[str, Any] = {"sft_steps": 0, "sft_init": args.sft_init}
            if args.sft_steps > 0 and args.sft_init is None:
                sft_stats = run_sft(args, policy, space, sft_pairs(args, venv, run_dir), log)
            sft = {
                "model_config": policy.config.to_dict(),
                "policy": policy.state_dict(),
                "stats": sft_stats,
            }
            write_checkpoint(sft, run_dir / SFT_FILE)
        ref = frozen_copy(policy)
        value_model = ValueModel(policy).to(device)
        optimizer = torch.optim.Adam(
            [*policy.parameters(), *value_model.parameters()],
            lr=args.learning_rate,
            betas=tuple(args.adam_betas),
            eps=args.adam_eps,
            weight_decay=args.weight_decay,
        )
        kl_ctl = (
            ppo_losses.AdaptiveKLController(args.init_kl_coef, args.kl_target, args.kl_horizon)
            if args.adaptive_kl
            else ppo_losses.FixedKLController(args.init_kl_coef)
        )
        state: dict[str, Any] = {
            "global_step": 0,
            "update": 0,
            "curve": [],
            "best": [],
            "seconds": 0.0,
        }
        moments = RunningMoments()
        if ckpt is not None:
            policy.load_state_dict(ckpt["policy"])
            value_model.load_state_dict(ckpt["value"])
            optimizer.load_state_dict(ckpt["optimizer"])
            kl_ctl.load_state_dict(ckpt["kl"])
            state = ckpt["state"]
            moments.load_state_dict(state.get("reward_moments", moments.state_dict()))
            set_rng_states(ckpt["rng"])

        def save() -> Path:
            ckpt = {
                "agent": AGENT,
                "args": dataclasses.asdict(args),
                "model_config": policy.config.to_dict(),
                "policy": policy.state_dict(),
                "value": value_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "kl": kl_ctl.state_dict(),
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
        try:
            while state["global_step"] < args.total_timesteps and (
                args.total_updates is None or state["update"] < args.total_updates
            ):
                # rollout: num_envs fresh episodes, seeded from (seed, update)
                seeds = episode_seeds(args.seed, state["update"], args.num_envs)
                rng = np.random.default_rng(seeds[0])  # the beam kept, the minibatch order
                generator = torch.Generator().manual_seed(int(seeds[0]))
                ro = collect(args, venv, policy, ref, value_model, space, seeds, rng)
                ro.scores = shape_scores(ro.scores, moments, args.reward_scaling, args.reward_clip)
                state["reward_moments"] = moments.state_dict()
                state["global_step"] += int(ro.batch.response_mask.sum().item())
                state["update"] += 1

                # update
                losses = ppo_update(
                    args, policy, value_model, optimizer, kl_ctl, ro, space.vocab, generator
                )

                # logging
                state["seconds"] = time.perf_counter() - start
                sps = (state["global_step"] - step0) / (time.perf_counter() - t0)
                ret = log_update(args, log, backend, state, ro, losses, sps)
                bar.update(state["global_step"] - bar.n)
                bar.set_postfix(ret=f"{ret:.3f}", refresh=False)
                if state["update"] % args.save_every == 0:
                    save()
        finally:
            bar.close()
        checkpoint = save()

        # evaluation on the test split, same episodes: PPO policy, SFT reference, random tokens
        test_venv = make_venv(args.env_id, min(64, args.eval_episodes), {"split": "test", **kwargs})
        seeds = list(range(args.eval_seed, args.eval_seed + args.eval_episodes))
        rewriters = {
            "eval": model_rewriter(policy, space),
            "sft_eval": model_rewriter(ref, space),
            "random_eval": random_rewriter(space, args.eval_seed),
        }
        evals = {name: run_rewriter(test_venv, r, seeds) for name, r in rewriters.items()}
        test_venv.close()
        summaries = {name: summarize(eps, args.env_id) for name, eps in evals.items()}
        log_final_eval(log, args, state, summaries, evals["eval"])
        png = plot_curve(
            state["curve"],
            run_dir / CURVE_PNG,
            f"{AGENT} on {args.env_id} (seed {args.seed})",
            summaries["sft_eval"]["mean_return"],
        )
    venv.close()
    curve = state["curve"]
    tail = [p[1] for p in curve[-max(1, len(curve) // 10) :]]
    return {
        "run_dir": run_dir,
        "checkpoint": checkpoint,
        "curve_png": png,
        "global_step": state["global_step"],
        "seconds": state["seconds"],
        "final_return": float(np.mean(tail)) if tail else float("nan"),
        **summaries,
        "eval_split": "test",
        "best_prompt": state["best"][0] if state["best"] else None,
        "curve": list(curve),
        "sft": load_checkpoint(run_dir / SFT_FILE, SFT_KEYS)["stats"],
    }


# ===================================================================================== eval
def load_model(path: str | Path, which: str = "policy") -> tuple[nn.Module, Args]:
    """The trained LM of a run directory or checkpoint file, and its ``Args``.

    Args:
        path: A run directory (its latest checkpoint) or a checkpoint file.
        which: ``policy`` (after PPO) or ``sft`` (the SFT model, the run's reference).
    """
    ckpt_path = find_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path, CHECKPOINT_KEYS)
    args = make_args(Args, ckpt["args"])
    if which == "sft":
        ckpt = load_checkpoint(ckpt_path.parent.parent / SFT_FILE, SFT_KEYS)
    elif which != "policy":
        raise ValueError(f"which must be 'policy' or 'sft', got {which!r}")
    model = policy_from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["policy"])
    return model.eval(), args


def load_policy(path: str | Path) -> tuple[Policy, Args]:
    """The greedy-decoding policy of a checkpoint (a batched policy over token observations)."""
    model, args = load_model(path)
    venv = make_venv(args.env_id, 1, env_kwargs(args))
    vocab = int(venv.single_action_space.n)
    venv.close()
    return LMPolicy(model, vocab, greedy=True), args


def evaluate(
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    *,
    checkpoint: str | Path | None = None,
    greedy: bool = True,
) -> list[Episode]:
    """Evaluation episodes of a checkpoint's policy (see :class:`~prompt_gym.agents.protocol.Agent`).

    Episode ``i`` is reset with seed ``seed + i``; the rewrite is decoded whole (greedy, or
    sampled) and replayed through the env, 64 episodes at a time.

    Args:
        env_id: A ``PromptRewriteTokens-*`` id (the run's is ``load_model(path)[1].env_id``).
        episodes: Number of episodes.
        seed: Seed of episode 0.
        env_kwargs: Env keyword arguments (the run's are ``env_kwargs(args)``); add
            ``split="test"`` for the held-out prompts.
        options: Must be ``None``: the token env's episodes take no reset options.
        checkpoint: A run directory or checkpoint file.
        greedy: Greedy decoding (default) or sampling.

    Raises:
        ValueError: Without a checkpoint, with reset options, or for a bad checkpoint.
    """
    if options is not None:
        raise ValueError(f"{AGENT} episodes take no reset options, got {options}")
    model, _ = load_model(require_checkpoint(checkpoint, AGENT))
    return evaluate_model(model, env_id, dict(env_kwargs or {}), episodes, seed, greedy)
