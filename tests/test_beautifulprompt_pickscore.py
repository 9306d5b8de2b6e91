"""PickScore through transformers: the tiny twin loads with from_pretrained(local_files_only)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("open_clip")

from prompt_gym.backends.real.loading import ModelNotFoundError
from prompt_gym.backends.real.pickscore import PickScoreScorer
from prompt_gym.backends.real.presets import model_table
from prompt_gym.backends.registry import resolve


@pytest.fixture(scope="module")
def tiny():
    return resolve("preference", "tiny")(None)


def test_tiny_pickscore_is_logit_scale_times_cosine(tiny) -> None:
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from prompt_gym.backends.real.tiny import tiny_pickscore_dir

    path = tiny_pickscore_dir()
    model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(path, local_files_only=True)
    images = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    texts = ["a red circle", "a blue cube on the left", "a cat"]
    got = tiny.preference(texts, images)
    with torch.no_grad():
        inputs = processor(text=texts, images=list(images), return_tensors="pt", padding=True)
        out = model(**inputs)
        t = out.text_embeds / out.text_embeds.norm(dim=-1, keepdim=True)
        i = out.image_embeds / out.image_embeds.norm(dim=-1, keepdim=True)
        expect = (model.logit_scale.exp() * (t * i).sum(-1)).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)
    single = np.concatenate([tiny.preference([s], images[k : k + 1]) for k, s in enumerate(texts)])
    np.testing.assert_allclose(single, got, rtol=1e-5, atol=1e-6)  # batching is invisible
    assert tiny.config()["name"] == "tiny"


def test_pickscore_preset_in_the_model_table() -> None:
    (row,) = [r for r in model_table() if r["kind"] == "preference"]
    assert row["name"] == "pickscore"
    assert "yuvalkirstain/PickScore_v1" in row["source"]
    assert "laion/CLIP-ViT-H-14-laion2B-s32B-b79K" in row["source"]
    assert row["size"] and row["licence"]


def test_missing_pickscore_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        PickScoreScorer(str(tmp_path / "nope"), device="cpu")
