"""Proxy vs truth: reward hacking between the learned shapes-clip and the procedural shapes scorer.

REINFORCE (the ImagePrompt learner of ``agents/reinforce.py``) is trained on
``ImageInversion-Shapes-v0`` (level ``attributes``) twice: once with the reward computed by the
learned ``shapes-clip`` (``make_backend("shapes", scorer="shapes-clip")``: image-image cosine of
shapes-clip embeddings), once by the procedural scorer (``make_backend("shapes")``); the renders
are the same in both. Each greedy policy then inverts held-out targets (``target_set_seed=1``,
reset seeds ``10000 + i``), and its final prompts are scored by **both** scorers on fresh image
seeds (``2**31 + 4 i + j``), as the benchmark protocol scores them. Next to them: PEZ through
shapes-clip (the white-box optimum of the proxy's text-image cosine, 16 tokens), the masked
random policy and the caption oracle (each target's own canonical caption).

How far the learned-proxy optimum falls under the true one: the true (procedural) score of the
proxy-trained policy against the truth-trained one, also normalised (random 0, oracle 1); and
the reverse, the proxy's score of the truth-trained policy.

Usage::

    python benchmarks/proxy_vs_truth.py             # about 3 minutes on one core
    python benchmarks/proxy_vs_truth.py --quick     # fewer steps and episodes
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from prompt_gym.agents import pez, reinforce
from prompt_gym.agents.episodes import ci95, collect_episodes, evaluate_policy
from prompt_gym.agents.random_agent import RandomPolicy
from prompt_gym.agents.runs import episode_seeds, seed_everything

import prompt_gym  # noqa: F401  (registers the ids)
from prompt_gym import make_backend
from prompt_gym.bench.protocol import EVAL_RESET_SEED, eval_image_seeds

ENV_ID = "ImageInversion-Shapes-v0"
LEVEL = "attributes"
HELD_OUT = {"target_set_seed": 1}
PROXY, TRUTH = "REINFORCE trained on shapes-clip (proxy)", "REINFORCE trained on procedural (truth)"
RANDOM, ORACLE = "random (masked uniform)", "caption oracle"


def train_policy(backend: Any, steps: int, seed: int) -> Any:
    """Train REINFORCE on ``backend``'s reward; return its greedy policy."""
    args = reinforce.Args(env_id=ENV_ID, seed=seed, total_timesteps=steps)
    seed_everything(seed, args.torch_threads)
    venv = gym.make_vec(
        ENV_ID,
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        backend=backend,
        level=LEVEL,
    )
    reinforce.check_spaces(args, venv.single_observation_space, venv.single_action_space)
    model = reinforce.make_model(args, venv.single_observation_space, venv.single_action_space)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    baseline = reinforce.RunningBaseline(args.baseline_decay)
    sample = reinforce.make_policy(model, args.mask_actions, deterministic=False)
    done, update = 0, 0
    try:
        while done < steps:
            episodes = collect_episodes(venv, sample, episode_seeds(seed, update, args.num_envs))
            reinforce.update(args, model, optimizer, baseline, episodes)
            done += sum(e.length for e in episodes)
            update += 1
    finally:
        venv.close()
    return reinforce.make_policy(model, args.mask_actions, deterministic=True)


def held_out_finals(policy: Any, backend: Any, episodes: int) -> list[tuple[str, str]]:
    """``(final prompt, target id)`` of the evaluation episodes, played on ``backend``."""
    kwargs = {"backend": backend, "level": LEVEL, **HELD_OUT}
    played = evaluate_policy(policy, ENV_ID, episodes, EVAL_RESET_SEED, kwargs)
    return [(e.info["prompt"], e.info["target_id"]) for e in played]


def held_out_targets(backend: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Target id -> image, and target id -> caption, of the held-out target set."""
    env = gym.make(ENV_ID, backend=backend, level=LEVEL, **HELD_OUT)
    targets = env.unwrapped.target_set
    env.close()
    items = [targets[i] for i in range(len(targets))]
    return {t.target_id: t.image for t in items}, {t.target_id: t.caption or "" for t in items}


def fresh_scores(
    backend: Any, finals: list[tuple[str, str]], images: dict[str, np.ndarray]
) -> np.ndarray:
    """Each final prompt's mean image-image cosine to its target on its fresh seeds."""
    out = []
    for i, (prompt, target_id) in enumerate(finals):
        seeds = eval_image_seeds(i)
        embeds = backend.score([prompt] * len(seeds), seeds).image_embeds
        out.append(float((embeds @ backend.embed_images(images[target_id][None])[0]).mean()))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and episodes")
    parser.add_argument("--seed", type=int, default=1, help="training seed")
    ns = parser.parse_args(argv)
    steps, episodes, pez_steps = (4_000, 16, 150) if ns.quick else (12_000, 48, 300)
    torch.set_num_threads(1)
    truth = make_backend("shapes")
    proxy = make_backend("shapes", scorer="shapes-clip")
    images, captions = held_out_targets(truth)
    finals: dict[str, list[tuple[str, str]]] = {}
    seconds: dict[str, float] = {}

    # 1. An agent trained on each reward, each playing its own backend's prompt spaces
    for name, backend in ((PROXY, proxy), (TRUTH, truth)):
        start = time.perf_counter()
        policy = train_policy(backend, steps, ns.seed)
        seconds[name] = time.perf_counter() - start
        finals[name] = held_out_finals(policy, backend, episodes)
    # 2. References: random, PEZ through shapes-clip, the caption oracle
    finals[RANDOM] = held_out_finals(RandomPolicy(ns.seed), truth, episodes)
    targets = [t for _, t in finals[RANDOM]]
    finals["PEZ through shapes-clip (16 tokens)"] = [
        (pez.invert(truth, images[t][None], 16, pez_steps, seed=i).prompt, t)
        for i, t in enumerate(targets)
    ]
    finals[ORACLE] = [(captions[t], t) for t in targets]

    # 3. Every final prompt scored by both scorers on fresh seeds
    rows = {
        n: (fresh_scores(proxy, f, images), fresh_scores(truth, f, images))
        for n, f in finals.items()
    }
    lo = [rows[RANDOM][k].mean() for k in (0, 1)]
    hi = [rows[ORACLE][k].mean() for k in (0, 1)]
    train_s = ", ".join(f"{k.split(' on ')[1]} {v:.0f} s" for k, v in seconds.items())
    print(f"{ENV_ID} level {LEVEL}, {episodes} held-out episodes, REINFORCE {steps} env steps "
          f"(training: {train_s})\n")  # fmt: skip
    print(
        "| prompts from | shapes-clip score | normalised | procedural (true) score | normalised |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, scores in rows.items():
        cells = [
            f"{s.mean():.4f} +- {ci95(s):.4f} | {(s.mean() - lo[k]) / (hi[k] - lo[k]):.3f}"
            for k, s in enumerate(scores)
        ]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    a, b = rows[PROXY], rows[TRUTH]
    print(
        f"\nproxy-trained under the truth: {a[1].mean():.4f} vs truth-trained {b[1].mean():.4f} "
        f"({a[1].mean() - b[1].mean():+.4f}); truth-trained under the proxy: {b[0].mean():.4f} "
        f"vs proxy-trained {a[0].mean():.4f} ({b[0].mean() - a[0].mean():+.4f})"
    )
    for name, f in finals.items():
        print(f"  e.g. {name}: {f[0][0]!r} (target {captions[f[0][1]]!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
