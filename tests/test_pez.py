"""PEZ on the tiny open_clip scorer: the projected hard prompt beats its random start; which
model PEZ differentiates through (the white-box seam)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prompt_gym.agents import pez

from prompt_gym import make_backend


@pytest.fixture(scope="module")
def backend():
    torch.set_num_threads(1)
    return make_backend("shapes", scorer="tiny")  # the tiny CLIP, with cheap shapes images


def test_pez_raises_similarity_over_its_initial_prompt(backend):
    images = backend.generate(["a red sphere on a blue background"], [3])
    result = pez.invert(backend, images, prompt_len=8, steps=40, seed=0)
    assert result.similarity > result.initial_similarity + 0.2, result
    assert len(result.token_ids) == 8 and result.prompt
    # the projected prompt's cosine improves during the search
    cos = [c for _, c in result.history]
    assert max(cos) > cos[0] + 0.2
    # the reported similarity is what the scorer says about the decoded text
    text = backend.scorer.embed_texts([result.prompt])[0]
    assert result.similarity == pytest.approx(
        float(text @ backend.embed_images(images)[0]), abs=1e-5
    )


def test_pez_encoder_matches_open_clip(backend):
    clip, tok = backend.scorer.clip, backend.scorer.tokenizer
    ids = tok(["a small green cube"])
    n = int((ids[0] > 0).sum()) - 2
    with torch.no_grad():
        ref = torch.nn.functional.normalize(clip.encode_text(ids).float(), dim=-1)
        ours = pez._encode(clip, clip.token_embedding(ids[:, 1 : 1 + n]), ids, 1 + n)
    assert torch.allclose(ref, ours, atol=1e-6)


def _procedural_backend_without_a_proxy():
    from prompt_gym.backends.reward_backend import RewardBackend
    from prompt_gym.backends.shapes.captioner import ShapesCaptioner
    from prompt_gym.backends.shapes.render import ShapesGenerator
    from prompt_gym.backends.shapes.scorer import ShapesScorer
    from prompt_gym.backends.world import SHAPES_WORLD

    return RewardBackend(
        ShapesGenerator(), ShapesScorer(), ShapesCaptioner(), name="custom", world=SHAPES_WORLD
    )


def test_pez_needs_a_differentiable_scorer_or_a_declared_proxy():
    with pytest.raises(ValueError, match="greedy or reinforce"):
        pez.invert(_procedural_backend_without_a_proxy(), np.zeros((1, 16, 16, 3), np.uint8))


def test_the_white_box_is_the_own_open_clip_scorer_or_the_presets_proxy(backend):
    from prompt_gym.backends.registry import DIFFERENTIABLE_PROXIES

    assert pez.white_box(backend) is backend.scorer  # open_clip already: no proxy
    proxy = pez.white_box(make_backend("shapes"))
    assert proxy.name == DIFFERENTIABLE_PROXIES["shapes"] == "shapes-clip"
    assert pez.white_box(make_backend("shapes-v3")) is proxy  # built once per process


def test_pez_rejects_bad_input(backend):
    with pytest.raises(ValueError, match="uint8"):
        pez.invert(backend, np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="prompt_len"):
        pez.invert(backend, np.zeros((1, 16, 16, 3), np.uint8), prompt_len=0)


def test_pez_evaluate_reports_env_episodes():
    from prompt_gym.agents.episodes import summarize

    kwargs = {"backend": make_backend("shapes", scorer="tiny"), "target_set_size": 4}
    episodes = pez.evaluate("ImageInversion-Shapes-v0", 2, seed=0, env_kwargs=kwargs, steps=5)
    summary = summarize(episodes, "ImageInversion-Shapes-v0")
    assert summary["episodes"] == 2 and -1 <= summary["mean_final_similarity"] <= 1
    with pytest.raises(ValueError, match="ImageInversion"):
        pez.evaluate("PromptRewrite-Shapes-v0", 1)
    with pytest.raises(ValueError, match="greedy or reinforce"):
        kwargs = {"backend": _procedural_backend_without_a_proxy()}
        pez.evaluate("ImageInversion-Shapes-v0", 1, env_kwargs=kwargs)


def test_pezs_other_uses_run_on_the_tiny_open_clip_scorer(backend):
    """Distillation, concatenation and multi-image inversion on an open_clip scorer (the real
    presets' path): PEZ optimises the backend's own text tower, and every figure is its cosine."""
    from prompt_gym.agents import pez_uses

    short = pez_uses.distill(backend, "two large red cubes on the left", tokens=3, steps=40)
    assert short.tokens == 3 and short.source_tokens == 7 and short.prompt
    assert len(backend.scorer.tokenizer.encode(short.prompt)) <= 4  # decoding may merge tokens
    target = backend.scorer.embed_texts([short.source])
    start = pez.search(backend.scorer, target, 3, steps=1, seed=0)  # distill's random start
    assert short.text_similarity > start.initial_similarity + 0.3, (short, start)

    images = backend.generate(["a red cube", "a blue circle", "a green star"], [1, 2, 3])
    joint = pez.invert(backend, images, prompt_len=8, steps=40, seed=0)
    per_image = backend.scorer.embed_texts([joint.prompt])[0] @ backend.embed_images(images).T
    assert joint.similarity == pytest.approx(float(per_image.mean()), abs=1e-5)
    assert joint.similarity > joint.initial_similarity + 0.3, joint

    both = pez_uses.concatenate(backend, images[0], images[1], prompt_len=4, steps=40)
    assert both.joined == f"{both.prompts[0]} {both.prompts[1]}"
    assert both.similarity.shape == (3, 2) and np.all(np.abs(both.similarity) <= 1)
