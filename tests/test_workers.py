"""Worker processes: a batch shared with them gives the same bits as one process computing it."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from fakes import (
    FailingAestheticInWorkerScorer,
    FailingInWorkerGenerator,
    FakeCaptioner,
    FakeGenerator,
    FakeScorer,
    UnpicklableScorer,
    fake_backend,
)

import prompt_gym  # noqa: F401  (registers the ids)
from prompt_gym.backends import RewardBackend, make_backend
from prompt_gym.backends.workers import MIN_IMAGES_PER_PROCESS, WorkerError, split_points
from prompt_gym.throughput import prompt_pool, random_valid_actions

FIELDS = ("image_embeds", "aesthetic", "valid", "nonfinite", "black", "prompt_tokens", "cache_hit")


def _same(a, b) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.fixture(scope="module")
def pair():
    one = make_backend("shapes", memory_cache_size=0)
    two = make_backend("shapes", workers=2, memory_cache_size=0)
    yield one, two
    two.close()


@pytest.mark.parametrize("n", [1, 31, 32, 33, 64, 131])
def test_shared_batch_equals_one_process(pair, n: int) -> None:
    one, two = pair
    prompts = prompt_pool(n, seed=n)
    seeds = [7 * i + n for i in range(n)]
    before = two.stats.extra.get("images_by_workers", 0)
    _same(one.score(prompts, seeds, aesthetic=True), two.score(prompts, seeds, aesthetic=True))
    plain = one.score(prompts, seeds), two.score(prompts, seeds)  # no aesthetic asked
    np.testing.assert_array_equal(plain[0].image_embeds, plain[1].image_embeds)
    shared = two.stats.extra.get("images_by_workers", 0) - before
    assert (shared > 0) == (n >= 2 * MIN_IMAGES_PER_PROCESS)


def test_duplicates_scene_reuse_and_cache_hits_with_workers() -> None:
    one, two = make_backend("shapes"), make_backend("shapes", workers=2)
    prompts = prompt_pool(40, seed=1) * 2 + ["a red circle, trending on artstation"] * 3
    prompts += ["a red circle"] * 20
    seeds = [*range(80), 5, 5, 6, *range(3, 23)]
    for _ in range(2):  # misses, then hits from the memory caches
        _same(one.score(prompts, seeds, aesthetic=True), two.score(prompts, seeds, aesthetic=True))
    assert one.stats.images_generated == two.stats.images_generated
    two.close()


def test_failed_images_are_flagged_the_same_with_workers() -> None:
    prompts = ["black", "nan", *(f"p{i}" for i in range(30))]
    seeds = list(range(len(prompts)))
    two = fake_backend(workers=2)
    got = two.score(prompts, seeds, aesthetic=True)
    _same(fake_backend().score(prompts, seeds, aesthetic=True), got)
    assert got.black[0] and got.nonfinite[1] and got.valid[2:].all()
    assert two.stats.extra["images_by_workers"] > 0
    two.close()


def test_images_asked_for_are_computed_here() -> None:
    two = make_backend("shapes", workers=2, memory_cache_size=0)
    prompts, seeds = prompt_pool(32, seed=3), list(range(32))
    got = two.score(prompts, seeds, return_images=True)
    np.testing.assert_array_equal(got.images, two.generator.generate(prompts, seeds))
    assert two.compute._pool is None  # no worker was needed
    two.close()


def test_vector_env_rollout_is_the_same_with_workers() -> None:
    def rollout(backend: RewardBackend) -> list[np.ndarray]:
        venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=64, backend=backend)
        venv.reset(seed=3)
        rng, out = np.random.default_rng(0), []
        for _ in range(12):
            _, reward, *_ = venv.step(random_valid_actions(venv.unwrapped.action_masks(), rng))
            out.append(reward)
        return out

    two = make_backend("shapes", workers=2)
    np.testing.assert_array_equal(rollout(make_backend("shapes")), rollout(two))
    assert two.stats.extra.get("images_by_workers", 0) > 0
    two.close()


def test_pickled_backend_rebuilds_its_own_workers() -> None:
    two = make_backend("shapes", workers=2, memory_cache_size=0)
    n = 2 * MIN_IMAGES_PER_PROCESS
    prompts, seeds = prompt_pool(n, seed=4), list(range(n))
    first = two.score(prompts, seeds, aesthetic=True)
    copy = pickle.loads(pickle.dumps(two))
    assert copy.workers == 2 and copy.compute._pool is None
    _same(first, copy.score(prompts, seeds, aesthetic=True))
    assert copy.compute._pool is not None
    for backend in (two, copy):
        processes = [w.process for w in backend.compute._pool._workers]
        backend.close()
        assert backend.compute._pool is None and all(p.poll() is not None for p in processes)


def test_a_worker_error_is_raised_with_its_traceback_and_the_pool_stays_in_step() -> None:
    backend = RewardBackend(
        FailingInWorkerGenerator(), FakeScorer(), FakeCaptioner(), memory_cache_size=0, workers=2
    )
    prompts = [f"p{i}" for i in range(32)]
    with pytest.raises(WorkerError, match="generator failed in the worker"):
        backend.score(prompts, list(range(32)))
    assert backend.score(prompts[:4], [0, 1, 2, 3]).valid.all()  # small: computed here
    with pytest.raises(WorkerError, match="generator failed in the worker"):
        backend.score(prompts, list(range(100, 132)))
    backend.close()


def test_a_worker_error_in_the_aesthetic_is_raised_and_plain_scores_still_work() -> None:
    backend = RewardBackend(
        FakeGenerator(), FailingAestheticInWorkerScorer(), FakeCaptioner(), workers=2
    )
    prompts = [f"p{i}" for i in range(32)]
    with pytest.raises(WorkerError, match="aesthetic failed in the worker"):
        backend.score(prompts, list(range(32)), aesthetic=True)
    plain = backend.score(prompts, list(range(32, 64)))  # the worker never scores aesthetics
    expected = fake_backend().score(prompts, list(range(32, 64)))
    np.testing.assert_array_equal(plain.image_embeds, expected.image_embeds)
    assert backend.stats.extra["images_by_workers"] > 0
    backend.close()


def test_components_that_cannot_be_copied_give_a_clear_error() -> None:
    backend = RewardBackend(
        FailingInWorkerGenerator(), UnpicklableScorer(), FakeCaptioner(), workers=2
    )
    n = 2 * MIN_IMAGES_PER_PROCESS
    with pytest.raises(WorkerError, match="picklable"):
        backend.score([f"p{i}" for i in range(n)], list(range(n)))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_worker_count_is_rejected(bad) -> None:
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        make_backend("shapes", workers=bad)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 15, 16, 17, 33, 64, 100, 257])
@pytest.mark.parametrize("processes", [1, 2, 3, 5])
@pytest.mark.parametrize("share", [None, 0.1, 0.5, 0.9])
def test_split_points_cover_the_batch_in_large_enough_parts(n, processes, share) -> None:
    points = split_points(n, processes, share)
    sizes = np.diff(points)
    assert points[0] == 0 and points[-1] == n and len(sizes) <= processes
    assert len(sizes) == 1 or (sizes >= MIN_IMAGES_PER_PROCESS).all()
    assert len(sizes) == max(1, min(processes, n // MIN_IMAGES_PER_PROCESS))


@pytest.mark.parametrize("reaped", [False, True])  # dies while the request is sent, or before
def test_a_worker_that_dies_is_recomputed_here_and_restarted(reaped: bool) -> None:
    one = make_backend("shapes", memory_cache_size=0)
    two = make_backend("shapes", workers=2, memory_cache_size=0)
    prompts = prompt_pool(32, seed=5)
    two.score(prompts, list(range(32)))
    pool = two.compute._pool
    worker = pool._workers[0].process
    worker.kill()
    if reaped:
        worker.wait()
    with pytest.warns(RuntimeWarning, match=rf"{worker.pid} exited.*3 restarts left"):
        got = two.score(prompts, list(range(100, 132)), aesthetic=True)  # no error
    _same(one.score(prompts, list(range(100, 132)), aesthetic=True), got)
    got = two.score(prompts, list(range(200, 232)))
    assert pool.restarts == 1 and pool._workers[0].process.pid != worker.pid
    np.testing.assert_array_equal(
        one.score(prompts, list(range(200, 232))).image_embeds, got.image_embeds
    )
    two.close()


def test_past_its_restarts_the_pool_computes_here_with_one_warning() -> None:
    from prompt_gym.backends.workers import MAX_RESTARTS

    one = make_backend("shapes", memory_cache_size=0)
    two = make_backend("shapes", workers=2, memory_cache_size=0)
    prompts = prompt_pool(32, seed=6)
    two.score(prompts, list(range(32)))
    pool = two.compute._pool
    for k in range(MAX_RESTARTS + 1):
        pool._workers[0].process.kill()
        pool._workers[0].process.wait()
        with pytest.warns(RuntimeWarning, match="exited") as warned:
            got = two.score(prompts, list(range(100 * k, 100 * k + 32)))
        assert len(warned) == 1
        np.testing.assert_array_equal(
            one.score(prompts, list(range(100 * k, 100 * k + 32))).image_embeds, got.image_embeds
        )
    assert "computes every batch in the calling process" in str(warned[0].message)
    assert pool.restarts == MAX_RESTARTS
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no more warnings: computed here, quietly
        for k in range(2):
            got = two.score(prompts, list(range(1000 + 50 * k, 1032 + 50 * k)), aesthetic=True)
            _same(
                one.score(prompts, list(range(1000 + 50 * k, 1032 + 50 * k)), aesthetic=True), got
            )
    two.close()


def test_a_stopped_worker_raises_after_the_timeout_naming_its_pid() -> None:
    import os
    import signal
    import time

    backend = make_backend("shapes", workers=2, memory_cache_size=0)
    backend.compute.worker_timeout_s = 1.0
    prompts = prompt_pool(32, seed=7)
    backend.score(prompts, list(range(32)))
    worker = backend.compute._pool._workers[0].process
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(WorkerError, match=rf"process {worker.pid} did not answer within 1 s"):
            backend.score(prompts, list(range(100, 132)))
        assert time.monotonic() - start < 30
        assert worker.poll() is not None  # killed, not left stopped
        expected = make_backend("shapes", memory_cache_size=0).score(prompts, list(range(200, 232)))
        got = backend.score(prompts, list(range(200, 232)))  # a new worker took its place
        np.testing.assert_array_equal(got.image_embeds, expected.image_embeds)
        assert backend.compute._pool.restarts == 1
    finally:
        if worker.poll() is None:
            worker.kill()
        backend.close()


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "300"])
def test_bad_worker_timeout_is_rejected(bad) -> None:
    with pytest.raises(ValueError, match="worker_timeout_s must be a positive number"):
        RewardBackend(FakeGenerator(), FakeScorer(), FakeCaptioner(), worker_timeout_s=bad)


def test_workers_run_inside_a_daemonic_process() -> None:
    """As in AsyncVectorEnv and SB3's SubprocVecEnv, whose env processes are daemonic."""
    import multiprocessing as mp

    from fakes import score_with_workers

    n = 2 * MIN_IMAGES_PER_PROCESS
    prompts, seeds = prompt_pool(n, seed=8), list(range(n))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=score_with_workers, args=(queue, prompts, seeds), daemon=True)
    process.start()
    embeds, shared = queue.get(timeout=120)
    process.join(timeout=30)
    assert process.exitcode == 0 and shared > 0
    expected = make_backend("shapes", memory_cache_size=0).score(prompts, seeds).image_embeds
    np.testing.assert_array_equal(embeds, expected)


def test_the_callers_share_adapts_within_bounds_and_results_stay_the_same() -> None:
    from prompt_gym.backends.parallel import SHARE_MAX, SHARE_MIN, SHARE_STEP

    one = make_backend("shapes", memory_cache_size=0)
    two = make_backend("shapes", workers=2, memory_cache_size=0)
    shares = [two.compute.share]
    for k in range(12):
        prompts, seeds = prompt_pool(48, seed=k), list(range(100 * k, 100 * k + 48))
        _same(one.score(prompts, seeds, aesthetic=True), two.score(prompts, seeds, aesthetic=True))
        shares.append(two.compute.share)
    steps = np.abs(np.diff(shares))
    assert shares[0] == 0.5 and np.allclose(steps[steps > 0], SHARE_STEP)
    assert all(SHARE_MIN <= s <= SHARE_MAX for s in shares) and len(set(shares)) > 1
    two.close()
