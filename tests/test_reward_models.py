"""Text reward models: they learn a known target, and load back by path."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from prompt_gym.reward_models import TextRewardModel, rm_examples, rm_text
from prompt_gym.reward_models.train import RMArgs, train_reward_model

WORDS = ("vivid", "foggy", "neon", "soft")
SUBJECTS = [
    f"a {c} {s}"
    for c in ("red", "blue", "green", "pink", "gray")
    for s in ("circle", "cube", "star", "ring", "egg", "heart")
]


def _synthetic_rows() -> list[dict]:
    """Rewrites of 30 subjects; the target is a known function of the words: +1 for "vivid",
    -1 for "foggy", +0.5 for "neon", and +1 when the subject is red."""
    rng = np.random.default_rng(0)
    rows = []
    for x in SUBJECTS:
        for _ in range(12):
            mods = [WORDS[i] for i in rng.choice(4, size=int(rng.integers(0, 4)), replace=False)]
            y = ", ".join([x, *mods])
            score = ("vivid" in mods) - ("foggy" in mods) + 0.5 * ("neon" in mods) + ("red" in x)
            rows.append(
                {
                    "kind": "rewrite",
                    "source": x,
                    "prompt": y,
                    "seed": 0,
                    "aesthetic": float(score),
                    "valid": True,
                }
            )
    return rows


def test_rm_learns_a_known_target_on_held_out_sources(tmp_path) -> None:
    args = RMArgs(target="aesthetic", epochs=25, learning_rate=2e-3, holdout=0.25, seed=0)
    rm, metrics = train_reward_model(_synthetic_rows(), args, tmp_path / "rm")
    assert metrics["heldout_examples"] > 40
    assert metrics["heldout_r2"] > 0.8, metrics
    assert metrics["heldout_spearman"] > 0.85, metrics
    loaded = TextRewardModel.load(tmp_path / "rm")
    texts = ["a red star, vivid", "a blue egg, foggy", ""]
    assert loaded.target == "aesthetic" and loaded.metrics == metrics
    np.testing.assert_allclose(loaded.predict(texts), rm.predict(texts), atol=1e-5)
    assert loaded.predict(texts)[0] > loaded.predict(texts)[1] + 1.0


def test_examples_average_seeds_and_format_pickscore_inputs() -> None:
    rows = [
        {
            "kind": "rewrite",
            "source": "a cat",
            "prompt": "a cat, vivid",
            "seed": s,
            "pickscore": v,
            "valid": True,
        }
        for s, v in ((0, 20.0), (1, 22.0))
    ] + [{"kind": "request", "prompt": "a cat", "seed": 0, "pickscore": None}]
    texts, labels, sources = rm_examples(rows, "pickscore")
    assert texts == ["Input: a cat\nOutput: a cat, vivid"] and labels.tolist() == [21.0]
    assert sources == ["a cat"]
    assert rm_text("aesthetic", "a cat", "a cat, vivid") == "a cat, vivid"
    with pytest.raises(ValueError, match="no 'rewrite' rows"):
        rm_examples(rows, "aesthetic")
    with pytest.raises(ValueError, match="target must be one of"):
        rm_examples(rows, "clipscore")


def test_load_refuses_a_directory_that_is_not_a_reward_model(tmp_path) -> None:
    with pytest.raises(ValueError, match="not a reward model"):
        TextRewardModel.load(tmp_path)
