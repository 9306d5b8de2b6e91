"""Throughput measurements shared by ``benchmarks/`` and ``prompt-gym bench``.

Every figure is a median over repeats of a timed loop, measured in this process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from prompt_gym.backends import RewardBackend, make_backend
from prompt_gym.progress import advance

WORDS = (
    ["red", "blue", "green", "yellow", "purple", "orange", "pink", "white"],
    ["circle", "sphere", "square", "cube", "triangle", "star", "egg", "ring"],
    ["", "vivid", "pastel", "striped", "dotted", "glowing", "on a blue background", "small"],
)


def timed(
    fn: Callable[[], Any], repeats: int = 5, min_seconds: float = 0.2, warmup_seconds: float = 0.0
) -> float:
    """Median seconds of one call of ``fn`` (each repeat loops until ``min_seconds`` pass).

    ``fn`` first runs untimed once, and for at least ``warmup_seconds`` (worker processes start
    on first use, and caches and allocators settle).
    """
    start = time.perf_counter()
    fn()  # warm up
    while time.perf_counter() - start < warmup_seconds:
        fn()
    samples = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        samples.append(elapsed / n)
    return statistics.median(samples)


def prompt_pool(n: int, seed: int = 0) -> list[str]:
    """``n`` prompts of random colour / shape / style words."""
    rng = np.random.default_rng(seed)
    return [" ".join(w for w in (rng.choice(ws) for ws in WORDS) if w) for _ in range(n)]


def backend_throughput(
    backend: str = "shapes",
    batch_sizes: tuple[int, ...] = (1, 16, 64, 256),
    repeats: int = 5,
    **overrides: Any,
) -> list[dict[str, float]]:
    """Images/s generated, images/s generated+scored (all misses), and seconds per cache hit.

    "Generated" calls the generator alone, in this process; "generated+scored" goes through
    :meth:`RewardBackend.score` (so ``workers=`` in ``overrides`` shares it with worker processes).

    Args:
        backend: Preset name.
        batch_sizes: Batch sizes to measure.
        repeats: Timed repeats per figure (the median is reported).
        **overrides: Passed to :func:`~prompt_gym.backends.make_backend`.
    """
    rows = []
    for n in batch_sizes:
        uncached = make_backend(backend, memory_cache_size=0, **overrides)
        prompts = prompt_pool(n, seed=n)
        fresh = iter(range(10**12)).__next__  # a new seed per request: every request a miss

        def generate(b: RewardBackend = uncached, p: list[str] = prompts, f=fresh) -> None:
            b.generator.generate(p, [f() for _ in p])

        def score(b: RewardBackend = uncached, p: list[str] = prompts, f=fresh) -> None:
            b.score(p, [f() for _ in p], aesthetic=True)  # every score, the aesthetic included

        cached = make_backend(backend, **overrides)
        seeds = list(range(n))
        cached.score(prompts, seeds, aesthetic=True)
        rows.append(
            {
                "batch": n,
                "generated_per_s": n / timed(generate, repeats),
                "scored_per_s": n / timed(score, repeats, warmup_seconds=0.5),
                "cache_hit_us": 1e6
                * timed(lambda c=cached, p=prompts, s=seeds: c.score(p, s, aesthetic=True), repeats)
                / n,
            }
        )
        uncached.close()
        cached.close()
        advance(unit="batch size")
    return rows


def replay_hit_rate(num_envs: int = 64, steps: int = 200, seed: int = 0) -> dict[str, float]:
    """Cache hit rate of a random-agent ImageInversion-Shapes workload, first pass and replay."""
    backend = make_backend("shapes")
    rates = {}
    for name in ("first_pass", "replay"):
        before = backend.stats.as_dict()
        venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=num_envs, backend=backend)
        venv.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            venv.step(random_valid_actions(venv.unwrapped.action_masks(), rng))
        after = backend.stats.as_dict()
        hits = (
            after["memory_hits"] + after["disk_hits"] - before["memory_hits"] - before["disk_hits"]
        )
        misses = after["misses"] - before["misses"]
        rates[name] = hits / max(1, hits + misses)
    return rates


def random_valid_actions(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random valid action per row of a ``bool (N, A)`` mask."""
    return np.argmax(rng.random(masks.shape) * masks, axis=1)


def env_steps_per_s(
    env_id: str,
    num_envs: int | None,
    mode: str = "vector_entry_point",
    steps: int = 200,
    env_kwargs: dict[str, Any] | None = None,
) -> float:
    """Env steps per second (sub-env steps for vector envs) with random valid actions.

    Args:
        env_id: A registered id.
        num_envs: ``None`` for the single env, else the vector size.
        mode: ``vector_entry_point`` (native) or ``sync`` (``SyncVectorEnv``).
        steps: Steps per timed repeat.
        env_kwargs: The envs' keyword arguments (a ``backend`` object or preset name among them;
            default: the id's own, with its shared backend).
    """
    rng = np.random.default_rng(0)
    extra = dict(env_kwargs or {})
    if num_envs is None:
        env = gym.make(env_id, **extra)
        env.reset(seed=0)
        env.action_space.seed(0)
        has_mask = hasattr(env.unwrapped, "action_masks")

        def run() -> None:
            for _ in range(steps):
                mask = env.unwrapped.action_masks() if has_mask else None
                action = (
                    env.action_space.sample(mask=mask.astype(np.int8))
                    if has_mask
                    else env.action_space.sample()
                )
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset()

        return steps / timed(run, repeats=3, min_seconds=0.3)
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **extra)
    venv.reset(seed=0)
    native = hasattr(venv.unwrapped, "action_masks")

    def masks() -> np.ndarray:
        if native:
            return venv.unwrapped.action_masks()
        if hasattr(venv, "envs") and hasattr(venv.envs[0].unwrapped, "action_masks"):
            return np.stack([e.unwrapped.action_masks() for e in venv.envs])
        return np.ones((num_envs, venv.single_action_space.n), dtype=bool)

    def run() -> None:
        for _ in range(max(1, steps // 10)):
            venv.step(random_valid_actions(masks(), rng))

    return num_envs * max(1, steps // 10) / timed(run, repeats=3, min_seconds=0.3)
