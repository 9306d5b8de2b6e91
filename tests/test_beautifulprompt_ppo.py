"""Learning test: LM-PPO against the shapes text RMs raises the proxy reward; true reward beside it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("transformers")

from prompt_gym.agents.lm_ppo import distillation
from prompt_gym.agents.lm_ppo.ppo import train

from prompt_gym.envs.judge import Judge


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    root = tmp_path_factory.mktemp("bp")
    distillation.export_data(root / "data", n_prompts=40, per_prompt=4, seeds=2)
    return distillation.train_rms(root / "data", root / "rms", epochs=4)


def test_text_reward_env_generates_no_image(rms) -> None:
    paths, _ = rms
    env = gym.make_vec(
        "PromptRewriteTokens-Shapes-v0",
        num_envs=4,
        reward="beautifulprompt-v1",
        reward_models=paths,
        max_new_tokens=(3, 6),
    )
    backend = env.unwrapped.backend
    before = backend.stats.images_generated, backend.stats.requests
    env.reset(seed=0)
    ends = 0
    for _ in range(10):
        _, _, term, _, _ = env.step(env.action_space.sample())
        ends += int(term.sum())
    assert ends >= 4
    assert (backend.stats.images_generated, backend.stats.requests) == before
    single = gym.make(
        "PromptRewriteTokens-Shapes-v0",
        reward="beautifulprompt-v1",
        reward_models=paths,
        max_new_tokens=3,
    )
    single.reset(seed=1)
    for _ in range(3):
        _, reward, term, _, info = single.step(1)
    assert term and reward == pytest.approx(info["proxy_reward_y"] - info["proxy_reward_ref"])


def test_ppo_against_the_rms_raises_the_proxy_reward(rms, tmp_path) -> None:
    paths, _ = rms
    args = distillation.bp_args(
        paths,
        logdir=str(tmp_path),
        num_envs=32,
        num_minibatches=2,
        total_updates=10,
        total_timesteps=10**9,
        sft_steps=60,
        sft_pair_prompts=40,
        eval_episodes=1,
        env_kwargs={"max_new_tokens": [4, 8]},
        seed=1,
    )
    out = train(args)
    returns = [r for _, r, _ in out["curve"]]
    assert np.mean(returns[-3:]) > np.mean(returns[:3]) + 0.05, returns
    ev = distillation.evaluate_checkpoint(out["checkpoint"], paths, episodes=32)
    assert ev["proxy_images_generated"] == 0
    assert np.isfinite(ev["true_reward"]) and ev["kl"] > 0
    print(f"proxy {ev['proxy_reward']:.3f} true {ev['true_reward']:.3f} kl {ev['kl']:.2f}")


def test_text_reward_lookahead_is_the_reward_of_ending_there(rms) -> None:
    paths, _ = rms
    env = gym.make(
        "PromptRewriteTokens-Shapes-v0", reward="beautifulprompt-v1", reward_models=paths
    )
    env.reset(seed=2)
    u = env.unwrapped
    assert isinstance(u.core.judge, Judge)
    backend = u.backend
    before = backend.stats.images_generated, backend.stats.requests
    tokens = [t for t in range(5, 12) if t != u.stop_action][:2]
    values, current = u.lookahead([[tokens[0]], [tokens[1]]])
    assert np.isfinite(values).all() and np.isfinite(current)
    assert (backend.stats.images_generated, backend.stats.requests) == before  # no image
    env.step(tokens[1])
    _, reward, term, _, _ = env.step(u.stop_action)
    assert term and reward == pytest.approx(values[1])
