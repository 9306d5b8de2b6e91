"""CUDA out-of-memory recovery (faked on CPU): split, retry, remember the size that fits."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from prompt_gym.backends.protocols import Target  # noqa: E402
from prompt_gym.backends.real.blip import tiny as tiny_captioner  # noqa: E402
from prompt_gym.backends.real.clip import tiny as tiny_scorer  # noqa: E402
from prompt_gym.backends.real.oom import OomSplitter  # noqa: E402


def _oom_above(limit: int, sizes: list[int]):
    def check(n: int) -> None:
        sizes.append(n)
        if n > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")

    return check


def test_splitter_halves_retries_and_remembers() -> None:
    sizes: list[int] = []
    check = _oom_above(2, sizes)
    splitter = OomSplitter("an item", "try less")

    def run(a: int, b: int) -> tuple[int, int]:
        check(b - a)
        return a, b

    assert splitter.map(7, None, run) == [(0, 1), (1, 3), (3, 5), (5, 7)]
    assert sizes == [7, 3, 1, 2, 4, 2, 2] and splitter.splits == 3 and splitter.limit == 1
    sizes.clear()
    assert splitter.map(3, None, run) == [(0, 1), (1, 2), (2, 3)]  # starts from what fits
    assert sizes == [1, 1, 1] and splitter.splits == 3


def test_splitter_reports_a_single_item_that_does_not_fit() -> None:
    splitter = OomSplitter("sd-turbo: a single 512x512 image", "use taesd=True")
    check = _oom_above(0, [])
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"512x512 image does not fit.*taesd"):
        splitter.map(2, None, lambda a, b: check(b - a))


class _OomClip:
    """Delegates to a CLIP model, raising CUDA OOM for batches larger than ``limit``."""

    def __init__(self, clip, limit: int) -> None:
        self.clip, self.sizes = clip, []
        self.check = _oom_above(limit, self.sizes)

    def encode_image(self, x):
        self.check(len(x))
        return self.clip.encode_image(x)

    def encode_text(self, tokens):
        self.check(len(tokens))
        return self.clip.encode_text(tokens)

    def __getattr__(self, name):
        return getattr(self.clip, name)


def test_scorer_splits_image_and_text_batches_on_oom() -> None:
    plain = tiny_scorer(device="cpu", aesthetic_head="tiny")
    images = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    texts = [f"a photo of {i}" for i in range(5)]
    embeds, aes = plain.embed_images_with_aesthetic(images)
    text_embeds = plain.embed_texts(texts)

    split = tiny_scorer(device="cpu", aesthetic_head="tiny")
    split.clip = fake = _OomClip(plain.clip, limit=2)
    got, got_aes = split.embed_images_with_aesthetic(images)
    np.testing.assert_allclose(got, embeds, atol=1e-5)
    np.testing.assert_allclose(got_aes, aes, atol=1e-5)
    assert fake.sizes == [5, 2, 3, 1, 2] and split._oom.splits == 2
    fake.sizes.clear()
    np.testing.assert_allclose(split.embed_texts(texts), text_embeds, atol=1e-5)
    assert fake.sizes == [1, 1, 1, 1, 1]  # the size that fitted images is kept


class _OomBlip:
    def __init__(self, blip, limit: int) -> None:
        self.blip, self.sizes = blip, []
        self.check = _oom_above(limit, self.sizes)

    def generate(self, pixel_values, **kwargs):
        # draw from the RNG first, as a failed attempt on a GPU may have
        torch.rand(3)
        self.check(len(pixel_values))
        return self.blip.generate(pixel_values=pixel_values, **kwargs)


def test_captioner_splits_on_oom_and_samples_as_if_chunked_so() -> None:
    rng = np.random.default_rng(0)
    targets = [
        Target(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), target_id=str(i))
        for i in range(4)
    ]
    chunked = tiny_captioner(device="cpu", max_new_tokens=8, batch_size=2)
    chunked.blip = _OomBlip(chunked.blip, limit=99)  # the same RNG draws, never OOM
    expected = chunked.caption(targets, 3, seed=7)

    split = tiny_captioner(device="cpu", max_new_tokens=8)
    split.blip = fake = _OomBlip(split.blip, limit=2)
    assert split.caption(targets, 3, seed=7) == expected
    assert fake.sizes == [4, 2, 2] and split._oom.splits == 1
