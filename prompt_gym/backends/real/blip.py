"""BLIP captioner: ``n`` sampled captions per target, deterministic given the seed.

:class:`BlipCaptioner` presets (see :mod:`~.presets` for sizes and licences): ``blip-base``
(``Salesforce/blip-image-captioning-base``, the default), ``blip-large``, and ``tiny`` (random
weights, a 168-entry vocabulary, built offline). Any hub id or ``save_pretrained`` directory of a
``BlipForConditionalGeneration`` with its ``BlipProcessor`` works too.

Captions are sampled (nucleus sampling, ``top_p``) for all targets in one ``generate`` call per
``batch_size`` chunk, with torch's RNG seeded from ``seed`` inside ``torch.random.fork_rng`` (the
global RNG state is restored). The same (targets, n, seed, batch_size) always gives the same
captions; a target's captions depend on its batch neighbours, as sampling draws from one stream.
A chunk that runs out of GPU memory is split in halves and retried from the RNG state it started
with (:mod:`.oom`), so the captions are those of a run chunked that way from the start.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.protocols import Target
from prompt_gym.backends.real import presets
from prompt_gym.backends.real.loading import (
    load,
    resolve_device,
    resolve_dtype,
    shared,
    source_tag,
    torch_dtype,
    warn_if_cpu,
)
from prompt_gym.backends.real.oom import OomSplitter


class BlipCaptioner:
    """Image captioner over ``transformers.BlipForConditionalGeneration``.

    Args:
        model: A preset name (``"blip-base"``, ``"blip-large"``, ``"tiny"``), a hub id, or a
            directory holding a saved model and processor.
        max_new_tokens: Longest caption, in tokens.
        top_p: Nucleus-sampling mass.
        temperature: Sampling temperature.
        dtype: ``"fp32" | "bf16" | "fp16"`` (default bf16 on CUDA, fp32 on CPU).
        device: Torch device (default: ``"cuda"`` if available, else ``"cpu"``).
        batch_size: Largest number of targets per ``generate`` call (default: all).
        version: Overrides the preset's version string.

    Raises:
        ValueError: For an invalid option.
        ModelNotFoundError: When the weights are not available offline.
    """

    def __init__(
        self,
        model: str = "Salesforce/blip-image-captioning-base",
        *,
        max_new_tokens: int = 30,
        top_p: float = 0.9,
        temperature: float = 1.0,
        dtype: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        version: str | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
        preset = presets.find_captioner(model)
        self.name = preset.name if preset is not None else model
        self.model = preset.model if preset is not None else model
        self.version = version if version is not None else (preset.version if preset else "1")
        self.max_new_tokens, self.top_p, self.temperature = max_new_tokens, top_p, temperature
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self._oom = OomSplitter(f"{self.name}: a single image", "use dtype='fp16' or blip-base")
        key = ("blip", self.name, source_tag(self.name), self.model, self.dtype, self.device)
        self.blip, self.processor = shared(key, lambda: self._load(preset))
        if self.model != presets.TINY:
            warn_if_cpu(self.name, self.device)

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a caption."""
        return {
            "kind": "captioner",
            "class": "BlipCaptioner",
            "name": self.name,
            "version": self.version,
            "model": self.model,
            "dtype": self.dtype,
            "sampling": {
                "top_p": self.top_p,
                "temperature": self.temperature,
                "max_new_tokens": self.max_new_tokens,
            },
            "batch_size": self.batch_size,
        }

    def caption(
        self, targets: Sequence[Target | np.ndarray], n: int, seed: int = 0
    ) -> list[list[str]]:
        """``n`` sampled captions per target (a :class:`Target` or a ``uint8 (H, W, 3)`` array).

        Raises:
            ValueError: For ``n < 1``, a negative seed or an image that is not ``uint8 (H, W, 3)``.
        """
        import torch

        if int(n) != n or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        images = [np.asarray(t.image if isinstance(t, Target) else t) for t in targets]
        for image in images:
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
                raise ValueError(f"images must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        if not images:
            return []
        cuda = self.device.startswith("cuda")
        devices = [torch.device(self.device).index or 0] if cuda else []

        def run(start: int, stop: int) -> list[list[str]]:
            state = torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]
            try:
                return self._sample(images[start:stop], int(n))
            except torch.cuda.OutOfMemoryError:
                torch.set_rng_state(state[0])  # the halves draw what this attempt would have
                for d, cuda_state in zip(devices, state[1], strict=True):
                    torch.cuda.set_rng_state(cuda_state, d)
                raise

        with torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            parts = self._oom.map(len(images), self.batch_size, run)
        return [captions for part in parts for captions in part]

    def _sample(self, images: list[np.ndarray], n: int) -> list[list[str]]:
        """One ``generate`` call: ``n`` sampled captions for each image."""
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        out = self.blip.generate(
            pixel_values=pixels.to(self.device, torch_dtype(self.dtype)),
            do_sample=True,
            top_p=self.top_p,
            top_k=0,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
            num_return_sequences=n,
        )
        texts = [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]
        return [texts[i * n : (i + 1) * n] for i in range(len(images))]

    def _load(self, preset: presets.CaptionerPreset | None) -> tuple[Any, Any]:
        if self.model == presets.TINY:
            from prompt_gym.backends.real.tiny import tiny_blip

            blip, processor = tiny_blip()
        else:
            from transformers import BlipForConditionalGeneration, BlipProcessor

            def loader(ref: str, local_files_only: bool) -> tuple[Any, Any]:
                processor = BlipProcessor.from_pretrained(ref, local_files_only=local_files_only)
                blip = BlipForConditionalGeneration.from_pretrained(
                    ref, local_files_only=local_files_only, dtype=torch_dtype(self.dtype)
                )
                return blip, processor

            blip, processor = load(
                "captioner", self.name, self.model, loader, preset.name if preset else None
            )
        return blip.to(device=self.device, dtype=torch_dtype(self.dtype)).eval(), processor


TINY_MAX_NEW_TOKENS = 8
"""Caption length of the ``tiny`` preset: its random decoder never stops early, and tests are short."""


def _preset_factory(name: str, **defaults: Any) -> Callable[..., BlipCaptioner]:
    """A registry factory for preset ``name`` taking the class's keyword options."""

    def factory(**overrides: Any) -> BlipCaptioner:
        return BlipCaptioner(name, **{**defaults, **overrides})

    signature = inspect.signature(BlipCaptioner)
    params = [p for k, p in signature.parameters.items() if k != "model"]
    factory.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"The ``{name}`` preset of :class:`BlipCaptioner`, with keyword overrides."
    return factory


tiny = _preset_factory("tiny", max_new_tokens=TINY_MAX_NEW_TOKENS)
blip_base = _preset_factory("blip-base")
blip_large = _preset_factory("blip-large")
