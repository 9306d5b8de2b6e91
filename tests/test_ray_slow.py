"""Slow checks of the served backend: the -v1 ids, spawned AsyncVectorEnv workers, and a
``prompt-gym serve`` process whose app outlives it (``-m slow``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import trajectories

ray = pytest.importorskip(
    "ray", reason="the Ray tests need the 'ray' extra: pip install 'prompt-gym[ray]'"
)
serve = pytest.importorskip("ray.serve")

from test_ray_service import assert_same, vector_walk, walk  # noqa: E402

import prompt_gym  # noqa: E402, F401  (registers the ids)
from prompt_gym.backends import make_backend  # noqa: E402

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent
V1_IDS = [i for i in trajectories.SHAPES_IDS if i.endswith("-v1")]


@pytest.fixture(scope="module")
def served_v3():
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield make_backend("shapes-v3", service="ray", app="slow-v3", num_cpus=0.5)
    serve.shutdown()
    ray.shutdown()


@pytest.mark.parametrize("env_id", V1_IDS)
def test_v1_walks_through_the_service_match_in_process(served_v3, env_id: str) -> None:
    local = make_backend("shapes-v3")
    for seed in trajectories.SEEDS:
        assert walk(env_id, seed, served_v3) == walk(env_id, seed, local)
    assert vector_walk(env_id, 3, served_v3, 8, 12) == vector_walk(env_id, 3, local, 8, 12)


def test_spawned_async_vector_env_workers_reconnect_by_pickle(served_v3) -> None:
    env_id = "PromptRewrite-Shapes-v1"
    fns = [lambda: gym.make(env_id, backend=served_v3) for _ in range(2)]
    envs = gym.vector.AsyncVectorEnv(fns, context="spawn")
    local = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, backend="shapes-v3")] * 2)
    out = []
    for vec in (envs, local):
        obs, _ = vec.reset(seed=5)
        rows = [trajectories.digest(obs)]
        for t in range(10):
            obs, reward, term, trunc, _ = vec.step(np.array([t % 3, 26 if t % 4 == 3 else 1]))
            rows.append(trajectories.digest([obs, reward, term, trunc]))
        out.append(rows)
        vec.close()
    assert out[0] == out[1]


def test_cli_serve_process_leaves_an_app_running(served_v3) -> None:
    address = ray.get_runtime_context().gcs_address
    cli = [sys.executable, "-m", "prompt_gym.cli", "serve", "shapes", "--app", "slow-cli"]
    run = subprocess.run(
        [*cli, "--address", address, "--num-cpus", "0.25", "--backend-kwargs", "resolution:32"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "ray://slow-cli" in run.stdout
    served = make_backend("ray://slow-cli")  # the CLI process has exited
    prompts, seeds = ["a red circle", "a blue square"], [1, 2]
    assert_same(
        served.score(prompts, seeds), make_backend("shapes", resolution=32).score(prompts, seeds)
    )
    serve.delete("slow-cli")
