"""Many env-worker processes, one served reward backend: REINFORCE on PromptRewrite with Ray.

Each env worker is a Ray actor holding a native vector env (``gym.make_vec(ID, num_envs=N,
backend=BACKEND)``); ``BACKEND`` is a served backend (pickled to the actor, where it reconnects
to the Serve app by name) or its name ``"ray://APP"``. Every vector step is one backend call;
the service merges the calls of all workers into replica batches (``@serve.batch``). The agent
is REINFORCE with a mean-return baseline on a state-independent masked softmax over the
actions (modifiers and STOP): the driver sends the logits to the workers, they roll out and
return each episode's return and score-function gradient, and the driver takes an Adam step.

Examples:
    python examples/ray_env_workers.py                          # local Ray, 2 CPU replicas
    RAY_ADDRESS=HEAD:6379 python examples/ray_env_workers.py --service ray://shapes-v3
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import ray

import prompt_gym  # noqa: F401  (registers the ids)
from prompt_gym.backends import make_backend


@dataclass
class Args:
    """Settings (each a ``--flag``)."""

    env_id: str = "PromptRewrite-Shapes-v1"
    """The env id (its backend preset is the service's)."""
    preset: str = "shapes-v3"
    """Backend preset to serve when no ``--service`` is given."""
    service: str | None = None
    """A running service, ``ray://APP``; default: deploy ``preset`` here."""
    replicas: int = 2
    """Replicas of the deployed service."""
    workers: int = 4
    """Env-worker processes (Ray actors)."""
    num_envs: int = 8
    """Envs per worker (one vector env)."""
    iterations: int = 20
    """Policy updates."""
    steps: int = 40
    """Vector steps per worker per iteration."""
    lr: float = 0.1
    """Adam learning rate of the logits."""
    seed: int = 0
    """Seed of the workers' envs."""


@ray.remote(num_cpus=0)
class EnvWorker:
    """An env-worker process: one native vector env on the served backend."""

    def __init__(self, env_id: str, num_envs: int, backend: object, seed: int) -> None:
        self.envs = gym.make_vec(env_id, num_envs=num_envs, backend=backend)
        self.rng = np.random.default_rng(seed)
        self.envs.reset(seed=seed)
        self.done = np.zeros(num_envs, dtype=bool)  # next step is an autoreset step
        self.grads = np.zeros((num_envs, self.envs.single_action_space.n))
        self.returns = np.zeros(num_envs)

    def rollout(self, logits: np.ndarray, steps: int) -> tuple[list, list, dict]:
        """``steps`` vector steps with the policy; finished episodes' returns and gradients."""
        returns, grads = [], []
        for _ in range(steps):
            masks = self.envs.action_masks().astype(bool)
            z = np.where(masks, logits, -np.inf)
            probs = np.exp(z - z.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            actions = np.array([self.rng.choice(len(p), p=p) for p in probs])
            live = ~self.done  # an autoreset step's action is ignored
            self.grads[live] += np.eye(len(logits))[actions[live]] - probs[live]
            _, rewards, terminated, truncated, _ = self.envs.step(actions)
            self.returns[live] += rewards[live]
            self.done = terminated | truncated
            for i in np.flatnonzero(self.done):
                returns.append(float(self.returns[i]))
                grads.append(self.grads[i].copy())
                self.returns[i], self.grads[i] = 0.0, 0.0
        return returns, grads, self.envs.unwrapped.backend.stats.as_dict()


def main(args: Args) -> None:
    """Train and print the mean episode return per iteration and the service's batching."""
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    if args.service is None:
        app = f"example-{args.preset}"
        backend: object = make_backend(
            args.preset, service="ray", replicas=args.replicas, app=app, num_cpus=0.5
        )
    else:
        backend = args.service  # the workers reach it by name
    workers = [
        EnvWorker.remote(args.env_id, args.num_envs, backend, args.seed + i)
        for i in range(args.workers)
    ]
    n = gym.make(args.env_id, backend=backend).action_space.n
    logits, m, v = np.zeros(n), np.zeros(n), np.zeros(n)
    for it in range(1, args.iterations + 1):
        start = time.perf_counter()
        runs = ray.get([w.rollout.remote(logits, args.steps) for w in workers])
        returns = np.array([r for rs, _, _ in runs for r in rs])
        grads = np.array([g for _, gs, _ in runs for g in gs])
        advantage = returns - returns.mean()
        grad = (advantage[:, None] * grads).mean(axis=0)
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2  # Adam, ascent
        logits += args.lr * (m / (1 - 0.9**it)) / (np.sqrt(v / (1 - 0.999**it)) + 1e-8)
        stats = [s for _, _, s in runs]
        sent = sum(s.get("served_requests", 0) for s in stats)
        merged = sum(s.get("served_batch_requests", 0) for s in stats)
        print(
            f"iter {it:3d}  episodes {len(returns):4d}  mean return {returns.mean():+.3f}  "
            f"requests/replica batch {merged / max(1, sent):.2f}  "
            f"{time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in vars(Args()).items():
        kind = type(default) if default is not None else str
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    main(Args(**vars(parser.parse_args())))
