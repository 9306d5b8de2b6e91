"""Train shapes-clip: contrastive (CLIP) training on rendered (caption, image) pairs of the shapes world.

Rebuild the shipped weights (about 10 minutes on one CPU core)::

    python -m prompt_gym.backends.shapes.train_clip            # writes prompt_gym/data/shapes_clip.*
    python -m prompt_gym.backends.shapes.train_clip --out DIR  # somewhere else

Data recipe (every number below is recorded in the recipe JSON):

* scene ``k`` of the training stream is drawn from 20 hashed uniforms of seed ``k``
  (:func:`~prompt_gym.backends.shapes.hashing.uniforms`): field 0 picks a level of
  :data:`~prompt_gym.backends.shapes.targets.LEVELS` uniformly, fields 1-16 the scene
  (:func:`~prompt_gym.backends.shapes.targets.random_spec`), field 17 the image seed, fields 18-19
  the caption augmentation; step ``t`` uses seeds ``t * batch_size + j``;
* the image is the scene's canonical caption rendered by the shapes generator (world 2, 64x64)
  with that seed; the caption is the canonical caption, with probability 0.2 after one of the
  captioner's prefixes ("a picture of", ...) and with probability 0.2 followed by one junk tag
  (", 8k"); neither changes a world-2 render, so the pair stays exact;
* held-out scenes (the zero-shot report) use seeds from ``HELDOUT_SEED_BASE = 10**12`` on, which
  no training step reaches.

Training: symmetric InfoNCE with open_clip's learnable logit scale; captions equal within a batch
share the probability mass as positives (a scene of the ``objects`` level has 504 possible
captions, so duplicates are common); AdamW, linear warm-up then cosine decay; fp32;
``torch.manual_seed(seed)``, ``torch.use_deterministic_algorithms(True)`` and one thread, so a
rebuild on the same software stack reproduces the weights bit for bit (other BLAS builds: to
rounding).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.backends.shapes import clip_model, vocab
from prompt_gym.backends.shapes.hashing import uniforms
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.backends.shapes.targets import LEVELS, random_spec

HELDOUT_SEED_BASE = 10**12
_FIELDS = 20
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TrainArgs:
    """Settings of one training run (all recorded in the recipe)."""

    seed: int = 0
    """torch seed of the initial weights."""
    steps: int = 1200
    """Optimiser steps."""
    batch_size: int = 128
    """Scenes per step (the contrastive batch)."""
    learning_rate: float = 2e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 0.1
    """AdamW weight decay (matrices only; embeddings, norms and biases have none)."""
    warmup: int = 100
    """Linear warm-up steps."""
    prefix_prob: float = 0.2
    """Probability of a captioner prefix in front of a caption."""
    junk_prob: float = 0.2
    """Probability of a junk tag after a caption."""
    heldout: int = 512
    """Held-out scenes of the zero-shot retrieval report."""
    threads: int = 1
    """torch threads (one: on a shared 2-core machine a second thread made each step 10x slower)."""


@dataclass(frozen=True)
class Batch:
    """Scenes of a stream: images, captions (augmented), canonical captions and levels."""

    images: np.ndarray
    captions: list[str]
    canonical: list[str]
    levels: list[str]


def scenes(seeds: Sequence[int], args: TrainArgs) -> Batch:
    """The scenes of ``seeds`` (see the data recipe in the module docstring)."""
    u = uniforms(list(seeds), _FIELDS)
    levels = [LEVELS[min(int(row[0] * len(LEVELS)), len(LEVELS) - 1)] for row in u]
    specs = [random_spec(level, row[1:17]) for level, row in zip(levels, u, strict=True)]
    canonical = [s.to_prompt() for s in specs]
    image_seeds = [int(x * 2**62) for x in u[:, 17]]
    images = ShapesGenerator(clip_model.IMAGE_SIZE, world=2).generate(canonical, image_seeds)
    captions = []
    for text, row in zip(canonical, u, strict=True):
        if row[18] < args.prefix_prob:
            prefixes = vocab.CAPTION_PREFIXES
            text = f"{prefixes[int(row[18] / args.prefix_prob * len(prefixes))]} {text}"
        if row[19] < args.junk_prob:
            junk = vocab.JUNK_PHRASES
            text = f"{text}, {junk[int(row[19] / args.junk_prob * len(junk))]}"
        captions.append(text)
    return Batch(images, captions, canonical, levels)


def contrastive_loss(image: Any, text: Any, scale: Any, canonical: list[str]) -> Any:
    """Symmetric InfoNCE; pairs with equal canonical captions are all positives."""
    import torch

    keys = {c: i for i, c in enumerate(dict.fromkeys(canonical))}
    ids = torch.tensor([keys[c] for c in canonical])
    target = (ids[:, None] == ids[None, :]).float()
    target = target / target.sum(dim=1, keepdim=True)
    logits = scale * image @ text.T
    loss_i = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    loss_t = -(target * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return (loss_i + loss_t) / 2


def retrieval(model: Any, tokenizer: Any, batch: Batch) -> dict[str, float]:
    """Zero-shot image -> text retrieval among the batch's distinct canonical captions.

    Top-1 / top-5: the share of images whose own caption ranks first / in the first five among
    every distinct caption of the batch; top-1 per level too.
    """
    import torch

    captions = list(dict.fromkeys(batch.canonical))
    index = {c: i for i, c in enumerate(captions)}
    with torch.no_grad():
        img = model.encode_image(clip_model.pixels(batch.images, MEAN, STD), normalize=True)
        txt = model.encode_text(tokenizer(captions), normalize=True)
    rank = (img @ txt.T).argsort(dim=1, descending=True)
    own = torch.tensor([index[c] for c in batch.canonical])
    top1 = rank[:, 0] == own
    top5 = (rank[:, :5] == own[:, None]).any(dim=1)
    out = {
        "candidates": float(len(captions)),
        "top1": float(top1.float().mean()),
        "top5": float(top5.float().mean()),
    }
    for level in LEVELS:
        mask = torch.tensor([lv == level for lv in batch.levels])
        out[f"top1_{level}"] = float(top1[mask].float().mean())
    return out


def heldout_scenes(args: TrainArgs) -> Batch:
    """The held-out scenes of the zero-shot report."""
    return scenes(range(HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + args.heldout), args)


def recipe_of(args: TrainArgs, config: dict[str, Any], kept: list[int]) -> dict[str, Any]:
    """The recipe fields that describe a run before it starts."""
    import torch

    return {
        "name": clip_model.NAME,
        "script": "python -m prompt_gym.backends.shapes.train_clip",
        "args": asdict(args),
        "data": {
            "generator": "ShapesGenerator(resolution=64, world=2)",
            "levels": list(LEVELS),
            "stream": "scene k: uniforms([k], 20); step t: k = t*batch_size .. (t+1)*batch_size-1",
            "heldout_seed_base": HELDOUT_SEED_BASE,
            "captions": "canonical; prefix_prob a captioner prefix; junk_prob a junk tag",
        },
        "preprocess": {"size": clip_model.IMAGE_SIZE, "mean": MEAN, "std": STD},
        "config": config,
        "vocabulary": kept,
        "torch": torch.__version__,
    }


def train(args: TrainArgs, log_every: int = 100) -> tuple[Any, clip_model.CompactTokenizer, dict]:
    """Train shapes-clip; return the model (eval mode), its tokenizer and the recipe (no sha256)."""
    import torch

    # 1. Determinism
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    # 2. Model, tokenizer, optimiser
    kept = clip_model.build_vocabulary()
    tokenizer = clip_model.CompactTokenizer(kept)
    config = clip_model.model_config(tokenizer.vocab_size)
    model = clip_model.build_model(config).train()
    decayed = {n for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n}
    params = dict(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [params[n] for n in params if n in decayed],
                "weight_decay": args.weight_decay,
            },
            {"params": [params[n] for n in params if n not in decayed], "weight_decay": 0.0},
        ],
        lr=args.learning_rate,
    )

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.learning_rate * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))

    # 3. Loop
    start, curve = time.perf_counter(), []
    for step in range(args.steps):
        batch = scenes(range(step * args.batch_size, (step + 1) * args.batch_size), args)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        image = model.encode_image(clip_model.pixels(batch.images, MEAN, STD), normalize=True)
        text = model.encode_text(tokenizer(batch.captions), normalize=True)
        loss = contrastive_loss(image, text, model.logit_scale.exp(), batch.canonical)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % log_every == 0 or step == args.steps - 1:
            curve.append((step, round(loss.item(), 4)))
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - start:.0f} s")
    model.eval()
    seconds = round(time.perf_counter() - start, 1)
    # 4. Zero-shot report on held-out scenes
    report = retrieval(model, tokenizer, heldout_scenes(args))
    recipe = {
        **recipe_of(args, config, kept),
        "zero_shot_heldout": report,
        "loss_curve": curve,
        "train_seconds": seconds,
    }
    return model, tokenizer, recipe


def save(model: Any, recipe: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write the weights (safetensors) and the recipe with their sha256."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    weights, path = clip_model.recipe_files(out)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"name": clip_model.NAME})
    weights.chmod(0o644)
    write_recipe(recipe, weights, path)
    return weights, path


def write_recipe(recipe: dict[str, Any], weights: Path, path: Path) -> None:
    """Write ``recipe`` with the sha256 of ``weights`` to ``path``."""
    recipe = {**recipe, "sha256": clip_model.file_sha256(weights)}
    path.write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line: train and write the weights and recipe."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(clip_model.data_path("")), help="output directory")
    parser.add_argument("--steps", type=int, default=TrainArgs.steps)
    parser.add_argument("--seed", type=int, default=TrainArgs.seed)
    parser.add_argument("--batch-size", type=int, default=TrainArgs.batch_size)
    ns = parser.parse_args(argv)
    args = TrainArgs(seed=ns.seed, steps=ns.steps, batch_size=ns.batch_size)
    model, _, recipe = train(args)
    weights, path = save(model, recipe, Path(ns.out))
    print(json.dumps(recipe["zero_shot_heldout"], indent=1))
    print(f"wrote {weights} ({weights.stat().st_size} bytes) and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
