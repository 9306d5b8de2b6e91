"""Greedy baseline: add whatever helps most, until nothing does (CLIP-Interrogator style).

At each decision the agent scores every valid candidate in **one** batched backend call, using
the env core's own state (its words, modifiers, prompt and episode seeds), and takes the best if
it beats the current state; otherwise it stops. The scores are exactly the env's, so the step
that follows is a cache hit.

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

    from prompt_gym.agents import common, greedy
    episodes = greedy.evaluate("PromptRewrite-Shapes-v0", episodes=32, seed=0)
    print(common.summarize(episodes, "PromptRewrite-Shapes-v0")["mean_return"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from prompt_gym.agents import common

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.core import EnvCore, slice_result
from prompt_gym.envs.image_inversion import ImageInversionCore
from prompt_gym.envs.prompt_rewrite import SEPARATOR, PromptRewriteCore
from prompt_gym.envs.prompt_rewrite_tokens import PromptRewriteTokensCore
from prompt_gym.envs.prompt_sets import load_modifiers
from prompt_gym.rewards import image_similarity

AGENT = "greedy"
TOLERANCE = 1e-9
"""A candidate must beat the current value by more than this."""


@dataclass
class Choice:
    """What a planner can do next: action sequences, each with the requests that value it.

    Attributes:
        sequences: Candidate action sequences (one action each, or a token phrase).
        requests: ``(prompts, seeds)`` of each sequence.
        current: The current state's value when known without scoring.
        current_request: Otherwise the request that values the current state.
        value: Scores of one request -> value.
        stop: The action that ends the episode.
    """

    sequences: list[list[int]]
    requests: list[tuple[list[str], list[int]]]
    current: float | None
    current_request: tuple[list[str], list[int]] | None
    value: Callable[[ScoreResult], float]
    stop: int


class Planner:
    """Greedy decisions for one env core; keeps the queue of a chosen token phrase.

    Args:
        core: The core of a single or vector env (ImageInversion, PromptRewrite or
            PromptRewriteTokens).
        phrases: Candidate phrases of the token env (default: the backend's modifier bank).

    Raises:
        ValueError: For a core of another family.
    """

    def __init__(self, core: EnvCore, phrases: Sequence[str] | None = None) -> None:
        if not isinstance(core, ImageInversionCore | PromptRewriteCore | PromptRewriteTokensCore):
            raise ValueError(
                f"greedy supports ImageInversion, PromptRewrite and PromptRewriteTokens, not "
                f"{type(core).__name__}"
            )
        self.core = core
        self.queue: list[int] = []
        self.phrase_ids: dict[str, list[int]] = {}
        if isinstance(core, PromptRewriteTokensCore):
            tok = core.tokenizer
            for phrase in phrases if phrases is not None else load_modifiers(core.backend):
                ids = tok.encode(SEPARATOR.rstrip() + " " + phrase)
                if (
                    tok.decode(ids).strip(" ,") == phrase.lower()
                ):  # skip what the vocab cannot write
                    self.phrase_ids[phrase] = ids
        self.used: set[str] = set()
        self.copied = False

    def reset(self) -> None:
        """Forget the previous episode (call after the core was reset)."""
        self.queue, self.used, self.copied = [], set(), False

    # ------------------------------------------------------------------------------- choices
    def choice(self) -> Choice | None:
        """The candidates to score now, or ``None`` when the next action is already known."""
        core = self.core
        if self.queue:
            return None
        if isinstance(core, ImageInversionCore):
            return self._inversion(core)
        if isinstance(core, PromptRewriteCore):
            return self._rewrite(core)
        if not self.copied:  # copy the user's prompt first
            self.copied = True
            self.queue = list(core.source_ids[: core.max_new])
            if self.queue:
                return None
        return self._tokens(core)

    def _inversion(self, core: ImageInversionCore) -> Choice:
        valid = np.flatnonzero(core.action_mask()[: core.stop_action])
        k = core.num_images
        requests = [
            (
                [" ".join(core.words[j] for j in [*core.chosen, int(a)])] * k,
                list(core.current_seeds),
            )
            for a in valid
        ]
        return Choice(
            [[int(a)] for a in valid],
            requests,
            core.similarity,
            None,
            lambda r: image_similarity(r.image_embeds, core.target_embed, r.valid),
            core.stop_action,
        )

    def _rewrite(self, core: PromptRewriteCore) -> Choice:
        valid = np.flatnonzero(core.action_mask()[: core.stop_action])
        judge = core.judge
        requests = [
            judge.requests(core.source, core.prompt + SEPARATOR + core.modifiers[a], core.seeds)
            for a in valid
        ]
        return Choice(
            [[int(a)] for a in valid],
            requests,
            None,
            judge.requests(core.source, core.prompt, core.seeds),
            lambda r: judge.judge(core.source, r)["reward"],
            core.stop_action,
        )

    def _tokens(self, core: PromptRewriteTokensCore) -> Choice:
        tok, judge, room = core.tokenizer, core.judge, core.max_new - len(core.continuation)
        phrases = [
            p for p, ids in self.phrase_ids.items() if p not in self.used and len(ids) <= room
        ]
        self._offered = phrases
        requests = [
            judge.requests(
                core.source, tok.decode([*core.continuation, *self.phrase_ids[p]]), core.seeds
            )
            for p in phrases
        ]
        return Choice(
            [list(self.phrase_ids[p]) for p in phrases],
            requests,
            None,
            judge.requests(core.source, core.rewrite, core.seeds),
            lambda r: judge.judge(core.source, r)["reward"],
            tok.eos_token_id,
        )

    def decide(self, choice: Choice, values: np.ndarray, current: float) -> None:
        """Queue the best sequence if it beats ``current``, else the stop action."""
        if len(values) and values.max() > current + TOLERANCE:
            best = int(values.argmax())
            self.queue = list(choice.sequences[best])
            if isinstance(self.core, PromptRewriteTokensCore):
                self.used.add(self._offered[best])
        else:
            self.queue = [choice.stop]

    def next_action(self) -> int:
        """Pop the next queued action."""
        return self.queue.pop(0)


def decide_all(backend: RewardBackend, planners: Sequence[Planner]) -> None:
    """Fill the queue of every planner that needs a decision, with one backend call for all."""
    pending = [(p, c) for p in planners if (c := p.choice()) is not None]
    prompts: list[str] = []
    seeds: list[int] = []
    spans: list[list[tuple[int, int]]] = []
    for _, choice in pending:
        rows = [*choice.requests]
        if choice.current_request is not None:
            rows.append(choice.current_request)
        spans.append([])
        for ps, ss in rows:
            spans[-1].append((len(prompts), len(prompts) + len(ps)))
            prompts += ps
            seeds += ss
    result = backend.score(prompts, seeds) if prompts else None
    for (planner, choice), rows in zip(pending, spans, strict=True):
        values = np.array([choice.value(slice_result(result, *span)) for span in rows])
        if choice.current_request is not None:
            current, values = float(values[-1]), values[:-1]
        else:
            current = float(choice.current)
        planner.decide(choice, values, current)


# ===================================================================================== agents
class GreedyAgent:
    """The greedy policy of one (single) env; it reads the env's core, not just ``obs``.

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
        self.planner = Planner(env.unwrapped.core, phrases)

    def act(self, obs: Any = None, info: dict[str, Any] | None = None) -> int:
        """The next action for the env's current state (call once per step)."""
        core = self.planner.core
        if core.steps == 0:  # a new episode
            self.planner.reset()
        decide_all(core.backend, [self.planner])
        return self.planner.next_action()


def run_episodes(
    venv: gym.vector.VectorEnv,
    seeds: Sequence[int | None],
    options: dict[str, Any] | None = None,
    phrases: Sequence[str] | None = None,
) -> list[common.Episode]:
    """One greedy episode per sub-env of a native vector env, one backend call per decision step.

    Drives the cores directly (``step_cores``), so no autoreset step is involved.
    """
    u = venv.unwrapped
    n = venv.num_envs
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
    obs, _ = venv.reset(seed=list(seeds), options=options)
    planners = [Planner(core, phrases) for core in u.cores]
    current = [{k: v[i] for k, v in obs.items()} for i in range(n)]
    steps: list[list[tuple[dict[str, np.ndarray], int, float]]] = [[] for _ in range(n)]
    finals: list[dict[str, Any] | None] = [None] * n
    running = np.ones(n, dtype=bool)
    while running.any():
        live = [planners[i] for i in np.flatnonzero(running)]
        decide_all(u.backend, live)
        actions = [planners[i].next_action() if running[i] else 0 for i in range(n)]
        for i, out in enumerate(u.step_cores(actions, running.copy())):
            if out is None:
                continue
            next_obs, reward, terminated, truncated, info = out
            steps[i].append((current[i], actions[i], float(reward)))
            current[i] = next_obs
            if terminated or truncated:
                finals[i], running[i] = info, False
    return [
        common.Episode(
            obs={k: np.stack([s[0][k] for s in steps[i]]) for k in steps[i][0][0]},
            actions=np.array([s[1] for s in steps[i]], dtype=np.int64),
            rewards=np.array([s[2] for s in steps[i]], dtype=np.float64),
            info=finals[i],
            seed=seeds[i],
        )
        for i in range(n)
    ]


def evaluate(
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    batch: int = 32,
    phrases: Sequence[str] | None = None,
) -> list[common.Episode]:
    """Greedy evaluation episodes, like :func:`prompt_gym.agents.common.evaluate`.

    Episode ``i`` is reset with seed ``seed + i``; ``batch`` episodes run at a time.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out: list[common.Episode] = []
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
