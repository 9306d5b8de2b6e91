"""BeautifulPrompt end to end on the shapes world: data -> text RMs -> PPO -> true-reward eval.

1. :func:`export_data`: modifier rewrites of the training prompts scored on shared seeds
   (:mod:`prompt_gym.export`), with the shapes preference analog as PickScore.
2. :func:`train_rms`: the aesthetic and PickScore text reward models (:mod:`prompt_gym.reward_models`).
3. :func:`bp_args`: LM-PPO with BeautifulPrompt's settings (``configs/beautifulprompt.yaml``)
   against ``beautifulprompt-v1`` (the RMs: no image is generated during training).
4. :func:`evaluate_checkpoint`: one set of sampled rewrites of held-out prompts on fresh
   seeds, replayed through the proxy env and the true env (``beautifulprompt-images-v1``, the
   same mix from the true image scores), and their KL from the reference (the SFT model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from prompt_gym.agents.lm_ppo import losses as ppo_losses
from prompt_gym.agents.lm_ppo.models import Batch, response_logits, sample
from prompt_gym.agents.lm_ppo.ppo import Args, load_model
from prompt_gym.agents.lm_rollout import make_venv, replay, reset_episodes
from prompt_gym.agents.runs import load_config, make_args

from prompt_gym.envs.prompt_rewrite_tokens import TokenSpace

CONFIG = Path(__file__).parent / "configs" / "beautifulprompt.yaml"
"""BeautifulPrompt's PPO settings as LM-PPO ``Args`` (a YAML file of fields)."""


def export_data(
    out: str | Path,
    backend: str = "shapes",
    n_prompts: int | None = None,
    per_prompt: int = 6,
    seeds: int = 4,
    seed: int = 0,
) -> int:
    """Write the RM training data to the dataset directory ``out``; return the rows written."""
    from prompt_gym.backends import make_backend
    from prompt_gym.backends.preference import load_preference
    from prompt_gym.envs.prompt_sets import load_modifiers, load_prompts
    from prompt_gym.export import Recorder
    from prompt_gym.export.rewrites import export_rewrites, modifier_rewrites

    b = make_backend(backend)
    prompts = load_prompts(b, "train", None)[:n_prompts]
    pairs = modifier_rewrites(prompts, load_modifiers(b), per_prompt, seed)
    return export_rewrites(
        b, pairs, list(range(seeds)), Recorder(out), preference=load_preference(b)
    )


def train_rms(
    data: str | Path, out: str | Path, epochs: int = 30, seed: int = 0
) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Train both text RMs on ``data``; return ``({target: dir}, {target: metrics})``."""
    from prompt_gym.export import read_rows
    from prompt_gym.reward_models.train import RMArgs, train_reward_model

    rows = read_rows(data)
    paths, metrics = {}, {}
    for target in ("aesthetic", "pickscore"):
        path = Path(out) / target
        _, metrics[target] = train_reward_model(
            rows, RMArgs(target=target, epochs=epochs, seed=seed), path
        )
        paths[target] = str(path)
    return paths, metrics


def bp_args(reward_models: dict[str, str], **overrides: Any) -> Args:
    """LM-PPO ``Args``: :data:`CONFIG`, its env kwargs plus the reward models, then ``overrides``."""
    config = load_config(CONFIG)
    env_kwargs = {**config.pop("env_kwargs", {}), "reward_models": dict(reward_models)}
    env_kwargs.update(overrides.pop("env_kwargs", {}))
    return make_args(Args, {**config, "env_kwargs": env_kwargs, **overrides})


@torch.no_grad()
def evaluate_checkpoint(
    checkpoint: str | Path,
    reward_models: dict[str, str],
    episodes: int = 128,
    seed: int = 50_000,
    split: str = "test",
    which: str = "policy",
) -> dict[str, float]:
    """Proxy reward, true reward and KL from the reference of a checkpoint's sampled rewrites.

    The same rewrites (sampled at temperature 1, as in training) of episodes ``seed + i`` are
    replayed through ``beautifulprompt-v1`` (the RMs) and ``beautifulprompt-images-v1`` (the
    true scores); both envs draw the same prompts and image seeds from the same reset seeds.
    ``kl`` is the mean over rewrites of ``sum_t log pi(y_t) - log pi_ref(y_t)``;
    ``which="sft"`` evaluates the reference itself (KL 0). ``proxy_images_generated`` counts the
    images the proxy replay generated (0: the text reward renders nothing).
    """
    policy, args = load_model(checkpoint, which=which)
    ref, _ = load_model(checkpoint, which="sft")
    kwargs = {k: v for k, v in args.env_kwargs.items() if k not in ("reward", "reward_models")}
    if isinstance(kwargs.get("max_new_tokens"), list):
        kwargs["max_new_tokens"] = tuple(kwargs["max_new_tokens"])
    proxy_kwargs = {
        **kwargs,
        "split": split,
        "reward": "beautifulprompt-v1",
        "reward_models": dict(reward_models),
    }
    true_kwargs = {**kwargs, "split": split, "reward": "beautifulprompt-images-v1"}
    seeds = list(range(seed, seed + episodes))
    proxy_venv = make_venv(args.env_id, episodes, proxy_kwargs)
    true_venv = make_venv(args.env_id, episodes, true_kwargs)
    space = TokenSpace.of(proxy_venv)
    queries, limits = reset_episodes(proxy_venv, seeds)
    queries_true, _ = reset_episodes(true_venv, seeds)
    if queries != queries_true:
        raise RuntimeError("the proxy and true envs drew different prompts")
    torch.manual_seed(seed)
    responses = sample(policy, queries, limits, space.vocab, space.eos, temperature=1.0)
    stats = proxy_venv.unwrapped.backend.stats
    before = stats.images_generated
    proxy = [e.rewards.sum() for e in replay(proxy_venv, responses, seeds)]
    proxy_images = stats.images_generated - before
    true = [e.rewards.sum() for e in replay(true_venv, responses, seeds)]
    proxy_venv.close()
    true_venv.close()
    batch = Batch(queries, responses, space.pad)
    mask = batch.response_mask
    lp = ppo_losses.logprobs_of(response_logits(policy, batch, space.vocab), batch.responses)
    lr = ppo_losses.logprobs_of(response_logits(ref, batch, space.vocab), batch.responses)
    kl = ((lp - lr) * mask).sum(1)
    return {
        "proxy_reward": float(np.mean(proxy)),
        "true_reward": float(np.mean(true)),
        "kl": float(kl.mean()),
        "length": float(mask.sum(1).mean()),
        "proxy_images_generated": float(proxy_images),
    }
