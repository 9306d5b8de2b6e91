"""Diffusers text-to-image generator: one batched pipeline call per request batch.

:class:`DiffusersGenerator` wraps a Stable Diffusion (1.x/2.x) or SDXL pipeline:

- presets ``sd-turbo`` (the default: ``stabilityai/sd-turbo``, 512x512, 1 step, guidance 0),
  ``sdxl-turbo``, ``sd15`` (20 DPM-Solver++ steps, guidance 7.5) and ``tiny`` (random weights,
  built offline, 64x64, 2 steps); or any hub id / local directory with explicit ``steps``,
  ``guidance`` and ``resolution`` (see :mod:`~.presets` for sizes and licences);
- every sample gets its own CPU ``torch.Generator`` seeded from its seed, so its noise does not
  depend on its batch neighbours or on the device; the image still drifts within numerical
  tolerance with batch composition (diffusers tests with 3e-3 on float images: a few uint8 levels);
- prompt embeddings are cached per prompt string (LRU) and passed as ``prompt_embeds``;
- latents are decoded here (``output_type="latent"``) by the SD VAE or TAESD (``taesd=True``). The
  VAE is kept in a safe precision: ``dtype="fp16"`` runs the SD VAE in fp32 (the fp16 SD VAE
  overflows to NaN); bf16 and fp32 run it as is. Images that are not finite after decoding are
  zeroed and flagged by :meth:`DiffusersGenerator.generate_checked`;
- the safety checker is NOT loaded (``safety_checker=None``): it replaces flagged images with black
  ones, which an RL policy can learn to exploit, and it costs a second vision model per image.
  Outputs are unfiltered: filter them yourself before showing them to anyone;
- a CUDA out-of-memory error splits the batch in halves and retries (recursively); later calls
  start from the size that fitted. A single image that does not fit raises.

Defaults: CUDA when available, else CPU (with a warning for real presets); ``dtype`` bf16 on CUDA,
fp32 on CPU. Loaded pipelines are shared per process by every instance with the same resolved
model, dtype, device, decoder, scheduler and performance options.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.cache import MemoryLRU
from prompt_gym.backends.protocols import GeneratorBase
from prompt_gym.backends.real import presets
from prompt_gym.backends.real.loading import (
    resolve_device,
    resolve_dtype,
    shared,
    source_tag,
    warn_if_cpu,
)
from prompt_gym.backends.real.oom import OomSplitter
from prompt_gym.backends.real.pipelines import (
    check_batch,
    check_options,
    load_pipeline,
    prepare,
)

_LOCK = threading.RLock()  # pipelines are shared and not thread-safe: one batch at a time


class DiffusersGenerator(GeneratorBase):
    """Text-to-image generator over a diffusers Stable Diffusion / SDXL pipeline.

    Args:
        model: A preset name (``"sd-turbo"``, ``"sdxl-turbo"``, ``"sd15"``, ``"tiny"``), a preset's
            hub id, any other hub id, or a local directory written by ``save_pretrained``.
        steps: Denoising steps (default: the preset's; required for non-preset models).
        guidance: Classifier-free guidance scale; ``<= 1`` disables guidance (default: preset's).
        resolution: Image height and width in pixels (default: preset's).
        dtype: ``"bf16" | "fp16" | "fp32"`` for the UNet and text encoder (default: bf16 on CUDA,
            fp32 on CPU). The SD VAE runs in fp32 when this is fp16.
        taesd: ``True`` decodes with the preset's TAESD (``madebyollin/taesd`` or ``taesdxl``), a
            string names a TAESD hub id or directory; ``False`` keeps the SD VAE.
        compile: ``torch.compile`` the UNet and the decoder; a string is the compile mode.
        channels_last: Put the UNet and the VAE in channels-last memory format.
        attention: ``None`` (PyTorch SDPA), ``"slicing"``, ``"xformers"``, or a diffusers
            attention backend name (``"flash"``, ``"_native_cudnn"``, ...).
        device: Torch device (default: ``"cuda"`` if available, else ``"cpu"``).
        batch_size: Largest batch per pipeline call (default: the whole request in one call).
        scheduler: ``None`` (the preset's / pipeline's), ``"dpmsolver++"``, ``"euler"``, ``"ddim"``.
        embed_cache_size: Prompt embeddings kept (LRU).
        version: Overrides the preset's version string (part of :meth:`config`).
        pipeline: An already-built pipeline to wrap instead of loading ``model`` (benchmarks and
            tests); ``model`` is then only its name.

    Raises:
        ValueError: For an invalid option (before anything is loaded).
        ModelNotFoundError: When the weights are not available offline.
    """

    def __init__(
        self,
        model: str = "sd-turbo",
        *,
        steps: int | None = None,
        guidance: float | None = None,
        resolution: int | None = None,
        dtype: str | None = None,
        taesd: bool | str = False,
        compile: bool | str = False,
        channels_last: bool = False,
        attention: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        scheduler: str | None = None,
        embed_cache_size: int = 4096,
        version: str | None = None,
        pipeline: Any = None,
    ) -> None:
        preset = presets.find_generator(model)
        steps, guidance, resolution, scheduler = _sampling(
            model, preset, steps, guidance, resolution, scheduler
        )
        check_options(steps, guidance, resolution, batch_size, scheduler, embed_cache_size)
        self.name = preset.name if preset is not None else model
        self.model = preset.model if preset is not None else model
        self.version = version if version is not None else (preset.version if preset else "1")
        self.steps, self.guidance, self.resolution = int(steps), float(guidance), int(resolution)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.embed_cache_size = embed_cache_size
        self.tiny = self.model == presets.TINY and pipeline is None
        options = (self.dtype, self.device, taesd, scheduler, compile, channels_last, attention)
        self.pipeline = self._pipeline(preset, pipeline, options)
        scale = int(self.pipeline.vae_scale_factor)
        if self.resolution % scale:
            raise ValueError(
                f"resolution must be a multiple of {scale} for {self.name!r}, got {resolution}"
            )
        self._embeds = MemoryLRU(self.embed_cache_size)  # prompt -> encoder outputs
        self._negative: dict[str, Any] | None = None
        self._oom = OomSplitter(
            f"{self.name}: a single {self.resolution}x{self.resolution} image",
            f"at {self.dtype}, lower the resolution, use taesd=True, attention='slicing', "
            "or a smaller model",
        )
        self.profile = False
        self.timings: dict[str, float] = {}
        self.reset_timings()

    def _pipeline(
        self, preset: presets.GeneratorPreset | None, pipeline: Any, options: tuple[Any, ...]
    ) -> Any:
        """The given pipeline prepared, or the preset's, loaded once per process and shared."""
        if pipeline is not None:
            return prepare(pipeline, preset, *options)
        taesd = options[2]
        taesd_name = (preset.taesd if preset else "taesd") if taesd is True else str(taesd)
        sources = (source_tag(self.name), source_tag(taesd_name) if taesd else None)
        key = ("diffusers", self.name, self.model, *sources, *options)
        loaded = shared(
            key,
            lambda: prepare(
                load_pipeline(self.name, self.model, preset, self.dtype), preset, *options
            ),
        )
        if not self.tiny:
            warn_if_cpu(self.name, self.device)
        return loaded

    # ------------------------------------------------------------------ public API

    def config(self) -> dict[str, Any]:
        """Every parameter that changes an image (device and speed options excluded)."""
        pipe = self.pipeline
        return {
            "kind": "generator",
            "class": "DiffusersGenerator",
            "name": self.name,
            "version": self.version,
            "model": self.model,
            "pipeline": type(pipe).__name__,
            "steps": self.steps,
            "guidance": self.guidance,
            "resolution": self.resolution,
            "dtype": self.dtype,
            "vae_dtype": str(pipe.vae.dtype).removeprefix("torch."),
            "decoder": type(pipe.vae).__name__,
            "scheduler": type(pipe.scheduler).__name__,
            "timestep_spacing": pipe.scheduler.config.get("timestep_spacing"),
            "noise": "per-sample cpu torch.Generator",
        }

    @property
    def max_tokens(self) -> int:
        """Tokens the text encoder reads (77 for CLIP), BOS and EOS included."""
        return int(self.pipeline.tokenizer.model_max_length)

    def count_tokens(self, prompts: Sequence[str]) -> np.ndarray:
        """Tokens per prompt in the text encoder's tokenizer, BOS/EOS included, untruncated."""
        ids = self.pipeline.tokenizer(
            list(prompts), padding=False, truncation=False, verbose=False
        )["input_ids"]
        return np.asarray([len(x) for x in ids], dtype=np.int64)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` images, one per (prompt, seed); non-finite ones are zeros."""
        return self.generate_checked(prompts, seeds)[0]

    def generate_checked(
        self, prompts: Sequence[str], seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images and a ``bool (N,)`` flag of images that were not finite (returned as zeros).

        Raises:
            ValueError: For mismatched lengths, a non-string prompt or a seed outside
                ``[0, 2**64)``.
        """
        prompts, seeds = check_batch(prompts, seeds)
        n = len(prompts)
        if n == 0:
            empty = np.zeros((0, self.resolution, self.resolution, 3), dtype=np.uint8)
            return empty, np.zeros(0, dtype=bool)
        parts = self._oom.map(n, self.batch_size, lambda a, b: self._run(prompts[a:b], seeds[a:b]))
        self.timings["images"] += n
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    @property
    def stats(self) -> dict[str, int]:
        """``oom_splits``: batches split after a CUDA out-of-memory error."""
        return {"oom_splits": self._oom.splits}

    def reset_timings(self) -> None:
        """Zero the per-stage wall-clock totals (seconds; exact only with ``profile = True``)."""
        self.timings = {"text_encode_s": 0.0, "denoise_s": 0.0, "decode_s": 0.0, "images": 0.0}

    # ------------------------------------------------------------------ internals

    def _run(self, prompts: list[str], seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """One pipeline call and one decode for a batch."""
        import torch

        with _LOCK, torch.inference_mode():
            t0 = time.perf_counter()
            embeds = self._embeddings(prompts)
            t1 = self._tick()
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            latents = self.pipeline(
                **embeds,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                height=self.resolution,
                width=self.resolution,
                generator=generators,
                output_type="latent",
                return_dict=True,
            ).images
            t2 = self._tick()
            images, bad = self._decode(latents)
            t3 = time.perf_counter()
        self.timings["text_encode_s"] += t1 - t0
        self.timings["denoise_s"] += t2 - t1
        self.timings["decode_s"] += t3 - t2
        return images, bad

    def _tick(self) -> float:
        if self.profile and self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _decode(self, latents: Any) -> tuple[np.ndarray, np.ndarray]:
        """Latents -> ``uint8`` NHWC images and non-finite flags (flagged images are zeros)."""
        import torch

        vae = self.pipeline.vae
        cfg = vae.config
        latents = latents.to(vae.dtype)
        mean, std = cfg.get("latents_mean"), cfg.get("latents_std")
        if mean is not None and std is not None:
            mean = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
            std = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
            latents = latents * std / cfg.scaling_factor + mean
        else:
            latents = latents / cfg.scaling_factor
            shift = cfg.get("shift_factor")
            if shift:
                latents = latents + shift
        image = vae.decode(latents, return_dict=False)[0].float() / 2 + 0.5
        finite = torch.isfinite(image).flatten(1).all(dim=1)
        image = torch.where(finite[:, None, None, None], image, 0.0).clamp(0, 1)
        pixels = image.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return pixels.cpu().numpy(), (~finite).cpu().numpy()

    def _embeddings(self, prompts: list[str]) -> dict[str, Any]:
        """Pipeline keyword arguments with the (cached) embeddings of ``prompts``."""
        import torch

        distinct = list(dict.fromkeys(prompts))
        rows = dict(zip(distinct, self._embeds.get_many(distinct), strict=True))
        missing = [prompt for prompt, row in rows.items() if row is None]
        if missing:
            encoded = self._encode(missing)
            for i, prompt in enumerate(missing):
                rows[prompt] = {k: v[i] for k, v in encoded.items()}
            self._embeds.put_many((prompt, rows[prompt]) for prompt in missing)
        batch = {k: torch.stack([rows[p][k] for p in prompts]) for k in rows[prompts[0]]}
        if self.guidance > 1:
            if self._negative is None:
                self._negative = self._encode_negative()
            for k, v in self._negative.items():
                batch[f"negative_{k}"] = v.expand(len(prompts), *v.shape[1:])
        return batch

    def _encode(self, prompts: list[str]) -> dict[str, Any]:
        out = self.pipeline.encode_prompt(
            prompt=prompts,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )
        encoded = {"prompt_embeds": out[0]}
        if len(out) == 4:  # SDXL: (embeds, negative, pooled, negative_pooled)
            encoded["pooled_prompt_embeds"] = out[2]
        return encoded

    def _encode_negative(self) -> dict[str, Any]:
        """The unconditional embeddings: the empty prompt, or zeros where SDXL asks for them."""
        import torch

        encoded = self._encode([""])
        if self.pipeline.config.get("force_zeros_for_empty_prompt", False):
            encoded = {k: torch.zeros_like(v) for k, v in encoded.items()}
        return encoded


def _sampling(
    model: str,
    preset: presets.GeneratorPreset | None,
    steps: int | None,
    guidance: float | None,
    resolution: int | None,
    scheduler: str | None,
) -> tuple[int, float, int, str | None]:
    """Steps, guidance, resolution and scheduler: as given, else the preset's.

    Raises:
        ValueError: If one of the first three is neither given nor in a preset.
    """
    if preset is not None:
        steps = preset.steps if steps is None else steps
        guidance = preset.guidance if guidance is None else guidance
        resolution = preset.resolution if resolution is None else resolution
        scheduler = preset.scheduler if scheduler is None else scheduler
    given = {"steps": steps, "guidance": guidance, "resolution": resolution}
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(
            f"model {model!r} is not a preset ({sorted(presets.GENERATORS)}): pass {missing} "
            f"explicitly, e.g. DiffusersGenerator({model!r}, steps=20, guidance=7.5, "
            f"resolution=512)"
        )
    assert steps is not None and guidance is not None and resolution is not None
    return steps, guidance, resolution, scheduler


def _preset_factory(name: str) -> Callable[..., DiffusersGenerator]:
    """A registry factory for preset ``name`` taking the class's keyword options."""

    def factory(**overrides: Any) -> DiffusersGenerator:
        return DiffusersGenerator(name, **overrides)

    signature = inspect.signature(DiffusersGenerator)
    params = [p for k, p in signature.parameters.items() if k not in ("model", "pipeline")]
    factory.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = (
        f"The ``{name}`` preset of :class:`DiffusersGenerator`, with keyword overrides."
    )
    return factory


tiny = _preset_factory("tiny")
sd_turbo = _preset_factory("sd-turbo")
sdxl_turbo = _preset_factory("sdxl-turbo")
sd15 = _preset_factory("sd15")
