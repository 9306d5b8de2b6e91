"""PromptRewrite and PromptRewriteTokens behaviour: the Promptist reward, masks, tokens."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import fake_backend

from prompt_gym.envs.prompt_rewrite import PromptRewriteEnv
from prompt_gym.envs.prompt_rewrite_tokens import PromptRewriteTokensEnv
from prompt_gym.envs.rewrite_reward import seed_tuples
from prompt_gym.envs.tokenizers import WordTokenizer
from prompt_gym.rewards import RewriteScores, promptist_v1

PROMPTS = ["a red circle", "a blue star"]
MODS = ["vivid", "high contrast", "8k"]


def rewrite_env(**kwargs):
    kwargs.setdefault("prompts", PROMPTS)
    kwargs.setdefault("modifiers", MODS)
    kwargs.setdefault("max_modifiers", 3)
    return PromptRewriteEnv(backend=fake_backend(), **kwargs)


def expected_parts(backend, source, rewrite, seeds):
    k = len(seeds)
    res = backend.score([source] * k + [rewrite] * k, seeds * 2, aesthetic=True)
    return promptist_v1(
        RewriteScores(
            text_x=backend.embed_texts([source])[0],
            image_y=res.image_embeds[k:],
            aes_x=res.aesthetic[:k],
            aes_y=res.aesthetic[k:],
            valid_x=res.valid[:k],
            valid_y=res.valid[k:],
        )
    )


def test_rewrite_reward_is_promptist_v1_on_shared_seeds():
    env = rewrite_env(num_images=3)
    _, info = env.reset(seed=0)
    source = info["source"]
    assert env.step(0)[1] == 0.0  # no reward before the end, and no backend call
    assert env.backend.stats.requests == 0
    _, reward, terminated, _, info = env.step(1)
    _, reward, terminated, _, info = env.step(env.core.stop_action)
    assert terminated and info["prompt"] == f"{source}, vivid, high contrast"
    want = expected_parts(fake_backend(), source, info["prompt"], env.core.seeds)
    assert reward == pytest.approx(want["reward"])
    assert info["relevance"] == pytest.approx(want["relevance"])
    assert info["aesthetic"] == pytest.approx(want["aesthetic"])


def test_source_side_is_cached_across_episodes():
    env = rewrite_env(num_images=2, prompts=["a red circle"], seed_pool=2)
    x_hits = 0
    seen = set()
    for seed in range(12):  # different reset seeds: episodes share only the pool
        env.reset(seed=seed)
        hits = env.backend.stats.memory_hits
        env.step(seed % 3)
        env.step(env.core.stop_action)
        assert tuple(env.core.seeds) in {tuple(map(int, t)) for t in seed_tuples(2, 2)}
        if tuple(env.core.seeds) in seen:
            x_hits += 1
            assert env.backend.stats.memory_hits - hits >= 2  # x on both seeds
        seen.add(tuple(env.core.seeds))
    assert x_hits == 10  # every episode after the first one on each of the 2 tuples


def test_seed_pool_is_shared_by_envs_and_none_draws_fresh_seeds():
    a, b = rewrite_env(seed_pool=4), rewrite_env(seed_pool=4)
    pool = {tuple(map(int, t)) for t in seed_tuples(4, 2)}
    for s in range(20):
        a.reset(seed=s)
        b.reset(seed=1000 + s)
        assert tuple(a.core.seeds) in pool and tuple(b.core.seeds) in pool
    fresh = rewrite_env(seed_pool=None)
    drawn = set()
    for s in range(20):
        fresh.reset(seed=s)
        drawn.add(tuple(fresh.core.seeds))
    assert len(drawn) == 20 and not drawn & pool
    with pytest.raises(ValueError, match="seed_pool"):
        rewrite_env(seed_pool=0)


def test_masks_forbid_repeats_and_clip_overflow():
    long = " ".join(["word"] * 44)  # the fake tokenizer counts words + 2
    env = rewrite_env(
        modifiers=["vivid", long, long + " and more"],
        max_modifiers=3,
        prompts=[" ".join(["x"] * 30)],
        invalid_action="raise",
    )
    obs, _ = env.reset(seed=0)
    assert obs["action_mask"].tolist() == [1, 1, 0, 1]  # 30+44+2 <= 77 < 30+46+2
    obs, *_ = env.step(0)
    assert obs["action_mask"].tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="action 2 is not allowed"):
        env.step(2)


def test_max_modifiers_ends_the_episode_with_the_reward():
    env = rewrite_env(max_modifiers=2)
    env.reset(seed=1)
    _, r, t, _, _ = env.step(2)
    assert (r, t) == (0.0, False)
    _, r, t, _, info = env.step(0)
    assert t and r == info["reward"] and info["num_modifiers"] == 2


def test_reset_option_prompt_and_its_validation():
    env = rewrite_env()
    _, info = env.reset(seed=0, options={"prompt": "a green egg"})
    assert info["source"] == "a green egg"
    with pytest.raises(ValueError, match="over 77 CLIP tokens"):
        env.reset(seed=0, options={"prompt": "w " * 80})
    with pytest.raises(ValueError, match="must be a str"):
        env.reset(seed=0, options={"prompt": 3})


def test_bad_prompt_and_modifier_sources_raise(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        rewrite_env(prompts=str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="duplicates"):
        rewrite_env(modifiers=["a", "a"])
    with pytest.raises(ValueError, match="unknown reward config"):
        rewrite_env(reward="likes")
    with pytest.raises(ValueError, match="split must be one of"):
        rewrite_env(prompts=None, split="dev")
    path = tmp_path / "p.txt"
    path.write_text("# comment\na cat\n\na dog\n")
    assert rewrite_env(prompts=str(path)).core.prompts == ["a cat", "a dog"]


def tokens_env(**kwargs):
    tok = WordTokenizer(PROMPTS + MODS)
    kwargs.setdefault("max_new_tokens", 4)
    return PromptRewriteTokensEnv(
        backend=fake_backend(), tokenizer=tok, prompts=PROMPTS, **kwargs
    ), tok


def test_tokens_env_observation_is_source_sep_continuation():
    env, tok = tokens_env()
    obs, info = env.reset(seed=0)
    src = tok.encode(info["source"])
    assert obs["length"].tolist() == [len(src) + 1]
    assert obs["tokens"][: len(src)].tolist() == src
    assert obs["tokens"][len(src)] == tok.vocab_size + 1  # SEP
    assert (obs["tokens"][len(src) + 1 :] == tok.vocab_size).all()  # PAD
    word = tok.encode("vivid")[0]
    obs, r, t, _, info = env.step(word)
    assert obs["tokens"][len(src) + 1] == word and info["prompt"] == "vivid" and r == 0.0 and not t


def test_tokens_env_eos_terminates_with_the_rewrite_reward():
    env, tok = tokens_env(num_images=2, max_new_tokens=10)
    _, info = env.reset(seed=1)
    for word in tok.encode(info["source"] + ", vivid"):
        env.step(word)
    _, reward, terminated, _, info = env.step(tok.eos_token_id)
    assert terminated and not info["length_limit"]
    assert info["prompt"] == info["source"] + ", vivid"
    want = expected_parts(fake_backend(), info["source"], info["prompt"], env.core.seeds)
    assert reward == pytest.approx(want["reward"])


def test_tokens_env_length_limit_and_drawn_budget():
    env, _tok = tokens_env(max_new_tokens=2)
    env.reset(seed=2)
    env.step(3)
    _, _, terminated, _, info = env.step(3)
    assert terminated and info["length_limit"]
    env, _ = tokens_env(max_new_tokens=(2, 5))
    budgets = {env.reset(seed=s)[1]["max_new_tokens"] for s in range(40)}
    assert budgets == {2, 3, 4, 5}


def test_tokens_env_rejects_long_sources():
    with pytest.raises(ValueError, match="exceed max_source_tokens=2"):
        tokens_env(max_source_tokens=2)


def test_word_tokenizer_round_trip():
    tok = WordTokenizer(["a red circle, vivid"])
    ids = tok.encode("a RED circle, vivid zebra")
    assert ids[-1] == tok.unk_token_id
    assert tok.decode(ids) == "a red circle, vivid"
    assert np.all(np.array(ids[:-1]) > 1)


def test_tiny_backend_reports_clip_overflow_of_a_long_rewrite():
    """A rewrite past 77 CLIP tokens is scored as the text encoder sees it and reported."""
    pytest.importorskip("diffusers")
    import gymnasium as gym

    for new_tokens, truncated in ((75, 0), (80, 5)):
        env = gym.make("PromptRewriteTokens-v0", backend="tiny", max_new_tokens=new_tokens)
        env.reset(seed=0, options={"prompt": "a red circle"})
        (red,) = env.unwrapped.token_space.tokenizer.encode(" red")
        terminated = False
        while not terminated:
            _, _, terminated, _, info = env.step(red)
        assert info["prompt"] == " ".join(["red"] * new_tokens) and info["length_limit"]
        assert info["prompt_tokens"] == new_tokens + 2  # the generator's count, BOS/EOS included
        assert info["truncated_tokens"] == truncated == max(0, info["prompt_tokens"] - 77)
