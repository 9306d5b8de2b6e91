"""Recorded shapes-world trajectories: the pin that keeps refactors bit for bit.

``python tests/trajectories.py`` rewrites ``tests/data/trajectories.json``; only do that when a
change of behaviour is intended (and say so in the CHANGELOG). Each record is a digest of every
observation array, reward, flag and the numeric infos of a fixed walk: reset with a seed, then
the valid action at fixed fractions of the valid list. Native vector envs and a direct backend
batch (embeddings, aesthetic scores, flags) are pinned too.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import prompt_gym  # noqa: F401  (registers the ids)
from prompt_gym.backends import make_backend
from prompt_gym.envs.registration import ENV_IDS

PATH = Path(__file__).parent / "data" / "trajectories.json"
SHAPES_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
SEEDS = (0, 1, 7)
STEPS = 40
VECTOR_ENVS = 8
VECTOR_STEPS = 12


def digest(value: Any) -> str:
    """A stable digest of nested observations, arrays and numbers."""
    h = hashlib.sha256()

    def feed(v: Any) -> None:
        if isinstance(v, dict):
            for k in sorted(v):
                h.update(str(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            for x in v:
                feed(x)
        elif isinstance(v, np.ndarray) and v.dtype == object:
            h.update(b"O" + str(v.shape).encode())
            feed(v.ravel().tolist())
        elif isinstance(v, np.ndarray):
            h.update(str(v.dtype).encode() + str(v.shape).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, (bool, np.bool_)):
            h.update(b"T" if v else b"F")
        elif isinstance(v, (int, np.integer)):
            h.update(b"i" + str(int(v)).encode())
        elif isinstance(v, (float, np.floating)):
            h.update(b"f" + np.float64(v).tobytes())
        elif isinstance(v, str):
            h.update(b"s" + v.encode())
        elif v is None:
            h.update(b"N")
        else:
            raise TypeError(f"cannot digest {type(v)}")

    feed(value)
    return h.hexdigest()[:24]


def plain_info(info: dict[str, Any]) -> dict[str, Any]:
    """The info entries a trajectory pins: strings, numbers and arrays (not objects)."""
    return {
        k: v
        for k, v in info.items()
        if isinstance(v, (str, int, float, bool, np.ndarray, np.number, np.bool_))
    }


def walk(env_id: str, seed: int) -> list[str]:
    """Digests of reset and each step of the fixed walk on a single env."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    out = [digest([obs, plain_info(info)])]
    for _ in range(STEPS):
        valid = np.flatnonzero(env.unwrapped.action_masks())
        action = int(valid[int(rng.random() * len(valid))])
        obs, reward, terminated, truncated, info = env.step(action)
        out.append(digest([action, obs, float(reward), terminated, truncated, plain_info(info)]))
        if terminated or truncated:
            obs, info = env.reset()
            out.append(digest([obs, plain_info(info)]))
    env.close()
    return out


def vector_walk(env_id: str, seed: int) -> list[str]:
    """Digests of the native vector env's reset and steps (random valid actions, autoreset)."""
    envs = gym.make_vec(env_id, num_envs=VECTOR_ENVS)
    rng = np.random.default_rng(seed)
    obs, info = envs.reset(seed=seed)
    out = [digest(obs)]
    for _ in range(VECTOR_STEPS):
        masks = envs.action_masks()
        actions = np.array(
            [int(np.flatnonzero(m)[int(rng.random() * m.sum())]) for m in masks], dtype=np.int64
        )
        obs, rewards, terminated, truncated, info = envs.step(actions)
        out.append(digest([actions, obs, rewards, terminated, truncated, plain_info(info)]))
    envs.close()
    return out


def backend_batch(preset: str) -> str:
    """Digest of one direct backend batch: embeddings, aesthetic scores and validity flags."""
    backend = make_backend(preset)
    prompts = [
        "a red circle",
        "a blue square on a green background, striped",
        "a red circle, trending on artstation, 8k",
        "photo of a an the yellow star glowing",
        "a red circle",
    ]
    result = backend.score(prompts, [0, 1, 2, 3, 4], aesthetic=True)
    text = backend.embed_texts(["a red circle", "glowing pastel egg"])
    out = digest(
        [
            result.image_embeds,
            np.asarray(result.aesthetic),
            result.valid,
            result.prompt_tokens,
            text,
        ]
    )
    backend.close()
    return out


def record() -> dict[str, Any]:
    """Every pinned digest."""
    return {
        "walks": {f"{i}/{s}": walk(i, s) for i in SHAPES_IDS for s in SEEDS},
        "vector": {i: vector_walk(i, 3) for i in SHAPES_IDS},
        "backend": {p: backend_batch(p) for p in ("shapes", "shapes-v3")},
    }


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH}")
    sys.exit(0)
