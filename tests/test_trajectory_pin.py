"""The shapes world's trajectories, vector steps and backend batches equal the recorded ones.

The record (``tests/data/trajectories.json``) was made by ``python tests/trajectories.py``
before the backend redesign; a refactor that changes any observation, reward, info number or
score bit fails here. Re-record only for an intended change of behaviour.
"""

from __future__ import annotations

import json

import pytest
import trajectories

RECORD = json.loads(trajectories.PATH.read_text())

pytestmark = pytest.mark.filterwarnings("ignore:.*out of date:DeprecationWarning")


@pytest.mark.parametrize("key", sorted(RECORD["walks"]))
def test_single_env_walk_is_unchanged(key):
    env_id, seed = key.rsplit("/", 1)
    assert trajectories.walk(env_id, int(seed)) == RECORD["walks"][key]


@pytest.mark.parametrize("env_id", sorted(RECORD["vector"]))
def test_native_vector_walk_is_unchanged(env_id):
    assert trajectories.vector_walk(env_id, 3) == RECORD["vector"][env_id]


@pytest.mark.parametrize("preset", sorted(RECORD["backend"]))
def test_backend_batch_is_unchanged(preset):
    assert trajectories.backend_batch(preset) == RECORD["backend"][preset]


def test_the_digest_sees_a_flipped_bit():
    import numpy as np

    a = np.zeros(4, dtype=np.float32)
    b = a.copy()
    b.view(np.uint32)[2] ^= 1
    assert trajectories.digest(a) != trajectories.digest(b)
