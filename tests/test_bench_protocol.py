"""The evaluation protocol and the suite: fresh seeds, held-out data, counted queries."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym  # noqa: F401  (registers the ids)
from prompt_gym.backends.factory import make_backend
from prompt_gym.bench.contestants import (
    Job,
    greedy_agent,
    pez_agent,
    random_agent,
    random_search_agent,
    rank_agent,
)
from prompt_gym.bench.protocol import (
    EVAL_SEED_BASE,
    FinalPrompt,
    FreshScorer,
    QueryCounter,
    eval_image_seeds,
    family,
    held_out_kwargs,
)
from prompt_gym.bench.suite import run_suite

HARD = "ImageInversion-Shapes-Hard-v1"


def test_eval_seeds_are_fixed_distinct_and_disjoint_from_every_training_seed():
    seeds = [s for i in range(500) for s in eval_image_seeds(i)]
    assert len(set(seeds)) == len(seeds) and min(seeds) == EVAL_SEED_BASE
    assert eval_image_seeds(3) == [EVAL_SEED_BASE + 12 + j for j in range(4)]
    for env_id in (HARD, "PromptRewrite-Shapes-v1"):
        env = gym.make(env_id, seed_pool=None) if "Rewrite" in env_id else gym.make(env_id)
        drawn = []
        for seed in range(200):
            env.reset(seed=seed)
            u = env.unwrapped
            drawn += u.episode_seeds if family(env_id) == "ImageInversion" else u.core.seeds
        assert max(drawn) < EVAL_SEED_BASE
        env.close()


def test_held_out_data_differs_from_training_data():
    train, test = gym.make(HARD), gym.make(HARD, **held_out_kwargs(HARD))
    a = {train.unwrapped.target_set[i].caption for i in range(64)}
    b = {test.unwrapped.target_set[i].caption for i in range(64)}
    assert len(a & b) < 8
    assert held_out_kwargs("PromptRewrite-Shapes-v1") == {"split": "test"}
    with pytest.raises(ValueError, match="not a prompt-gym env id"):
        family("CartPole-v1")


def test_fresh_similarity_is_the_mean_cosine_on_the_eval_seeds():
    scorer = FreshScorer(HARD, held_out_kwargs(HARD))
    target = next(iter(scorer.targets.values()))
    backend = make_backend("shapes-v3")
    images = backend.generate(["a red circle"] * 4, eval_image_seeds(5))
    expected = (backend.embed_images(images) @ backend.embed_images(target.image[None])[0]).mean()
    got = scorer.similarity("a red circle", target.target_id, 5)
    assert got == pytest.approx(float(expected), abs=1e-6)
    final = FinalPrompt(5, "a red circle", target.target_id, 0.0, False)
    assert scorer.score([final])[0] == pytest.approx(got)
    assert scorer.oracle([final])[0] == pytest.approx(
        scorer.similarity(target.caption, target.target_id, 5)
    )


def test_rewrite_fresh_reward_uses_the_env_reward_on_fresh_seeds():
    env_id = "PromptRewrite-Shapes-v1"
    scorer = FreshScorer(env_id, held_out_kwargs(env_id))
    plain = scorer.reward("a red circle", "a red circle", 0)
    styled = scorer.reward("a red circle", "a red circle, psychedelic, rainbow", 0)
    assert styled < plain  # relevance destroyed
    assert scorer.reward("a red circle", "a red circle, vivid", 1) == scorer.reward(
        "a red circle", "a red circle, vivid", 1
    )


def test_query_counter_counts_every_request_cached_or_not():
    backend = make_backend("shapes-v3")
    counter = QueryCounter(backend)
    with pytest.raises(RuntimeError):
        counter.stop()
    counter.start()
    backend.score(["a red circle"] * 3, [0, 0, 1])
    backend.score(["a red circle"], [0])
    assert counter.stop() == 4


def job(tmp_path: Path, **kw) -> Job:
    return Job(HARD, 0, kw.pop("episodes", 6), 0, tmp_path, **kw)


def test_baselines_report_prompts_and_queries(tmp_path):
    rank = rank_agent(job(tmp_path))
    env = gym.make(HARD, **held_out_kwargs(HARD))
    for f in rank.finals:  # every candidate, in rank order
        env.reset(seed=10_000 + f.episode)
        assert f.prompt == " ".join(env.unwrapped.candidates)
    assert rank.test_queries == sum(len(f.prompt.split()) for f in rank.finals)
    greedy = greedy_agent(job(tmp_path))
    assert all(f.stopped or len(f.prompt.split()) == 24 for f in greedy.finals)
    assert greedy.test_queries > rank.test_queries
    rand = random_agent(job(tmp_path))
    assert [f.episode for f in rand.finals] == list(range(6))
    assert [f.key for f in rand.finals] == [f.key for f in rank.finals]  # the same targets


def test_pez_contestant_inverts_each_target_and_counts_only_its_final_images(tmp_path):
    pez = pez_agent(job(tmp_path, episodes=2), steps=20)
    rank = rank_agent(job(tmp_path, episodes=2))
    assert [f.key for f in pez.finals] == [f.key for f in rank.finals]  # the same targets
    assert all(f.prompt and not f.stopped for f in pez.finals)
    env = gym.make(HARD, **held_out_kwargs(HARD))
    assert pez.test_queries == 2 * env.unwrapped.num_images  # one render per image seed


def test_random_search_spends_its_budget_within_one_episode(tmp_path):
    budget = 60.0
    entry = random_search_agent(job(tmp_path, search_queries=budget))
    per_episode = entry.test_queries / 6
    assert budget <= per_episode <= budget + 24  # an episode costs at most n_tokens queries
    plain = random_agent(job(tmp_path))
    fresh = FreshScorer(HARD, held_out_kwargs(HARD))
    assert np.mean([f.train_score for f in entry.finals]) > np.mean(
        [f.train_score for f in plain.finals]
    )
    assert fresh.score(entry.finals).shape == (6,)
    with pytest.raises(ValueError, match="search_queries"):
        random_search_agent(job(tmp_path))


def test_unknown_suite_or_task_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown suite"):
        run_suite("nope", tmp_path)
    with pytest.raises(ValueError, match="unknown tasks"):
        run_suite("shapes-quick", tmp_path, tasks=["nope"])
    with pytest.raises(ValueError, match="seeds"):
        run_suite("shapes-quick", tmp_path, seeds=0)


@pytest.mark.slow
def test_quick_suite_runs_end_to_end(tmp_path):
    summary = run_suite("shapes-quick", tmp_path, seeds=3, say=lambda line: None)
    for name in ("results.csv", "summary.json", "suite.md", "aggregate.png", "curves.png"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "summary.json").read_text())["suite"] == "shapes-quick"
    hard = next(t for t in summary["tasks"] if t["task"] == "inversion-hard")
    rows = {r["agent"]: r for r in hard["agents"]}
    assert rows["greedy"]["iqm"] > rows["random"]["iqm"] + 0.3
    assert hard["separated"]  # at least two agents apart


def test_cli_bench_suite_rejects_an_unknown_suite_in_one_line(capsys):
    from prompt_gym.cli import main

    assert main(["bench", "--suite", "nope"]) == 2
    assert "unknown suite" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs", [{}, held_out_kwargs(HARD)])
def test_the_hard_space_has_no_masked_slot_at_reset(kwargs):
    """Every in-space action is valid at reset (Gymnasium's checker steps a sampled action)."""
    env = gym.make(HARD, **kwargs)
    for i in range(64):
        obs, _ = env.reset(seed=i, options={"target_index": i})
        assert obs["action_mask"].all()
        caption = env.unwrapped.target.caption.replace(",", "").split()
        words = env.unwrapped.candidates
        assert all(words.count(w) >= caption.count(w) for w in caption)  # the caption fits
