"""PickScore (Kirstain et al. 2023) through transformers: ``PS = logit_scale * cos(text, image)``.

As in the PickScore repository: the processor of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``
prepares both modalities, ``yuvalkirstain/PickScore_v1`` (a ``CLIPModel``) embeds them, and
the score is ``exp(logit_scale)`` times the cosine of the unit text and image features (about
18..23 on real images). Both load with ``from_pretrained(ref, local_files_only=...)`` through
:func:`~prompt_gym.backends.real.loading.load`, so a missing model is one clear
``ModelNotFoundError``; ``tiny`` is the same classes with random weights, saved to a temporary
directory and loaded back through the same loader (:func:`~.tiny.tiny_pickscore_dir`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.real import presets
from prompt_gym.backends.real.loading import load, resolve_device, resolve_dtype, torch_dtype


class PickScoreScorer:
    """PickScore of images for prompts (a :class:`~prompt_gym.backends.preference.PreferenceScorer`).

    Args:
        model: A preset name (``"pickscore"``, ``"tiny"``), a hub id or a local directory.
        processor: The processor's hub id or directory (default: the preset's, else ``model``).
        device: ``None`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        dtype: ``fp32``, ``bf16`` or ``fp16`` (default: fp16 on CUDA, fp32 on CPU).
        batch_size: Images per forward pass.
    """

    def __init__(
        self,
        model: str = "pickscore",
        processor: str | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
    ) -> None:
        preset = presets.PREFERENCES.get(model)
        self.name = preset.name if preset else model
        if preset is not None and preset.model == presets.TINY:
            from prompt_gym.backends.real.tiny import tiny_pickscore_dir

            model = processor = tiny_pickscore_dir()
        elif preset is not None:
            model, processor = preset.model, processor or preset.processor
        self.model_ref, self.processor_ref = model, processor or model
        self.version = preset.version if preset else "1"
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.model, self.processor = self._load()

    def config(self) -> dict[str, Any]:
        """Model, processor, version and dtype (for dataset provenance)."""
        tiny = self.name == presets.TINY
        return {
            "name": self.name,
            "model": presets.TINY if tiny else self.model_ref,
            "processor": presets.TINY if tiny else self.processor_ref,
            "version": self.version,
            "dtype": self.dtype,
        }

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoProcessor, CLIPModel

        def model_loader(ref: str, local_files_only: bool) -> Any:
            return CLIPModel.from_pretrained(
                ref, local_files_only=local_files_only, dtype=torch_dtype(self.dtype)
            )

        def processor_loader(ref: str, local_files_only: bool) -> Any:
            return AutoProcessor.from_pretrained(ref, local_files_only=local_files_only)

        download = self.name if self.name in presets.PREFERENCES else None
        model = load("preference", self.name, self.model_ref, model_loader, download)
        processor = load(
            "preference processor", self.name, self.processor_ref, processor_loader, download
        )
        return model.to(self.device).eval(), processor

    def preference(self, texts: Sequence[str], images: np.ndarray) -> np.ndarray:
        """``exp(logit_scale) * cos(text_i, image_i)`` for each pair, ``float32 (N,)``."""
        import torch

        images = np.asarray(images)
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts for {len(images)} images")
        out = []
        with torch.inference_mode():
            for a in range(0, len(texts), self.batch_size):
                t, im = list(texts[a : a + self.batch_size]), list(images[a : a + self.batch_size])
                pixels = self.processor(images=im, return_tensors="pt")["pixel_values"]
                tokens = self.processor(
                    text=t, padding=True, truncation=True, max_length=77, return_tensors="pt"
                )
                image = self.model.get_image_features(
                    pixel_values=pixels.to(self.device, torch_dtype(self.dtype))
                )
                text = self.model.get_text_features(
                    **{k: v.to(self.device) for k, v in tokens.items()}
                )
                image, text = _features(image), _features(text)
                image = image / image.norm(dim=-1, keepdim=True)
                text = text / text.norm(dim=-1, keepdim=True)
                scale = self.model.logit_scale.exp()
                out.append((scale * (text * image).sum(-1)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _features(x: Any) -> Any:
    """The embedding tensor (some transformers versions return a model output instead)."""
    return x if hasattr(x, "norm") else x.pooler_output


def pickscore_v1(backend: Any = None, **kwargs: Any) -> PickScoreScorer:
    """The ``pickscore`` preset (``yuvalkirstain/PickScore_v1``); ``backend`` is not used."""
    return PickScoreScorer("pickscore", **kwargs)


def tiny(backend: Any = None, **kwargs: Any) -> PickScoreScorer:
    """The ``tiny`` random-weight twin of PickScore, on CPU; ``backend`` is not used."""
    return PickScoreScorer("tiny", **{"device": "cpu", **kwargs})
