"""The diffusers generator on the tiny random-weight pipeline: offline, CPU, seconds."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from prompt_gym.backends.real.diffusion import DiffusersGenerator  # noqa: E402
from prompt_gym.backends.real.diffusion import tiny as tiny_generator  # noqa: E402

# Batch vs single: diffusers compares float images at 3e-3; on uint8 that is ~1 level, plus
# rounding. We allow 3 levels anywhere and a mean difference under half a level.
BATCH_TOLERANCE_LEVELS = 3

PROMPTS = ["a red circle", "a blue square on a green background", "", "a red circle"]
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def gen() -> DiffusersGenerator:
    return tiny_generator(device="cpu")


@pytest.fixture(scope="module")
def reference(gen: DiffusersGenerator) -> np.ndarray:
    return gen.generate(PROMPTS, SEEDS)


def test_images_are_uint8_of_the_right_shape(reference: np.ndarray) -> None:
    assert reference.dtype == np.uint8
    assert reference.shape == (4, 64, 64, 3)


def test_deterministic_and_seed_dependent(gen: DiffusersGenerator, reference: np.ndarray) -> None:
    again = tiny_generator(device="cpu").generate(PROMPTS, SEEDS)
    np.testing.assert_array_equal(again, reference)
    # Same prompt, different seed: a different image; same (prompt, seed): the same image.
    assert np.abs(reference[0].astype(int) - reference[3]).mean() > 5
    np.testing.assert_array_equal(gen.generate(PROMPTS, SEEDS), reference)


def test_batch_equals_single(gen: DiffusersGenerator, reference: np.ndarray) -> None:
    singles = np.concatenate([gen.generate([p], [s]) for p, s in zip(PROMPTS, SEEDS, strict=True)])
    diff = np.abs(singles.astype(int) - reference.astype(int))
    assert diff.max() <= BATCH_TOLERANCE_LEVELS
    assert diff.mean() < 0.5


def test_batch_size_option_chunks_without_changing_images(reference: np.ndarray) -> None:
    chunked = tiny_generator(device="cpu", batch_size=3).generate(PROMPTS, SEEDS)
    assert np.abs(chunked.astype(int) - reference.astype(int)).max() <= BATCH_TOLERANCE_LEVELS


def test_empty_batch(gen: DiffusersGenerator) -> None:
    images, bad = gen.generate_checked([], [])
    assert images.shape == (0, 64, 64, 3) and bad.shape == (0,)


@pytest.mark.parametrize(
    ("prompts", "seeds"),
    [(["a"], [0, 1]), ([3], [0]), (["a"], [-1]), (["a"], [2**64]), (["a"], [1.5])],
)
def test_bad_batches_raise_value_error(gen: DiffusersGenerator, prompts, seeds) -> None:
    with pytest.raises(ValueError):
        gen.generate(prompts, seeds)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 0},
        {"guidance": -1.0},
        {"resolution": 4},
        {"resolution": 65},
        {"batch_size": 0},
        {"scheduler": "nope"},
        {"dtype": "fp8"},
    ],
)
def test_bad_options_raise_value_error(kwargs) -> None:
    with pytest.raises(ValueError):
        tiny_generator(device="cpu", **kwargs)


def test_non_preset_model_needs_explicit_settings(tmp_path) -> None:
    with pytest.raises(ValueError, match="steps"):
        DiffusersGenerator(str(tmp_path))


def test_count_tokens_counts_bos_eos_and_overflow(gen: DiffusersGenerator) -> None:
    import open_clip

    long = " ".join(["word"] * 100)
    counts = gen.count_tokens(["a photo of a cat", long, ""])
    simple = open_clip.tokenizer.SimpleTokenizer()
    assert counts.tolist() == [len(simple.encode(t)) + 2 for t in ["a photo of a cat", long, ""]]
    assert counts.tolist()[0] == 7 and counts[1] == 102 and counts[2] == 2
    assert (counts > gen.max_tokens).tolist() == [False, True, False]


class _Wrapper:
    """Delegates to a pipeline; subclasses change ``__call__``."""

    def __init__(self, pipe) -> None:
        self._pipe = pipe
        self.calls: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self._pipe, name)


class _NaNPipeline(_Wrapper):
    def __init__(self, pipe, bad: int) -> None:
        super().__init__(pipe)
        self.bad = bad

    def __call__(self, **kwargs):
        out = self._pipe(**kwargs)
        out.images[self.bad] = float("nan")
        return out


class _FakeOOMPipeline(_Wrapper):
    """Raises CUDA OOM for batches larger than ``limit``, as a GPU would."""

    def __init__(self, pipe, limit: int) -> None:
        super().__init__(pipe)
        self.limit = limit

    def __call__(self, **kwargs):
        n = len(kwargs["prompt_embeds"])
        self.calls.append(n)
        if n > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return self._pipe(**kwargs)


def test_nan_image_is_flagged_and_zeroed(gen: DiffusersGenerator, reference: np.ndarray) -> None:
    broken = tiny_generator(device="cpu")
    broken.pipeline = _NaNPipeline(gen.pipeline, bad=1)
    images, bad = broken.generate_checked(PROMPTS[:3], SEEDS[:3])
    assert bad.tolist() == [False, True, False]
    assert not images[1].any()
    for i in (0, 2):
        assert np.abs(images[i].astype(int) - reference[i]).max() <= BATCH_TOLERANCE_LEVELS
    np.testing.assert_array_equal(broken.generate(PROMPTS[:3], SEEDS[:3])[1], 0)


def test_oom_splits_the_batch_and_retries(gen: DiffusersGenerator) -> None:
    prompts, seeds = [f"shape {i}" for i in range(5)], list(range(5))
    expected = gen.generate(prompts, seeds)
    split = tiny_generator(device="cpu")
    split.pipeline = fake = _FakeOOMPipeline(gen.pipeline, limit=2)
    images = split.generate(prompts, seeds)
    assert fake.calls == [5, 2, 3, 1, 2]
    assert split.stats["oom_splits"] == 2
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= BATCH_TOLERANCE_LEVELS
    # Later calls start from the size that fitted: no further OOM.
    fake.calls.clear()
    split.generate(prompts[:2], seeds[:2])
    assert fake.calls == [1, 1] and split.stats["oom_splits"] == 2


def test_oom_on_a_single_image_raises_clearly(gen: DiffusersGenerator) -> None:
    split = tiny_generator(device="cpu")
    split.pipeline = _FakeOOMPipeline(gen.pipeline, limit=0)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="single 64x64 image does not fit"):
        split.generate(["a", "b"], [0, 1])


def test_save_pretrained_round_trips_through_the_loader(
    gen: DiffusersGenerator, reference: np.ndarray, tmp_path
) -> None:
    gen.pipeline.save_pretrained(tmp_path / "saved")
    with pytest.warns(RuntimeWarning, match="runs on cpu"):
        loaded = DiffusersGenerator(
            str(tmp_path / "saved"), steps=2, guidance=0.0, resolution=64, device="cpu"
        )
    assert loaded.pipeline is not gen.pipeline
    np.testing.assert_array_equal(loaded.generate(PROMPTS, SEEDS), reference)
    assert loaded.config()["model"] == str(tmp_path / "saved")


def test_preset_loads_from_model_dir(
    gen: DiffusersGenerator, reference: np.ndarray, tmp_path, monkeypatch
) -> None:
    # A directory named after the preset under $PROMPT_GYM_MODEL_DIR wins over the hub cache.
    gen.pipeline.save_pretrained(tmp_path / "sd-turbo")
    monkeypatch.setenv("PROMPT_GYM_MODEL_DIR", str(tmp_path))
    with pytest.warns(RuntimeWarning, match="runs on cpu"):
        turbo = DiffusersGenerator("sd-turbo", steps=2, resolution=64, device="cpu")
    assert turbo.config()["name"] == "sd-turbo" and turbo.guidance == 0.0
    np.testing.assert_array_equal(turbo.generate(PROMPTS, SEEDS), reference)


def test_guidance_and_taesd_paths_run() -> None:
    g = tiny_generator(device="cpu", guidance=3.0, taesd=True)
    images = g.generate(["a red circle", "a red circle"], [0, 1])
    assert images.shape == (2, 64, 64, 3)
    cfg = g.config()
    assert cfg["decoder"] == "AutoencoderTiny" and cfg["guidance"] == 3.0


def test_models_are_shared_per_process(gen: DiffusersGenerator) -> None:
    assert tiny_generator(device="cpu").pipeline is gen.pipeline
    assert tiny_generator(device="cpu", taesd=True).pipeline is not gen.pipeline


def test_config_names_every_output_parameter(gen: DiffusersGenerator) -> None:
    cfg = gen.config()
    for key in ("name", "version", "model", "steps", "guidance", "resolution", "dtype", "decoder"):
        assert key in cfg
    assert cfg["name"] == "tiny" and cfg["steps"] == 2 and cfg["dtype"] == "fp32"
    assert tiny_generator(device="cpu", steps=1).config() != cfg


def test_embedding_cache_is_lru(gen: DiffusersGenerator) -> None:
    small = tiny_generator(device="cpu", embed_cache_size=2)
    small.generate(["a", "b", "c"], [0, 0, 0])
    assert list(small._embeds._data) == ["b", "c"]
    small.generate(["b", "d"], [0, 0])
    assert list(small._embeds._data) == ["b", "d"]


def test_factories_expose_keyword_options_only() -> None:
    from prompt_gym.backends.real.diffusion import sd15, sd_turbo, sdxl_turbo

    for factory in (tiny_generator, sd_turbo, sdxl_turbo, sd15):
        params = inspect.signature(factory).parameters
        assert "model" not in params and "pipeline" not in params
        assert {"steps", "guidance", "resolution", "dtype", "taesd", "compile"} <= set(params)
