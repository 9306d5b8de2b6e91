"""open_clip scorer and the LAION aesthetic head: tiny random weights, offline, CPU."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from prompt_gym.backends.real.aesthetic_head import (  # noqa: E402
    build_head,
    file_sha256,
    load_head,
)
from prompt_gym.backends.real.clip import OpenClipScorer  # noqa: E402
from prompt_gym.backends.real.clip import tiny as tiny_scorer  # noqa: E402


@pytest.fixture(scope="module")
def scorer() -> OpenClipScorer:
    return tiny_scorer(device="cpu")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)


def _constant_head(input_dim: int = 768):
    """Weights by hand: each layer averages its inputs; biases 0.1 (first) and 0.5 (last).

    On a unit input u, layer 1 gives s + 0.1 in every unit (s = sum(u)); each later layer
    averages, keeping s + 0.1; the last adds 0.5. So the score is sum(u) + 0.6.
    """
    head = build_head(input_dim)
    linears = [m for m in head.layers if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, layer in enumerate(linears):
            fan_in = layer.in_features
            layer.weight.fill_(1.0 if i == 0 else 1.0 / fan_in)
            layer.bias.fill_(0.0)
        linears[0].bias.fill_(0.1)
        linears[-1].bias.fill_(0.5)
    return head


def test_head_architecture_matches_laion() -> None:
    head = build_head(768)
    keys = sorted(head.state_dict())
    assert keys == sorted(f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias"))
    shapes = [tuple(head.state_dict()[f"layers.{i}.weight"].shape) for i in (0, 2, 4, 6, 7)]
    assert shapes == [(1024, 768), (128, 1024), (64, 128), (16, 64), (1, 16)]
    dropouts = [m.p for m in head.layers if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.2, 0.2, 0.1]


def test_head_known_output_and_input_normalisation() -> None:
    head = _constant_head()
    embed = torch.zeros(2, 768)
    embed[0, :2] = torch.tensor([3.0, 4.0])  # unit: (0.6, 0.8), sum 1.4 -> 2.0
    embed[1, 5] = -2.0  # unit: -1 -> -0.4
    with torch.no_grad():
        scores = head(embed)
        scaled = head(7.0 * embed)
    np.testing.assert_allclose(scores.numpy(), [2.0, -0.4], atol=1e-5)
    np.testing.assert_allclose(scaled.numpy(), scores.numpy(), atol=1e-6)


def test_head_file_sha256_is_checked(tmp_path) -> None:
    path = tmp_path / "head.pth"
    torch.save(_constant_head().state_dict(), path)
    digest = file_sha256(path)
    head = load_head(path, sha256=digest)
    with torch.no_grad():
        assert head(torch.eye(768)[:1]).item() == pytest.approx(1.6, abs=1e-5)
    with pytest.raises(ValueError, match="does not match the expected"):
        load_head(path, sha256="0" * 64)
    with pytest.raises(FileNotFoundError):
        load_head(tmp_path / "missing.pth")


def test_head_of_the_wrong_size_is_rejected(tmp_path) -> None:
    path = tmp_path / "head768.pth"
    torch.save(build_head(768, seed=0).state_dict(), path)
    with pytest.raises(ValueError, match="expects 768-d embeddings"):
        tiny_scorer(device="cpu", aesthetic_head=str(path))
    # The right size loads, and its digest becomes part of the config (cache keys).
    path32 = tmp_path / "head32.pth"
    torch.save(build_head(32, seed=1).state_dict(), path32)
    custom = tiny_scorer(device="cpu", aesthetic_head=str(path32))
    assert custom.config()["aesthetic_sha256"] == file_sha256(path32)


def test_embeddings_are_unit_float32_with_equal_dims(
    scorer: OpenClipScorer, images: np.ndarray
) -> None:
    img = scorer.embed_images(images)
    txt = scorer.embed_texts(["a red circle", "a blue square", ""])
    assert img.dtype == np.float32 and txt.dtype == np.float32
    assert img.shape == (5, scorer.dim) and txt.shape == (3, scorer.dim)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)


def test_batch_equals_single(scorer: OpenClipScorer, images: np.ndarray) -> None:
    batch = scorer.embed_images(images)
    single = np.concatenate([scorer.embed_images(images[i : i + 1]) for i in range(len(images))])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    texts = ["a red circle", "two blue squares", "x " * 100]
    batch_t = scorer.embed_texts(texts)
    single_t = np.concatenate([scorer.embed_texts([t]) for t in texts])
    np.testing.assert_allclose(batch_t, single_t, atol=1e-5)
    chunked = tiny_scorer(device="cpu", batch_size=2)
    np.testing.assert_allclose(chunked.embed_images(images), batch, atol=1e-5)


def test_aesthetic_scores(scorer: OpenClipScorer, images: np.ndarray) -> None:
    assert scorer.has_aesthetic
    aes = scorer.aesthetic(images)
    assert aes.shape == (5,) and aes.dtype == np.float32 and np.isfinite(aes).all()
    embeds, both = scorer.embed_images_with_aesthetic(images)
    np.testing.assert_allclose(both, aes, atol=1e-6)
    np.testing.assert_allclose(embeds, scorer.embed_images(images), atol=1e-6)
    # The head sees the same unit embedding whatever the image tower's output norm.
    with torch.no_grad():
        direct = scorer.head(torch.from_numpy(embeds)).numpy()
    np.testing.assert_allclose(direct, aes, atol=1e-5)


def test_no_head_raises_value_error(images: np.ndarray) -> None:
    plain = OpenClipScorer("tiny", device="cpu")
    assert not plain.has_aesthetic
    with pytest.raises(ValueError, match="has no aesthetic head"):
        plain.aesthetic(images)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((1, 8, 8))]
)
def test_bad_images_raise_value_error(scorer: OpenClipScorer, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        scorer.embed_images(bad)


def test_config_and_factories(scorer: OpenClipScorer) -> None:
    from prompt_gym.backends.real.clip import clip_b32, clip_l14

    cfg = scorer.config()
    assert cfg["name"] == "tiny" and cfg["dim"] == 32 and cfg["aesthetic_head"] == "tiny"
    assert inspect.signature(clip_l14).parameters["aesthetic_head"].default == "laion-aesthetic-v2"
    assert inspect.signature(clip_b32).parameters["aesthetic_head"].default is None
    assert "resolution" not in inspect.signature(clip_b32).parameters
    assert tiny_scorer(device="cpu").clip is scorer.clip  # shared per process


def test_preset_head_is_checked_against_the_pinned_digest(tmp_path, monkeypatch) -> None:
    """The default head (``laion-aesthetic-v2``) is verified by its sha256 before loading."""
    from prompt_gym.backends.real import presets
    from prompt_gym.backends.real.aesthetic_head import resolve_head

    preset = presets.AESTHETIC_HEADS["laion-aesthetic-v2"]
    assert preset.sha256 == presets.LAION_AESTHETIC_SHA256
    folder = tmp_path / preset.name
    folder.mkdir()
    torch.save(build_head(768, seed=0).state_dict(), folder / preset.filename)  # not the real file
    monkeypatch.setenv("PROMPT_GYM_MODEL_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=f"does not match the expected {preset.sha256}"):
        resolve_head("laion-aesthetic-v2", 768)
    digest = file_sha256(folder / preset.filename)
    head, used = resolve_head("laion-aesthetic-v2", 768, sha256=digest)  # the user's own pin
    assert used == digest and head.input_dim == 768


def test_the_backend_runs_the_image_tower_once_per_batch_of_misses(scorer: OpenClipScorer) -> None:
    """The rewrite path (aesthetic asked) embeds and scores in one pass of the image tower."""
    from fakes import FakeCaptioner, FakeGenerator

    from prompt_gym.backends import RewardBackend

    assert scorer.has_aesthetic
    backend = RewardBackend(FakeGenerator(resolution=32), scorer, FakeCaptioner())
    prompts, seeds = [f"p{i}" for i in range(6)], list(range(6))
    passes: list[int] = []
    hook = scorer.clip.visual.register_forward_hook(lambda m, i, out: passes.append(len(out)))
    try:
        result = backend.score(prompts, seeds, aesthetic=True)
        assert passes == [6]  # one forward pass of the tower for the six misses
        images = FakeGenerator(resolution=32).generate(prompts, seeds)
        np.testing.assert_allclose(result.aesthetic, scorer.aesthetic(images), rtol=1e-5)
        passes.clear()
        backend.score(prompts, seeds, aesthetic=True)
        assert passes == []  # cache hits
        backend.score([f"q{i}" for i in range(4)], seeds[:4])
        assert passes == [4]  # no aesthetic asked: still one pass
    finally:
        hook.remove()
