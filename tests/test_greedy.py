"""The greedy baseline: beats random on every Shapes id, and its choices are the env's argmax."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from prompt_gym.agents import greedy
from prompt_gym.agents.episodes import summarize

import prompt_gym
from prompt_gym.envs.prompt_rewrite import SEPARATOR

SHAPES_IDS = [i for i in prompt_gym.ENV_IDS if "-Shapes-" in i]
EPISODES = 8
MARGIN = {"ImageInversion": 0.05, "PromptRewrite": 0.5, "PromptRewriteTokens": 2.0}
"""Required mean gain over random: similarity on ImageInversion, promptist-v1 on the rewrites."""


def random_returns(env_id: str, seeds: list[int]) -> list[float]:
    """Uniform valid actions (all ids on the token env) until the episode ends."""
    env = gym.make(env_id)
    rng = np.random.default_rng(0)
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            mask = obs.get("action_mask")
            valid = np.flatnonzero(mask) if mask is not None else np.arange(env.action_space.n)
            obs, reward, terminated, truncated, _ = env.step(int(rng.choice(valid)))
            total, done = total + reward, terminated or truncated
        out.append(total)
    return out


@pytest.mark.parametrize("env_id", SHAPES_IDS)
def test_greedy_beats_random_on_every_shapes_id(env_id):
    assert len(SHAPES_IDS) == 9  # three v0 ids, six v1 ids
    seeds = list(range(100, 100 + EPISODES))
    episodes = greedy.evaluate(env_id, EPISODES, seed=100, batch=EPISODES)
    ours = np.array([e.ret for e in episodes])
    theirs = np.array(random_returns(env_id, seeds))
    assert np.all(np.isfinite(ours))
    # a paired comparison on the same episodes, by a margin
    print(env_id, ours.mean(), theirs.mean())
    assert ours.mean() > theirs.mean() + MARGIN[env_id.split("-")[0]], (ours.mean(), theirs.mean())
    assert (ours >= theirs - 1e-9).mean() >= 0.75
    summary = summarize(episodes, env_id)
    assert summary["episodes"] == EPISODES


def test_first_choice_is_the_best_single_modifier_and_single_equals_vector():
    env = gym.make("PromptRewrite-Shapes-v0")
    agent = greedy.GreedyAgent(env)
    obs, info = env.reset(seed=7)
    core = env.unwrapped.core
    values = []
    for m in core.modifiers:
        prompts, seeds = core.judge.requests(core.source, core.source + SEPARATOR + m, core.seeds)
        values.append(
            core.judge.judge(core.source, core.backend.score(prompts, seeds, aesthetic=True))[
                "reward"
            ]
        )
    prompts, seeds = core.judge.requests(core.source, core.source, core.seeds)
    plain = core.judge.judge(core.source, core.backend.score(prompts, seeds, aesthetic=True))[
        "reward"
    ]
    action = agent.act(obs, info)
    if max(values) > plain:
        assert action == int(np.argmax(values))
    else:
        assert action == core.stop_action
    done, actions = False, [action]
    while not done:
        obs, reward, terminated, truncated, info = env.step(actions[-1])
        done = terminated or truncated
        if not done:
            actions.append(agent.act(obs, info))
    venv = gym.make_vec(
        "PromptRewrite-Shapes-v0", num_envs=1, vectorization_mode="vector_entry_point"
    )
    (episode,) = greedy.run_episodes(venv, [7])
    assert episode.actions.tolist() == actions
    assert episode.ret == pytest.approx(reward)


def test_token_greedy_copies_the_prompt_then_appends_whole_phrases():
    env = gym.make("PromptRewriteTokens-Shapes-v0")
    agent = greedy.GreedyAgent(env)
    for seed in (0, 1):
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
            done = terminated or truncated
        assert reward == info["reward"] > 0  # it only appends what helps over the plain prompt
        source, rewrite = info["source"], info["prompt"]
        assert rewrite.startswith(source)
        added = [p for p in rewrite[len(source) :].split(SEPARATOR) if p]
        bank = set(greedy.Planner.for_env(env).phrase_ids)
        assert all(p in bank for p in added)
        assert len(set(added)) == len(added)


def test_greedy_rejects_other_cores():
    with pytest.raises(ValueError, match="greedy supports"):
        greedy.Planner.for_env(object())
