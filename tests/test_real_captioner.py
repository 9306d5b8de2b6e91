"""BLIP captioner on a tiny random-weight BLIP: offline, CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("torch")
pytest.importorskip("transformers")

from prompt_gym.backends.protocols import Target
from prompt_gym.backends.real.blip import BlipCaptioner
from prompt_gym.backends.real.blip import tiny as tiny_captioner


@pytest.fixture(scope="module")
def captioner() -> BlipCaptioner:
    return tiny_captioner(device="cpu", max_new_tokens=8)


@pytest.fixture(scope="module")
def targets() -> list[Target]:
    rng = np.random.default_rng(0)
    return [
        Target(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), target_id=str(i))
        for i in range(3)
    ]


def test_n_captions_per_target(captioner: BlipCaptioner, targets: list[Target]) -> None:
    captions = captioner.caption(targets, 4, seed=0)
    assert len(captions) == 3
    assert all(len(c) == 4 and all(isinstance(s, str) for s in c) for c in captions)
    assert any(s for c in captions for s in c)  # the tiny vocabulary yields real words
    assert "[DEC]" not in " ".join(s for c in captions for s in c)


def test_deterministic_given_seed(captioner: BlipCaptioner, targets: list[Target]) -> None:
    import torch

    state = torch.random.get_rng_state()
    first = captioner.caption(targets, 3, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert captioner.caption(targets, 3, seed=7) == first
    assert captioner.caption(targets, 3, seed=8) != first
    # Arrays are accepted as targets too.
    assert captioner.caption([t.image for t in targets], 3, seed=7) == first


def test_bad_arguments(captioner: BlipCaptioner, targets: list[Target]) -> None:
    with pytest.raises(ValueError):
        captioner.caption(targets, 0)
    with pytest.raises(ValueError):
        captioner.caption([np.zeros((8, 8), np.uint8)], 1)
    assert captioner.caption([], 2) == []


def test_save_pretrained_round_trips(captioner: BlipCaptioner, targets, tmp_path) -> None:
    captioner.blip.save_pretrained(tmp_path)
    captioner.processor.save_pretrained(tmp_path)
    with pytest.warns(RuntimeWarning, match="runs on cpu"):
        loaded = BlipCaptioner(str(tmp_path), device="cpu", max_new_tokens=8)
    assert loaded.caption(targets, 2, seed=3) == captioner.caption(targets, 2, seed=3)


def test_config(captioner: BlipCaptioner) -> None:
    cfg = captioner.config()
    assert cfg["name"] == "tiny" and cfg["sampling"]["max_new_tokens"] == 8
