"""The agents' shared plumbing: lockstep episodes over NEXT_STEP autoreset, eval, checkpoints, runs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")
from fakes import fake_backend
from prompt_gym.agents.checkpoints import (
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from prompt_gym.agents.episodes import Policy, collect_episodes, evaluate_policy, summarize
from prompt_gym.agents.random_agent import RandomPolicy
from prompt_gym.agents.runs import (
    load_config,
    make_args,
    rng_states,
    seed_everything,
    set_rng_states,
)

from prompt_gym.envs.image_inversion import ImageInversionEnv


def stop_after(k: int) -> Policy:
    """Pick the first valid token while fewer than ``k`` are chosen, then STOP."""

    def policy(obs):
        chosen = (obs["chosen"] < obs["candidates"].shape[1]).sum(1)
        masks = obs["action_mask"].astype(bool)
        first = np.argmax(masks, axis=1)
        stop = masks.shape[1] - 1
        return np.where(chosen < k, first, stop)

    return policy


def test_lockstep_episodes_equal_single_env_episodes_despite_autoreset():
    backend = fake_backend()
    venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=3, backend=backend)
    seeds = [4, 5, 6]
    # sub-env 0 stops at once, 1 after 2 tokens, 2 after 5: the early ones sit through autoresets
    policies = [stop_after(k) for k in (0, 2, 5)]

    def mixed(obs):
        return np.array(
            [policies[i]({k: v[i : i + 1] for k, v in obs.items()})[0] for i in range(3)]
        )

    episodes = collect_episodes(venv, mixed, seeds)
    assert [e.length for e in episodes] == [1, 3, 6]
    for i, episode in enumerate(episodes):
        env = ImageInversionEnv(backend=backend)
        obs, _ = env.reset(seed=seeds[i])
        rewards = []
        for t, action in enumerate(episode.actions):
            for key in obs:
                np.testing.assert_array_equal(episode.obs[key][t], obs[key])
            obs, reward, terminated, _, info = env.step(int(action))
            rewards.append(reward)
        assert terminated
        np.testing.assert_allclose(episode.rewards, rewards)
        assert episode.info["prompt"] == info["prompt"]
        assert episode.ret == pytest.approx(info["similarity"])  # delta rewards


def test_evaluate_is_independent_of_the_batch_size():
    kwargs = {"backend": fake_backend()}
    a = evaluate_policy(RandomPolicy(0), "ImageInversion-Shapes-v0", 5, 100, kwargs, batch=5)
    b = evaluate_policy(stop_after(2), "ImageInversion-Shapes-v0", 5, 100, kwargs, batch=2)
    c = evaluate_policy(stop_after(2), "ImageInversion-Shapes-v0", 5, 100, kwargs, batch=5)
    assert [e.seed for e in a] == [100, 101, 102, 103, 104]
    assert [e.ret for e in b] == [e.ret for e in c]
    summary = summarize(c, "ImageInversion-Shapes-v0")
    assert summary["episodes"] == 5 and summary["mean_prompt_length"] == 2
    assert summary["mean_final_similarity"] == pytest.approx(summary["mean_return"])
    assert summary["ci95"] >= 0 and len(summary["examples"]) == 5


def test_random_policy_only_picks_valid_actions():
    masks = np.zeros((200, 9), dtype=np.int8)
    masks[:, [1, 4, 8]] = 1
    masks[0] = 0  # a finished episode: anything goes
    actions = RandomPolicy(0)({"action_mask": masks})
    assert set(actions[1:]) == {1, 4, 8}


def test_checkpoints_keep_the_newest_and_resolve_from_a_run_dir(tmp_path):
    for step in (5, 10, 20, 40):
        save_checkpoint({"step": step}, checkpoint_path(tmp_path, step), keep=2)
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["step_000000020.pt", "step_000000040.pt"]
    assert load_checkpoint(find_checkpoint(tmp_path))["step"] == 40
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        find_checkpoint(tmp_path / "missing")


def test_args_from_config_then_flags_and_unknown_keys_fail(tmp_path):
    from prompt_gym.agents.reinforce import Args

    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning-rate: 0.01\nseed: 4\n")
    args = make_args(Args, load_config(cfg), seed=9, num_envs=None)
    assert (args.learning_rate, args.seed, args.num_envs) == (0.01, 9, Args().num_envs)
    with pytest.raises(ValueError, match="unknown setting"):
        make_args(Args, {"learning_rat": 1})


def test_rng_states_round_trip():
    import torch

    seed_everything(0, threads=1)
    saved = rng_states()
    first = (np.random.rand(), torch.rand(1).item())
    set_rng_states(saved)
    assert (np.random.rand(), torch.rand(1).item()) == first
