"""ImageInversion behaviour: prompt space, reward modes, masks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import fake_backend

from prompt_gym.backends import Target
from prompt_gym.envs.image_inversion import ImageInversionEnv, caption_words
from prompt_gym.rewards import image_similarity


def make(**kwargs):
    return ImageInversionEnv(backend=fake_backend(), **kwargs)


def test_prompt_space_is_caption_words_ranked_by_similarity_to_the_target():
    env = make(n_tokens=3)
    obs, info = env.reset(seed=0)
    core = env.core
    words = caption_words(core.captions)
    sims = core.backend.embed_texts(words) @ core.target_embed
    expected = [words[i] for i in np.argsort(-sims, kind="stable")[:3]]
    assert core.words == expected
    assert info["candidates"] == " | ".join(expected)
    np.testing.assert_array_equal(obs["candidates"], core.backend.embed_texts(expected))


def test_delta_rewards_telescope_to_the_final_similarity():
    env = make(n_tokens=4, reward_mode="delta")
    env.reset(seed=1)
    total, info = 0.0, {}
    for action in [2, 0, 3]:
        _, reward, terminated, _, info = env.step(action)
        total += reward
    assert total == pytest.approx(info["similarity"])
    assert not terminated
    _, reward, terminated, _, _ = env.step(env.core.stop_action)
    assert reward == 0.0 and terminated


def test_dense_reward_is_the_similarity_of_the_step_images():
    env = make(n_tokens=4, reward_mode="dense", num_images=3)
    env.reset(seed=2)
    _, reward, _, _, info = env.step(1)
    result = env.backend.score([info["prompt"]] * 3, env.core.episode_seeds)
    assert reward == pytest.approx(image_similarity(result.image_embeds, env.core.target_embed))
    assert "cache_hit" not in info  # info depends on seed and actions only
    _, reward2, _, _, _ = env.step(env.core.stop_action)
    assert reward2 == 0.0


def test_terminal_reward_comes_only_at_the_end():
    env = make(n_tokens=3, max_tokens=2, reward_mode="terminal")
    env.reset(seed=3)
    _, r1, t1, _, _ = env.step(0)
    _, r2, t2, _, info = env.step(1)
    assert (r1, t1, t2) == (0.0, False, True)
    assert r2 == pytest.approx(info["similarity"])


def test_common_random_numbers_keep_the_seeds_fixed():
    env = make(n_tokens=4, num_images=2)
    env.reset(seed=4)
    seeds = list(env.core.episode_seeds)
    env.step(0)
    env.step(1)
    assert env.core.current_seeds == seeds
    env = make(n_tokens=4, num_images=2, common_random_numbers=False)
    env.reset(seed=4)
    env.step(0)
    assert env.core.current_seeds != env.core.episode_seeds


def test_masks_forbid_reuse_and_the_mask_is_in_the_observation():
    env = make(n_tokens=3, invalid_action="raise")
    obs, _ = env.reset(seed=5)
    assert obs["action_mask"].tolist() == [1, 1, 1, 1]
    obs, *_ = env.step(1)
    assert obs["action_mask"].tolist() == [1, 0, 1, 1]
    assert obs["chosen"].tolist() == [1, 3, 3]
    with pytest.raises(
        ValueError, match=r"action 1 is not allowed now .* allowed actions: \[0, 2, 3\]"
    ):
        env.step(1)
    with pytest.raises(ValueError, match="action 9 is outside the action space Discrete"):
        env.step(9)
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(1.5)
    # nothing was lost: the episode continues where it was
    assert env.core.chosen == [1]


def test_penalize_turns_an_invalid_action_into_a_costly_no_op():
    env = make(n_tokens=3, invalid_penalty=-0.5)  # "penalize" is the default
    env.reset(seed=6)
    env.step(0)
    before = env.core.prompt
    _obs, reward, terminated, _truncated, info = env.step(0)
    assert reward == -0.5 and info["invalid_action"] and env.core.prompt == before
    assert not terminated


def test_stepping_after_the_end_raises():
    env = make(n_tokens=2)
    env.reset(seed=0)
    env.step(env.core.stop_action)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


def test_user_target_in_options():
    image = np.full((16, 16, 3), 200, dtype=np.uint8)
    env = make()
    _, info = env.reset(seed=0, options={"target": image})
    assert info["target_id"].startswith("user-")
    np.testing.assert_array_equal(env.core.target.image, image)
    _, info = env.reset(seed=0, options={"target": Target(image=image, target_id="mine")})
    assert info["target_id"] == "mine"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target": np.zeros((16, 16), np.uint8)}, r"uint8 with shape \(H, W, 3\)"),
        ({"target": np.zeros((16, 16, 3), np.float32)}, r"uint8 with shape \(H, W, 3\)"),
        ({"target": "cat.png"}, "must be a Target or a uint8"),
        ({"target_index": 10_000}, "target_index must be an int"),
        ({"colour": "red"}, r"unknown reset options \['colour'\]"),
        ("target", "options must be a dict"),
    ],
)
def test_malformed_options_raise(options, message):
    with pytest.raises(ValueError, match=message):
        make().reset(seed=0, options=options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward_mode": "sparse"}, "reward_mode must be one of"),
        ({"n_tokens": 3, "max_tokens": 4}, "max_tokens must be in"),
        ({"invalid_action": "ignore"}, "invalid_action must be one of"),
        ({"invalid_penalty": 1.0}, "invalid_penalty must be a finite number <= 0"),
        ({"invalid_penalty": float("nan")}, "invalid_penalty must be a finite number"),
        ({"invalid_penalty": float("-inf")}, "invalid_penalty must be a finite number"),
        ({"invalid_penalty": "-1"}, "invalid_penalty must be float, got '-1'"),
        ({"invalid_penalty": True}, "invalid_penalty must be float, got True"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_render_shows_target_and_current_side_by_side():
    env = ImageInversionEnv(backend=fake_backend(), render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    h, w = env.core.target.image.shape[:2]
    assert frame.shape == (h, 2 * w + 2, 3) and frame.dtype == np.uint8
    env.step(0)
    assert env.render()[:, w + 2 :].any()


def test_target_index_fixes_the_target_across_resets():
    env = make(target_index=3)
    ids = {env.reset(seed=s)[1]["target_id"] for s in range(5)}
    assert ids == {env.core.targets[3].target_id}
    with pytest.raises(ValueError, match="target_index must be in"):
        make(target_index=10_000)


def test_target_embedding_is_reused_and_equals_a_fresh_one():
    env = make()
    env.reset(seed=0, options={"target_index": 2})
    first = env.core.target_embed
    env.reset(seed=1, options={"target_index": 2})
    assert env.core.target_embed is first
    np.testing.assert_array_equal(first, env.backend.embed_images(env.core.target.image[None])[0])


def test_prompt_space_is_built_once_per_target_unless_resampled():
    env = make(n_tokens=3)
    env.reset(seed=0, options={"target_index": 1})
    words = env.core.words
    env.reset(seed=5, options={"target_index": 1})
    assert env.core.words is words  # shared, not rebuilt
    fresh = ImageInversionEnv(backend="shapes", n_tokens=3, resample_prompt_space=True)
    fresh.reset(seed=0, options={"target_index": 1})
    captions = fresh.core.captions
    fresh.reset(seed=5, options={"target_index": 1})
    assert fresh.core.captions != captions  # the shapes captioner draws new noise per seed
