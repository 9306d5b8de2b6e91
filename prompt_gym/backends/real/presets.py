"""Named real-model presets as data: hub ids, sampling settings, sizes and licences.

A preset is recognised by its name (``"sd-turbo"``) or by its hub id / architecture
(``"stabilityai/sd-turbo"``, ``("ViT-B-32", "laion2b_s34b_b79k")``). Bump ``version`` whenever a
preset's outputs change: it is part of every cache key.

Sizes are parameter counts and the size of the files :func:`~.download.download` fetches; licences
are those stated on the model cards at the time of writing (check the card before use).

Generators (diffusers):

- ``sd-turbo``: ``stabilityai/sd-turbo``, SD 2.1 distilled by adversarial diffusion distillation;
  1 step, guidance 0, 512x512. ~1.3B params (UNet 865M, OpenCLIP-H text encoder 340M, VAE 84M),
  ~5 GB fp32 safetensors. Licence: Stability AI community licence (``sai-nc-community``).
- ``sdxl-turbo``: ``stabilityai/sdxl-turbo``; 1 step, guidance 0, 512x512. ~3.5B params,
  ~14 GB fp32 safetensors. Licence: as sd-turbo.
- ``sd15``: ``stable-diffusion-v1-5/stable-diffusion-v1-5`` (the maintained copy of
  ``runwayml/stable-diffusion-v1-5``); 20 DPM-Solver++ steps, guidance 7.5, 512x512.
  ~1.07B params, ~5 GB. Licence: CreativeML OpenRAIL-M.
- TAESD decoders (``taesd=True``): ``madebyollin/taesd`` (SD 1/2), ``madebyollin/taesdxl`` (SDXL);
  ~2.4M params, ~10 MB, MIT.

Scorers (open_clip):

- ``clip-b32``: ``ViT-B-32`` / ``laion2b_s34b_b79k``, 151M params, ~600 MB, MIT.
- ``clip-l14``: ``ViT-L-14`` / ``openai`` (QuickGELU), 428M params, ~1.7 GB, MIT; with the
  LAION improved aesthetic predictor ``laion-aesthetic-v2`` (sac+logos+ava1-l14-linearMSE, an MLP
  768-1024-128-64-16-1, 0.93M params, ~3.7 MB, Apache-2.0 per its repository), fetched from a
  verbatim hub mirror (``camenduru/improved-aesthetic-predictor``) and checked against the
  original file's sha256 before it is loaded.

Captioners (transformers BLIP):

- ``blip-base``: ``Salesforce/blip-image-captioning-base``, 247M params, ~1 GB, BSD-3-Clause.
- ``blip-large``: ``Salesforce/blip-image-captioning-large``, 470M params, ~1.9 GB, BSD-3-Clause.

Preference scorers (transformers CLIP, :mod:`~prompt_gym.backends.real.pickscore`):

- ``pickscore``: ``yuvalkirstain/PickScore_v1`` (CLIP ViT-H/14 fine-tuned on Pick-a-Pic) with the
  ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` processor; ~986M params, ~3.9 GB fp32. Licence: MIT
  (the PickScore repository; the ViT-H/14 processor and base model are MIT too).

``tiny`` (all kinds): the same classes built from tiny random-weight configs; no files at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TINY = "tiny"


@dataclass(frozen=True)
class GeneratorPreset:
    """A named diffusers text-to-image configuration.

    Attributes:
        name: Preset name (``backend=`` / ``generator=`` value, ``PROMPT_GYM_MODEL_DIR`` subdir).
        model: Hub id, or ``"tiny"`` for the random-weight pipeline built from configs.
        steps: Denoising steps.
        guidance: Classifier-free guidance scale (``<= 1`` disables guidance).
        resolution: Image height and width in pixels.
        scheduler: ``None`` keeps the pipeline's scheduler; ``"dpmsolver++"`` swaps in
            DPM-Solver++ (multistep).
        taesd: Name of the TAESD preset used when ``taesd=True``.
        version: Bumped when outputs change.
        size: Parameters and download size, for ``prompt-gym list``.
        licence: Licence of the weights.
    """

    name: str
    model: str
    steps: int
    guidance: float
    resolution: int
    scheduler: str | None = None
    taesd: str = "taesd"
    version: str = "1"
    size: str = ""
    licence: str = ""


@dataclass(frozen=True)
class HubModel:
    """A plain hub repository (TAESD decoders)."""

    name: str
    model: str
    size: str = ""
    licence: str = ""


@dataclass(frozen=True)
class AestheticPreset:
    """Weights of an aesthetic MLP head (see :mod:`~.aesthetic_head`).

    Attributes:
        name: Preset name, also the ``PROMPT_GYM_MODEL_DIR`` subdirectory holding ``filename``.
        repo: Hub repository holding the weights.
        filename: File in ``repo``: a plain ``state_dict`` with keys ``layers.{0,2,4,6,7}.*``.
        input_dim: CLIP embedding dimension the head expects.
        sha256: Expected sha256 of the file, checked before it is loaded (``None``: not checked).
            ``aesthetic_sha256=`` on the scorer overrides it, to pin another file you trust.
    """

    name: str
    repo: str
    filename: str
    input_dim: int
    sha256: str | None = None
    size: str = ""
    licence: str = ""


@dataclass(frozen=True)
class ScorerPreset:
    """A named open_clip scorer.

    Attributes:
        name: Preset name.
        model: open_clip architecture (``"ViT-B-32"``), or ``"tiny"``.
        pretrained: open_clip pretrained tag (resolved to its hub repo by open_clip's table).
        quick_gelu: Use QuickGELU (the OpenAI checkpoints were trained with it).
        aesthetic: Name of the :class:`AestheticPreset` loaded as the aesthetic head, if any.
        version: Bumped when outputs change.
    """

    name: str
    model: str
    pretrained: str | None
    quick_gelu: bool = False
    aesthetic: str | None = None
    version: str = "1"
    size: str = ""
    licence: str = ""


@dataclass(frozen=True)
class CaptionerPreset:
    """A named BLIP captioner (hub id, or ``"tiny"``)."""

    name: str
    model: str
    version: str = "1"
    size: str = ""
    licence: str = ""


_SAI = "Stability AI Community Licence (model card)"

GENERATORS: dict[str, GeneratorPreset] = {
    p.name: p
    for p in (
        GeneratorPreset(TINY, TINY, 2, 0.0, 64, size="~2M params, built from configs"),
        GeneratorPreset(
            "sd-turbo", "stabilityai/sd-turbo", 1, 0.0, 512, size="1.3B params, ~5 GB", licence=_SAI
        ),
        GeneratorPreset(
            "sdxl-turbo",
            "stabilityai/sdxl-turbo",
            1,
            0.0,
            512,
            taesd="taesdxl",
            size="3.5B params, ~14 GB",
            licence=_SAI,
        ),
        GeneratorPreset(
            "sd15",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            20,
            7.5,
            512,
            scheduler="dpmsolver++",
            size="1.07B params, ~5 GB",
            licence="CreativeML OpenRAIL-M",
        ),
    )
}

TAESD: dict[str, HubModel] = {
    "taesd": HubModel("taesd", "madebyollin/taesd", "2.4M params, ~10 MB", "MIT"),
    "taesdxl": HubModel("taesdxl", "madebyollin/taesdxl", "2.4M params, ~10 MB", "MIT"),
}

LAION_AESTHETIC_SHA256 = "21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0"
"""sha256 of ``sac+logos+ava1-l14-linearMSE.pth`` (3,714,759 bytes) as served by the predictor's
own repository (christophschuhmann/improved-aesthetic-predictor); independent projects pin the
same digest for that file and its verbatim mirrors."""

AESTHETIC_HEADS: dict[str, AestheticPreset] = {
    "laion-aesthetic-v2": AestheticPreset(
        "laion-aesthetic-v2",
        repo="camenduru/improved-aesthetic-predictor",
        filename="sac+logos+ava1-l14-linearMSE.pth",
        input_dim=768,
        sha256=LAION_AESTHETIC_SHA256,
        size="0.93M params, ~3.7 MB",
        licence="Apache-2.0 (christophschuhmann/improved-aesthetic-predictor)",
    ),
}

SCORERS: dict[str, ScorerPreset] = {
    p.name: p
    for p in (
        ScorerPreset(TINY, TINY, None, aesthetic=TINY, size="~0.3M params, built from configs"),
        ScorerPreset(
            "clip-b32", "ViT-B-32", "laion2b_s34b_b79k", size="151M params, ~600 MB", licence="MIT"
        ),
        ScorerPreset(
            "clip-l14",
            "ViT-L-14",
            "openai",
            quick_gelu=True,
            aesthetic="laion-aesthetic-v2",
            size="428M params, ~1.7 GB (+3.7 MB aesthetic head)",
            licence="MIT (CLIP); Apache-2.0 (aesthetic head)",
        ),
    )
}

CAPTIONERS: dict[str, CaptionerPreset] = {
    p.name: p
    for p in (
        CaptionerPreset(TINY, TINY, size="~0.2M params, built from configs"),
        CaptionerPreset(
            "blip-base",
            "Salesforce/blip-image-captioning-base",
            size="247M params, ~1 GB",
            licence="BSD-3-Clause",
        ),
        CaptionerPreset(
            "blip-large",
            "Salesforce/blip-image-captioning-large",
            size="470M params, ~1.9 GB",
            licence="BSD-3-Clause",
        ),
    )
}


@dataclass(frozen=True)
class PreferencePreset:
    """A named transformers CLIP preference model and the processor it is used with."""

    name: str
    model: str
    processor: str
    version: str = "1"
    size: str = ""
    licence: str = ""


PREFERENCES: dict[str, PreferencePreset] = {
    p.name: p
    for p in (
        PreferencePreset(TINY, TINY, TINY, size="~1.7M params, built from configs"),
        PreferencePreset(
            "pickscore",
            "yuvalkirstain/PickScore_v1",
            "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
            size="986M params, ~3.9 GB",
            licence="MIT (PickScore repository)",
        ),
    )
}


def find_generator(model: str) -> GeneratorPreset | None:
    """The generator preset named ``model`` or whose hub id is ``model``, if any.

    >>> find_generator("stabilityai/sd-turbo").name
    'sd-turbo'
    >>> find_generator("./my-model") is None
    True
    """
    return GENERATORS.get(model) or next((p for p in GENERATORS.values() if p.model == model), None)


def find_scorer(model: str, pretrained: str | None) -> ScorerPreset | None:
    """The scorer preset named ``model``, or whose (architecture, tag) is ``(model, pretrained)``.

    >>> find_scorer("ViT-B-32", "laion2b_s34b_b79k").name
    'clip-b32'
    """
    if model in SCORERS:
        return SCORERS[model]
    return next(
        (p for p in SCORERS.values() if (p.model, p.pretrained) == (model, pretrained)), None
    )


def find_captioner(model: str) -> CaptionerPreset | None:
    """The captioner preset named ``model`` or whose hub id is ``model``, if any."""
    return CAPTIONERS.get(model) or next((p for p in CAPTIONERS.values() if p.model == model), None)


def model_table() -> list[dict[str, str]]:
    """Every downloadable model preset: kind, name, source, size and licence (``prompt-gym list``).

    >>> rows = model_table(); [r["name"] for r in rows if r["kind"] == "aesthetic head"]
    ['laion-aesthetic-v2']
    """

    def row(kind: str, preset: Any, source: str) -> dict[str, str]:
        return {
            "kind": kind,
            "name": preset.name,
            "source": source,
            "size": preset.size,
            "licence": preset.licence,
        }

    return [
        *(row("generator", p, p.model) for p in GENERATORS.values() if p.model != TINY),
        *(row("decoder", p, p.model) for p in TAESD.values()),
        *(
            row("scorer", p, f"open_clip {p.model} / {p.pretrained}")
            for p in SCORERS.values()
            if p.model != TINY
        ),
        *(row("aesthetic head", p, f"{p.repo}/{p.filename}") for p in AESTHETIC_HEADS.values()),
        *(row("captioner", p, p.model) for p in CAPTIONERS.values() if p.model != TINY),
        *(
            row("preference", p, f"{p.model} (processor {p.processor})")
            for p in PREFERENCES.values()
            if p.model != TINY
        ),
    ]
