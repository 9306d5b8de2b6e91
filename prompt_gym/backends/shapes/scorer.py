"""The shapes-world scorer: CLIP-like unit embeddings of images and texts, and the aesthetic.

Image embedding
    The 82 raw features of :mod:`.features` are standardised with a fixed reference (mean and
    standard deviation over 1,024 reference renders: 256 targets of each level, set seed 0, at
    64 px), weighted per group (:data:`GROUP_WEIGHTS`, divided by the square root of the group's
    size) and L2-normalised into ``f``. Centring makes unrelated images roughly orthogonal.

Text embedding
    A text is parsed and its spec rendered with ``n_views`` fixed canonical seeds at 64 px; the
    normalised features of the views are averaged and normalised into ``g`` (cached per spec, so
    junk words cannot change it).

Modality gap
    Like CLIP, image and text embeddings live in different cones. An image embeds as
    ``[a f, b, 0, c]`` and a text as ``[a g, 0, b, c]`` (unit norm; ``a**2 = content = 0.30``,
    ``c**2 = shared = 0.07``, ``b**2 = 1 - a**2 - c**2``), so

    * text-image cosine = ``0.30 cos(f, g) + 0.07``,
    * image-image cosine = ``0.30 cos(f, f') + 0.70``.

    A matched prompt and image then score near CLIP's typical 0.36, above the 0.28 threshold of
    Promptist's relevance term ``min(20 cos - 5.6, 0)``, and unrelated pairs 0.0-0.1.

Shape evidence
    Besides the raw geometry descriptors, the embedding carries a soft nearest-prototype posterior
    over the 24 shape words and the counts 1-3: each (shape word, count) has a prototype, the mean
    geometry of 8 renders, and an image's posterior is ``softmax(-d**2 / (2 * 4**2))`` with ``d``
    its distance to the prototypes in units of the typical within-prototype spread.

Calibration, measured (mean over 6 x 6 seed pairs, 64 px; ``tests/test_shapes_scorer.py`` checks
20 orderings):

===================================================  ======
pair                                                 cosine
===================================================  ======
text "a red circle" vs its images                    0.36
text "a blue square" vs images of "a red circle"      0.01
text "a green star on black" vs "a red circle"      0.05
image of "a red circle" vs other seeds' renders      0.99
image of "a blue circle" vs "a red circle" (shape)    0.84
image of "a red square" vs "a red circle" (colour)    0.75
image of "a blue square" vs "a red circle" (none)     0.64
===================================================  ======
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from prompt_gym.backends.cache import MemoryLRU
from prompt_gym.backends.protocols import ScorerBase
from prompt_gym.backends.shapes import aesthetic as _aesthetic
from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.conditioning import condition
from prompt_gym.backends.shapes.features import (
    GROUPS,
    N_FEATURES,
    Stats,
    check_images,
    features,
    features_and_stats,
    thumbnail,
)
from prompt_gym.backends.shapes.hashing import uniforms
from prompt_gym.backends.shapes.ops import einsum
from prompt_gym.backends.shapes.params import WORLDS
from prompt_gym.backends.shapes.render import render_prompts, render_specs
from prompt_gym.backends.shapes.scene import SceneSpec, parse_prompt
from prompt_gym.backends.validation import check_texts

VERSION = "2"
"""Part of every cache key. 2: the aesthetic from the features pass, spreads from centred values."""
VERSION_V3 = "3"
"""The version of a world-3 scorer (texts embed as renders of the text itself)."""
#: Relative weight of each embedding group (each divided by the square root of its size).
GROUP_WEIGHTS: dict[str, float] = {
    "background": 1.0,
    "object colour": 1.2,
    "fill": 1.4,
    "geometry": 0.5,
    "shape": 2.0,
    "count": 0.6,
    "position": 0.6,
    "layout": 0.6,
    "global": 0.3,
}
CANONICAL_SEEDS: tuple[int, ...] = (
    1_000_003,
    2_000_029,
    3_000_017,
    4_000_037,
    5_000_011,
    6_000_023,
    7_000_003,
    8_000_009,
)
REFERENCE_SIZE = 256  # reference targets per level
PROTOTYPE_SEEDS = 8  # renders per (shape word, count) prototype
_PROTOTYPE_COLOURS = ("red", "blue", "green", "black", "orange", "purple", "teal", "navy")
SHAPE_TEMPERATURE = 4.0  # softness of the nearest-prototype posterior (within-class std units)
_COUNTS = (1, 2, 3)
_N_SHAPES = len(vocab.SHAPE_NAMES)
#: Embedding groups: the raw feature groups, the geometry descriptors renamed, and the posteriors.
EMBED_GROUPS: dict[str, slice] = {
    **{("geometry" if k == "shape" else k): v for k, v in GROUPS.items()},
    "shape": slice(N_FEATURES, N_FEATURES + _N_SHAPES),
    "count": slice(N_FEATURES + _N_SHAPES, N_FEATURES + _N_SHAPES + len(_COUNTS)),
}
N_EMBED = N_FEATURES + _N_SHAPES + len(_COUNTS)


@dataclass(frozen=True)
class Reference:
    """Fixed statistics the embedding is built from (computed once per process from renders).

    Attributes:
        prototypes: ``(n_shapes * 3, 10)`` mean geometry descriptors of every (shape word, count).
        proto_scale: ``(10,)`` median over prototypes of the within-prototype standard deviation.
        mean: ``(N_EMBED,)`` mean embedding features of the reference renders.
        std: ``(N_EMBED,)`` their standard deviation (floored at 1e-3).
    """

    prototypes: np.ndarray
    proto_scale: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def shape_posterior(geometry: np.ndarray, ref: Reference) -> np.ndarray:
    """Soft nearest-prototype posterior ``(N, n_shapes * 3)`` of geometry descriptors."""
    g = geometry / ref.proto_scale
    mu = ref.prototypes / ref.proto_scale
    # squared distances |g - mu|^2 expanded; einsum loops, not BLAS (stalls on a busy machine)
    d2 = (g * g).sum(axis=1, keepdims=True) - 2.0 * einsum("nd,kd->nk", g, mu)
    d2 += (mu * mu).sum(axis=1)
    logits = d2 * (-0.5 / SHAPE_TEMPERATURE**2)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _expand(raw: np.ndarray, ref: Reference) -> np.ndarray:
    """Raw features -> embedding features (raw, shape posterior, count posterior)."""
    post = shape_posterior(raw[:, GROUPS["shape"]], ref).reshape(-1, _N_SHAPES, len(_COUNTS))
    by_shape = post[:, :, 0] + post[:, :, 1] + post[:, :, 2]  # post.sum(axis=2), faster
    by_count = np.ascontiguousarray(post.transpose(1, 0, 2)).sum(axis=0)  # post.sum(axis=1)
    return np.concatenate([raw, by_shape, by_count], axis=1)


@lru_cache(maxsize=1)
def reference() -> Reference:
    """Build (once) the prototypes and the standardisation statistics."""
    from prompt_gym.backends.shapes.targets import LEVELS, random_spec

    shapes = [(shape, c) for shape in vocab.SHAPE_NAMES for c in _COUNTS]
    specs = [
        SceneSpec(shape, _PROTOTYPE_COLOURS[k % len(_PROTOTYPE_COLOURS)], count=c)
        for shape, c in shapes
        for k in range(PROTOTYPE_SEEDS)
    ]
    raw = features(thumbnail(render_specs(specs, list(range(len(specs))), 64, 64)))
    geo = raw[:, GROUPS["shape"]].reshape(len(shapes), PROTOTYPE_SEEDS, -1)
    prototypes = geo.mean(axis=1)
    scale = np.median(geo.std(axis=1), axis=0) + 1e-3  # typical within-prototype spread
    partial = Reference(prototypes, scale, np.zeros(N_EMBED), np.ones(N_EMBED))

    specs, seeds = [], []
    for j, level in enumerate(LEVELS):
        u = uniforms([j], REFERENCE_SIZE * 17).reshape(REFERENCE_SIZE, 17)
        specs += [random_spec(level, row) for row in u]
        seeds += [int(x * 2**62) for x in u[:, 16]]
    emb = _expand(features(thumbnail(render_specs(specs, seeds, 64, 64))), partial)
    return Reference(prototypes, scale, emb.mean(axis=0), np.maximum(emb.std(axis=0), 1e-3))


def _weights() -> np.ndarray:
    w = np.zeros(N_EMBED)
    for name, sl in EMBED_GROUPS.items():
        w[sl] = GROUP_WEIGHTS[name] / np.sqrt(sl.stop - sl.start)
    return w


class ShapesScorer(ScorerBase):
    """Deterministic vision-language scorer of the shapes world (see the module docstring).

    Args:
        n_views: Canonical renders averaged into a text embedding.
        content: Share ``a**2`` of the squared norm carried by the content vector.
        shared: Share ``c**2`` carried by a direction common to both modalities; the rest,
            ``1 - content - shared``, is the modality's own direction.
        cache_size: Text embeddings kept (per parsed spec).
        world: Shapes-world version the text embeddings render in: 2 (a text embeds as its
            parsed spec's canonical renders) or 3 (as renders of the text itself, so every word
            counts, :mod:`.conditioning`). Image embeddings are the same in both.

    Raises:
        ValueError: On an out-of-range argument.
    """

    def __init__(
        self,
        n_views: int = 4,
        content: float = 0.30,
        shared: float = 0.07,
        cache_size: int = 4096,
        world: int = 2,
    ) -> None:
        if world not in WORLDS:
            raise ValueError(f"world must be one of {WORLDS}, got {world!r}")
        self.world = int(world)
        if not 1 <= int(n_views) <= len(CANONICAL_SEEDS):
            raise ValueError(f"n_views must be in [1, {len(CANONICAL_SEEDS)}], got {n_views}")
        if not (float(content) > 0.0 and float(shared) >= 0.0 and content + shared <= 1.0):
            raise ValueError(
                f"need content > 0, shared >= 0 and content + shared <= 1, got {content}, {shared}"
            )
        self.n_views = int(n_views)
        self.content = float(content)
        self.shared = float(shared)
        self.cache_size = int(cache_size)
        self.dim = N_EMBED + 3
        self._ref = reference()
        self._w = _weights() / self._ref.std
        self._a = np.sqrt(self.content)
        self._b = np.sqrt(1.0 - self.content - self.shared)
        self._c = np.sqrt(self.shared)
        self._text_cache = MemoryLRU(self.cache_size)  # text key -> embedding

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a score."""
        config = {
            "name": "shapes",
            "version": VERSION,
            "n_views": self.n_views,
            "content": self.content,
            "shared": self.shared,
        }
        if self.world == 3:
            config.update(version=VERSION_V3, world=3)
        return config

    # ------------------------------------------------------------------------------ embeddings

    def _content(self, thumbs: np.ndarray) -> np.ndarray:
        """Unit content vectors ``float64 (N, N_EMBED)`` of thumbnails."""
        return self._content_and_stats(thumbs)[0]

    def _content_and_stats(self, thumbs: np.ndarray) -> tuple[np.ndarray, Stats]:
        """:meth:`_content`, and the pixel sums the aesthetic score is computed from."""
        raw, stats = features_and_stats(thumbs)
        z = (_expand(raw, self._ref) - self._ref.mean) * self._w
        norm = np.sqrt((z * z).sum(axis=1, keepdims=True))
        return z / np.maximum(norm, 1e-12), stats

    def _pack(self, content: np.ndarray, modality: int) -> np.ndarray:
        out = np.zeros((content.shape[0], self.dim), dtype=np.float32)
        out[:, :N_EMBED] = self._a * content
        out[:, N_EMBED + modality] = self._b
        out[:, N_EMBED + 2] = self._c
        return out

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N, dim)`` unit vectors (any resolution)."""
        images = check_images(images)
        if images.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._pack(self._content(thumbnail(images)), 0)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``N`` strings -> ``float32 (N, dim)`` unit vectors (cached per parsed spec in world 2,
        per conditioning in world 3)."""
        texts = check_texts(texts, "text")
        # a text renders like every text of its key (in world 2 its spec), so one stands for all
        key = parse_prompt if self.world == 2 else (lambda t: condition(t).key())
        specs = [key(t) for t in texts]
        cached = self._text_cache.get_many(specs)
        missing = {s: t for s, t, v in zip(specs, texts, cached, strict=True) if v is None}
        fresh = dict(zip(missing, self._embed_text_views(list(missing.values())), strict=True))
        self._text_cache.put_many(fresh.items())
        out = [fresh[s] if v is None else v for s, v in zip(specs, cached, strict=True)]
        return np.stack(out) if out else np.zeros((0, self.dim), np.float32)

    def _embed_text_views(self, texts: list[str]) -> np.ndarray:
        """Text embeddings ``float32 (N, dim)``: the mean of each text's canonical renders."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        seeds = list(CANONICAL_SEEDS[: self.n_views])
        prompts = [t for t in texts for _ in seeds]
        views = render_prompts(prompts, seeds * len(texts), 64, 64, self.world)
        content = self._content(thumbnail(views)).reshape(len(texts), self.n_views, -1)
        mean = content.mean(axis=1)
        mean /= np.maximum(np.sqrt((mean * mean).sum(axis=1, keepdims=True)), 1e-12)
        return self._pack(mean, 1)

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N,)`` aesthetic scores in ``[0, 10]``."""
        return _aesthetic.aesthetic(images)

    def embed_images_with_aesthetic(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both :meth:`embed_images` and :meth:`aesthetic` from one thumbnail pass."""
        images = check_images(images)
        if images.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32)
        content, stats = self._content_and_stats(thumbnail(images))
        return self._pack(content, 0), _aesthetic.score_stats(stats)


def world3(
    n_views: int = 4, content: float = 0.30, shared: float = 0.07, cache_size: int = 4096
) -> ShapesScorer:
    """The shapes world v3 scorer (the ``shapes-v3`` preset).

    Its keywords are named, so :func:`~prompt_gym.backends.factory.make_backend` routes a
    generator option (``resolution=``) past it.
    """
    return ShapesScorer(n_views, content, shared, cache_size, world=3)
