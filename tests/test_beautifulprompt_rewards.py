"""BeautifulPrompt reward configs: formulas on hand-computed inputs, the true-score judge."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym  # noqa: F401
from prompt_gym.backends import make_backend
from prompt_gym.backends.preference import load_preference
from prompt_gym.backends.shapes.preference import ShapesPreference
from prompt_gym.envs.beautifulprompt_reward import make_judge
from prompt_gym.rewards import beautifulprompt_images_v1, beautifulprompt_mix, beautifulprompt_v1


def test_text_formula_by_hand() -> None:
    parts = beautifulprompt_v1(aes_rm_y=6.0, ps_rm_xy=21.5, aes_rm_x=5.0, ps_rm_xx=20.0)
    # R(y) = 0.3*6 + 0.7*21.5 = 16.85; R(x) = 0.3*5 + 0.7*20 = 15.5
    assert parts["proxy_reward_y"] == pytest.approx(16.85)
    assert parts["proxy_reward_ref"] == pytest.approx(15.5)
    assert parts["reward"] == pytest.approx(1.35)


def test_images_formula_by_hand_with_a_failed_image() -> None:
    parts = beautifulprompt_images_v1(
        aes_y=np.array([6.0, 8.0]),
        ps_y=np.array([21.0, 22.0]),
        aes_x=np.array([5.0, 5.0]),
        ps_x=np.array([20.0, 20.0]),
        valid_y=np.array([True, False]),
        valid_x=np.array([True, True]),
    )
    # seed 0: 16.5 - 15.5 = 1; seed 1 (y failed: aes 0, ps 0): 0 - 15.5
    assert parts["reward"] == pytest.approx((1.0 - 15.5) / 2)
    assert beautifulprompt_mix(np.array([10.0]), np.array([0.0])).tolist() == [3.0]


def test_images_reward_equals_the_true_scores() -> None:
    env = gym.make("PromptRewrite-Shapes-v0", reward="beautifulprompt-images-v1")
    env.reset(seed=3)
    core = env.unwrapped.core
    for action in (0, core.stop_action):
        _, reward, term, _, _ = env.step(action)
    assert term
    x, y, seeds = core.source, core.prompt, core.seeds
    backend = env.unwrapped.backend
    got = backend.score([x] * 2 + [y] * 2, seeds * 2, aesthetic=True, return_images=True)
    ps = ShapesPreference(backend).preference([x] * 4, got.images).astype(np.float64)
    aes = got.aesthetic.astype(np.float64)
    expect = np.mean(0.3 * aes[2:] + 0.7 * ps[2:] - 0.3 * aes[:2] - 0.7 * ps[:2])
    assert reward == pytest.approx(expect, abs=1e-5)
    # a planner's lookahead is the reward of ending after the candidate (a greedy baseline works)
    env.reset(seed=4)
    values, current = env.unwrapped.lookahead([[0], [1], [core.stop_action]])
    assert values[2] == current
    for action in (1, core.stop_action):
        _, reward, term, _, _ = env.step(action)
    assert term and reward == pytest.approx(values[1], abs=1e-6)


def test_shapes_preference_disagrees_with_aesthetic_and_relevance() -> None:
    backend = make_backend("shapes")
    pref = load_preference(backend)
    seeds = [0, 1, 2, 3]

    def scores(y: str, x: str = "a green star") -> tuple[float, float, float]:
        r = backend.score([y] * 4, seeds, aesthetic=True, return_images=True)
        cos = float(np.mean(r.image_embeds @ backend.embed_texts([x])[0]))
        return float(pref.preference([x] * 4, r.images).mean()), float(r.aesthetic.mean()), cos

    ps0, aes0, _ = scores("a green star")
    ps_r, aes_r, _ = scores("a green star, rainbow")
    assert aes_r > aes0 + 1 and ps_r < ps0 - 1  # rainbow: prettier to the aesthetic, not preferred
    x = "a red circle"
    ps_v, _, cos_v = scores(x + ", vivid", x)
    ps_f, _, cos_f = scores(x + ", foggy", x)
    assert ps_v > ps_f + 1 and 20 * min(cos_v, cos_f) - 5.6 > 0  # relevance hinge 0 for both


def test_judge_arguments_fail_early() -> None:
    backend = make_backend("shapes")
    with pytest.raises(ValueError, match="needs reward_models"):
        make_judge(backend, "beautifulprompt-v1", 2, 16)
    with pytest.raises(ValueError, match="only used by"):
        make_judge(backend, "promptist-v1", 2, 16, {"aesthetic": "a", "pickscore": "b"})
    with pytest.raises(ValueError, match="must map exactly"):
        make_judge(backend, "beautifulprompt-v1", 2, 16, {"aesthetic": "a"})


def test_greedy_plans_on_the_images_reward_and_beats_random() -> None:
    from prompt_gym.agents import greedy, random_agent

    from prompt_gym.envs.judge import Judge

    kwargs = {"reward": "beautifulprompt-images-v1"}
    env = gym.make("PromptRewrite-Shapes-v0", **kwargs)
    assert isinstance(env.unwrapped.core.judge, Judge)
    assert isinstance(make_judge(env.unwrapped.backend, "promptist-v1", 2, 16), Judge)
    planned = [e.ret for e in greedy.evaluate("PromptRewrite-Shapes-v0", 4, 0, kwargs)]
    drawn = [e.ret for e in random_agent.evaluate("PromptRewrite-Shapes-v0", 8, 0, kwargs)]
    # greedy only adds a modifier that raises the reward, so it never ends below ending at once
    assert min(planned) >= 0.0 and np.mean(planned) > np.mean(drawn) + 1.0, (planned, drawn)
