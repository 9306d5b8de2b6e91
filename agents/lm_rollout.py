"""Token-env plumbing of the LM agents: episodes as token sequences, rewriters, evaluation.

The LM agents generate a whole rewrite with the language model, then *replay* its tokens through
a native vector env with its public batch API (``reset_one``, and ``step_some``: one backend call
per step for all episodes that end there, no autoreset step); the id layout is the env's
:class:`~prompt_gym.envs.prompt_rewrite_tokens.TokenSpace`. A :data:`Rewriter` maps the observed queries
(``source + [SEP]``) and each episode's ``max_new_tokens`` to one response per query, ending
exactly where the env ends the episode (EOS or the length limit); the plain prompt, a fixed tag
list, an LM and random tokens are all rewriters, so every method is scored on the same episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from prompt_gym.agents.episodes import Episode
from prompt_gym.agents.lm_ppo.models import Batch, sample
from torch import nn

from prompt_gym.envs.prompt_rewrite_tokens import TokenSpace


def make_venv(env_id: str, num_envs: int, kwargs: dict[str, Any]) -> gym.vector.VectorEnv:
    """The native vector env of a token-level id, checked.

    Raises:
        ValueError: If the id is not a token-level rewrite env.
    """
    venv = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    obs_space = venv.single_observation_space
    if not (
        isinstance(venv.single_action_space, spaces.Discrete)
        and isinstance(obs_space, spaces.Dict)
        and "tokens" in obs_space.spaces
    ):
        venv.close()
        raise ValueError(
            f"{env_id}: LM-PPO needs a PromptRewriteTokens-* id (token observations and actions)"
        )
    return venv


def reset_episodes(
    venv: gym.vector.VectorEnv, seeds: Sequence[int], prompts: Sequence[str] | None = None
) -> tuple[list[list[int]], list[int]]:
    """Reset sub-env ``i`` with ``seeds[i]`` (and prompt ``prompts[i]``); return queries and limits.

    A query is the observed ``source + [SEP]``; a limit the episode's ``max_new_tokens``.
    """
    u = venv.unwrapped
    queries, limits = [], []
    for i, seed in enumerate(seeds):
        options = None if prompts is None else {"prompt": prompts[i]}
        obs, info = u.reset_one(i, seed=int(seed), options=options)
        queries.append(obs["tokens"][: int(obs["length"][0])].tolist())
        limits.append(int(info["max_new_tokens"]))
    return queries, limits


def replay(
    venv: gym.vector.VectorEnv, responses: Sequence[Sequence[int]], seeds: Sequence[int]
) -> list[Episode]:
    """Step the reset sub-envs ``0..len(responses)-1`` through their responses, in lockstep.

    Each step sends one backend call for the episodes that end there. Every response must end
    its episode at its last token (EOS or the episode's length limit), as generated here.

    Raises:
        RuntimeError: If an episode ends before or after its response does.
    """
    u = venv.unwrapped
    n = len(responses)
    finals: list[tuple[float, dict[str, Any]] | None] = [None] * n
    for t in range(max(len(r) for r in responses)):
        active = np.zeros(venv.num_envs, dtype=bool)
        active[:n] = [t < len(r) for r in responses]
        actions = [int(responses[i][t]) if i < n and active[i] else 0 for i in range(venv.num_envs)]
        for i, out in enumerate(u.step_some(actions, active)):
            if out is None:
                continue
            _, reward, terminated, truncated, info = out
            last = t == len(responses[i]) - 1
            if (terminated or truncated) != last:
                raise RuntimeError(
                    f"episode {i} ended at token {t}, its response has {len(responses[i])}"
                )
            if last:
                finals[i] = (float(reward), info)
    episodes = []
    for i, r in enumerate(responses):
        reward, info = finals[i]
        rewards = np.zeros(len(r))
        rewards[-1] = reward
        episodes.append(
            Episode(
                obs={},
                actions=np.asarray(r, dtype=np.int64),
                rewards=rewards,
                info=info,
                seed=int(seeds[i]),
            )
        )
    return episodes


Rewriter = Callable[[list[list[int]], list[int]], list[list[int]]]
"""Queries and length limits in, one response per query out (ending as the env ends it)."""


def run_rewriter(
    venv: gym.vector.VectorEnv,
    rewriter: Rewriter,
    seeds: Sequence[int],
    prompts: Sequence[str] | None = None,
) -> list[Episode]:
    """Episodes of a rewriter, ``venv.num_envs`` at a time, episode ``i`` reset with ``seeds[i]``."""
    out: list[Episode] = []
    for start in range(0, len(seeds), venv.num_envs):
        chunk = list(seeds[start : start + venv.num_envs])
        given = None if prompts is None else list(prompts[start : start + len(chunk)])
        queries, limits = reset_episodes(venv, chunk, given)
        out += replay(venv, rewriter(queries, limits), chunk)
    return out


def text_rewriter(space: TokenSpace, rewrite: Callable[[str], str]) -> Rewriter:
    """A rewriter from a text function of the source (plain prompt, fixed tags, ...)."""

    def run(queries: list[list[int]], limits: list[int]) -> list[list[int]]:
        out = []
        for q, limit in zip(queries, limits, strict=True):
            source = space.tokenizer.decode(q[:-1])
            out.append([*space.tokenizer.encode(rewrite(source)), space.eos][:limit])
        return out

    return run


def model_rewriter(model: nn.Module, space: TokenSpace, greedy: bool = True) -> Rewriter:
    """A rewriter decoding from an LM (greedy, or sampling at temperature 1)."""

    def run(queries: list[list[int]], limits: list[int]) -> list[list[int]]:
        return sample(model, queries, limits, space.vocab, space.eos, greedy=greedy)

    return run


def random_rewriter(space: TokenSpace, seed: int) -> Rewriter:
    """Uniformly random tokens until EOS or the limit (the random baseline)."""
    rng = np.random.default_rng(seed)

    def run(queries: list[list[int]], limits: list[int]) -> list[list[int]]:
        out = []
        for limit in limits:
            r: list[int] = []
            while len(r) < limit and (not r or r[-1] != space.eos):
                r.append(int(rng.integers(space.vocab)))
            out.append(r)
        return out

    return run


class LMPolicy:
    """A batched :data:`~prompt_gym.agents.episodes.Policy` over token observations.

    Recomputes the whole sequence each step (no cache); use :func:`model_rewriter` for speed.
    """

    def __init__(self, model: nn.Module, vocab: int, greedy: bool = True) -> None:
        self.model, self.vocab, self.greedy = model, vocab, greedy

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Next token of every sub-env."""
        rows = [
            t[: int(n)].tolist() for t, n in zip(obs["tokens"], obs["length"][:, 0], strict=True)
        ]
        device = next(self.model.parameters()).device
        batch = Batch(rows, [[] for _ in rows], self.vocab, device)
        logits = self.model(
            input_ids=batch.input_ids[:, : batch.query_len],
            attention_mask=batch.attention_mask[:, : batch.query_len],
            position_ids=batch.position_ids[:, : batch.query_len],
        ).logits[:, -1, : self.vocab]
        if self.greedy:
            return logits.argmax(-1).cpu().numpy()
        return torch.multinomial(torch.softmax(logits.float(), -1), 1)[:, 0].cpu().numpy()


def rewrites_markdown(rows: Sequence[tuple[str, str, float]]) -> str:
    """A markdown table of ``(source, rewrite, reward)``."""
    lines = ["| reward | source | rewrite |", "|---|---|---|"]
    lines += [f"| {r:.3f} | {s} | {y} |" for s, y, r in rows]
    return "\n".join(lines)


def episode_rows(episodes: Sequence[Episode]) -> list[tuple[str, str, float]]:
    """``(source, rewrite, reward)`` of episodes."""
    return [(str(e.info.get("source")), str(e.info.get("prompt")), e.ret) for e in episodes]


def rollout_scalars(episodes: Sequence[Episode]) -> dict[str, float]:
    """``charts/`` means of a batch of episodes: return, length, and the reward's parts
    (``charts/reward_<part>`` for each part of :data:`REWARD_PARTS` every episode reports)."""
    out = {"charts/episodic_return": float(np.mean([e.ret for e in episodes]))}
    for part in REWARD_PARTS:
        if all(part in e.info for e in episodes):
            out[f"charts/reward_{part}"] = float(np.mean([e.info[part] for e in episodes]))
    out["charts/response_length"] = float(np.mean([e.length for e in episodes]))
    out["charts/length_limit_rate"] = float(np.mean([e.info["length_limit"] for e in episodes]))
    return out


REWARD_PARTS = ("relevance", "aesthetic", "aesthetic_rm", "pickscore_rm", "pickscore")
"""Reward parts logged by :func:`rollout_scalars` when every episode reports them."""


def evaluate_model(
    model: nn.Module,
    env_id: str,
    kwargs: dict[str, Any],
    episodes: int,
    seed: int,
    greedy: bool = True,
    batch: int = 64,
) -> list[Episode]:
    """Decoding episodes of an LM: episode ``i`` is reset with seed ``seed + i``.

    ``kwargs`` are the env's (add ``split="test"`` for the held-out prompts); ``batch`` episodes
    run at a time.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    venv = make_venv(env_id, min(batch, episodes), kwargs)
    try:
        space = TokenSpace.of(venv)
        seeds = list(range(seed, seed + episodes))
        return run_rewriter(venv, model_rewriter(model, space, greedy), seeds)
    finally:
        venv.close()
