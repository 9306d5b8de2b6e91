"""Throughput of the real reward path: generate (text encode, UNet, decode) + CLIP image embed.

Prints scored images/s and per-stage milliseconds per batch at each batch size, with and without
TAESD and ``torch.compile``. When a preset's weights are not available it builds the same
architectures from configs with random weights (throughput does not depend on weight values) and
says so in its output.

Targets (one H100, 512x512 bf16, SD-Turbo 1 step + CLIP ViT-B/32): >= 100 images/s with the SD
VAE, >= 250 with TAESD.

Usage::

    python benchmarks/diffusion_throughput.py --backend sd-turbo
    python benchmarks/diffusion_throughput.py --backend tiny          # CPU smoke run, seconds
    python benchmarks/diffusion_throughput.py --backend sd-turbo --taesd on --compile on \
        --batch-sizes 32 64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

# SD 2.1 / sd-turbo UNet (stabilityai/sd-turbo unet/config.json).
SD21_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
}
# SD 1.5 UNet: 768-d cross attention, 8 heads, no linear projection.
SD15_UNET = {
    **SD21_UNET,
    "attention_head_dim": 8,
    "cross_attention_dim": 768,
    "use_linear_projection": False,
}
# The SD 1.x/2.x VAE (the same for both).
SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
# Text encoders: OpenCLIP ViT-H/14 text tower (SD 2.x uses 23 of its 24 layers), CLIP ViT-L/14.
TEXT_ENCODERS = {
    "sd-turbo": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_attention_heads": 16,
        "num_hidden_layers": 23,
        "projection_dim": 1024,
        "hidden_act": "gelu",
    },
    "sd15": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    },
}
UNETS = {"sd-turbo": SD21_UNET, "sd15": SD15_UNET}


def _random_pipeline(backend: str, taesd: bool, device: str) -> Any:
    """The preset's architecture with random weights, built on ``device``."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from prompt_gym.backends.real.tiny import clip_tokenizer, turbo_pipeline

    if backend not in UNETS:
        raise ValueError(
            f"no random-weight architecture for {backend!r} in this script (have {sorted(UNETS)}); "
            f"download its weights with `prompt-gym download {backend}`"
        )
    tokenizer = clip_tokenizer()
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNETS[backend])
        vae = AutoencoderTiny() if taesd else AutoencoderKL.from_config(SD_VAE)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                max_position_embeddings=77,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **TEXT_ENCODERS[backend],
            )
        )
    return turbo_pipeline(unet, vae, text_encoder, tokenizer)


def build(backend: str, taesd: bool, compile: bool, device: str | None) -> tuple[Any, Any, str]:
    """Generator, scorer, and where their weights came from (pretrained, random or tiny)."""
    from prompt_gym.backends.real.clip import OpenClipScorer
    from prompt_gym.backends.real.diffusion import DiffusersGenerator
    from prompt_gym.backends.real.loading import ModelNotFoundError, resolve_device
    from prompt_gym.backends.registry import BACKENDS, resolve

    device = resolve_device(device)
    preset = BACKENDS.get(backend)
    gen_name = preset.generator if preset else backend
    scorer_name = preset.scorer if preset else "clip-b32"
    sources = []
    try:
        gen = resolve("generator", gen_name)(taesd=taesd, compile=compile, device=device)
        sources.append("tiny random" if gen_name == "tiny" else "pretrained")
    except ModelNotFoundError:
        pipe = _random_pipeline(gen_name, taesd, device)
        gen = DiffusersGenerator(gen_name, pipeline=pipe, compile=compile, device=device)
        sources.append("random")
    try:
        scorer = resolve("scorer", scorer_name)(device=device)
        sources.append("tiny random" if scorer_name == "tiny" else "pretrained")
    except ModelNotFoundError:
        import open_clip
        import torch
        from safetensors.torch import save_file

        arch = "ViT-L-14" if scorer_name == "clip-l14" else "ViT-B-32"
        with torch.device(device):
            clip = open_clip.create_model(arch, pretrained=None)
        path = Path(tempfile.mkdtemp()) / f"random-{arch}.safetensors"
        save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
        scorer = OpenClipScorer(arch, str(path), device=device)
        sources.append("random")
    weights = (
        sources[0] if sources[0] == sources[1] else f"generator {sources[0]}, scorer {sources[1]}"
    )
    return gen, scorer, weights


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def run(
    backend: str = "sd-turbo",
    batch_sizes: tuple[int, ...] = (1, 8, 32, 64),
    taesd: bool = False,
    compile: bool = False,
    repeats: int = 3,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Measure one configuration at each batch size; one dict per batch size.

    Keys: backend, weights (``"pretrained"`` or ``"random"``), device, dtype, resolution,
    steps, taesd, compile, batch_size, images_per_s (generated and CLIP-embedded), and
    milliseconds per batch for text_encode_ms, unet_ms (denoising loop), decode_ms, clip_ms.
    """
    gen, scorer, weights = build(backend, taesd, compile, device)
    gen.profile = True
    rows = []
    counter = 0
    for batch in batch_sizes:

        def prompts(n: int) -> list[str]:
            nonlocal counter
            counter += n  # fresh prompts: the embedding cache must not hide text encoding
            return [f"a photo of object {counter - i}, detailed" for i in range(n)]

        for _ in range(2 if compile else 1):  # warm-up (and compilation)
            scorer.embed_images(gen.generate(prompts(batch), list(range(batch))))
        gen.reset_timings()
        clip_s = 0.0
        _sync(gen.device)
        start = time.perf_counter()
        for r in range(repeats):
            images = gen.generate(prompts(batch), [r * batch + i for i in range(batch)])
            t0 = time.perf_counter()
            scorer.embed_images(images)
            _sync(gen.device)
            clip_s += time.perf_counter() - t0
        total = time.perf_counter() - start
        t = gen.timings
        rows.append(
            {
                "backend": backend,
                "weights": weights,
                "device": gen.device,
                "dtype": gen.dtype,
                "resolution": gen.resolution,
                "steps": gen.steps,
                "taesd": taesd,
                "compile": compile,
                "batch_size": batch,
                "images_per_s": batch * repeats / total,
                "text_encode_ms": 1e3 * t["text_encode_s"] / repeats,
                "unet_ms": 1e3 * t["denoise_s"] / repeats,
                "decode_ms": 1e3 * t["decode_s"] / repeats,
                "clip_ms": 1e3 * clip_s / repeats,
            }
        )
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    head = f"{'taesd':>5} {'compile':>7} {'batch':>5} {'img/s':>8} "
    head += f"{'text ms':>8} {'unet ms':>8} {'decode ms':>9} {'clip ms':>8}"
    print(head)
    for r in rows:
        print(
            f"{r['taesd']!s:>5} {r['compile']!s:>7} {r['batch_size']:>5} {r['images_per_s']:>8.1f} "
            f"{r['text_encode_ms']:>8.2f} {r['unet_ms']:>8.2f} {r['decode_ms']:>9.2f} "
            f"{r['clip_ms']:>8.2f}"
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Command-line entry point; returns every row it printed."""
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="sd-turbo", help="backend or generator preset")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--taesd", choices=("off", "on", "both"), default="both")
    parser.add_argument(
        "--compile", choices=("off", "on", "both"), default="both" if cuda else "off"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)
    sizes = tuple(args.batch_sizes or ((1, 8, 32, 64) if cuda else (1, 4)))
    choice = {"off": (False,), "on": (True,), "both": (False, True)}
    rows: list[dict[str, Any]] = []
    for compile_ in choice[args.compile]:
        for taesd in choice[args.taesd]:
            rows += run(args.backend, sizes, taesd, compile_, args.repeats, args.device)
    first = rows[0]
    print(
        f"backend {args.backend}: {first['resolution']}px, {first['steps']} step(s), "
        f"{first['dtype']} on {first['device']}; images/s = generate + CLIP embed"
    )
    if "random" in first["weights"] and args.backend != "tiny":
        print(
            f"NOTE: weights: {first['weights']}; where pretrained weights were not found, random "
            "weights with the same architectures are used "
            "(throughput does not depend on weight values; images are noise)"
        )
    _print(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
