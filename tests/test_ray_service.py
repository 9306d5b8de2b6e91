"""The reward backend served by Ray Serve: same bits as in-process, merged batches, failures.

One local Ray (2 CPUs) and one shapes app with two replicas serve the whole module; the tests
run in file order and the last ones kill a replica and delete the app.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import trajectories

ray = pytest.importorskip(
    "ray", reason="the Ray tests need the 'ray' extra: pip install 'prompt-gym[ray]'"
)
serve = pytest.importorskip("ray.serve")

import prompt_gym  # noqa: E402, F401  (registers the ids)
from prompt_gym.backends import make_backend  # noqa: E402
from prompt_gym.backends.served import ServiceUnavailableError, connect  # noqa: E402
from prompt_gym.cli import main  # noqa: E402

TESTS = Path(__file__).resolve().parent
APP = "test-shapes"
V0_IDS = ["ImageInversion-Shapes-v0", "PromptRewrite-Shapes-v0", "PromptRewriteTokens-Shapes-v0"]
FIELDS = ("image_embeds", "aesthetic_scores", "valid", "nonfinite", "black", "prompt_tokens")
PROMPTS = [
    "a red circle",
    "a blue square on a green background, striped",
    "a red circle, trending on artstation, 8k",
    "photo of a an the yellow star glowing",
    "a red circle",
]


@pytest.fixture(scope="module")
def served():
    """A two-replica shapes service on a local Ray, and a backend connected to it."""
    started = not ray.is_initialized()
    if started:
        path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
        ray.init(  # the env workers import this module (and trajectories) by name
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    backend = make_backend(
        "shapes", service="ray", replicas=2, app=APP, num_cpus=0.5, batch_wait_timeout_s=0.01
    )
    yield backend
    serve.shutdown()
    if started:
        ray.shutdown()


def assert_same(a, b) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name


def test_service_scores_equal_in_process_batch_and_single(served) -> None:
    local = make_backend("shapes")
    seeds = [0, 1, 2, 3, 0]
    for aesthetic in (False, True):
        batch = served.score(PROMPTS, seeds, aesthetic=aesthetic, return_images=True)
        assert_same(batch, local.score(PROMPTS, seeds, aesthetic=aesthetic))
        assert np.array_equal(batch.images, local.generate(PROMPTS, seeds))
        single = connect(APP, memory_cache_size=0)  # every request its own round trip
        for i, (prompt, seed) in enumerate(zip(PROMPTS, seeds, strict=True)):
            assert_same(single.score([prompt], [seed], aesthetic=aesthetic), batch.rows(i, i + 1))
    texts = ["a red circle", "glowing pastel egg"]
    assert np.array_equal(served.embed_texts(texts), local.embed_texts(texts))
    images = local.generate(PROMPTS[:2], [5, 6])
    assert np.array_equal(served.embed_images(images), local.embed_images(images))
    assert np.array_equal(served.aesthetic(images), local.aesthetic(images))
    assert served.namespace == local.namespace and served.world == local.world


def walk(env_id: str, seed: int, backend) -> list[str]:
    """:func:`trajectories.walk` on an env with ``backend``."""
    env = gym.make(env_id, backend=backend)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    out = [trajectories.digest([obs, trajectories.plain_info(info)])]
    for _ in range(trajectories.STEPS):
        valid = np.flatnonzero(env.unwrapped.action_masks())
        action = int(valid[int(rng.random() * len(valid))])
        obs, reward, terminated, truncated, info = env.step(action)
        info = trajectories.plain_info(info)
        out.append(trajectories.digest([action, obs, float(reward), terminated, truncated, info]))
        if terminated or truncated:
            obs, info = env.reset()
            out.append(trajectories.digest([obs, trajectories.plain_info(info)]))
    env.close()
    return out


def vector_walk(
    env_id: str, seed: int, backend, num_envs: int, steps: int, stats=None
) -> list[str]:
    """Digests of a native vector env's reset and steps (random valid actions).

    With ``stats`` (a dict), it also gets the stats and replicas of the env's backend.
    """
    envs = gym.make_vec(env_id, num_envs=num_envs, backend=backend)
    rng = np.random.default_rng(seed)
    obs, info = envs.reset(seed=seed)
    out = [trajectories.digest(obs)]
    for _ in range(steps):
        masks = envs.action_masks()
        actions = np.array([int(rng.choice(np.flatnonzero(m))) for m in masks], dtype=np.int64)
        obs, rewards, terminated, truncated, info = envs.step(actions)
        info = trajectories.plain_info(info)
        out.append(trajectories.digest([actions, obs, rewards, terminated, truncated, info]))
    if stats is not None:
        stats.update(envs.unwrapped.backend.stats.as_dict())
        stats["replicas"] = sorted(envs.unwrapped.backend.compute.replicas)
    envs.close()
    return out


@pytest.mark.parametrize("env_id", V0_IDS)
def test_env_walks_through_the_service_match_in_process(served, env_id: str) -> None:
    local = make_backend("shapes")
    assert walk(env_id, 7, served) == walk(env_id, 7, local)
    assert vector_walk(env_id, 3, served, 8, 6) == vector_walk(env_id, 3, local, 8, 6)


@ray.remote(num_cpus=0)
class EnvWorker:
    """An env worker process: a native vector env on the backend it was given."""

    def __init__(self, backend) -> None:
        self.backend = backend  # a pickled served backend, or "ray://APP"

    def run(self, env_id: str, seed: int, steps: int) -> tuple[list[str], dict]:
        stats: dict = {}
        return vector_walk(env_id, seed, self.backend, 4, steps, stats), stats


def test_four_env_worker_processes_share_two_replicas(served) -> None:
    env_id, steps = "ImageInversion-Shapes-v0", 25
    workers = [EnvWorker.remote(served if i < 2 else f"ray://{APP}") for i in range(4)]
    runs = ray.get([w.run.remote(env_id, 100 + i, steps) for i, w in enumerate(workers)])
    local = make_backend("shapes")
    for i, (digests, _) in enumerate(runs):
        assert digests == vector_walk(env_id, 100 + i, local, 4, steps)  # all right, none lost
    stats = [s for _, s in runs]
    sent = sum(s["served_requests"] for s in stats)
    merged = sum(s["served_batch_requests"] for s in stats)
    assert merged > sent, (merged, sent)  # replica batches held requests of several workers
    assert sum(s["served_rows"] for s in stats) == sum(s["misses"] for s in stats)
    assert len({r for s in stats for r in s["replicas"]}) == 2  # both replicas served
    for w in workers:
        ray.kill(w)


@pytest.mark.slow  # a second deploy: about 7 s
def test_cli_serve_deploys_an_app_that_envs_reach_by_name(served, capsys) -> None:
    assert main(["serve", "shapes", "--app", "test-cli", "--num-cpus", "0.25"]) == 0
    assert "ray://test-cli" in capsys.readouterr().out
    env = gym.make("PromptRewrite-Shapes-v0", backend="ray://test-cli")
    local = gym.make("PromptRewrite-Shapes-v0", backend="shapes")
    assert trajectories.digest(env.reset(seed=4)[0]) == trajectories.digest(local.reset(seed=4)[0])
    serve.delete("test-cli")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replica_actors(app: str) -> list:
    names = ray.util.list_named_actors(all_namespaces=True)
    return [
        ray.get_actor(a["name"], namespace=a["namespace"])
        for a in names
        if a["name"].startswith(f"SERVE_REPLICA::{app}#")
    ]


def test_a_replica_killed_mid_batch_is_retried_with_identical_results(served) -> None:
    caller = connect(APP)
    caller.score(["a red circle"], [1])  # its handle is looked up now, not after the kill
    rng = np.random.default_rng(0)
    prompts = [PROMPTS[i] for i in rng.integers(0, len(PROMPTS), 6000)]
    seeds = [int(s) for s in rng.integers(10**6, 10**7, 6000)]
    actors = replica_actors(APP)  # looked up first: listing actors can take longer than the run
    assert len(actors) == 2
    pids = [ray.get(a.__ray_call__.remote(lambda self: os.getpid())) for a in actors]
    out = {}
    thread = threading.Thread(target=lambda: out.update(r=caller.score(prompts, seeds)))
    thread.start()
    before = [cpu_seconds(pid) for pid in pids]
    time.sleep(0.1)  # the 94 requests of 64 rows are sent and being answered
    busy = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
    assert thread.is_alive() and max(busy) > 0, busy
    # The router may send every request to one replica: kill the one that is working.
    ray.kill(actors[int(np.argmax(busy))], no_restart=True)
    thread.join(timeout=120)
    local = make_backend("shapes")
    assert_same(out["r"], local.score(prompts, seeds))
    stats = caller.stats.as_dict()
    print("STATS", stats)
    # Who resends the calls the dead replica held depends on timing: Serve's router, or
    # ServiceClient's retries (served_retries; tests/test_ray_client.py checks those alone).
    assert stats["served_rows"] == stats["misses"] == 1 + len(set(zip(prompts, seeds, strict=True)))
    again = caller.score(prompts, seeds)  # everything stored once, nothing lost
    assert again.cache_hit.all() and caller.stats.misses == stats["misses"]
    assert_same(again, out["r"])


def test_a_service_that_is_gone_is_one_clear_error(served) -> None:
    serve.delete(APP)
    with pytest.raises(ServiceUnavailableError, match=f"service '{APP}' is gone"):
        served.score(["a red circle"], [424242])
    with pytest.raises(ValueError, match=f"no prompt-gym service '{APP}'"):
        make_backend(f"ray://{APP}")
    with pytest.raises(ValueError, match=r"has no option \['bogus'\]"):
        make_backend(f"ray://{APP}", bogus=1)
