"""Small deterministic components for testing the reward backend in isolation."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends import RewardBackend, Target
from prompt_gym.backends.protocols import GeneratorBase, ScorerBase

DIM = 8


def _vector(text: str, dim: int = DIM) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeGenerator(GeneratorBase):
    """Image = a colour from a hash of (prompt, seed); ``"black"`` gives zeros, ``"nan"`` is flagged."""

    def __init__(self, resolution: int = 8) -> None:
        self.resolution = resolution
        self.calls: list[list[str]] = []

    def config(self) -> dict[str, Any]:
        return {"name": "fake", "resolution": self.resolution}

    def generate_checked(
        self, prompts: Sequence[str], seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(list(prompts))
        out = np.zeros((len(prompts), self.resolution, self.resolution, 3), dtype=np.uint8)
        nonfinite = np.zeros(len(prompts), dtype=bool)
        for i, (p, s) in enumerate(zip(prompts, seeds, strict=True)):
            if p == "nan":
                nonfinite[i] = True
            elif p != "black":
                digest = hashlib.sha256(f"{p}|{s}".encode()).digest()
                out[i] = np.frombuffer(digest[:3], dtype=np.uint8) | 8
        return out, nonfinite

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        return self.generate_checked(prompts, seeds)[0]

    def count_tokens(self, prompts: Sequence[str]) -> np.ndarray:
        return np.array([len(p.split()) + 2 for p in prompts])


class FakeScorer(ScorerBase):
    """Embedding = a hash vector of the image bytes; aesthetic = mean pixel / 25.5."""

    dim = DIM

    def config(self) -> dict[str, Any]:
        return {"name": "fake-scorer"}

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        return np.stack([_vector(im.tobytes().hex()) for im in images])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([_vector(t) for t in texts])

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).mean(axis=1).astype(np.float32) / 25.5


class FakeCaptioner:
    def config(self) -> dict[str, Any]:
        return {"name": "fake-captioner"}

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        return [[f"caption {i} of {t.target_id}" for i in range(n)] for t in targets]


def fake_backend(**kwargs: Any) -> RewardBackend:
    return RewardBackend(FakeGenerator(), FakeScorer(), FakeCaptioner(), name="fake", **kwargs)


class FailingInWorkerGenerator(FakeGenerator):
    """A :class:`FakeGenerator` that raises in any process but the one that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.home = os.getpid()

    def generate_checked(
        self, prompts: Sequence[str], seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        if os.getpid() != self.home:
            raise RuntimeError("generator failed in the worker")
        return super().generate_checked(prompts, seeds)


class FailingAestheticInWorkerScorer(FakeScorer):
    """A :class:`FakeScorer` whose aesthetic scores fail in any process but the one that made it."""

    def __init__(self) -> None:
        self.home = os.getpid()

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        if os.getpid() != self.home:
            raise RuntimeError("aesthetic failed in the worker")
        return super().aesthetic(images)


class CountingScorer(FakeScorer):
    """A :class:`FakeScorer` that counts the images passed to each of its methods."""

    def __init__(self) -> None:
        self.counts = {"embed_images": 0, "aesthetic": 0}

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        self.counts["embed_images"] += len(images)
        return super().embed_images(images)

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        self.counts["aesthetic"] += len(images)
        return super().aesthetic(images)


class NoAestheticScorer(FakeScorer):
    """A :class:`FakeScorer` without an aesthetic score (like CLIP without a head)."""

    @property
    def has_aesthetic(self) -> bool:
        return False

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        raise ValueError("no aesthetic head")


class UnpicklableScorer(FakeScorer):
    """A :class:`FakeScorer` holding a lambda, so it cannot be copied to a worker."""

    def __init__(self) -> None:
        self.hook = lambda x: x


def score_with_workers(queue: Any, prompts: list[str], seeds: list[int]) -> None:
    """Score with a ``workers=2`` shapes backend and put the embeddings on ``queue``.

    Run in a daemonic ``multiprocessing`` process, as AsyncVectorEnv and SubprocVecEnv run envs.
    """
    from prompt_gym.backends import make_backend

    backend = make_backend("shapes", workers=2, memory_cache_size=0)
    result = backend.score(prompts, seeds)
    queue.put((result.image_embeds, backend.stats.extra.get("images_by_workers", 0)))
    backend.close()
