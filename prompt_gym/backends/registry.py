"""Named component presets, resolved lazily by ``"module:function"`` so imports stay light.

A *component* is one generator, scorer or captioner. A *backend preset* names one of each, and
the :class:`~prompt_gym.backends.world.World` its envs draw their data from. Heavy stacks
(torch, diffusers, open_clip) are imported by the factory, never here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prompt_gym.backends.world import SHAPES_WORLD, TEXT_WORLD, TINY_WORLD, World

# kind -> preset name -> "module:factory". The factory takes keyword overrides.
COMPONENTS: dict[str, dict[str, str]] = {
    "generator": {
        "shapes": "prompt_gym.backends.shapes.render:ShapesGenerator",
        "shapes-v3": "prompt_gym.backends.shapes.render:world3",
        "tiny": "prompt_gym.backends.real.diffusion:tiny",
        "sd-turbo": "prompt_gym.backends.real.diffusion:sd_turbo",
        "sdxl-turbo": "prompt_gym.backends.real.diffusion:sdxl_turbo",
        "sd15": "prompt_gym.backends.real.diffusion:sd15",
        "diffusers": "prompt_gym.backends.real.diffusion:DiffusersGenerator",
    },
    "scorer": {
        "shapes": "prompt_gym.backends.shapes.scorer:ShapesScorer",
        "shapes-v3": "prompt_gym.backends.shapes.scorer:world3",
        "tiny": "prompt_gym.backends.real.clip:tiny",
        "shapes-clip": "prompt_gym.backends.real.clip:shapes_clip",
        "clip-b32": "prompt_gym.backends.real.clip:clip_b32",
        "clip-l14": "prompt_gym.backends.real.clip:clip_l14",
        "open_clip": "prompt_gym.backends.real.clip:OpenClipScorer",
    },
    "captioner": {
        "shapes": "prompt_gym.backends.shapes.captioner:ShapesCaptioner",
        "tiny": "prompt_gym.backends.real.blip:tiny",
        "blip-base": "prompt_gym.backends.real.blip:blip_base",
        "blip-large": "prompt_gym.backends.real.blip:blip_large",
        "blip": "prompt_gym.backends.real.blip:BlipCaptioner",
    },
    # built for a backend by prompt_gym.backends.preference.load_preference (factory(backend))
    "preference": {
        "shapes": "prompt_gym.backends.shapes.preference:ShapesPreference",
        "tiny": "prompt_gym.backends.real.pickscore:tiny",
        "pickscore": "prompt_gym.backends.real.pickscore:pickscore_v1",
    },
}

#: Backend preset -> scorer preset of a differentiable (open_clip) stand-in for the preset's own
#: scorer, for agents that need gradients (PEZ optimises through it; the env still scores with
#: the backend's own scorer). A backend whose scorer is open_clip already needs no entry.
DIFFERENTIABLE_PROXIES: dict[str, str] = {"shapes": "shapes-clip", "shapes-v3": "shapes-clip"}


@dataclass(frozen=True)
class BackendPreset:
    """A named, versioned combination of components.

    Attributes:
        name: The preset name users pass as ``backend=``.
        generator: Component preset name of the text-to-image generator.
        scorer: Component preset name of the scorer.
        captioner: Component preset name of the captioner.
        description: One line for ``prompt-gym list`` and the README.
        version: Bumped whenever the preset's outputs change; part of every cache key.
        world: Where the envs get their targets, prompts, modifiers and tokenizer
            (:mod:`prompt_gym.backends.world`).
        preference: Component preset of its preference scorer (PickScore or an analog,
            :mod:`prompt_gym.backends.preference`), or ``None``.
    """

    name: str
    generator: str
    scorer: str
    captioner: str
    description: str
    version: str = "1"
    world: World = TEXT_WORLD
    preference: str | None = None


BACKENDS: dict[str, BackendPreset] = {
    "shapes": BackendPreset(
        "shapes",
        "shapes",
        "shapes",
        "shapes",
        "procedural shapes world: CPU, thousands of images per second (the embedded default)",
        world=SHAPES_WORLD,
        preference="shapes",
    ),
    "shapes-v3": BackendPreset(
        "shapes-v3",
        "shapes-v3",
        "shapes-v3",
        "shapes",
        "shapes world v3: every word conditions the render (dilution, binding, junk costs); "
        "the -Shapes-v1 ids",
        version="3",
        world=SHAPES_WORLD,
        preference="shapes",
    ),
    "tiny": BackendPreset(
        "tiny",
        "tiny",
        "tiny",
        "tiny",
        "real model classes with tiny random weights: runs the real path offline, for tests",
        world=TINY_WORLD,
        preference="tiny",
    ),
    "sd-turbo": BackendPreset(
        "sd-turbo",
        "sd-turbo",
        "clip-b32",
        "blip-base",
        "SD-Turbo 1 step 512px + CLIP ViT-B/32 (LAION-2B) + BLIP base; GPU (ImageInversion-v0)",
        world=TEXT_WORLD,
        preference="pickscore",
    ),
    "sd-turbo-aesthetic": BackendPreset(
        "sd-turbo-aesthetic",
        "sd-turbo",
        "clip-l14",
        "blip-base",
        "SD-Turbo + CLIP ViT-L/14 (OpenAI) with the LAION aesthetic head + BLIP base; GPU "
        "(PromptRewrite-v0)",
        world=TEXT_WORLD,
        preference="pickscore",
    ),
}


def resolve(kind: str, name: str) -> Callable[..., Any]:
    """Return the factory registered for component ``name`` of ``kind``.

    Raises:
        ValueError: If ``kind`` or ``name`` is unknown; the message lists the known names.
    """
    if kind not in COMPONENTS:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {sorted(COMPONENTS)}")
    table = COMPONENTS[kind]
    if name not in table:
        raise ValueError(f"unknown {kind} preset {name!r}; known: {sorted(table)}")
    module_name, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
