"""ImageInversion: build a prompt token by token so the generated image reproduces a target.

Targets come from the backend's world (:class:`~prompt_gym.envs.targets.EnvTargets`); a target's
prompt space is built once per backend (:data:`SHARED_SPACES`) and shared by every env on it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from prompt_gym.backends import RewardBackend, ScoreResult, Target
from prompt_gym.envs.core import (
    EnvCore,
    PromptEnv,
    check_options,
    core_argument,
    core_options,
)
from prompt_gym.envs.lookahead import Lookahead, until_stop
from prompt_gym.envs.memo import BackendMemo
from prompt_gym.envs.render import side_by_side
from prompt_gym.envs.targets import EnvTargets, as_target
from prompt_gym.envs.vector import PromptVectorEnv
from prompt_gym.rewards import image_similarity, image_similarity_rows

REWARD_MODES = ("dense", "delta", "terminal")
PROMPT_SPACES = ("captions", "caption-words")
"""How a target's candidate tokens are chosen (see :class:`ImageInversionEnv`, Arguments)."""
EXTRA_CAPTION_ROUNDS = 3
"""Extra rounds of ``n_captions`` captions while the captions have fewer than ``n_tokens`` words."""
FILL_CAPTION_ROUNDS = 16
"""The same for the ``caption-words`` space, which should fill every slot (no masked slot at reset)."""
_WORD = re.compile(r"[a-z0-9']+")
SHARED_SPACES = BackendMemo()
"""Per backend: ``(target_id, n_captions, n_tokens, prompt_space)`` -> (prompt space, its views)."""


def caption_words(captions: list[str]) -> list[str]:
    """Unique lower-case words of the captions, in order of first appearance.

    >>> caption_words(["A red sphere.", "a red ball"])
    ['a', 'red', 'sphere', 'ball']
    """
    return list(dict.fromkeys(w for c in captions for w in _WORD.findall(c.lower())))


def max_episode_steps(kwargs: Mapping[str, Any]) -> int:
    """The step limit an env made with ``kwargs`` enforces itself: ``2 * (max_tokens + 1)``.

    ``max_tokens`` defaults to ``n_tokens``; the limit is reached only with penalized actions.
    Registration sets an id's ``max_episode_steps`` from its registered ``kwargs`` with this.

    >>> max_episode_steps({}), max_episode_steps({"n_tokens": 12})
    (18, 26)
    """
    max_tokens = core_argument(ImageInversionCore, kwargs, "max_tokens")
    if max_tokens is None:
        max_tokens = core_argument(ImageInversionCore, kwargs, "n_tokens")
    return 2 * (int(max_tokens) + 1)


class ImageInversionCore(EnvCore):
    """Episode logic of :class:`ImageInversionEnv` (see there for the documentation)."""

    def __init__(
        self,
        backend: RewardBackend,
        *,
        level: str = "objects",
        target_set_size: int = 64,
        target_set_seed: int = 0,
        target_index: int | None = None,
        resample_prompt_space: bool = False,
        prompt_space: str = "captions",
        n_captions: int = 5,
        n_tokens: int = 8,
        max_tokens: int | None = None,
        reward_mode: str = "delta",
        num_images: int = 1,
        common_random_numbers: bool = True,
        invalid_action: str = "penalize",
        invalid_penalty: float = -0.1,
    ) -> None:
        super().__init__(backend, invalid_action, invalid_penalty)
        max_tokens = n_tokens if max_tokens is None else max_tokens
        if n_captions < 1 or n_tokens < 1 or num_images < 1:
            raise ValueError("n_captions, n_tokens and num_images must all be >= 1")
        if not 1 <= max_tokens <= n_tokens:
            raise ValueError(f"max_tokens must be in [1, n_tokens={n_tokens}], got {max_tokens}")
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if prompt_space not in PROMPT_SPACES:
            raise ValueError(f"prompt_space must be one of {PROMPT_SPACES}, got {prompt_space!r}")
        self.prompt_space = prompt_space
        self.targets = EnvTargets(backend, level, target_set_size, target_set_seed)
        if target_index is not None and not 0 <= target_index < len(self.targets):
            raise ValueError(
                f"target_index must be in [0, {len(self.targets)}), got {target_index}"
            )
        self.target_index = target_index
        self.resample_prompt_space = resample_prompt_space
        self.n_captions, self.n_tokens, self.max_tokens = n_captions, n_tokens, max_tokens
        self.reward_mode, self.num_images = reward_mode, num_images
        self.common_random_numbers = common_random_numbers
        self.max_steps = max_episode_steps({"max_tokens": max_tokens})
        dim = backend.dim
        unit = spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "target": unit,
                "current": unit,
                "candidates": spaces.Box(-1.0, 1.0, shape=(n_tokens, dim), dtype=np.float32),
                "chosen": spaces.MultiDiscrete(np.full(max_tokens, n_tokens + 1)),
                "action_mask": spaces.MultiBinary(n_tokens + 1),
                "similarity": spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Discrete(n_tokens + 1)
        self.stop_action = n_tokens
        self.target: Target | None = None
        self._spaces: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._measured: tuple[float, np.ndarray, bool] | None = None  # set by the vector env

    # ----------------------------------------------------------------------------------- reset
    def reset(
        self, np_random: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._start(np_random, options)
        return self._observe(), self._info()

    def begin(
        self, np_random: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._start(np_random, options)
        return self.observation_parts(), self._info()

    def _start(self, np_random: np.random.Generator, options: dict[str, Any] | None) -> None:
        options = check_options(options, ("target", "target_index"))
        self.np_random = np_random
        if "target" in options:
            target = as_target(options["target"])
        elif "target_index" in options:
            index = options["target_index"]
            if not isinstance(index, int | np.integer) or not 0 <= index < len(self.targets):
                raise ValueError(
                    f"target_index must be an int in [0, {len(self.targets)}), got {index!r}"
                )
            target = self.targets[int(index)]
        elif self.target_index is not None:
            target = self.targets[self.target_index]
        else:
            target = self.targets[int(np_random.integers(len(self.targets)))]
        caption_seed = int(np_random.integers(2**31))
        self.episode_seeds = [int(s) for s in np_random.integers(0, 2**31, size=self.num_images)]

        self.target = target
        user_target = "target" in options
        if self.resample_prompt_space or user_target:
            space = self._prompt_space(target, caption_seed)
            views = self._views(space)
        else:  # built once per target, as in the paper, and shared by every env of the backend
            space, views = self._shared_space(target)
        self.target_embed, self.captions, self.words, self.word_embeds = space
        self._candidates_obs, self._target_obs, self._target64, self._candidates_info = views
        self.chosen: list[int] = []
        self._prompt = ""
        self._chosen_obs = np.full(self.max_tokens, self.n_tokens, dtype=np.int64)
        self.similarity = 0.0
        self._similarity_obs = np.zeros(1, dtype=np.float32)
        self.current_embed = np.zeros(self.backend.dim, dtype=np.float32)
        self.image_valid = True
        self._mask = self._compute_mask()
        self.current_seeds = list(self.episode_seeds)
        self.done, self.steps = False, 0

    def _shared_space(self, target: Target) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The prompt space of a target of the set, built once per backend, and its views."""
        found = self._spaces.get(target.target_id)
        if found is None:
            key = (target.target_id, self.n_captions, self.n_tokens, self.prompt_space)
            found = SHARED_SPACES.get(self.backend, key, lambda: self._build_shared(target))
            self._spaces[target.target_id] = found
        return found

    def _build_shared(self, target: Target) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """A target's prompt space from a caption seed derived from its id, and its views."""
        fixed_seed = zlib.crc32(target.target_id.encode()) & 0x7FFFFFFF
        space = self._prompt_space(target, fixed_seed)
        return space, self._views(space)

    def _views(
        self, space: tuple[np.ndarray, list[str], list[str], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """What every episode on a prompt space reads, built once per space.

        The candidates and target observations (never modified), the target embedding as
        float64, and the candidates info string.
        """
        target_embed, _, words, word_embeds = space
        candidates = np.zeros((self.n_tokens, self.backend.dim), dtype=np.float32)
        candidates[: len(words)] = word_embeds
        target_obs = np.clip(target_embed, -1, 1).astype(np.float32)
        target64 = np.asarray(target_embed, dtype=np.float64)
        return np.clip(candidates, -1, 1), target_obs, target64, " | ".join(words)

    def _prompt_space(
        self, target: Target, caption_seed: int
    ) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
        """Target embedding, captions, the top ``n_tokens`` caption words and their embeddings."""
        target_embed = self.backend.embed_images(target.image[None])[0]
        captions = self.backend.caption([target], self.n_captions, caption_seed)[0]
        space = self._word_space(target, captions)
        rounds = EXTRA_CAPTION_ROUNDS if self.prompt_space == "captions" else FILL_CAPTION_ROUNDS
        for extra in range(1, rounds + 1):  # too few words: caption some more
            if len(space) >= self.n_tokens:
                break
            captions += self.backend.caption([target], self.n_captions, caption_seed + extra)[0]
            space = self._word_space(target, captions)
        words = space
        if not words:
            return target_embed, captions, [], np.zeros((0, self.backend.dim), np.float32)
        sims = self.backend.embed_texts(words) @ target_embed
        order = np.argsort(-sims, kind="stable")[: self.n_tokens]
        top = [words[i] for i in order]
        return target_embed, captions, top, self.backend.embed_texts(top)

    def _word_space(self, target: Target, captions: list[str]) -> list[str]:
        """The candidate words before ranking (see ``prompt_space``)."""
        words = caption_words(captions)
        if self.prompt_space == "captions":
            return words
        return self._caption_word_space(target, words)

    def _caption_word_space(self, target: Target, noisy_words: list[str]) -> list[str]:
        """The target caption's words, repeats kept, then the noisy captions' other words."""
        if not target.caption:
            raise ValueError(
                "prompt_space='caption-words' needs targets with a caption (the shapes world's "
                "targets and the shipped target prompts have one; a user image has none)"
            )
        own = _WORD.findall(target.caption.lower())
        known = set(own)
        distractors = [w for w in noisy_words if w not in known]
        return own + distractors[: max(0, self.n_tokens - len(own))]

    # ----------------------------------------------------------------------------------- step
    @property
    def prompt(self) -> str:
        """The prompt built so far: the chosen words joined by spaces."""
        return self._prompt

    def action_mask(self) -> np.ndarray:
        return self._mask.copy()

    def action_mask_parts(self) -> np.ndarray:
        return self._mask

    def _compute_mask(self) -> np.ndarray:
        mask = np.zeros(self.n_tokens + 1, dtype=np.int8)
        if len(self.chosen) < self.max_tokens:
            mask[: len(self.words)] = 1
            mask[self.chosen] = 0
        mask[self.stop_action] = 1
        return mask

    def _lookahead(self, sequences: Sequence[Sequence[int]]) -> Lookahead:
        k, seeds, stop = self.num_images, self.current_seeds, self.stop_action
        requests = [
            (
                [" ".join(self.words[j] for j in [*self.chosen, *until_stop(seq, stop)])] * k,
                list(seeds),
            )
            for seq in sequences
        ]
        target = self.target_embed
        return Lookahead(
            requests,
            self.similarity,
            None,
            lambda _, r: image_similarity(r.image_embeds, target, r.valid),
            self.needs_aesthetic,
        )

    def _requests(self, action: int) -> tuple[list[str], list[int]]:
        if action == self.stop_action:
            return [], []
        if not self.common_random_numbers:
            self.current_seeds = [
                int(s) for s in self.np_random.integers(0, 2**31, self.num_images)
            ]
        self._planned = (
            f"{self._prompt} {self.words[action]}" if self.chosen else self.words[action]
        )
        return [self._planned] * self.num_images, list(self.current_seeds)

    def _apply(self, action: int, result: ScoreResult | None) -> tuple[float, bool, dict[str, Any]]:
        previous = self.similarity
        if action == self.stop_action:
            terminated = True
        else:
            self.chosen.append(action)
            self._prompt = self._planned
            self._chosen_obs[len(self.chosen) - 1] = action
            measured, self._measured = self._measured or self._measure(result), None
            self.similarity, self.current_embed, self.image_valid = measured
            terminated = len(self.chosen) >= self.max_tokens
            if terminated:  # what _compute_mask gives: only STOP
                self._mask[: self.n_tokens] = 0
            else:
                self._mask[action] = 0
            self._similarity_obs = np.array(
                [min(1.0, max(-1.0, self.similarity))], dtype=np.float32
            )
        if self.reward_mode == "dense":
            reward = 0.0 if action == self.stop_action else self.similarity
        elif self.reward_mode == "delta":
            reward = self.similarity - previous
        else:
            reward = self.similarity if terminated else 0.0
        return reward, terminated, self._info()

    def _measure(self, result: ScoreResult) -> tuple[float, np.ndarray, bool]:
        """Similarity, current embedding (the unit mean of the valid images) and validity."""
        embeds, valid = result.image_embeds, result.valid
        if len(valid) == 1:  # one image: the same numbers as the vector env's batched measure
            similarity, current = measure_rows(embeds, valid, self._target64[None])
            return float(similarity[0]), current[0], bool(valid[0])
        similarity = image_similarity(embeds, self._target64, valid)
        mean = (embeds * valid[:, None]).mean(axis=0)
        norm = float(np.sqrt(mean.dot(mean)))  # np.linalg.norm of a vector
        current = mean / norm if norm > 0 else mean  # a new float32 array either way
        np.maximum(current, -1, out=current)  # np.clip(current, -1, 1), in place
        np.minimum(current, 1, out=current)
        return similarity, current, bool(valid.all())

    def needs_result(self) -> bool:
        return self._measured is None

    # ----------------------------------------------------------------------------------- views
    def observation_parts(self) -> dict[str, np.ndarray]:
        return {
            "target": self._target_obs,
            "current": self.current_embed,
            "candidates": self._candidates_obs,
            "chosen": self._chosen_obs,
            "action_mask": self._mask,
            "similarity": self._similarity_obs,
        }

    def _observe(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self.observation_parts().items()}

    def _info(self) -> dict[str, Any]:
        return {
            "prompt": self._prompt,
            "similarity": self.similarity,
            "num_tokens": len(self.chosen),
            "image_valid": self.image_valid,
            "target_id": self.target.target_id,
            "candidates": self._candidates_info,
        }

    def render(self) -> np.ndarray:
        target = self.target.image
        if self.chosen:
            current = self.backend.generate([self.prompt], [self.current_seeds[0]])[0]
        else:
            current = np.zeros_like(target)
        return side_by_side([target, current])


class ImageInversionData:
    """The read-only set-up of an ImageInversion env, single or native vector (every sub-env's)."""

    _any_core: ImageInversionCore

    @property
    def target_set(self) -> EnvTargets:
        """The targets an episode draws from: ``len()`` and indexing, each a ``Target``."""
        return self._any_core.targets

    @property
    def num_images(self) -> int:
        """Images rendered per step (one per image seed)."""
        return self._any_core.num_images


class ImageInversionEnv(ImageInversionData, PromptEnv):
    """Invert an image into a prompt by picking caption tokens (ImagePrompt).

    ## Description
    A target image is drawn from a target set (or given in ``reset(options={"target": image})``).
    As in ImagePrompt, a per-target *prompt space* is built: the backend's captioner writes
    ``n_captions`` captions of the target, their unique words are ranked by scorer (CLIP)
    similarity to the target, and the top ``n_tokens`` become the candidate tokens. While the
    captions hold fewer than ``n_tokens`` unique words, up to 3 more rounds of ``n_captions``
    captions are drawn, so every slot is normally filled. As in the paper, a target's prompt
    space is built once (caption seed derived from the target id) and reused by every episode on
    that target; ``resample_prompt_space=True`` re-captions it every episode with a seed from
    ``np_random``, and a user-supplied target is always captioned afresh. Each step
    appends one candidate (without replacement) to the prompt, the prompt is rendered with
    ``num_images`` seeds, and the images are compared with the target.

    ## Action Space
    ``Discrete(n_tokens + 1)``: ``i < n_tokens`` appends candidate ``i``; ``n_tokens`` is STOP.
    Used candidates, empty candidate slots (fewer unique words than ``n_tokens``) and every token
    once ``max_tokens`` are chosen are masked (see ``action_mask``); STOP is never masked, so
    no mask, the terminal observation's included, is all zeros. As in Gymnasium's own envs,
    every action of the space is accepted: a masked one is a no-op rewarded
    ``invalid_penalty`` (``info["invalid_action"]`` is True), or raises ``ValueError`` with
    ``invalid_action="raise"``. An action outside the space (an id ``>= n_tokens + 1``, a bool,
    a non-integral or infinite float) always raises ``ValueError``.

    ## Observation Space
    ``Dict`` with fixed shapes (SB3 ``MultiInputPolicy`` reads it), ``D`` = scorer dimension:

    | key | space | meaning |
    |---|---|---|
    | ``target`` | ``Box(-1, 1, (D,))`` | unit embedding of the target image |
    | ``current`` | ``Box(-1, 1, (D,))`` | unit mean embedding of the current images (zeros before the first token) |
    | ``candidates`` | ``Box(-1, 1, (n_tokens, D))`` | text embeddings of the candidate tokens (zeros for empty slots) |
    | ``chosen`` | ``MultiDiscrete([n_tokens + 1] * max_tokens)`` | chosen candidate indices in order, padded with ``n_tokens`` |
    | ``action_mask`` | ``MultiBinary(n_tokens + 1)`` | 1 where an action is valid |
    | ``similarity`` | ``Box(-1, 1, (1,))`` | current similarity to the target |

    ## Rewards
    With ``s_t`` the mean cosine of the step-``t`` images to the target (``imageprompt-i2i``,
    range ``[-1, 1]``; a failed image counts ``-1``) and ``s_0 = 0`` (no image yet):
    ``delta`` (default): ``s_t - s_{t-1}``, so an episode's return is its final similarity;
    ``dense`` (the paper): ``s_t`` after each token, ``0`` for STOP;
    ``terminal``: the final similarity at the last step, ``0`` before.
    A masked action (with the default ``invalid_action="penalize"``) is a no-op rewarded
    ``invalid_penalty`` (default ``-0.1``, any finite number ``<= 0``).

    ## Starting State
    An empty prompt: no token chosen, ``current`` all zeros, similarity 0. The target, the
    caption seed and the ``num_images`` image seeds are drawn from ``np_random``. With
    ``common_random_numbers=True`` (default) the image seeds stay fixed for the episode, so a
    reward difference comes from the prompt, not from the noise.

    ## Episode End
    Terminated on STOP or when ``max_tokens`` tokens are chosen. Truncated after
    ``2 * (max_tokens + 1)`` steps (reachable only with penalized masked actions;
    :func:`max_episode_steps` gives the limit for a set of keyword arguments).

    ## Arguments
    ``backend`` (preset name or :class:`~prompt_gym.backends.RewardBackend`; the ``-Shapes-``
    ids use ``"shapes"``), ``level`` (target difficulty: ``objects``, ``attributes``,
    ``background``, ``style``), ``target_set_size`` (64), ``target_set_seed`` (0),
    ``target_index`` (``None``: draw a target per episode; an index fixes it for every episode,
    autoresets included, as the paper's per-target learner needs), ``resample_prompt_space``
    (False), ``prompt_space`` (``"captions"``: the ImagePrompt space above;
    ``"caption-words"``: every word of the target's own caption, repeats kept, plus the other
    words of its noisy captions as distractors (captioned again, up to 16 more rounds, until
    every slot holds a word), ranked the same way, so the caption itself is reachable when
    ``n_tokens`` holds it),
    ``n_captions`` (5), ``n_tokens`` (8), ``max_tokens`` (``n_tokens``), ``reward_mode``
    (``"delta"``), ``num_images`` (1), ``common_random_numbers`` (True), ``invalid_action``
    (what a masked action does: ``"penalize"``, the default, or ``"raise"``),
    ``invalid_penalty`` (-0.1), ``render_mode``
    (``"rgb_array"``: target and current image side by side). Reset options: ``target``
    (a :class:`~prompt_gym.backends.Target` or ``uint8 (H, W, 3)`` image) or ``target_index``.

    ## Info keys
    ``prompt``, ``similarity``, ``num_tokens``, ``image_valid`` (no image failed),
    ``target_id``, ``candidates`` (the prompt space joined by ``" | "``), and ``invalid_action``
    (True) after a penalized masked action. Cache hits are not in ``info``, which must depend only on the seed
    and the actions (Gymnasium's determinism check); read ``env.unwrapped.backend.stats``.

    ## Public API
    Read-only, beside ``lookahead``, ``stop_action`` and ``elapsed_steps`` (see
    :class:`~prompt_gym.envs.core.PromptEnv`); the episode's members need a ``reset()`` first:

    * ``target_set`` (the targets an episode draws from, :class:`~prompt_gym.envs.targets.
      EnvTargets`) and ``num_images``; the native vector env has these two as well.
    * ``target`` (the episode's :class:`~prompt_gym.backends.Target`), ``target_embedding``
      (its unit image embedding, ``(D,)``), ``episode_seeds`` (its ``num_images`` image seeds,
      every step's with ``common_random_numbers=True``) and ``candidates`` (its prompt space's
      words: action ``i`` appends ``candidates[i]``).
    * ``evaluate_prompt(prompt)``: the similarity of any free-text prompt on ``episode_seeds``,
      the number a step to that prompt reports, without changing the episode.

    ## Registered configurations
    | id | backend | level | prompt space | n_tokens |
    |---|---|---|---|---|
    | ``ImageInversion-Shapes-v0`` | ``shapes`` (world v2) | objects | captions | 8 |
    | ``ImageInversion-Shapes-Easy-v1`` | ``shapes-v3`` | objects | captions | 8 |
    | ``ImageInversion-Shapes-v1``, ``-Medium-v1`` | ``shapes-v3`` | background | captions | 12 |
    | ``ImageInversion-Shapes-Hard-v1`` | ``shapes-v3`` | style | caption-words | 24 |

    ## Version History
    Not versioned, as valid actions behave exactly as before: a masked action is now a penalized
    no-op by default (it raised before), and an infinite float or a bool raises ``ValueError``.

    * v1: the shapes world v3 (every word conditions the render; :mod:`prompt_gym.backends.shapes.
      conditioning`), difficulty tiers, the ``caption-words`` prompt space.
    * v0: initial release.
    """

    core_cls: ClassVar[type[EnvCore]] = ImageInversionCore

    def __init__(
        self,
        backend: str | RewardBackend | None = None,
        *,
        level: str = "objects",
        target_set_size: int = 64,
        target_set_seed: int = 0,
        target_index: int | None = None,
        resample_prompt_space: bool = False,
        prompt_space: str = "captions",
        n_captions: int = 5,
        n_tokens: int = 8,
        max_tokens: int | None = None,
        reward_mode: str = "delta",
        num_images: int = 1,
        common_random_numbers: bool = True,
        invalid_action: str = "penalize",
        invalid_penalty: float = -0.1,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(backend, render_mode, core_options(ImageInversionCore, locals()))

    core: ImageInversionCore

    def _episode(self) -> ImageInversionCore:
        """The core, once an episode has started.

        Raises:
            RuntimeError: Before the first ``reset()``.
        """
        if self.core.target is None:
            raise RuntimeError("no episode yet: call reset() first")
        return self.core

    @property
    def target(self) -> Target:
        """The episode's target."""
        return self._episode().target

    @property
    def target_embedding(self) -> np.ndarray:
        """``float32 (D,)`` unit image embedding of the target (a read-only view)."""
        view = self._episode().target_embed.view()
        view.flags.writeable = False
        return view

    @property
    def episode_seeds(self) -> tuple[int, ...]:
        """The episode's ``num_images`` image seeds (every step's with common random numbers)."""
        return tuple(self._episode().episode_seeds)

    @property
    def candidates(self) -> tuple[str, ...]:
        """The words of the episode's prompt space: action ``i`` appends ``candidates[i]``."""
        return tuple(self._episode().words)

    @property
    def reward_mode(self) -> str:
        """``"dense"``, ``"delta"`` or ``"terminal"`` (with the last two, a return is the final
        similarity)."""
        return self.core.reward_mode

    def evaluate_prompt(self, prompt: str) -> float:
        """The similarity (``imageprompt-i2i``) of a free-text prompt on the episode's seeds.

        ``prompt`` is rendered on :attr:`episode_seeds` and compared with the target, with the
        request and the numbers of the env's own steps: a step whose prompt is ``prompt`` (on
        these seeds) reports this similarity and is a cache hit. Changes no state and draws
        no random number.

        Args:
            prompt: Any text, inside the candidate words or not.

        Returns:
            The mean cosine of its images to the target, in ``[-1, 1]`` (a failed image -1).

        Raises:
            RuntimeError: Before the first ``reset()``.
            ValueError: If ``prompt`` is not a ``str``.
        """
        core = self._episode()
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a str, got {type(prompt).__name__}")
        seeds = list(core.episode_seeds)
        result = self.backend.score([prompt] * len(seeds), seeds, aesthetic=core.needs_aesthetic)
        return image_similarity(result.image_embeds, core.target_embed, result.valid)


class ImageInversionVectorEnv(ImageInversionData, PromptVectorEnv):
    """Native vector env of :class:`ImageInversionEnv`: one backend call per step.

    The sub-envs that scored one image this step have their similarity and current embedding
    computed together (:func:`measure_rows`, the same numbers as each core's own).
    ``target_set`` and ``num_images`` are public, as on :class:`ImageInversionEnv`.

    Args:
        num_envs: Number of sub-envs.
        max_episode_steps: May only lower the sub-envs' own step limit (``None`` keeps it).
        backend, level, target_set_size, target_set_seed, target_index, resample_prompt_space,
            prompt_space, n_captions, n_tokens, max_tokens, reward_mode, num_images,
            common_random_numbers, invalid_action, invalid_penalty, render_mode: As in
            :class:`ImageInversionEnv`, for every sub-env.
    """

    env_cls: ClassVar[type[PromptEnv]] = ImageInversionEnv

    def __init__(
        self,
        num_envs: int,
        backend: str | RewardBackend | None = None,
        *,
        level: str = "objects",
        target_set_size: int = 64,
        target_set_seed: int = 0,
        target_index: int | None = None,
        resample_prompt_space: bool = False,
        prompt_space: str = "captions",
        n_captions: int = 5,
        n_tokens: int = 8,
        max_tokens: int | None = None,
        reward_mode: str = "delta",
        num_images: int = 1,
        common_random_numbers: bool = True,
        invalid_action: str = "penalize",
        invalid_penalty: float = -0.1,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        super().__init__(
            num_envs,
            backend,
            render_mode,
            max_episode_steps,
            core_options(ImageInversionCore, locals()),
        )

    def _advance_cores(
        self, live: list[int], spans: list[tuple[int, int]], result: ScoreResult | None
    ) -> list[tuple[float, bool, bool, dict[str, Any]] | None]:
        one = [(self.cores[i], a) for i, (a, b) in zip(live, spans, strict=True) if b == a + 1]
        if result is not None and len(one) > 1:
            rows = np.array([a for _, a in one])
            cores = [core for core, _ in one]
            targets = np.stack([core._target64 for core in cores])
            valid = result.valid[rows]
            similarity, current = measure_rows(result.image_embeds[rows], valid, targets)
            for core, sim, cur, ok in zip(
                cores, similarity.tolist(), current, valid.tolist(), strict=True
            ):
                core._measured = (sim, cur, ok)
        return super()._advance_cores(live, spans, result)


def measure_rows(
    embeds: np.ndarray, valid: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The measure of one image per row (what :meth:`ImageInversionCore._measure` uses for one
    image), for many cores at once.

    Returns:
        ``(similarity (R,), current (R, D))``, row ``r`` equal to the measure of a core whose
        step scored ``embeds[r]`` against ``targets[r]``.
    """
    similarity = image_similarity_rows(embeds, targets, valid)
    mean = embeds * valid[:, None].astype(np.float32)
    norm = np.sqrt(np.vecdot(mean, mean))[:, None]  # per row, as np.sqrt(mean.dot(mean))
    current = np.divide(mean, norm, out=mean.copy(), where=norm > 0)
    np.maximum(current, -1, out=current)
    np.minimum(current, 1, out=current)
    return similarity, current
