"""The Ray Serve deployment of a backend: :class:`~.replica.ReplicaCore` behind ``@serve.batch``.

The deployment class is made by :func:`backend_deployment` (so this module imports ``ray`` only
when a service is deployed). ``score`` is the one batched method: ``@serve.batch`` collects
requests until their rows reach ``max_batch_size`` or ``batch_wait_timeout_s`` passes, and the
replica scores them in one call (:meth:`~.replica.ReplicaCore.score_many`). The other methods
mirror the components (generate, embed, caption, count tokens) for the caller's pass-throughs.
Work runs in a thread, so the event loop keeps collecting the next batch while one computes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from prompt_gym.backends.served.nodelocal import check_node_local
from prompt_gym.backends.served.replica import (
    ReplicaCore,
    ScoreReply,
    ScoreRequest,
    ServiceInfo,
    request_rows,
)

if TYPE_CHECKING:
    from prompt_gym.backends.factory import BackendSpec

DEPLOYMENT = "PromptGymBackend"
"""The deployment's name inside its app."""


def backend_deployment(
    *, max_batch_size: int, batch_wait_timeout_s: float
) -> Any:  # a ray.serve.Deployment
    """The Serve deployment class of a backend, batching at most ``max_batch_size`` rows.

    Bind it to the :class:`~prompt_gym.backends.factory.BackendSpec` each replica builds its
    in-process backend from (``.bind(spec)``) and set ``num_replicas`` / ``ray_actor_options``
    with ``.options(...)``. A ``cache_dir`` in the spec must be node-local (never NFS).
    """
    from ray import serve

    @serve.deployment(name=DEPLOYMENT)
    class PromptGymBackend:
        """One replica: an in-process backend, and the merge of batched score requests."""

        def __init__(self, spec: BackendSpec) -> None:
            check_node_local(spec.overrides.get("cache_dir"))
            self.core = ReplicaCore(spec(), max_batch_size)

        @serve.batch(
            max_batch_size=max_batch_size,
            batch_wait_timeout_s=batch_wait_timeout_s,
            batch_size_fn=request_rows,
        )
        async def score(self, requests: list[ScoreRequest]) -> list[ScoreReply]:
            return await asyncio.to_thread(self.core.score_many, requests)

        async def info(self) -> ServiceInfo:
            return self.core.info()

        async def generate_checked(self, prompts: list[str], seeds: list[int]) -> Any:
            return await asyncio.to_thread(self.core.generate_checked, prompts, seeds)

        async def count_tokens(self, prompts: list[str]) -> Any:
            return await asyncio.to_thread(self.core.count_tokens, prompts)

        async def embed_texts(self, texts: list[str]) -> Any:
            return await asyncio.to_thread(self.core.embed_texts, texts)

        async def embed_images(self, images: Any) -> Any:
            return await asyncio.to_thread(self.core.embed_images, images)

        async def aesthetic(self, images: Any) -> Any:
            return await asyncio.to_thread(self.core.aesthetic, images)

        async def embed_images_with_aesthetic(self, images: Any) -> Any:
            return await asyncio.to_thread(self.core.embed_images_with_aesthetic, images)

        async def caption(self, targets: list[Any], n: int, seed: int) -> list[list[str]]:
            return await asyncio.to_thread(self.core.caption, targets, n, seed)

        async def stats(self) -> dict[str, Any]:
            return await asyncio.to_thread(self.core.stats)

    return PromptGymBackend
