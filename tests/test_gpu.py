"""GPU checks with real weights: run with ``pytest -m gpu`` on a CUDA machine that has them.

Each test skips (with the reason) when CUDA or the preset's weights are missing; the default
suite deselects them all. Fetch the weights first with ``prompt-gym download sd-turbo`` and
``prompt-gym download sd-turbo-aesthetic``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def _backend(name: str):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from prompt_gym.backends.factory import shared_backend
    from prompt_gym.backends.real.loading import ModelNotFoundError

    try:
        return shared_backend(name)
    except ModelNotFoundError as err:
        pytest.skip(f"weights of {name} are not available: {err}")


def test_sd_turbo_images_are_finite_and_batch_equals_single() -> None:
    backend = _backend("sd-turbo")
    prompts = ["a red sphere on a blue background", "a photo of a cat", "a green cube"]
    images = backend.generate(prompts, [0, 1, 2])
    assert images.shape == (3, 512, 512, 3) and images.dtype == np.uint8
    assert images.reshape(3, -1).std(axis=1).min() > 5  # not blank
    single = backend.generate(prompts[1:2], [1])
    diff = np.abs(images[1].astype(int) - single[0].astype(int))
    assert diff.mean() < 2.0, diff.mean()  # per-sample generators: batch-independent noise


def test_clip_b32_orders_matching_text_above_a_mismatch() -> None:
    backend = _backend("sd-turbo")
    result = backend.score(["a red apple on a white table"], [0])
    texts = backend.embed_texts(["a red apple on a white table", "a blue car on a highway"])
    sims = texts @ result.image_embeds[0]
    assert result.valid[0] and sims[0] > sims[1] + 0.05, sims


def test_laion_aesthetic_head_scores_on_its_0_to_10_scale() -> None:
    backend = _backend("sd-turbo-aesthetic")
    result = backend.score(
        ["a beautiful landscape, highly detailed, golden hour, trending on artstation", "a"],
        [0, 0],
        aesthetic=True,
    )
    assert result.valid.all()
    assert ((result.aesthetic > 0) & (result.aesthetic < 10)).all(), result.aesthetic


def test_prompt_rewrite_v0_runs_an_episode_on_the_gpu() -> None:
    import gymnasium as gym

    backend = _backend("sd-turbo-aesthetic")
    env = gym.make("PromptRewrite-v0", backend=backend)
    env.reset(seed=0, options={"prompt": "a lighthouse by the sea"})
    _, reward, terminated, _, info = env.step(0)
    _, reward, terminated, _, info = env.step(env.action_space.n - 1)
    assert terminated and np.isfinite(reward) and info["image_valid"]
