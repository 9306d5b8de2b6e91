"""The components of a caller's backend, as clients of a Serve app.

A served backend is a plain :class:`~prompt_gym.backends.reward_backend.RewardBackend` built
from these, so its checks, dedupe and memory cache run in the caller and envs need no change:

* :class:`ServedCompute` (the backend's :class:`~prompt_gym.backends.protocols.Compute`):
  a batch of cache misses is one round trip (split into requests of at most the service's
  ``max_batch_size`` rows, in flight together); the replica runs its own ``backend.score`` on
  the merged batch, so its memory cache, scene reuse and dedupe across callers all apply;
* :class:`ServedGenerator`: its config is the replica's (so the cache namespace, and every
  cache key, is the in-process backend's); images come from the replica's generator; token
  counts arrive with each scored batch (the backend asks for them after computing) and are
  remembered, so a batch of misses costs no second round trip; ``scene_keys`` is ``None``
  here: scenes are reused on the replica, where images are made;
* :class:`ServedScorer` and :class:`ServedCaptioner`: the replica's scorer and captioner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.cache import MemoryLRU
from prompt_gym.backends.compute import Computed
from prompt_gym.backends.protocols import GeneratorBase, ScorerBase, Target
from prompt_gym.backends.served.client import ServiceClient
from prompt_gym.backends.served.replica import ScoreRequest

TOKEN_MEMO = 200_000
"""Token counts a served generator remembers (prompt -> count)."""


class ServedGenerator(GeneratorBase):
    """The replica's generator, seen from a caller.

    Args:
        client: The service.
        config: The replica generator's ``config()``.
    """

    def __init__(self, client: ServiceClient, config: dict[str, Any]) -> None:
        self.client, self._config = client, dict(config)
        self._tokens = MemoryLRU(TOKEN_MEMO)

    def config(self) -> dict[str, Any]:
        """The replica generator's config."""
        return dict(self._config)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """Images from the replica's generator."""
        return self.generate_checked(prompts, seeds)[0]

    def generate_checked(
        self, prompts: Sequence[str], seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images and non-finite flags from the replica's generator."""
        return self.client.call("generate_checked", list(prompts), [int(s) for s in seeds])

    def count_tokens(self, prompts: Sequence[str]) -> np.ndarray:
        """Token counts: remembered ones, the rest asked of the replica in one call."""
        prompts = list(prompts)
        known = self._tokens.get_many(prompts)
        todo = sorted({p for p, n in zip(prompts, known, strict=True) if n is None})
        if todo:
            counts = self.client.call("count_tokens", todo)
            self.learn_tokens(todo, counts)
            fresh = dict(zip(todo, np.asarray(counts).tolist(), strict=True))
            known = [fresh[p] if n is None else n for p, n in zip(prompts, known, strict=True)]
        return np.asarray(known, dtype=np.int32)

    def learn_tokens(self, prompts: Sequence[str], counts: Any) -> None:
        """Remember the token counts of ``prompts`` (as a scored batch brings them)."""
        self._tokens.put_many(zip(prompts, np.asarray(counts).tolist(), strict=True))


class ServedScorer(ScorerBase):
    """The replica's scorer, seen from a caller.

    Args:
        client: The service.
        config: The replica scorer's ``config()``.
        dim: Its embedding dimension.
        has_aesthetic: Whether it has an aesthetic score.
    """

    def __init__(
        self, client: ServiceClient, config: dict[str, Any], dim: int, has_aesthetic: bool
    ) -> None:
        self.client, self._config, self.dim = client, dict(config), int(dim)
        self._has_aesthetic = bool(has_aesthetic)

    @property
    def has_aesthetic(self) -> bool:
        """Whether the replica's scorer has an aesthetic score."""
        return self._has_aesthetic

    def config(self) -> dict[str, Any]:
        """The replica scorer's config."""
        return dict(self._config)

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """Image embeddings from the replica's scorer."""
        return self.client.call("embed_images", np.asarray(images))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings from the replica."""
        return self.client.call("embed_texts", list(texts))

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """Aesthetic scores from the replica's scorer."""
        return self.client.call("aesthetic", np.asarray(images))

    def embed_images_with_aesthetic(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and aesthetic scores from one call of the replica's scorer."""
        return self.client.call("embed_images_with_aesthetic", np.asarray(images))


class ServedCaptioner:
    """The replica's captioner, seen from a caller."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        """``n`` captions per target from the replica's captioner."""
        return self.client.call("caption", list(targets), int(n), int(seed))


class ServedCompute:
    """A caller backend's compute: its cache misses scored by the service.

    Args:
        client: The service.
        generator: The caller's served generator (it learns each batch's token counts).
        max_rows: Most rows per request (the service's ``max_batch_size``).

    Attributes:
        replicas: The replicas (``host:pid``) that answered this caller.
    """

    def __init__(self, client: ServiceClient, generator: ServedGenerator, max_rows: int) -> None:
        self.client, self.generator, self.max_rows = client, generator, max_rows
        self.replicas: set[str] = set()

    def generate_and_score(
        self, prompts: list[str], seeds: list[int], *, aesthetic: bool, images: bool = False
    ) -> Computed:
        """Scores of every (prompt, seed), in request order, from one round trip."""
        seeds = [int(s) for s in seeds]
        starts = range(0, len(prompts), self.max_rows)
        requests = [
            (ScoreRequest(prompts[a : a + self.max_rows], seeds[a : a + self.max_rows],
                          aesthetic, images),)
            for a in starts
        ]  # fmt: skip
        replies = self.client.call_many("score", requests)
        self.generator.learn_tokens(prompts, np.concatenate([r.tokens for r in replies]))
        stats = self.client.stats
        stats.count("served_requests", len(replies))
        stats.count("served_rows", len(prompts))
        stats.count("served_batch_requests", sum(r.batch_requests for r in replies))
        stats.count("served_batch_rows", sum(r.batch_rows for r in replies))
        self.replicas.update(r.replica for r in replies)
        return Computed(
            np.concatenate([r.embeds for r in replies]),
            np.concatenate([r.aesthetic for r in replies]) if aesthetic else None,
            np.concatenate([r.flags for r in replies]),
            np.concatenate([r.images for r in replies]) if images else None,
            sum(r.seconds_generate for r in replies),
            sum(r.seconds_score for r in replies),
        )

    def close(self) -> None:
        """Nothing to release: the service keeps running for its other callers."""
