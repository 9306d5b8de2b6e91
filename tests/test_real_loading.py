"""Real-model loading: the missing-model error, registry wiring, light imports."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from prompt_gym.backends.real import presets
from prompt_gym.backends.real.loading import (
    ModelNotFoundError,
    hf_cache_dir,
    missing_model_message,
)
from prompt_gym.backends.registry import BACKENDS, COMPONENTS, resolve


def test_import_prompt_gym_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import prompt_gym, prompt_gym.backends.registry\n"
        "import prompt_gym.backends.real\n"
        "from prompt_gym.backends.real import (aesthetic_head, blip, clip, diffusion, download,\n"
        "    loading, presets, tiny)\n"
        "for kind, table in prompt_gym.backends.registry.COMPONENTS.items():\n"
        "    for name, target in table.items():\n"
        "        if target.startswith('prompt_gym.backends.real'):\n"
        "            prompt_gym.backends.registry.resolve(kind, name)\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'open_clip') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def offline_empty_model_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPT_GYM_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_missing_model_error_message_is_exact(offline_empty_model_dir) -> None:
    pytest.importorskip("diffusers")
    from prompt_gym.backends.real.diffusion import sd_turbo

    expected = (
        "generator model 'sd-turbo' (stabilityai/sd-turbo) is not available on this machine.\n"
        f"  looked in: $PROMPT_GYM_MODEL_DIR/sd-turbo = {offline_empty_model_dir / 'sd-turbo'} "
        f"(not found); the Hugging Face cache {hf_cache_dir()} (offline, HF_HUB_OFFLINE=1)\n"
        "  fix: run `prompt-gym download sd-turbo` on a connected machine and copy its Hugging "
        "Face cache here, or set PROMPT_GYM_MODEL_DIR to a directory holding sd-turbo/, or use "
        'the Shapes env ids (e.g. ImageInversion-Shapes-v0, backend="shapes"), which need no '
        "weights."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ModelNotFoundError) as info:
            sd_turbo(device="cpu")
    assert str(info.value) == expected
    assert not [w for w in caught if "runs on cpu" in str(w.message)]  # one clear message
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize(
    ("kind", "name", "repo"),
    [
        ("scorer", "clip-b32", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
        ("scorer", "clip-l14", "timm/vit_large_patch14_clip_224.openai"),
        ("captioner", "blip-base", "Salesforce/blip-image-captioning-base"),
        ("captioner", "blip-large", "Salesforce/blip-image-captioning-large"),
        ("generator", "sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
        ("generator", "sdxl-turbo", "stabilityai/sdxl-turbo"),
    ],
)
def test_every_real_preset_raises_the_same_error(offline_empty_model_dir, kind, name, repo):
    pytest.importorskip("torch")
    with pytest.raises(ModelNotFoundError) as info:
        resolve(kind, name)(device="cpu")
    assert str(info.value) == missing_model_message(kind, name, repo, name)
    assert f"prompt-gym download {name}" in str(info.value)


def test_missing_aesthetic_head_and_taesd(offline_empty_model_dir) -> None:
    pytest.importorskip("torch")
    from prompt_gym.backends.real.clip import tiny as tiny_scorer
    from prompt_gym.backends.real.diffusion import tiny as tiny_generator

    with pytest.raises(ModelNotFoundError, match="aesthetic head model 'laion-aesthetic-v2'"):
        tiny_scorer(device="cpu", aesthetic_head="laion-aesthetic-v2")
    with pytest.raises(ModelNotFoundError, match="TAESD decoder model 'taesdxl'"):
        tiny_generator(device="cpu", taesd="taesdxl")


def test_missing_local_directory(tmp_path) -> None:
    pytest.importorskip("diffusers")
    from prompt_gym.backends.real.diffusion import DiffusersGenerator

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        DiffusersGenerator(str(tmp_path / "nope"), steps=1, guidance=0, resolution=64)


def test_registry_names() -> None:
    for kind in ("generator", "scorer", "captioner"):
        assert "tiny" in COMPONENTS[kind]
    assert {"sd-turbo", "sdxl-turbo", "sd15", "diffusers"} <= set(COMPONENTS["generator"])
    assert {"clip-b32", "clip-l14", "open_clip"} <= set(COMPONENTS["scorer"])
    assert {"blip-base", "blip-large", "blip"} <= set(COMPONENTS["captioner"])

    def parts(name: str) -> tuple[str, str, str]:
        preset = BACKENDS[name]
        return preset.generator, preset.scorer, preset.captioner

    assert parts("tiny") == ("tiny", "tiny", "tiny")
    assert parts("sd-turbo") == ("sd-turbo", "clip-b32", "blip-base")
    assert parts("sd-turbo-aesthetic") == ("sd-turbo", "clip-l14", "blip-base")
    assert presets.SCORERS["clip-l14"].aesthetic == "laion-aesthetic-v2"


def test_download_names_and_unknown_name() -> None:
    from prompt_gym.backends.real.download import download, names

    known = {"sd-turbo", "sd-turbo-aesthetic", "clip-l14", "taesd", "laion-aesthetic-v2"}
    assert known | {"pickscore"} <= set(names())
    assert download("tiny") == []
    with pytest.raises(ValueError, match="unknown model name"):
        download("no-such-model")


def test_tiny_backend_scores_end_to_end() -> None:
    pytest.importorskip("diffusers")
    from prompt_gym.backends import make_backend

    backend = make_backend("tiny", device="cpu")
    result = backend.score(
        ["a red circle", "a blue square", "a red circle"], [0, 1, 0], aesthetic=True
    )
    assert result.image_embeds.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(result.image_embeds, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.image_embeds[0], result.image_embeds[2])
    assert np.isfinite(result.aesthetic).all()


def test_download_fetches_each_component_into_the_model_dir_layout(tmp_path, monkeypatch) -> None:
    pytest.importorskip("open_clip")
    import huggingface_hub

    from prompt_gym.backends.real.download import download

    calls = []

    def snapshot(repo, allow_patterns=None, ignore_patterns=None, local_dir=None):
        calls.append(("snapshot", repo, local_dir))
        return local_dir

    def file(repo, filename, local_dir=None):
        calls.append(("file", repo, filename, local_dir))
        return f"{local_dir}/{filename}"

    class Api:
        def file_exists(self, repo, filename):
            return filename.endswith(".safetensors")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", file)
    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    paths = download("sd-turbo-aesthetic", local_dir=str(tmp_path))
    d = str(tmp_path)
    assert calls == [
        ("snapshot", "stabilityai/sd-turbo", f"{d}/sd-turbo"),
        ("snapshot", "madebyollin/taesd", f"{d}/taesd"),
        (
            "file",
            "timm/vit_large_patch14_clip_224.openai",
            "open_clip_model.safetensors",
            f"{d}/clip-l14",
        ),
        (
            "file",
            "camenduru/improved-aesthetic-predictor",
            "sac+logos+ava1-l14-linearMSE.pth",
            f"{d}/laion-aesthetic-v2",
        ),
        ("snapshot", "Salesforce/blip-image-captioning-base", f"{d}/blip-base"),
    ]
    assert len(paths) == 5
    calls.clear()
    assert len(download("pickscore", local_dir=d)) == 2
    assert calls == [
        ("snapshot", "yuvalkirstain/PickScore_v1", f"{d}/pickscore"),
        ("snapshot", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", f"{d}/pickscore"),
    ]


def test_captioner_is_built_only_when_an_env_captions(offline_empty_model_dir) -> None:
    """The rewrite envs never caption: a missing BLIP does not stop them, and is not loaded."""
    pytest.importorskip("transformers")
    import gymnasium as gym

    import prompt_gym
    from prompt_gym.backends.factory import LazyCaptioner

    backend = prompt_gym.make_backend("shapes", captioner="blip-base")
    assert isinstance(backend.captioner, LazyCaptioner) and not backend.captioner.loaded
    env = gym.make("PromptRewrite-Shapes-v0", backend=backend)
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(env.action_space.n - 1)  # STOP
    assert terminated and np.isfinite(info["reward"]) and not backend.captioner.loaded
    env = gym.make("ImageInversion-Shapes-v0", backend=backend)
    with pytest.raises(ModelNotFoundError, match="captioner model 'blip-base'"):
        env.reset(seed=0)


def test_inversion_builds_the_captioner_once() -> None:
    import gymnasium as gym

    import prompt_gym

    backend = prompt_gym.make_backend("shapes")
    env = gym.make("ImageInversion-Shapes-v0", backend=backend)
    env.reset(seed=0)
    built = backend.captioner._captioner
    assert backend.captioner.loaded
    env.reset(seed=1)
    assert backend.captioner._captioner is built


def test_every_downloadable_preset_lists_its_size_and_licence(capsys) -> None:
    from prompt_gym.cli import main

    rows = presets.model_table()
    names = {r["name"] for r in rows}
    assert {"sd-turbo", "sdxl-turbo", "sd15", "taesd", "clip-b32", "clip-l14"} <= names
    assert {"laion-aesthetic-v2", "blip-base", "blip-large"} <= names and "tiny" not in names
    for row in rows:
        assert row["size"] and row["licence"] and row["source"], row
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for row in rows:
        assert f"{row['name']}" in out and row["licence"] in out
