"""``prompt-gym invert`` and ``prompt-gym rewrite`` end to end, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from prompt_gym.agents.lm_ppo import ppo as lm_ppo
from prompt_gym.agents.lm_ppo import sft as lm_sft

from prompt_gym import make_backend
from prompt_gym.practitioner import add_practitioner_commands, load_image, save_image


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prompt-gym")
    add_practitioner_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.fn(args)


@pytest.fixture(scope="module")
def target_png(tmp_path_factory) -> Path:
    image = make_backend("shapes").generate(["a red sphere on a blue background"], [3])[0]
    return save_image(image, tmp_path_factory.mktemp("inv") / "target.png")


@pytest.mark.parametrize(("method", "extra"), [("greedy", []), ("reinforce", ["--steps", "150"])])
def test_invert_on_the_shapes_world(target_png, tmp_path, capsys, method, extra):
    torch.set_num_threads(1)
    out = tmp_path / "prompt.txt"
    code = run(["invert", str(target_png), "--backend", "shapes", "--method", method,
                "--out", str(out), *extra])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    prompt = out.read_text().strip()
    assert prompt and f"prompt: {prompt}" in printed
    similarity = float(printed.split("similarity: ")[1].split()[0])
    assert similarity > 0.6  # the scene is easy: its words are in the captions
    regenerated = load_image(out.with_suffix(".png"))
    assert regenerated.shape == load_image(target_png).shape


def test_invert_with_pez_on_the_tiny_backend(target_png, tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "pez.txt"
    assert run(["invert", str(target_png), "--backend", "tiny", "--method", "pez",
                "--steps", "30", "--prompt-len", "8", "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    sims = {
        key: float(printed.split(f"{key}: ")[1].split()[0])
        for key in ("text_image_similarity", "initial_text_image_similarity")
    }
    assert sims["text_image_similarity"] > sims["initial_text_image_similarity"]
    assert out.with_suffix(".png").is_file()


def test_invert_errors_are_clear(target_png, tmp_path):
    with pytest.raises(ValueError, match="use --method pez"):
        run(["invert", str(target_png), str(target_png), "--backend", "shapes"])
    with pytest.raises(ValueError, match="no image"):
        run(["invert", str(tmp_path / "missing.png"), "--backend", "shapes"])
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        run(["invert", str(tmp_path / "bad.png"), "--backend", "shapes"])


def test_rewrite_without_checkpoint_uses_the_greedy_search(capsys):
    assert run(["rewrite", "a purple sphere", "--backend", "shapes"]) == 0
    printed = capsys.readouterr().out
    rewrite = printed.split("rewrite: ")[1].splitlines()[0]
    assert rewrite.startswith("a purple sphere, ")
    reward = float(printed.split("reward: ")[1].split()[0])
    assert reward > 0  # greedy only adds what helps; the plain prompt scores about 0
    assert "greedy modifier search" in printed


def test_rewrite_with_an_lm_ppo_checkpoint(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"  # --sft PAIRS.jsonl: here a fixed tag list
    lm_sft.write_pairs(
        [(p, f"{p}, vivid, high contrast") for p in ("a red circle", "a blue cube", "two stars")],
        pairs,
    )
    args = lm_ppo.Args(
        total_timesteps=300,
        num_envs=16,
        sft=str(pairs),
        sft_steps=60,
        eval_episodes=8,
        logdir=str(tmp_path),
    )
    run_dir = lm_ppo.train(args)["run_dir"]
    assert not (run_dir / lm_ppo.PAIRS_FILE).exists()  # the given pairs were used
    assert run(["rewrite", "a purple sphere", "--checkpoint", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert "rewrite: " in printed and "LM-PPO policy" in printed
    parts = printed.split("reward: ")[1]
    assert np.isfinite(float(parts.split()[0]))
    assert "relevance" in parts and "aesthetic" in parts


def test_lm_ppo_needs_pairs_off_the_shapes_world(tmp_path):
    from fakes import fake_backend

    from prompt_gym.envs.tokenizers import WordTokenizer

    kwargs = {
        "backend": fake_backend(),
        "tokenizer": WordTokenizer(["a red circle, vivid"]),
        "prompts": ["a red circle"],
    }
    with pytest.raises(ValueError, match="needs SFT pairs"):
        lm_ppo.train(lm_ppo.Args(env_kwargs=kwargs, num_envs=2, logdir=str(tmp_path)))
    assert not any(tmp_path.iterdir())  # refused before creating a run directory
