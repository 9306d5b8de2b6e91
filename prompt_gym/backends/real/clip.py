"""open_clip scorer: unit image and text embeddings, and an optional aesthetic head.

:class:`OpenClipScorer` presets (see :mod:`~.presets` for sizes and licences):

- ``clip-b32``: ViT-B-32 / ``laion2b_s34b_b79k`` (512-d), no aesthetic head; ImageInversion-v0.
- ``clip-l14``: ViT-L-14 / ``openai`` (768-d, QuickGELU) with the LAION improved aesthetic
  predictor (``laion-aesthetic-v2``); PromptRewrite-v0.
- ``tiny``: a 32-d random-weight CLIP of the same class, with a random 32-d aesthetic head.
- ``shapes-clip``: a 64-d CLIP of the same class trained on the shapes world, shipped as package
  data (:mod:`prompt_gym.backends.shapes.clip_model`; ``pretrained`` may name a directory that
  ``train_clip --out`` wrote), no aesthetic head.

Weights: ``$PROMPT_GYM_MODEL_DIR/<preset>/`` holding an open_clip checkpoint
(``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``), else the tag's hub repository
in the Hugging Face cache. ``pretrained`` may also be a checkpoint file path.

Images are preprocessed on the device as tensors (resize the short side with antialiased bicubic
interpolation, centre crop, normalise with the tag's mean and std); this matches open_clip's PIL
transform to within a few 1e-3 in embedding cosine. Text longer than the context (77 tokens) is
truncated by open_clip's tokenizer, as in open_clip.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.backends.protocols import ScorerBase
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

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
SHAPES_CLIP = "shapes-clip"
"""The shipped shapes-world CLIP: built from package data, as ``tiny`` is built from a config."""
_PACKAGED = (presets.TINY, SHAPES_CLIP)


class OpenClipScorer(ScorerBase):
    """Vision-language scorer over an open_clip model.

    Args:
        model: open_clip architecture (``"ViT-B-32"``), or a preset name (``"clip-b32"``,
            ``"clip-l14"``, ``"tiny"``).
        pretrained: open_clip pretrained tag, or a checkpoint file path.
        aesthetic_head: ``None`` (no :meth:`aesthetic`), a head preset (``"laion-aesthetic-v2"``),
            ``"tiny"``, or a path to a ``state_dict`` file of the LAION MLP.
        aesthetic_sha256: Expected sha256 of the head file (overrides the preset's); checked
            before loading when set.
        quick_gelu: Force QuickGELU (default: the preset's; ``False`` otherwise).
        dtype: ``"fp32" | "bf16" | "fp16"`` (default fp32: rewards are compared at 1e-3).
        device: Torch device (default: ``"cuda"`` if available, else ``"cpu"``).
        batch_size: Largest batch per forward pass (default: all at once). A batch that runs
            out of GPU memory is split in halves and retried (:mod:`.oom`).
        version: Overrides the preset's version string.

    Raises:
        ValueError: For an invalid option or a head whose input size does not match the model.
        ModelNotFoundError: When the weights are not available offline.
    """

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        *,
        aesthetic_head: str | None = None,
        aesthetic_sha256: str | None = None,
        quick_gelu: bool | None = None,
        dtype: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        version: str | None = None,
    ) -> None:
        preset = presets.find_scorer(model, pretrained)
        if preset is not None:
            model, pretrained = preset.model, preset.pretrained
            quick_gelu = preset.quick_gelu if quick_gelu is None else quick_gelu
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
        if model not in _PACKAGED and not pretrained:
            raise ValueError(
                f"pass pretrained= (an open_clip tag or checkpoint file) for {model!r}"
            )
        self.name = preset.name if preset is not None else f"{model}/{pretrained}"
        if model == SHAPES_CLIP:
            self.name = SHAPES_CLIP
        self.model_name, self.pretrained = model, pretrained
        self.quick_gelu = bool(quick_gelu)
        self.version = version if version is not None else (preset.version if preset else "1")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype or "fp32", self.device)
        self.batch_size = batch_size
        self._oom = OomSplitter(
            f"{self.name}: a single image or text", "use dtype='fp16' or a smaller model"
        )
        source = source_tag(self.name)
        key = ("open_clip", self.name, source, model, pretrained, self.quick_gelu, self.dtype)
        self.clip, self.tokenizer, self.preprocess = shared((*key, self.device), self._load)
        if model not in _PACKAGED:
            warn_if_cpu(self.name, self.device)
        self.dim = int(self.clip.visual.output_dim)
        self.aesthetic_head_name = aesthetic_head
        self.head: Any = None
        self.head_sha256: str | None = None
        if aesthetic_head is not None:
            head_key = ("aesthetic", aesthetic_head, source_tag(aesthetic_head), aesthetic_sha256)
            head_key += (self.dim, self.device)
            self.head, self.head_sha256 = shared(
                head_key, lambda: self._load_head(aesthetic_head, aesthetic_sha256)
            )

    @property
    def has_aesthetic(self) -> bool:
        """Whether :meth:`aesthetic` is available."""
        return self.head is not None

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a score."""
        pretrained = self.pretrained
        if pretrained and os.path.isfile(pretrained):
            pretrained = Path(pretrained).name
        return {
            "kind": "scorer",
            "class": "OpenClipScorer",
            "name": self.name,
            "version": self.version,
            "model": self.model_name,
            "pretrained": pretrained,
            "quick_gelu": self.quick_gelu,
            "dtype": self.dtype,
            "dim": self.dim,
            "preprocess": {**self.preprocess, "impl": "torch-bicubic-antialias"},
            "aesthetic_head": self.aesthetic_head_name,
            "aesthetic_sha256": self.head_sha256,
        }

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N, dim)`` unit vectors."""
        return self._image_features(images, aesthetic=False)[0]

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N,)`` aesthetic scores (LAION head: about 0..10).

        Raises:
            ValueError: If this scorer was built without an aesthetic head.
        """
        self._require_head()
        return self._image_features(images, aesthetic=True)[1]

    def embed_images_with_aesthetic(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and aesthetic scores from one image-tower pass."""
        self._require_head()
        return self._image_features(images, aesthetic=True)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``N`` strings -> ``float32 (N, dim)`` unit vectors (truncated at 77 tokens)."""
        import torch

        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"texts must be strings, got {type(text).__name__}: {text!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)

        def run(start: int, stop: int) -> np.ndarray:
            tokens = self.tokenizer(texts[start:stop]).to(self.device)
            feats = self.clip.encode_text(tokens).float()
            return torch.nn.functional.normalize(feats, dim=-1).cpu().numpy()

        with torch.inference_mode():
            out = self._oom.map(len(texts), self.batch_size, run)
        return np.concatenate(out).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ internals

    def _require_head(self) -> None:
        if self.head is None:
            raise ValueError(
                f"scorer {self.name!r} has no aesthetic head; use the 'clip-l14' preset or pass "
                f"aesthetic_head='laion-aesthetic-v2' (or a head file) with a ViT-L-14 model"
            )

    def _image_features(self, images: np.ndarray, aesthetic: bool) -> tuple[np.ndarray, np.ndarray]:
        import torch

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}"
            )
        n = len(images)
        if n == 0:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32)

        def run(start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
            feats = self.clip.encode_image(self._pixels(images[start:stop])).float()
            embeds = torch.nn.functional.normalize(feats, dim=-1).cpu().numpy()
            return embeds, self.head(feats).float().cpu().numpy() if aesthetic else None

        with torch.inference_mode():
            parts = self._oom.map(n, self.batch_size, run)
        embeds = np.concatenate([e for e, _ in parts]).astype(np.float32, copy=False)
        aes = np.concatenate([a for _, a in parts]) if aesthetic else np.zeros(0)
        return embeds, aes.astype(np.float32)

    def _pixels(self, images: np.ndarray) -> Any:
        """``uint8`` NHWC -> normalised NCHW tensor at the model's input size, on the device."""
        import torch

        size = self.preprocess["size"]
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div(255)
        h, w = x.shape[-2:]
        if (h, w) != (size, size):
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            x = torch.nn.functional.interpolate(
                x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True
            ).clamp(0, 1)
            top, left = (nh - size) // 2, (nw - size) // 2
            x = x[..., top : top + size, left : left + size]
        mean = torch.tensor(self.preprocess["mean"], device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess["std"], device=self.device).view(1, 3, 1, 1)
        return ((x - mean) / std).to(torch_dtype(self.dtype))

    def _load(self) -> tuple[Any, Any, dict[str, Any]]:
        """Build or load the model; return (model, tokenizer, preprocess config)."""
        import open_clip

        if self.model_name == presets.TINY:
            from prompt_gym.backends.real.tiny import TINY_CLIP_IMAGE_SIZE, tiny_open_clip

            clip = tiny_open_clip()
            tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=77)
            preprocess = {"size": TINY_CLIP_IMAGE_SIZE, "mean": OPENAI_MEAN, "std": OPENAI_STD}
        elif self.model_name == SHAPES_CLIP:
            from prompt_gym.backends.shapes.clip_model import load_shapes_clip, recipe_files

            clip, tokenizer, recipe = load_shapes_clip(*recipe_files(self.pretrained))
            pre = recipe["preprocess"]
            preprocess = {"size": pre["size"], "mean": tuple(pre["mean"]), "std": tuple(pre["std"])}
        else:
            checkpoint, tag_cfg = self._checkpoint()
            clip = open_clip.create_model(
                self.model_name,
                pretrained=checkpoint,
                precision="fp32",
                device="cpu",
                force_quick_gelu=self.quick_gelu,
            )
            tokenizer = open_clip.get_tokenizer(self.model_name)
            size = clip.visual.image_size
            preprocess = {
                "size": int(size[0] if isinstance(size, tuple | list) else size),
                "mean": tuple(tag_cfg.get("mean") or OPENAI_MEAN),
                "std": tuple(tag_cfg.get("std") or OPENAI_STD),
            }
        clip = clip.to(device=self.device, dtype=torch_dtype(self.dtype)).eval()
        return clip, tokenizer, preprocess

    def _checkpoint(self) -> tuple[str, dict[str, Any]]:
        """Locate the checkpoint file of (model, pretrained); return it and the tag's config."""
        import open_clip

        pretrained = str(self.pretrained)
        if os.path.isfile(pretrained):
            return pretrained, {}
        tag_cfg = open_clip.get_pretrained_cfg(self.model_name, pretrained)
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(self.model_name)
            raise ValueError(
                f"{pretrained!r} is neither a checkpoint file nor an open_clip tag of "
                f"{self.model_name!r} (tags: {tags})"
            )
        hub = tag_cfg.get("hf_hub", "")
        if not hub:
            raise ValueError(
                f"open_clip tag {self.model_name}/{pretrained} has no Hugging Face copy; download "
                f"its checkpoint and pass pretrained=<file>"
            )
        repo, filename = os.path.split(hub)  # "org/model/" -> ("org/model", ""): default names
        download = self.name if self.name in presets.SCORERS else None
        return load("scorer", self.name, repo, _checkpoint_loader(filename), download), tag_cfg

    def _load_head(self, spec: str, sha256: str | None) -> tuple[Any, str | None]:
        from prompt_gym.backends.real.aesthetic_head import resolve_head

        head, digest = resolve_head(spec, self.dim, sha256)
        return head.to(self.device).eval(), digest


def _checkpoint_loader(filename: str) -> Callable[[str, bool], str]:
    """``load()`` callback: a checkpoint inside a local directory, or from the hub cache."""

    def loader(ref: str, local_files_only: bool) -> str:
        names = (filename,) if filename else CHECKPOINT_NAMES
        if Path(ref).is_dir():
            for name in (*names, *CHECKPOINT_NAMES):
                if (Path(ref) / name).is_file():
                    return str(Path(ref) / name)
            raise FileNotFoundError(f"no open_clip checkpoint ({', '.join(names)}) in {ref}")
        from huggingface_hub import hf_hub_download

        error: OSError | None = None
        for name in names:
            try:
                return hf_hub_download(ref, name, local_files_only=local_files_only)
            except OSError as err:
                error = err
        assert error is not None
        raise error

    return loader


def _preset_factory(name: str) -> Callable[..., OpenClipScorer]:
    """A registry factory for preset ``name`` taking the class's keyword options."""
    preset = presets.SCORERS[name]

    def factory(**overrides: Any) -> OpenClipScorer:
        overrides.setdefault("aesthetic_head", preset.aesthetic)
        return OpenClipScorer(name, preset.pretrained, **overrides)

    signature = inspect.signature(OpenClipScorer)
    params = [
        p.replace(default=preset.aesthetic) if k == "aesthetic_head" else p
        for k, p in signature.parameters.items()
        if k not in ("model", "pretrained")
    ]
    factory.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"The ``{name}`` preset of :class:`OpenClipScorer`, with keyword overrides."
    return factory


tiny = _preset_factory("tiny")


def shapes_clip(pretrained: str | None = None, **overrides: Any) -> OpenClipScorer:
    """The ``shapes-clip`` scorer: :class:`OpenClipScorer` over the shipped shapes-world CLIP.

    Args:
        pretrained: ``None`` (the shipped weights) or a directory holding ``shapes_clip.json``
            and ``shapes_clip.safetensors`` (what ``train_clip --out DIR`` writes).
        **overrides: :class:`OpenClipScorer` options (``device``, ``dtype``, ``batch_size``).

    The version (part of every cache key) is the first 16 hex digits of the weights' sha256.
    """
    from prompt_gym.backends.shapes.clip_model import read_recipe, recipe_files

    overrides.setdefault("version", read_recipe(recipe_files(pretrained)[1])["sha256"][:16])
    return OpenClipScorer(SHAPES_CLIP, pretrained, **overrides)


clip_b32 = _preset_factory("clip-b32")
clip_l14 = _preset_factory("clip-l14")
