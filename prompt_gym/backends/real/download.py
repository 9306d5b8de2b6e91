"""``prompt-gym download NAME``: prefetch a preset's weights on a connected machine.

``NAME`` is a backend preset (``sd-turbo``, ``sd-turbo-aesthetic``: every component it uses), a
component preset (``sd15``, ``clip-l14``, ``blip-large``), a TAESD decoder (``taesd``,
``taesdxl``), an aesthetic head (``laion-aesthetic-v2``) or a preference scorer (``pickscore``:
its weights, and only the tokenizer and image-processor files of its processor's repository;
a backend preset does not fetch its preference scorer). Files go to the Hugging Face cache
(copy ``$HF_HOME`` to an offline machine), or with ``local_dir=DIR`` to ``DIR/<preset>/``, the
layout ``PROMPT_GYM_MODEL_DIR=DIR`` reads. Only what the loaders need is fetched (safetensors
weights and configs; no safety checker, no duplicate ``.bin``/``.ckpt``/fp16 files).
"""

from __future__ import annotations

import os
from pathlib import Path

from prompt_gym.backends.real import presets

_PIPELINE_FILES = [
    "model_index.json",
    "*/config.json",
    "*/*config.json",
    "*/*.txt",
    "*/vocab.json",
    "*/merges.txt",
    "*/tokenizer.json",
    "*/special_tokens_map.json",
    "*/diffusion_pytorch_model.safetensors",
    "*/model.safetensors",
]
_PIPELINE_SKIP = ["safety_checker/*", "feature_extractor/*"]
_MODEL_FILES = ["*.json", "*.txt", "model.safetensors", "diffusion_pytorch_model.safetensors"]
_PROCESSOR_FILES = [
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
]


def names() -> list[str]:
    """Every name :func:`download` accepts."""
    from prompt_gym.backends.registry import BACKENDS

    real = set(presets.GENERATORS) | set(presets.SCORERS) | set(presets.CAPTIONERS)
    heads = set(presets.AESTHETIC_HEADS) | set(presets.TAESD) | set(presets.PREFERENCES)
    return sorted((set(BACKENDS) | real | heads) - {presets.TINY})


def download(name: str, *, local_dir: str | None = None) -> list[str]:
    """Fetch the files of ``name`` and return their local paths (directories or files).

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    from prompt_gym.backends.registry import BACKENDS

    if name in BACKENDS:
        preset = BACKENDS[name]
        parts = [
            ("generator", preset.generator),
            ("scorer", preset.scorer),
            ("captioner", preset.captioner),
        ]
        paths: list[str] = []
        for kind, component in parts:
            paths += _component(kind, component, local_dir)
        return paths
    for kind in ("generator", "scorer", "captioner"):
        if name in _table(kind):
            return _component(kind, name, local_dir)
    if name in presets.TAESD:
        return [_snapshot(presets.TAESD[name].model, name, _MODEL_FILES, [], local_dir)]
    if name in presets.PREFERENCES and name != presets.TINY:
        pref = presets.PREFERENCES[name]  # model and processor share DIR/<name>/, as loaded
        return [
            _snapshot(pref.model, name, ["*.json", "model.safetensors"], [], local_dir),
            _snapshot(pref.processor, name, _PROCESSOR_FILES, [], local_dir),
        ]
    if name in presets.AESTHETIC_HEADS:
        head = presets.AESTHETIC_HEADS[name]
        return [_file(head.repo, head.filename, name, local_dir)]
    raise ValueError(f"unknown model name {name!r}; known: {names()}")


def _table(kind: str) -> dict[str, object]:
    return {
        "generator": presets.GENERATORS,
        "scorer": presets.SCORERS,
        "captioner": presets.CAPTIONERS,
    }[kind]  # type: ignore[return-value]


def _component(kind: str, name: str, local_dir: str | None) -> list[str]:
    """Files of one component preset; nothing for ``tiny`` or non-real components."""
    if name == presets.TINY or name not in _table(kind):
        return []
    if kind == "generator":
        gen = presets.GENERATORS[name]
        pipe = _snapshot(gen.model, name, _PIPELINE_FILES, _PIPELINE_SKIP, local_dir)
        return [pipe, *download(gen.taesd, local_dir=local_dir)]
    if kind == "captioner":
        cap = presets.CAPTIONERS[name]
        return [_snapshot(cap.model, name, _MODEL_FILES, [], local_dir)]
    import open_clip
    from huggingface_hub import HfApi

    from prompt_gym.backends.real.clip import CHECKPOINT_NAMES

    scorer = presets.SCORERS[name]
    cfg = open_clip.get_pretrained_cfg(scorer.model, scorer.pretrained)
    repo, filename = os.path.split(cfg["hf_hub"])  # "org/model/" -> default file names
    if not filename:
        api = HfApi()
        filename = next(
            (f for f in CHECKPOINT_NAMES if api.file_exists(repo, f)), CHECKPOINT_NAMES[-1]
        )
    paths = [_file(repo, filename, name, local_dir)]
    if scorer.aesthetic is not None:
        paths += download(scorer.aesthetic, local_dir=local_dir)
    return paths


def _snapshot(
    repo: str, name: str, allow: list[str], ignore: list[str], local_dir: str | None
) -> str:
    from huggingface_hub import snapshot_download

    target = str(Path(local_dir) / name) if local_dir else None
    return snapshot_download(
        repo, allow_patterns=allow, ignore_patterns=ignore or None, local_dir=target
    )


def _file(repo: str, filename: str, name: str, local_dir: str | None) -> str:
    from huggingface_hub import hf_hub_download

    target = str(Path(local_dir) / name) if local_dir else None
    return hf_hub_download(repo, filename, local_dir=target)
