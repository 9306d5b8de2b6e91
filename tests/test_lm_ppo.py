"""LM-PPO on PromptRewriteTokens-Shapes-v0: SFT, decoding, the env replay, PPO, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from prompt_gym.agents.episodes import ci95, summarize
from prompt_gym.agents.lm_ppo import ppo as lm_ppo
from prompt_gym.agents.lm_ppo import sft as lm_sft
from prompt_gym.agents.lm_ppo.losses import AdaptiveKLController, logprobs_of
from prompt_gym.agents.lm_ppo.models import (
    Batch,
    ValueModel,
    build_policy,
    diverse_beam_search,
    frozen_copy,
    response_logits,
    sample,
)
from prompt_gym.agents.lm_rollout import (
    LMPolicy,
    TokenSpace,
    evaluate_model,
    make_venv,
    model_rewriter,
    replay,
    reset_episodes,
    run_rewriter,
)
from prompt_gym.agents.runs import episode_seeds

from prompt_gym.envs.prompt_sets import load_modifiers

ENV_ID = "PromptRewriteTokens-Shapes-v0"


@pytest.fixture(scope="module")
def world():
    """A 32-env vector env, its id layout, and an SFT'd tiny GPT-2 (with its loss curve)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    venv = make_venv(ENV_ID, 32, {})
    space = TokenSpace.of(venv)
    u = venv.unwrapped
    pairs = lm_sft.shapes_pairs(u.backend, list(u.prompt_set[:64]), load_modifiers(u.backend))
    data = lm_sft.tokenize_pairs(pairs, space.tokenizer, space.sep, 32, space.max_new)
    model = build_policy("tiny", space.vocab, space.length)
    before = lm_sft.eval_sft_loss(model, data, space.vocab)
    lm_sft.train_sft(model, data, space.vocab, steps=200, batch_size=32, learning_rate=1e-3)
    after = lm_sft.eval_sft_loss(model, data, space.vocab)
    yield venv, space, model, pairs, (before, after)
    venv.close()


def test_sft_lowers_the_sft_loss_and_learns_the_pairs(world):
    _, space, model, pairs, (before, after) = world
    assert before > math.log(space.vocab) * 0.8  # random init: about uniform
    assert after < 0.3 * before
    # the generated pairs append modifiers to the plain prompt
    assert all(t.startswith(s) for s, t in pairs) and any(t != s for s, t in pairs)
    queries = [[*space.tokenizer.encode(s), space.sep] for s, _ in pairs[:16]]
    out = sample(model, queries, [space.max_new] * 16, space.vocab, space.eos, greedy=True)
    copied = [
        space.tokenizer.decode(r).startswith(s) for r, (s, _) in zip(out, pairs, strict=False)
    ]
    assert np.mean(copied) >= 0.5


def test_decoding_matches_the_full_forward_and_the_env(world):
    venv, space, model, _, _ = world
    seeds = list(range(8))
    queries, limits = reset_episodes(venv, seeds)
    torch.manual_seed(1)
    responses = sample(model, queries, limits, space.vocab, space.eos)
    for r, limit in zip(responses, limits, strict=True):
        assert 1 <= len(r) <= limit and (r[-1] == space.eos or len(r) == limit)
        assert all(0 <= t < space.vocab for t in r[:-1])
    greedy = sample(model, queries, limits, space.vocab, space.eos, greedy=True)
    batch = Batch(queries, greedy, space.pad)
    logits = response_logits(model, batch, space.vocab)
    argmax = logits.argmax(-1)
    for i, r in enumerate(greedy):
        assert argmax[i, : len(r)].tolist() == r  # the cached decoding is the full forward's
    episodes = replay(venv, responses, seeds)
    cores = venv.unwrapped.cores
    for i, (e, r) in enumerate(zip(episodes, responses, strict=True)):
        ids = [t for t in r if t != space.eos]
        assert e.info["prompt"] == space.tokenizer.decode(ids)
        assert [*cores[i].source_ids, space.sep] == queries[i]  # the env saw exactly these
        assert cores[i].continuation == ids
        assert e.rewards[:-1].sum() == 0 and np.isfinite(e.ret)
    # the observation-level policy agrees with the decoder on the first token
    rows = [venv.unwrapped.reset_one(i, seed=seed)[0] for i, seed in enumerate(seeds)]
    obs = {k: np.stack([o[k] for o in rows]) for k in rows[0]}
    first = LMPolicy(model, space.vocab)(obs)
    assert first.tolist() == [r[0] for r in greedy]


def test_diverse_beam_search(world):
    venv, space, model, _, _ = world
    queries, limits = reset_episodes(venv, [3, 4])
    one = diverse_beam_search(model, queries, limits, space.vocab, space.eos, 1, 1, 0.0)
    greedy = sample(model, queries, limits, space.vocab, space.eos, greedy=True)
    assert [b[0] for b in one] == greedy  # one beam is greedy decoding
    beams = diverse_beam_search(model, queries, limits, space.vocab, space.eos, 4, 4, 1.0)
    strong = diverse_beam_search(model, queries, limits, space.vocab, space.eos, 4, 4, 100.0)
    for group, diverse, limit in zip(beams, strong, limits, strict=True):
        assert len(group) == 4 and len({tuple(b) for b in group}) >= 2
        assert len({b[0] for b in diverse}) == 4  # a huge penalty: every group starts apart
        for b in group + diverse:
            assert 1 <= len(b) <= limit and (b[-1] == space.eos or len(b) == limit)
    with pytest.raises(ValueError):
        diverse_beam_search(model, queries, limits, space.vocab, space.eos, 4, 3, 1.0)


def test_one_ppo_update_moves_probability_toward_better_rewrites(world):
    venv, space, sft_model, _, _ = world
    torch.manual_seed(2)
    policy = frozen_copy(sft_model)
    for p in policy.parameters():
        p.requires_grad_(True)
    value = ValueModel(policy)
    args = lm_ppo.Args(num_minibatches=1, ppo_epochs=4, learning_rate=3e-4)
    optimizer = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=3e-4)
    kl = AdaptiveKLController(0.2, 6.0, 10_000)
    seeds = episode_seeds(5, 0, 32)
    ro = lm_ppo.collect(
        args, venv, policy, sft_model, value, space, seeds, np.random.default_rng(0)
    )
    assert ro.ref_logprobs.allclose(ro.logprobs)  # policy == reference before the update
    stats = lm_ppo.ppo_update(
        args, policy, value, optimizer, kl, ro, space.vocab, torch.Generator()
    )
    assert all(np.isfinite(v) for v in stats.values())
    assert stats["objective/kl"] == pytest.approx(0.0, abs=1e-4)
    with torch.no_grad():
        new = logprobs_of(response_logits(policy, ro.batch, space.vocab), ro.batch.responses)
    mask = ro.batch.response_mask
    delta = ((new - ro.logprobs) * mask).sum(1)
    scores = ro.scores
    better = scores > scores.median()
    worse = scores < scores.median()
    assert delta[better].mean() > delta[worse].mean()
    assert torch.corrcoef(torch.stack([delta, scores]))[0, 1] > 0.2


def test_short_training_run_logs_saves_and_reloads(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = lm_ppo.Args(
        total_timesteps=1200,
        num_envs=32,
        sft_steps=100,
        sft_pair_prompts=48,
        eval_episodes=32,
        save_every=2,
        examples_every=1,
        logdir=str(tmp_path),
    )
    summary = lm_ppo.train(args)
    run_dir = summary["run_dir"]
    assert summary["global_step"] >= 1200 and summary["checkpoint"].is_file()
    assert summary["sft"]["sft_loss_after"] < summary["sft"]["sft_loss_before"]
    for key in ("eval", "sft_eval", "random_eval"):
        assert summary[key]["episodes"] == 32 and np.isfinite(summary[key]["mean_return"])
    assert summary["eval"]["mean_return"] > summary["random_eval"]["mean_return"] + 2.0
    assert (run_dir / lm_ppo.PAIRS_FILE).is_file() and summary["curve_png"].is_file()

    # the policy moved away from the SFT reference, by a finite KL
    policy, _ = lm_ppo.load_model(run_dir)
    sft, _ = lm_ppo.load_model(run_dir, which="sft")
    moved = [
        (a - b).abs().max().item()
        for a, b in zip(policy.parameters(), sft.parameters(), strict=True)
    ]
    assert max(moved) > 1e-4

    events = EventAccumulator(str(run_dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in (
        "charts/episodic_return",
        "charts/reward_relevance",
        "charts/reward_aesthetic",
        "losses/policy_loss",
        "losses/value_loss",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/entropy",
        "losses/grad_norm",
        "charts/kl_coef",
        "objective/kl",
        "sft/loss",
        "eval/mean_return",
    ):
        assert tag in scalars, tag
    kls = [e.value for e in events.Scalars("objective/kl")]
    assert all(math.isfinite(v) for v in kls) and max(kls) > 0
    assert "text/sample_rewrites/text_summary" in events.Tags()["tensors"]

    # the batched observation policy of the checkpoint, and the eval command's episodes
    act, run_args = lm_ppo.load_policy(run_dir)
    assert isinstance(act, LMPolicy) and run_args.env_id == ENV_ID
    episodes = lm_ppo.evaluate(ENV_ID, 32, args.eval_seed, {"split": "test"}, checkpoint=run_dir)
    again = summarize(episodes, ENV_ID)["mean_return"]
    assert again == pytest.approx(summary["eval"]["mean_return"])  # same episodes, same policy

    # resume continues from the checkpoint
    more = lm_ppo.train(
        lm_ppo.Args(**{**run_args.__dict__, "total_timesteps": 1800}), resume=run_dir
    )
    assert more["global_step"] >= 1800 and more["run_dir"] == run_dir


def test_beam_rollouts_and_bad_settings(world, tmp_path):
    venv, space, model, _, _ = world
    args = lm_ppo.Args(rollout="beam", num_beams=4, num_beam_groups=2)
    lm_ppo.check_args(args)
    value = ValueModel(model)
    ro = lm_ppo.collect(
        args, venv, model, model, value, space, list(range(32)), np.random.default_rng(0)
    )
    assert len(ro.episodes) == 32 and torch.isfinite(ro.scores).all()
    with pytest.raises(ValueError, match="rollout"):
        lm_ppo.check_args(lm_ppo.Args(rollout="nucleus"))
    with pytest.raises(ValueError, match="no such file"):
        lm_ppo.check_args(lm_ppo.Args(sft=str(tmp_path / "missing.jsonl")))
    with pytest.raises(ValueError, match="PromptRewriteTokens"):
        make_venv("PromptRewrite-Shapes-v0", 2, {})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "a red circle"}\n')
    with pytest.raises(ValueError, match="source"):
        lm_sft.read_pairs(bad)


def test_ppo_raises_reward_over_the_sft_policy(tmp_path):
    """48k PPO steps (about 55 s on 2 CPU cores) raise the policy's mean reward over its SFT start.

    Measured on held-out prompts, the same episodes for both policies: the mean reward of the
    policy, sampling (what PPO maximises; 1024 test episodes, seeds ``10000 + i``). With these
    settings, seeds 1, 2, 3 gave +0.37, +0.39, +0.56 (each +- 0.15, 95% CI); at 80k steps
    +0.54, +0.48, +0.54. Stated margin: > 0.2, and clear of its own CI. Seed 1 is the median.

    Greedy decoding (the run's summary ``eval``) is the noisier measure, because one flipped
    token changes a whole rewrite: seeds 1-3 gave +0.31, +0.33, +0.17 at 48k (256 episodes) but
    +0.35, +0.04, -0.01 at 80k (1024 episodes); it is only checked not to fall below the SFT
    start by more than 0.1.
    """
    args = lm_ppo.Args(seed=1, total_timesteps=48_000, eval_episodes=256, logdir=str(tmp_path))
    summary = lm_ppo.train(args)

    def sampled_returns(which: str) -> np.ndarray:
        model, _ = lm_ppo.load_model(summary["run_dir"], which)
        torch.manual_seed(0)
        episodes = evaluate_model(
            model, ENV_ID, {"split": "test"}, 1024, args.eval_seed, greedy=False
        )
        return np.array([e.ret for e in episodes])

    gain = sampled_returns("policy") - sampled_returns("sft")
    assert gain.mean() > 0.2, (gain.mean(), ci95(gain))
    assert gain.mean() > ci95(gain)  # clear of the episode noise
    ppo, sft = summary["eval"]["mean_return"], summary["sft_eval"]["mean_return"]
    assert summary["eval"]["episodes"] == summary["sft_eval"]["episodes"] == 256
    assert ppo > sft - 0.1, (ppo, sft)


def test_model_rewriter_on_given_prompts(world):
    venv, space, model, _, _ = world
    episodes = run_rewriter(
        venv, model_rewriter(model, space), [0, 1], ["a red circle", "a blue cube"]
    )
    assert [e.info["source"] for e in episodes] == ["a red circle", "a blue cube"]


def test_pretrained_models_load_offline_from_a_directory_or_fail_clearly(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(
        GPT2Config(vocab_size=100, n_layer=1, n_embd=16, n_head=2, n_positions=64)
    ).save_pretrained(tmp_path / "lm")
    model = build_policy(str(tmp_path / "lm"), vocab_size=100, n_positions=64)
    emb = model.get_input_embeddings().weight
    assert emb.shape == (102, 16)  # PAD and SEP appended
    assert model.get_output_embeddings().weight.shape[0] == 102
    assert model.config.resid_pdrop == 0.0  # Promptist trains without dropout
    with pytest.raises(ValueError, match="ids would not match"):
        build_policy(str(tmp_path / "lm"), vocab_size=90, n_positions=64)
    with pytest.raises(ValueError, match="not available locally"):
        build_policy("prompt-gym-tests/no-such-model", vocab_size=100, n_positions=64)
