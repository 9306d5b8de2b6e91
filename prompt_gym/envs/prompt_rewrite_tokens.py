"""PromptRewriteTokens: rewrite a prompt token by token, for language-model agents (Promptist).

The default tokenizer is the backend's world's (``world.tokenizer``, resolved by
:func:`~prompt_gym.envs.tokenizers.load_tokenizer`); :class:`TokenSpace` (``env.token_space``)
is the public description of the id layout an LM agent needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.beautifulprompt_reward import make_judge
from prompt_gym.envs.core import (
    EnvCore,
    PromptEnv,
    check_options,
    core_argument,
    core_options,
)
from prompt_gym.envs.lookahead import Lookahead
from prompt_gym.envs.prompt_rewrite import MAX_CLIP_TOKENS
from prompt_gym.envs.prompt_sets import count_tokens, load_prompts
from prompt_gym.envs.rewrite_reward import RewriteData, RewriteJudge, judged_lookahead
from prompt_gym.envs.tokenizers import Tokenizer, load_tokenizer
from prompt_gym.envs.vector import PromptVectorEnv


@dataclass(frozen=True)
class TokenSpace:
    """The id layout of a token env's observations and actions, and its tokenizer.

    Attributes:
        vocab: Number of token ids (the actions).
        pad: The padding id of ``tokens`` (``vocab``).
        sep: The id between source and continuation (``vocab + 1``).
        eos: The id that ends the rewrite.
        length: Length of ``tokens``.
        max_source: Most tokens of a source prompt.
        max_new: Most tokens of a continuation (the top of the ``max_new_tokens`` range).
        tokenizer: The env's tokenizer.
    """

    vocab: int
    pad: int
    sep: int
    eos: int
    length: int
    max_source: int
    max_new: int
    tokenizer: Tokenizer

    @classmethod
    def of(cls, env: Any) -> TokenSpace:
        """The token space of a token env, single or native vector (wrapped or not)."""
        return env.unwrapped.token_space


def max_episode_steps(kwargs: Mapping[str, Any]) -> int:
    """The step limit an env made with ``kwargs`` enforces itself: ``2 * (hi + 1)``.

    ``hi`` is ``max_new_tokens`` or the top of its range; an episode ends by itself within
    ``hi`` steps, so the limit is never reached. Registration sets an id's
    ``max_episode_steps`` from its registered ``kwargs`` with this.

    >>> max_episode_steps({}), max_episode_steps({"max_new_tokens": 8})
    (152, 18)
    """
    new_tokens = core_argument(PromptRewriteTokensCore, kwargs, "max_new_tokens")
    hi = new_tokens if isinstance(new_tokens, int) else new_tokens[1]
    return 2 * (int(hi) + 1)


class PromptRewriteTokensCore(EnvCore):
    """Episode logic of :class:`PromptRewriteTokensEnv` (see there for the documentation)."""

    needs_aesthetic = RewriteJudge.needs_aesthetic

    def __init__(
        self,
        backend: RewardBackend,
        *,
        tokenizer: Tokenizer | str | None = None,
        prompts: str | Path | list[str] | None = None,
        split: str = "train",
        max_new_tokens: int | tuple[int, int] = (15, 75),
        max_source_tokens: int = 32,
        reward: str = "promptist-v1",
        num_images: int = 2,
        seed_pool: int | None = 16,
        reward_models: dict[str, str] | None = None,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
    ) -> None:
        super().__init__(backend, invalid_action, invalid_penalty)
        self.prompts = load_prompts(backend, split, prompts)
        world = backend.world
        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = load_tokenizer(tokenizer or world.tokenizer, world, self.prompts)
        self.tokenizer = tokenizer
        lo, hi = (
            (max_new_tokens, max_new_tokens) if isinstance(max_new_tokens, int) else max_new_tokens
        )
        if not 1 <= lo <= hi:
            raise ValueError(
                f"max_new_tokens must be >= 1 (or a range lo <= hi), got {max_new_tokens}"
            )
        self.new_tokens_range = (int(lo), int(hi))
        self.max_source_tokens = max_source_tokens
        too_long = [p for p in self.prompts if len(tokenizer.encode(p)) > max_source_tokens]
        if too_long:
            raise ValueError(
                f"{len(too_long)} prompts exceed max_source_tokens={max_source_tokens}, e.g. {too_long[0]!r}"
            )
        self.judge = make_judge(backend, reward, num_images, seed_pool, reward_models)
        vocab = tokenizer.vocab_size
        self.pad_id, self.sep_id = vocab, vocab + 1
        self.length = max_source_tokens + 1 + hi
        self.max_steps = max_episode_steps({"max_new_tokens": hi})
        self.observation_space = spaces.Dict(
            {
                "tokens": spaces.MultiDiscrete(np.full(self.length, vocab + 2)),
                "length": spaces.Box(0, self.length, shape=(1,), dtype=np.int64),
            }
        )
        self.action_space = spaces.Discrete(vocab)
        self.stop_action = tokenizer.eos_token_id
        self.token_space = TokenSpace(
            vocab,
            self.pad_id,
            self.sep_id,
            tokenizer.eos_token_id,
            self.length,
            max_source_tokens,
            int(hi),
            tokenizer,
        )
        self.parts: dict[str, Any] = {}

    def reset(
        self, np_random: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        options = check_options(options, ("prompt",))
        self.np_random = np_random
        self.source = self.prompts[int(np_random.integers(len(self.prompts)))]
        if "prompt" in options:
            if not isinstance(options["prompt"], str):
                raise ValueError(f"options['prompt'] must be a str, got {options['prompt']!r}")
            self.source = options["prompt"]
        self.source_ids = self.tokenizer.encode(self.source)
        if len(self.source_ids) > self.max_source_tokens:
            raise ValueError(
                f"the prompt has {len(self.source_ids)} tokens, over max_source_tokens={self.max_source_tokens}"
            )
        lo, hi = self.new_tokens_range
        self.max_new = int(np_random.integers(lo, hi + 1))
        self.seeds = self.judge.draw_seeds(np_random)
        self.continuation: list[int] = []
        self.parts = {}
        self.done, self.steps = False, 0
        return self._observe(), self._info()

    @property
    def rewrite(self) -> str:
        """The decoded continuation: the rewrite ``y``."""
        return self.tokenizer.decode(self.continuation)

    def action_mask(self) -> np.ndarray:
        return np.ones(self.tokenizer.vocab_size, dtype=np.int8)

    def _ends(self, action: int) -> bool:
        return action == self.tokenizer.eos_token_id or len(self.continuation) + 1 >= self.max_new

    def _lookahead(self, sequences: Sequence[Sequence[int]]) -> Lookahead:
        decode, continuation = self.tokenizer.decode, self.continuation
        rewrites = [decode([*continuation, *s]) for s in sequences]
        return judged_lookahead(self.judge, self.source, self.seeds, rewrites, self.rewrite)

    def _requests(self, action: int) -> tuple[list[str], list[int]]:
        if not self._ends(action):
            return [], []
        ids = (
            self.continuation
            if action == self.tokenizer.eos_token_id
            else [*self.continuation, action]
        )
        return self.judge.requests(self.source, self.tokenizer.decode(ids), self.seeds)

    def _apply(self, action: int, result: ScoreResult | None) -> tuple[float, bool, dict[str, Any]]:
        terminated = self._ends(action)
        if action != self.tokenizer.eos_token_id:
            self.continuation.append(action)
        if not terminated:
            return 0.0, False, self._info()
        self.parts = self.judge.judge(self.source, result, rewrite=self.rewrite, seeds=self.seeds)
        self.parts["truncated_tokens"] = max(
            0, count_tokens(self.backend, [self.rewrite])[0] - MAX_CLIP_TOKENS
        )
        self.parts["length_limit"] = action != self.tokenizer.eos_token_id
        return self.parts["reward"], True, self._info()

    def _observe(self) -> dict[str, np.ndarray]:
        ids = [*self.source_ids, self.sep_id, *self.continuation]
        tokens = np.full(self.length, self.pad_id, dtype=np.int64)
        tokens[: len(ids)] = ids
        return {"tokens": tokens, "length": np.array([len(ids)], dtype=np.int64)}

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "prompt": self.rewrite,
            "source": self.source,
            "num_new_tokens": len(self.continuation),
            "max_new_tokens": self.max_new,
        }
        info.update(self.parts)
        return info

    def render(self) -> np.ndarray:
        return self.judge.render(self.source, self.rewrite, self.seeds[0])


class PromptRewriteTokensData(RewriteData):
    """The read-only set-up of a PromptRewriteTokens env, single or native vector."""

    @property
    def token_space(self) -> TokenSpace:
        """The id layout of the observations and actions, and the tokenizer (every sub-env's)."""
        return self._any_core.token_space


class PromptRewriteTokensEnv(PromptRewriteTokensData, PromptEnv):
    """Rewrite a user prompt token by token (Promptist, token level), for language-model policies.

    ## Description
    A user prompt ``x`` is drawn as in :class:`~prompt_gym.envs.prompt_rewrite.PromptRewriteEnv`.
    The agent writes the rewrite ``y`` one token at a time after the separator, like Promptist's
    ``"x Rephrase: y"``; ``y`` is the decoded continuation alone (to keep ``x``'s content the
    policy must write it). The tokenizer is the backend's world's: the shapes ids use a
    word-level tokenizer over the shapes world's prompts and modifiers; real ids use GPT-2's
    tokenizer; the ``tiny`` backend uses GPT-2's tokenizer class with a 600-token vocabulary
    learned offline from the shipped prompts. ``tokenizer=`` takes a tokenizer object or a name
    (``"words"``, ``"tiny-gpt2"``, a Hugging Face name or a local directory). ``token_space``
    describes the id layout.

    ## Action Space
    ``Discrete(vocab_size)``: the next token id; ``tokenizer.eos_token_id`` ends the rewrite.
    Every id is valid (``action_masks()`` is all True; the observation has no mask). An action
    outside the space (an id ``>= vocab_size``, a bool, a non-integral or infinite float) raises
    ``ValueError``.

    ## Observation Space
    ``Dict``: ``tokens`` ``MultiDiscrete([vocab_size + 2] * L)`` the ids of
    ``source + [SEP] + continuation`` padded with ``PAD``, where ``PAD = vocab_size``,
    ``SEP = vocab_size + 1`` and ``L = max_source_tokens + 1 + max(max_new_tokens)``;
    ``length`` ``Box(0, L, (1,), int64)`` the number of ids before the padding.

    ## Rewards
    0 until the end; then the named reward config exactly as in PromptRewrite (default
    ``promptist-v1``, range ``[-35.6, 10]``), with ``x`` and ``y`` rendered on the same seeds.
    The KL penalty is the agent's (LM-PPO), not the env's.

    ## Starting State
    An empty continuation. The prompt, ``max_new_tokens`` (drawn from the range when one is
    given; Promptist draws 15..75) and the image seeds (a tuple of the fixed pool) come from
    ``np_random``.

    ## Episode End
    Terminated on EOS or when the continuation reaches the episode's ``max_new_tokens``
    (``info["length_limit"]`` is then True). Truncated only after ``2 * (max + 1)`` penalized
    steps, which cannot happen since every id is valid (:func:`max_episode_steps` gives the
    limit for a set of keyword arguments).

    ## Arguments
    ``backend``, ``tokenizer``, ``prompts``, ``split``, ``max_new_tokens`` (int or
    ``(lo, hi)``, default ``(15, 75)``), ``max_source_tokens`` (32), ``reward``
    (``promptist-v1``), ``num_images`` (2), ``seed_pool`` (16; as in
    :class:`~prompt_gym.envs.prompt_rewrite.PromptRewriteEnv`), ``reward_models`` (for
    ``reward="beautifulprompt-v1"``; as in PromptRewrite), ``invalid_action`` and
    ``invalid_penalty`` (as in PromptRewrite; no id is ever masked here),
    ``render_mode``. Reset option ``prompt`` sets ``x``.

    ## Info keys
    ``prompt`` (``y``), ``source``, ``num_new_tokens``, ``max_new_tokens``; at the end also
    ``reward``, ``relevance``, ``aesthetic``, ``image_valid``,
    ``prompt_tokens``, ``truncated_tokens`` (CLIP tokens of ``y`` past 77, which the text
    encoder drops), ``length_limit``.

    ## Public API
    Read-only, beside ``lookahead``, ``stop_action`` (the EOS id) and ``elapsed_steps`` (see
    :class:`~prompt_gym.envs.core.PromptEnv`), on this env and its native vector env alike:
    ``token_space`` (:class:`TokenSpace`: the id layout and the tokenizer), ``prompt_set`` (the
    user prompts ``x`` is drawn from) and ``reward_name`` (the ``reward=`` config).

    ## Version History
    Not versioned, as valid actions behave exactly as before: an infinite float or a bool
    raises ``ValueError``.

    * v1: the shapes world v3.
    * v0: initial release.
    """

    core_cls: ClassVar[type[EnvCore]] = PromptRewriteTokensCore

    def __init__(
        self,
        backend: str | RewardBackend | None = None,
        *,
        tokenizer: Tokenizer | str | None = None,
        prompts: str | Path | list[str] | None = None,
        split: str = "train",
        max_new_tokens: int | tuple[int, int] = (15, 75),
        max_source_tokens: int = 32,
        reward: str = "promptist-v1",
        num_images: int = 2,
        seed_pool: int | None = 16,
        reward_models: dict[str, str] | None = None,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(backend, render_mode, core_options(PromptRewriteTokensCore, locals()))


class PromptRewriteTokensVectorEnv(PromptRewriteTokensData, PromptVectorEnv):
    """Native vector env of :class:`PromptRewriteTokensEnv`: one backend call per step.

    ``token_space``, ``prompt_set`` and ``reward_name`` are public, as on
    :class:`PromptRewriteTokensEnv`.

    Args:
        num_envs: Number of sub-envs.
        max_episode_steps: May only lower the sub-envs' own step limit (``None`` keeps it).
        backend, tokenizer, prompts, split, max_new_tokens, max_source_tokens, reward,
            num_images, seed_pool, reward_models, invalid_action, invalid_penalty,
            render_mode: As in
            :class:`PromptRewriteTokensEnv`, for every sub-env.
    """

    env_cls: ClassVar[type[PromptEnv]] = PromptRewriteTokensEnv

    def __init__(
        self,
        num_envs: int,
        backend: str | RewardBackend | None = None,
        *,
        tokenizer: Tokenizer | str | None = None,
        prompts: str | Path | list[str] | None = None,
        split: str = "train",
        max_new_tokens: int | tuple[int, int] = (15, 75),
        max_source_tokens: int = 32,
        reward: str = "promptist-v1",
        num_images: int = 2,
        seed_pool: int | None = 16,
        reward_models: dict[str, str] | None = None,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        super().__init__(
            num_envs,
            backend,
            render_mode,
            max_episode_steps,
            core_options(PromptRewriteTokensCore, locals()),
        )
