"""Loading and preparing diffusers pipelines for :class:`~.diffusion.DiffusersGenerator`.

``load_pipeline`` builds the tiny pipeline or loads a hub id / directory through
:func:`~.loading.load` (so a missing model raises :class:`~.loading.ModelNotFoundError`), with the
safety checker off. ``prepare`` puts a pipeline in the requested precision (the SD VAE stays in
fp32 under ``dtype="fp16"``: the fp16 SD VAE overflows to NaN), decoder (TAESD), scheduler,
attention backend, memory format and ``torch.compile`` state.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.real import presets
from prompt_gym.backends.real.loading import load, torch_dtype

SCHEDULERS = ("dpmsolver++", "euler", "ddim")
MAX_SEED = 2**64


def check_options(
    steps: int,
    guidance: float,
    resolution: int,
    batch_size: int | None,
    scheduler: str | None,
    embed_cache_size: int,
) -> None:
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not np.isfinite(guidance) or guidance < 0:
        raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
    if int(resolution) != resolution or resolution < 8:
        raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be None or one of {SCHEDULERS}, got {scheduler!r}")
    if embed_cache_size < 0:
        raise ValueError(f"embed_cache_size must be >= 0, got {embed_cache_size!r}")


def check_batch(prompts: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    prompts, seeds = list(prompts), list(seeds)
    if len(prompts) != len(seeds):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(seeds)} seeds; pass one seed per prompt"
        )
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise ValueError(f"prompts must be strings, got {type(prompt).__name__}: {prompt!r}")
    checked = []
    for seed in seeds:
        if (
            isinstance(seed, bool)
            or not isinstance(seed, int | np.integer)
            or not 0 <= seed < MAX_SEED
        ):
            raise ValueError(f"seeds must be integers in [0, 2**64), got {seed!r}")
        checked.append(int(seed))
    return prompts, checked


def load_pipeline(name: str, model: str, preset: presets.GeneratorPreset | None, dtype: str) -> Any:
    """Build the tiny pipeline, or load ``model`` (hub id or directory) through :func:`load`."""
    if model == presets.TINY:
        from prompt_gym.backends.real.tiny import tiny_sd_pipeline

        return tiny_sd_pipeline()
    from diffusers import DiffusionPipeline

    def loader(ref: str, local_files_only: bool) -> Any:
        index = DiffusionPipeline.load_config(ref, local_files_only=local_files_only)
        extra: dict[str, Any] = {}
        if "safety_checker" in index:
            extra = {
                "safety_checker": None,
                "feature_extractor": None,
                "requires_safety_checker": False,
            }
        if importlib.util.find_spec("accelerate") is None:
            extra["low_cpu_mem_usage"] = False
        return from_pretrained(DiffusionPipeline, ref, dtype, local_files_only, **extra)

    return load("generator", name, model, loader, preset.name if preset else None)


def from_pretrained(cls: Any, ref: str, dtype: str, local_files_only: bool, **extra: Any) -> Any:
    """``cls.from_pretrained`` in ``dtype`` (``torch_dtype=``, which every diffusers release reads)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch_dtype` is deprecated", FutureWarning)
        return cls.from_pretrained(
            ref, torch_dtype=torch_dtype(dtype), local_files_only=local_files_only, **extra
        )


def load_taesd(
    taesd: bool | str, preset: presets.GeneratorPreset | None, xl: bool, dtype: str
) -> Any:
    if preset is not None and preset.model == presets.TINY and taesd is True:
        from prompt_gym.backends.real.tiny import tiny_taesd

        return tiny_taesd()
    from diffusers import AutoencoderTiny

    if taesd is True:
        name = preset.taesd if preset is not None else ("taesdxl" if xl else "taesd")
    else:
        name = str(taesd)
    hub = presets.TAESD.get(name)
    repo = hub.model if hub else name

    def loader(ref: str, local_files_only: bool) -> Any:
        return from_pretrained(AutoencoderTiny, ref, dtype, local_files_only)

    return load("TAESD decoder", name, repo, loader, name if hub else None)


def prepare(
    pipe: Any,
    preset: presets.GeneratorPreset | None,
    dtype: str,
    device: str,
    taesd: bool | str,
    scheduler: str | None,
    compile: bool | str,
    channels_last: bool,
    attention: str | None,
) -> Any:
    """Put a loaded pipeline in the requested precision, decoder, scheduler and speed options."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    if not isinstance(pipe, StableDiffusionPipeline | StableDiffusionXLPipeline):
        raise ValueError(
            f"DiffusersGenerator supports Stable Diffusion 1.x/2.x and SDXL pipelines, "
            f"got {type(pipe).__name__}"
        )
    xl = isinstance(pipe, StableDiffusionXLPipeline)
    if taesd:
        pipe.vae = load_taesd(taesd, preset, xl, dtype)
    pipe.to(device=device)
    _set_dtype(pipe, dtype)
    if scheduler is not None:
        cls = {
            "dpmsolver++": DPMSolverMultistepScheduler,
            "euler": EulerDiscreteScheduler,
            "ddim": DDIMScheduler,
        }[scheduler]
        extra = {"algorithm_type": "dpmsolver++"} if scheduler == "dpmsolver++" else {}
        pipe.scheduler = cls.from_config(pipe.scheduler.config, **extra)
    _speed_options(pipe, compile, channels_last, attention)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _set_dtype(pipe: Any, dtype: str) -> None:
    """Every module in eval mode at ``dtype`` (an fp16 SD VAE stays fp32: it overflows)."""
    import torch
    from diffusers import AutoencoderKL

    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
            wanted = torch_dtype(dtype)
            if module is pipe.vae and isinstance(module, AutoencoderKL) and dtype == "fp16":
                wanted = torch.float32  # the fp16 SD VAE overflows to NaN
            if next(module.parameters()).dtype != wanted:
                module.to(dtype=wanted)


def _speed_options(
    pipe: Any, compile: bool | str, channels_last: bool, attention: str | None
) -> None:
    """Attention backend, memory format and compilation (none changes an image's meaning)."""
    import torch

    if attention == "slicing":
        pipe.enable_attention_slicing()
    elif attention == "xformers":
        pipe.enable_xformers_memory_efficient_attention()
    elif attention is not None:
        pipe.unet.set_attention_backend(attention)
    if channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if compile:
        mode = None if compile is True else str(compile)
        pipe.unet.compile(mode=mode)
        pipe.vae.decoder.compile(mode=mode)
