"""PEZ's other uses (Wen et al. 2023): distillation, concatenation, one prompt for several images.

All three run :func:`~prompt_gym.agents.pez.search` through the backend's white-box scorer
(:func:`~prompt_gym.agents.pez.white_box`: its own open_clip model, or the declared proxy,
``shapes-clip`` on the shapes presets), and are measured the way a user meets them: each prompt
is rendered by the backend's generator on fresh seeds and its images are compared with the
targets by the backend's own scorer (:func:`rendered_similarity`).

* :func:`distill`: a prompt of ``tokens`` tokens whose text embedding matches a given prompt's
  (loss ``1 - cos(text(P_target), text(P))``), measured by how similar its renders are to the
  original prompt's renders, against the original's own seed-to-seed similarity;
* :func:`concatenate`: two prompts learned for two targets, joined, and all three measured
  against each target;
* several images: :func:`~prompt_gym.agents.pez.invert` with all of them (the mean cosine is
  maximised); :func:`cross_similarity` measures every prompt against every image.

Example::

    from prompt_gym import make_backend
    from prompt_gym.agents import pez_uses
    short = pez_uses.distill(make_backend("shapes"), "two large red boxes on the left", tokens=3)
    print(short.prompt, short.fraction)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prompt_gym.agents import pez

from prompt_gym.backends import RewardBackend

EVAL_SEEDS = tuple(range(900_000, 900_008))
"""Image seeds the uses render prompts on (no env draws them)."""
TARGET_SEEDS = tuple(range(800_000, 800_008))
"""Image seeds of the original prompt's renders in :func:`distill`."""


def rendered_similarity(
    backend: RewardBackend, prompts: Sequence[str], images: np.ndarray, seeds: Sequence[int]
) -> np.ndarray:
    """``float (len(prompts), len(images))``: mean over ``seeds`` of the backend's image-image
    cosine between each prompt's render and each target image (the ImageInversion reward)."""
    target = backend.embed_images(np.asarray(images))
    prompts, seeds = list(prompts), list(seeds)
    result = backend.score([p for p in prompts for _ in seeds], seeds * len(prompts))
    embeds = np.asarray(result.image_embeds).reshape(len(prompts), len(seeds), -1)
    return np.einsum("psd,nd->pn", embeds, target) / len(seeds)


def cross_similarity(
    backend: RewardBackend, prompts: Sequence[str], images: np.ndarray
) -> np.ndarray:
    """:func:`rendered_similarity` on :data:`EVAL_SEEDS`: row ``i`` is prompt ``i`` against
    every image."""
    return rendered_similarity(backend, prompts, images, EVAL_SEEDS)


@dataclass(frozen=True)
class DistillResult:
    """What :func:`distill` found.

    Attributes:
        prompt: The distilled prompt.
        source: The prompt that was distilled.
        tokens: Tokens of the distilled prompt (white-box tokenizer).
        source_tokens: Tokens of the source.
        text_similarity: Cosine of the two prompts' text embeddings (white-box scorer).
        image_similarity: Mean image-image cosine of the distilled prompt's renders to the
            source's renders (backend scorer, :data:`EVAL_SEEDS` vs :data:`TARGET_SEEDS`).
        source_similarity: The same for the source prompt itself (its seed-to-seed similarity).
    """

    prompt: str
    source: str
    tokens: int
    source_tokens: int
    text_similarity: float
    image_similarity: float
    source_similarity: float

    @property
    def fraction(self) -> float:
        """Share of the source's image similarity the distilled prompt keeps."""
        return self.image_similarity / self.source_similarity


def distill(
    backend: RewardBackend,
    prompt: str,
    tokens: int,
    steps: int = 300,
    learning_rate: float = 0.1,
    weight_decay: float = 0.1,
    seed: int = 0,
) -> DistillResult:
    """Shorten ``prompt`` to ``tokens`` tokens keeping its text embedding (PEZ distillation).

    Raises:
        ValueError: For an empty prompt, ``tokens`` outside ``[1, context - 2]``, or a backend
            without a white-box scorer.
    """
    if not prompt.strip():
        raise ValueError("the prompt to distill is empty")
    scorer = pez.check_backend(backend)
    source_tokens = len(scorer.tokenizer.encode(prompt))
    found = pez.search(
        scorer, scorer.embed_texts([prompt]), tokens, steps, learning_rate, weight_decay, seed
    )
    images = backend.generate([prompt] * len(TARGET_SEEDS), list(TARGET_SEEDS))
    sims = rendered_similarity(backend, [found.prompt, prompt], images, EVAL_SEEDS).mean(axis=1)
    return DistillResult(
        prompt=found.prompt,
        source=prompt,
        tokens=tokens,
        source_tokens=source_tokens,
        text_similarity=found.similarity,
        image_similarity=float(sims[0]),
        source_similarity=float(sims[1]),
    )


@dataclass(frozen=True)
class ConcatResult:
    """What :func:`concatenate` found.

    Attributes:
        prompts: The prompts learned for target A and target B.
        joined: ``"{A} {B}"``.
        similarity: ``float (3, 2)``: rows A's prompt, B's prompt, the joined prompt; columns
            target A, target B (:func:`cross_similarity`, backend scorer).
    """

    prompts: tuple[str, str]
    joined: str
    similarity: np.ndarray


def concatenate(
    backend: RewardBackend,
    image_a: np.ndarray,
    image_b: np.ndarray,
    prompt_len: int = 8,
    steps: int = 300,
    seed: int = 0,
) -> ConcatResult:
    """Learn a prompt for each of two images, join them and measure the three against both.

    Args:
        backend: A backend with a white-box scorer.
        image_a: ``uint8 (H, W, 3)`` first target.
        image_b: The second target, of the same size.
        prompt_len: Tokens of each learned prompt (the joined one has twice as many; past the
            text context it is truncated, as every text is).
        steps: PEZ steps of each inversion.
        seed: Seed of the first inversion (the second uses ``seed + 1``).
    """
    a = pez.invert(backend, np.asarray(image_a)[None], prompt_len, steps, seed=seed).prompt
    b = pez.invert(backend, np.asarray(image_b)[None], prompt_len, steps, seed=seed + 1).prompt
    joined = f"{a} {b}"
    sims = cross_similarity(backend, [a, b, joined], np.stack([image_a, image_b]))
    return ConcatResult((a, b), joined, sims)
