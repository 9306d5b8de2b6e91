"""The envs' public planning API, their explicit signatures, and the worlds they draw data from."""

from __future__ import annotations

import gc
import inspect
import weakref

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym
from prompt_gym import make_backend
from prompt_gym.backends.registry import BACKENDS
from prompt_gym.backends.world import SHAPES_WORLD, TEXT_WORLD, TINY_WORLD
from prompt_gym.envs.registration import FAMILIES
from prompt_gym.envs.targets import EnvTargets

SHAPES_V0 = [i for i in prompt_gym.ENV_IDS if "-Shapes-v0" in i]


def env_classes() -> list[type]:
    import importlib

    out = []
    for module, stem in FAMILIES.values():
        mod = importlib.import_module(module)
        out += [getattr(mod, f"{stem}Env"), getattr(mod, f"{stem}VectorEnv")]
    return out


@pytest.mark.parametrize("cls", env_classes(), ids=lambda c: c.__name__)
def test_every_env_class_lists_its_keyword_arguments(cls):
    params = inspect.signature(cls).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert {"backend", "invalid_action", "invalid_penalty", "render_mode"} <= set(params)
    if cls.__name__.endswith("VectorEnv"):
        assert {"num_envs", "max_episode_steps"} <= set(params)
        single = inspect.signature(cls.env_cls).parameters
        assert set(single) <= set(params)  # the vector env takes every single-env argument


def candidates_of(env: gym.Env, obs: dict) -> list[list[int]]:
    u = env.unwrapped
    if "action_mask" in obs:
        return [[int(a)] for a in np.flatnonzero(obs["action_mask"][: u.stop_action])]
    return [[int(t)] for t in range(min(6, u.action_space.n)) if t != u.stop_action]


@pytest.mark.parametrize("env_id", SHAPES_V0)
def test_lookahead_is_the_next_step_and_changes_nothing(env_id):
    env = gym.make(env_id)
    u = env.unwrapped
    obs, info = env.reset(seed=3)
    state = (u.elapsed_steps, info["prompt"], u.np_random.bit_generator.state)
    cands = candidates_of(env, obs)
    values, current = u.lookahead(cands)
    assert values.shape == (len(cands),) and np.isfinite(values).all() and np.isfinite(current)
    assert u.elapsed_steps == state[0] and u.core._info()["prompt"] == state[1]
    assert u.np_random.bit_generator.state == state[2]  # no random number drawn
    again, current_again = u.lookahead(cands)
    np.testing.assert_array_equal(values, again)
    assert current_again == current
    best = int(np.argmax(values))
    if "ImageInversion" in env_id:  # the next step's similarity is the lookahead's value
        hits = u.backend.stats.memory_hits
        _, reward, _, _, info = env.step(cands[best][0])
        assert info["similarity"] == values[best] and reward == values[best] - current
        assert u.backend.stats.memory_hits > hits  # a cache hit
    else:  # ending after the candidate gives its value as the reward
        actions = [*cands[best], u.stop_action]
        if "Tokens" in env_id:
            actions = actions[: info["max_new_tokens"]]
        for a in actions:
            _, reward, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                break
        assert reward == values[best]


def test_lookahead_rejects_actions_outside_the_space_and_ended_episodes():
    env = gym.make("PromptRewrite-Shapes-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="lookahead actions"):
        env.unwrapped.lookahead([[env.action_space.n]])
    env.step(env.unwrapped.stop_action)
    with pytest.raises(RuntimeError, match="episode is over"):
        env.unwrapped.lookahead([[0]])


def test_vector_lookahead_equals_single_env_lookaheads_in_one_backend_call():
    env_id = "ImageInversion-Shapes-v0"
    venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    u = venv.unwrapped
    obs, _ = venv.reset(seed=10)
    cands = [[[int(a)] for a in np.flatnonzero(obs["action_mask"][i][:-1])] for i in range(3)]
    cands[1] = None
    calls = u.backend.stats.requests
    out = u.lookahead(cands)
    assert out[1] is None
    for i in (0, 2):
        env = gym.make(env_id)
        env.reset(seed=10 + i)
        values, current = env.unwrapped.lookahead(cands[i])
        np.testing.assert_array_equal(out[i][0], values)
        assert out[i][1] == current
    assert u.backend.stats.requests > calls
    with pytest.raises(ValueError, match="candidates for 2 of 3"):
        u.lookahead([None, None])


def test_step_some_and_reset_one_drive_chosen_sub_envs_without_autoreset():
    venv = gym.make_vec(
        "PromptRewrite-Shapes-v0", num_envs=2, vectorization_mode="vector_entry_point"
    )
    u = venv.unwrapped
    obs, info = u.reset_one(0, seed=5)
    single = gym.make("PromptRewrite-Shapes-v0")
    want_obs, want_info = single.reset(seed=5)
    assert info == want_info
    np.testing.assert_array_equal(obs["source"], want_obs["source"])
    u.reset_one(1, seed=6)
    stop = u.stop_action
    out = u.step_some([stop, 0], np.array([True, False]))
    assert out[1] is None
    _, reward, terminated, _, _ = out[0]
    assert terminated and reward == single.step(stop)[1]
    with pytest.raises(RuntimeError, match="episode is over"):
        u.step_some([stop, 0], np.array([True, False]))
    u.reset_one(0, seed=5, options={"prompt": "a red circle"})
    assert u.step_some([stop, stop], np.array([True, True]))[0][4]["source"] == "a red circle"


def test_presets_declare_their_world_and_envs_read_it():
    assert BACKENDS["shapes"].world is SHAPES_WORLD and BACKENDS["shapes-v3"].world is SHAPES_WORLD
    assert BACKENDS["tiny"].world is TINY_WORLD and BACKENDS["sd-turbo"].world is TEXT_WORLD
    backend = make_backend("shapes")
    assert backend.world is SHAPES_WORLD
    bare = prompt_gym.RewardBackend(backend.generator, backend.scorer, backend.captioner)
    assert bare.world is TEXT_WORLD  # built from components without a world: the shipped data
    env = gym.make("PromptRewrite-Shapes-v0")
    assert list(env.unwrapped.modifiers) == SHAPES_WORLD.modifiers()
    assert set(env.unwrapped.prompt_set) == set(SHAPES_WORLD.prompts("train"))
    assert not set(SHAPES_WORLD.prompts("train")) & set(SHAPES_WORLD.prompts("test"))
    assert TEXT_WORLD.modifiers() != SHAPES_WORLD.modifiers()


def test_target_sets_are_shared_per_backend_and_do_not_keep_it_alive():
    backend = make_backend("shapes")
    a, b = EnvTargets(backend, "objects", 4, 0), EnvTargets(backend, "objects", 4, 0)
    assert a[2] is b[2] and len(a) == 4
    assert EnvTargets(make_backend("shapes"), "objects", 4, 0)[2] is not a[2]
    ref = weakref.ref(backend)
    del a, b, backend
    gc.collect()
    assert ref() is None


# -- the read-only public members (the env class docstrings' "Public API") ------------------------
@pytest.mark.parametrize("num_images", [1, 2])
def test_evaluate_prompt_is_the_similarity_a_step_reports_and_changes_nothing(num_images):
    env = gym.make("ImageInversion-Shapes-v0", num_images=num_images)
    u = env.unwrapped
    obs, info = env.reset(seed=4)
    prompt = ""
    for action in np.flatnonzero(obs["action_mask"][: u.stop_action])[:3].tolist():
        prompt = f"{prompt} {u.candidates[action]}".strip()
        rng, steps = u.np_random.bit_generator.state, u.elapsed_steps
        value = u.evaluate_prompt(prompt)
        assert u.np_random.bit_generator.state == rng and u.elapsed_steps == steps
        assert u.core._info() == info  # the episode is as it was
        misses = u.backend.stats.misses
        obs, _, _, _, info = env.step(action)
        assert info["prompt"] == prompt and info["similarity"] == value  # exactly
        assert u.backend.stats.misses == misses  # the step was a cache hit
    with pytest.raises(ValueError, match="must be a str"):
        u.evaluate_prompt(None)


def test_image_inversion_accessors_show_the_episode():
    env = gym.make("ImageInversion-Shapes-v0", num_images=3, target_set_size=8)
    u = env.unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        u.target  # noqa: B018
    assert len(u.target_set) == 8 and u.num_images == 3
    obs, info = env.reset(seed=2, options={"target_index": 5})
    assert u.target is u.target_set[5] and info["target_id"] == u.target.target_id
    assert info["candidates"] == " | ".join(u.candidates)
    np.testing.assert_array_equal(np.clip(u.target_embedding, -1, 1), obs["target"])
    assert not u.target_embedding.flags.writeable
    assert len(u.episode_seeds) == 3 and all(isinstance(s, int) for s in u.episode_seeds)
    assert u.evaluate_prompt(u.target.caption) > u.evaluate_prompt("")
    kwargs = {"num_images": 3, "target_set_size": 8}
    venv = gym.make_vec(
        "ImageInversion-Shapes-v0", 2, vectorization_mode="vector_entry_point", **kwargs
    )
    assert venv.unwrapped.num_images == 3 and venv.unwrapped.target_set[5] is u.target_set[5]


@pytest.mark.parametrize("env_id", ["PromptRewrite-Shapes-v0", "PromptRewriteTokens-Shapes-v0"])
def test_rewrite_accessors_show_the_set_up_on_single_and_vector_envs(env_id):
    env = gym.make(env_id, split="test", reward="relevance")
    venv = gym.make_vec(
        env_id, 2, vectorization_mode="vector_entry_point", split="test", reward="relevance"
    )
    u, v = env.unwrapped, venv.unwrapped
    assert u.prompt_set == v.prompt_set == tuple(SHAPES_WORLD.prompts("test"))
    assert u.reward_name == v.reward_name == "relevance"
    for seed in range(5):
        assert env.reset(seed=seed)[1]["source"] in u.prompt_set
    if "Tokens" in env_id:
        layout = [(s.vocab, s.eos, s.length) for s in (u.token_space, v.token_space)]
        assert layout[0] == layout[1] and u.stop_action == u.token_space.eos
    else:
        assert u.modifiers == v.modifiers and len(u.modifiers) == u.stop_action
        assert u.max_modifiers == v.max_modifiers == env.observation_space["chosen"].shape[0]
