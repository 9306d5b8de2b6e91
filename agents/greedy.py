"""Greedy baseline: add whatever helps most, until nothing does (CLIP-Interrogator style).

At each decision the agent values every valid candidate with the env's public lookahead
(``env.unwrapped.lookahead``; one batched backend call for all sub-envs of a native vector env,
:mod:`prompt_gym.envs.lookahead`) and takes the best if it beats the current state; otherwise it
stops. The lookahead's scores are exactly the env's, so the step that follows is a cache hit.
It reads only public env APIs: observations, infos, ``stop_action``, ``token_space``,
``lookahead``, and ``reset_one`` / ``step_some`` of the native vector env.

* ``ImageInversion``: candidate = the prompt plus one unused caption word, scored by the mean
  image-image similarity (``imageprompt-i2i``) on the episode's seeds; the current value is the
  current similarity (0 before the first word, as the env counts it). STOP when nothing beats it.
* ``PromptRewrite``: candidate = the prompt plus one unused modifier, scored by the env's reward
  config on the episode's seeds against the current prompt's reward. STOP when nothing beats it.
* ``PromptRewriteTokens``: first copies the user prompt, then greedily appends ``", phrase"``
  for phrases of a candidate set (the backend's modifier bank by default) encoded with the env's
  tokenizer, while it fits in the episode's ``max_new_tokens``; EOS when nothing helps.

Use :class:`GreedyAgent` in your own loop (``agent.act(obs, info)`` on a single env) or
:func:`evaluate` for batched evaluation episodes (one backend call per step for all of them)::

    from prompt_gym.agents import greedy
    from prompt_gym.agents.episodes import summarize
    episodes = greedy.evaluate("PromptRewrite-Shapes-v0", episodes=32, seed=0)
    print(summarize(episodes, "PromptRewrite-Shapes-v0")["mean_return"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from prompt_gym.agents.checkpoints import reject_checkpoint
from prompt_gym.agents.episodes import Episode, Step

from prompt_gym.envs.core import PromptEnv
from prompt_gym.envs.image_inversion import ImageInversionEnv
from prompt_gym.envs.prompt_rewrite import SEPARATOR, PromptRewriteEnv
from prompt_gym.envs.prompt_rewrite_tokens import PromptRewriteTokensEnv, TokenSpace
from prompt_gym.envs.prompt_sets import load_modifiers
from prompt_gym.envs.vector import PromptVectorEnv
from prompt_gym.progress import advance

AGENT = "greedy"
TOLERANCE = 1e-9
"""A candidate must beat the current value by more than this."""
FAMILIES: tuple[type[PromptEnv], ...] = (
    ImageInversionEnv,
    PromptRewriteEnv,
    PromptRewriteTokensEnv,
)
"""The env families greedy plays."""


class Planner:
    """Greedy decisions for one env or sub-env; keeps the queue of a chosen token phrase.

    Args:
        family: The env class (one of :data:`FAMILIES`).
        stop: The env's ``stop_action``.
        phrase_ids: The token env's candidate phrases and their ids (see :meth:`for_env`).
        sep: The token env's separator id (``TokenSpace.sep``).
    """

    def __init__(
        self,
        family: type[PromptEnv],
        stop: int,
        phrase_ids: dict[str, list[int]] | None = None,
        sep: int | None = None,
    ) -> None:
        self.family, self.stop, self.sep = family, stop, sep
        self.phrase_ids = phrase_ids or {}
        self.queue: list[int] = []
        self.used: set[str] = set()
        self.copied = False
        self._offered: list[str] = []
        self._sequences: list[list[int]] = []

    @classmethod
    def for_env(cls, env: Any, phrases: Sequence[str] | None = None) -> Planner:
        """A planner for a single or native vector env (or one sub-env of it).

        Args:
            env: A prompt-gym env (``gym.make(id)`` or ``gym.make_vec(id, ...,
                vectorization_mode="vector_entry_point")``) of a supported family.
            phrases: Candidate phrases of the token env (default: the backend's modifier bank).

        Raises:
            ValueError: For an env of another family.
        """
        u = env.unwrapped if isinstance(env, gym.Env | gym.vector.VectorEnv) else env
        kind = u.env_cls if isinstance(u, PromptVectorEnv) else type(u)
        family = next((f for f in FAMILIES if issubclass(kind, f)), None)
        if family is None:
            raise ValueError(
                f"greedy supports ImageInversion, PromptRewrite and PromptRewriteTokens, not "
                f"{kind.__name__}"
            )
        ids: dict[str, list[int]] = {}
        sep = None
        if family is PromptRewriteTokensEnv:
            space = TokenSpace.of(u)
            tok, sep = space.tokenizer, space.sep
            for phrase in phrases if phrases is not None else load_modifiers(u.backend):
                encoded = tok.encode(SEPARATOR.rstrip() + " " + phrase)
                if tok.decode(encoded).strip(" ,") == phrase.lower():  # what the vocab can write
                    ids[phrase] = encoded
        return cls(family, u.stop_action, ids, sep)

    def reset(self) -> None:
        """Forget the previous episode."""
        self.queue, self.used, self.copied = [], set(), False

    def candidates(
        self, obs: dict[str, np.ndarray], info: dict[str, Any]
    ) -> list[list[int]] | None:
        """The action sequences to value now, or ``None`` when the next action is already known.

        Args:
            obs: The env's current observation.
            info: The env's current info.
        """
        if self.queue:
            return None
        if self.family is not PromptRewriteTokensEnv:
            valid = np.flatnonzero(obs["action_mask"][: self.stop])
            self._sequences = [[int(a)] for a in valid]
            return self._sequences
        limit = int(info["max_new_tokens"])
        if not self.copied:  # copy the user's prompt first
            self.copied = True
            tokens = obs["tokens"][: int(obs["length"][0])].tolist()
            self.queue = tokens[: tokens.index(self.sep)][:limit]
            if self.queue:
                return None
        room = limit - int(info["num_new_tokens"])
        self._offered = [
            p for p, ids in self.phrase_ids.items() if p not in self.used and len(ids) <= room
        ]
        self._sequences = [list(self.phrase_ids[p]) for p in self._offered]
        return self._sequences

    def decide(self, values: np.ndarray, current: float) -> None:
        """Queue the best candidate of the last :meth:`candidates` if it beats ``current``, else stop."""
        if len(values) and values.max() > current + TOLERANCE:
            best = int(values.argmax())
            self.queue = list(self._sequences[best])
            if self.family is PromptRewriteTokensEnv:
                self.used.add(self._offered[best])
        else:
            self.queue = [self.stop]

    def next_action(self) -> int:
        """Pop the next queued action."""
        return self.queue.pop(0)


# ===================================================================================== agents
class GreedyAgent:
    """The greedy policy of one (single) env, through its public lookahead.

    Args:
        env: A prompt-gym env (``gym.make(id)``) of a supported family.
        phrases: Candidate phrases of the token env.

    Example:
        >>> import gymnasium as gym, prompt_gym
        >>> env = gym.make("PromptRewrite-Shapes-v0")
        >>> agent = GreedyAgent(env)
        >>> obs, info = env.reset(seed=0)
        >>> done = False
        >>> while not done:
        ...     obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
        ...     done = terminated or truncated
    """

    def __init__(self, env: gym.Env, phrases: Sequence[str] | None = None) -> None:
        self.env = env
        self.planner = Planner.for_env(env, phrases)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        """The next action for the env's current state, given its last ``obs`` and ``info``."""
        u = self.env.unwrapped
        if u.elapsed_steps == 0:  # a new episode
            self.planner.reset()
        candidates = self.planner.candidates(obs, info)
        if candidates is not None:
            self.planner.decide(*u.lookahead(candidates))
        return self.planner.next_action()


def run_episodes(
    venv: gym.vector.VectorEnv,
    seeds: Sequence[int | None],
    options: dict[str, Any] | None = None,
    phrases: Sequence[str] | None = None,
) -> list[Episode]:
    """One greedy episode per sub-env of a native vector env, one backend call per decision step.

    Resets each sub-env with ``reset_one`` and drives them with ``lookahead`` and ``step_some``,
    so no autoreset step is involved.
    """
    u = venv.unwrapped
    n = venv.num_envs
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
    template = Planner.for_env(venv, phrases)
    planners = [
        Planner(template.family, template.stop, template.phrase_ids, template.sep) for _ in range(n)
    ]
    starts = [u.reset_one(i, seed=s, options=options) for i, s in enumerate(seeds)]
    current = [obs for obs, _ in starts]
    infos = [info for _, info in starts]
    steps: list[list[Step]] = [[] for _ in range(n)]
    finals: list[dict[str, Any] | None] = [None] * n
    running = np.ones(n, dtype=bool)
    while running.any():
        candidates = [
            planners[i].candidates(current[i], infos[i]) if running[i] else None for i in range(n)
        ]
        for planner, looked in zip(planners, u.lookahead(candidates), strict=True):
            if looked is not None:
                planner.decide(*looked)
        actions = [planners[i].next_action() if running[i] else 0 for i in range(n)]
        for i, out in enumerate(u.step_some(actions, running.copy())):
            if out is None:
                continue
            next_obs, reward, terminated, truncated, infos[i] = out
            steps[i].append((current[i], actions[i], float(reward)))
            current[i] = next_obs
            if terminated or truncated:
                finals[i], running[i] = infos[i], False
                advance()
    return [Episode.from_steps(steps[i], finals[i], seeds[i]) for i in range(n)]


def evaluate(
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    batch: int = 32,
    phrases: Sequence[str] | None = None,
    *,
    checkpoint: str | Path | None = None,
) -> list[Episode]:
    """Greedy evaluation episodes (see :class:`~prompt_gym.agents.protocol.Agent`).

    Episode ``i`` is reset with seed ``seed + i``; ``batch`` episodes run at a time.
    """
    reject_checkpoint(checkpoint, AGENT)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out: list[Episode] = []
    for start in range(0, episodes, batch):
        seeds = list(range(seed + start, seed + min(episodes, start + batch)))
        venv = gym.make_vec(
            env_id,
            num_envs=len(seeds),
            vectorization_mode="vector_entry_point",
            **(env_kwargs or {}),
        )
        try:
            out += run_episodes(venv, seeds, options, phrases)
        finally:
            venv.close()
    return out
