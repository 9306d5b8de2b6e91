"""`prompt-gym train --agent lm-ppo --sft PAIRS`, then `eval --checkpoint RUN --split ...` on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from prompt_gym.agents.lm_ppo import ppo as lm_ppo
from prompt_gym.agents.lm_rollout import TokenSpace, make_venv, model_rewriter, run_rewriter

from prompt_gym.cli import main

ENV = "PromptRewriteTokens-Shapes-v0"
SUFFIX = ", grainy, blurry"
"""The SFT targets append this: modifiers the generated pairs would not pick (they blur shapes)."""
EVAL_SEED, EVAL_EPISODES = 10_000, 16


def split_prompts(split: str) -> set[str]:
    venv = make_venv(ENV, 1, {"split": split})
    prompts = set(venv.unwrapped.prompt_set)
    venv.close()
    return prompts


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny lm-ppo run from the CLI with its own SFT pairs: (run directory, pairs file)."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("lmppo")
    sources = sorted(split_prompts("train"))[:64]
    pairs = tmp / "pairs.jsonl"
    pairs.write_text(
        "".join(json.dumps({"source": s, "target": s + SUFFIX}) + "\n" for s in sources)
    )
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        json.dumps(
            {
                "sft_steps": 150,
                "eval_episodes": EVAL_EPISODES,
                "eval_seed": EVAL_SEED,
                "save_every": 1,
            }
        )
    )
    argv = ["train", "--env", ENV, "--agent", "lm-ppo", "--sft", str(pairs), "--config", str(cfg),
            "--total-timesteps", "300", "--num-envs", "16",
            "--logdir", str(tmp / "runs")]  # fmt: skip
    assert main(argv) == 0
    (run_dir,) = (tmp / "runs").iterdir()
    return run_dir, pairs


def printed_summary(capsys) -> dict[str, str]:
    lines = capsys.readouterr().out.splitlines()
    return {k.strip(): v.strip() for k, v in (ln.split(": ", 1) for ln in lines if ": " in ln)}


def test_train_uses_the_sft_pairs_given_with_the_flag(run):
    run_dir, pairs = run
    info = json.loads((run_dir / "run.json").read_text())
    assert info["agent"] == "lm-ppo" and info["args"]["sft"] == str(pairs)
    assert not (run_dir / lm_ppo.PAIRS_FILE).exists()  # nothing generated: the file was used
    # the SFT model learnt the given pairs: it appends their suffix to held-out prompts
    sft, _ = lm_ppo.load_model(run_dir, which="sft")
    venv = make_venv(ENV, 8, {"split": "test"})
    space = TokenSpace.of(venv)
    tests = sorted(split_prompts("test"))[:8]
    episodes = run_rewriter(venv, model_rewriter(sft, space), list(range(8)), tests)
    venv.close()
    rewrites = [e.info["prompt"] for e in episodes]
    assert sum(r.endswith(SUFFIX) for r in rewrites) >= 6, rewrites


def test_eval_checkpoint_reproduces_the_training_summary_on_the_test_split(run, tmp_path, capsys):
    run_dir, _ = run
    out = {split: tmp_path / f"{split}.json" for split in ("train", "test")}
    for split, path in out.items():
        argv = ["eval", "--checkpoint", str(run_dir), "--split", split, "--seed", str(EVAL_SEED),
                "--episodes", str(EVAL_EPISODES), "--json", str(path)]  # fmt: skip
        assert main(argv) == 0
    assert "test split" in capsys.readouterr().out
    results = {split: json.loads(p.read_text()) for split, p in out.items()}
    for split, r in results.items():
        assert {"mean_return", "ci95", "episodes", "env_id"} <= set(r)
        assert r["split"] == split and r["episodes"] == EVAL_EPISODES and r["env_id"] == ENV
        assert {ex["source"] for ex in r["examples"]} <= split_prompts(split)
    # the training summary's eval (greedy, test split, seeds EVAL_SEED + i) is what eval reports
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    (logged,) = events.Scalars("eval/mean_return")
    assert results["test"]["mean_return"] == pytest.approx(logged.value, abs=1e-5)
    assert results["train"]["mean_return"] != pytest.approx(logged.value, abs=1e-5)


def test_train_summary_names_the_test_split(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({"sft_steps": 5, "sft_pair_prompts": 8, "eval_episodes": 4}))
    argv = ["train", "--env", ENV, "--agent", "lm-ppo", "--config", str(cfg),
            "--total-timesteps", "50", "--num-envs", "4", "--logdir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    lines = printed_summary(capsys)
    assert "4 episodes, test split" in lines["eval return"]
    assert "sft eval return" in lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "train",
                "--env",
                "ImageInversion-Shapes-v0",
                "--agent",
                "reinforce",
                "--sft",
                "{pairs}",
            ],
            "no SFT stage",
        ),
        (["train", "--env", ENV, "--agent", "lm-ppo", "--sft", "{missing}"], "no such file"),
        (
            ["eval", "--env", "ImageInversion-Shapes-v0", "--agent", "random", "--split", "test"],
            "has no prompt split",
        ),
    ],
)
def test_sft_and_split_flags_fail_clearly(tmp_path, capsys, argv, message):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"source": "a red circle", "target": "a red circle, vivid"}\n')
    argv = [a.format(pairs=pairs, missing=tmp_path / "nope.jsonl") for a in argv]
    assert main([*argv, "--logdir", str(tmp_path)] if argv[0] == "train" else argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*__*"))  # rejected before a run directory was made


def test_resume_rejects_a_new_sft_file(run, capsys):
    run_dir, pairs = run
    assert main(["train", "--resume", str(run_dir), "--sft", str(pairs)]) == 2
    assert "--sft" in capsys.readouterr().err
