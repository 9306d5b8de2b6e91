"""Every env id, registered in one place: three families times their backends and tiers, in a loop.

``<Family>-v0`` uses the real default backend of the family; ``<Family>-Shapes-v0`` uses the
shapes world v2 (as first released). ``<Family>-Shapes-v1`` uses the shapes world v3, where every
word conditions the render, and the benchmark's difficulty tiers are registered beside it
(:data:`TIERS`, Minigrid-style: an id per configuration, each a set of keyword arguments). Every
id takes ``backend=`` and the family's keyword arguments, and has a native vector env
(``gym.make_vec(id, num_envs=64)`` sends one backend call per step).

Registered configurations (v1, backend ``shapes-v3``):

=====================================  ==========================================================
id                                     keyword arguments
=====================================  ==========================================================
ImageInversion-Shapes-Easy-v1          level objects, 8 caption tokens (ImagePrompt's space)
ImageInversion-Shapes-v1, -Medium-v1   level background, 12 caption tokens
ImageInversion-Shapes-Hard-v1          level style, prompt_space caption-words, 24 tokens
PromptRewrite-Shapes-v1                the v0 settings on world v3
PromptRewriteTokens-Shapes-v1          the v0 settings on world v3
=====================================  ==========================================================
"""

from __future__ import annotations

import gymnasium as gym

FAMILIES: dict[str, tuple[str, str]] = {
    "ImageInversion": ("prompt_gym.envs.image_inversion", "ImageInversion"),
    "PromptRewrite": ("prompt_gym.envs.prompt_rewrite", "PromptRewrite"),
    "PromptRewriteTokens": ("prompt_gym.envs.prompt_rewrite_tokens", "PromptRewriteTokens"),
}
"""Family -> (module, class stem); the classes are ``<stem>Env`` and ``<stem>VectorEnv``."""

REAL_DEFAULT_BACKENDS: dict[str, str] = {
    "ImageInversion": "sd-turbo",
    "PromptRewrite": "sd-turbo-aesthetic",
    "PromptRewriteTokens": "sd-turbo-aesthetic",
}
"""Backend preset of each family's plain id (Promptist's scorer for the rewrite families)."""

VERSION = "v0"
SHAPES_V3 = "shapes-v3"
_MEDIUM: dict[str, object] = {"level": "background", "n_tokens": 12}
TIERS: dict[str, dict[str, dict[str, object]]] = {
    "ImageInversion": {
        "": _MEDIUM,
        "-Easy": {"level": "objects", "n_tokens": 8},
        "-Medium": _MEDIUM,
        "-Hard": {"level": "style", "n_tokens": 24, "prompt_space": "caption-words"},
    },
    "PromptRewrite": {"": {}},
    "PromptRewriteTokens": {"": {}},
}
"""Family -> tier suffix -> keyword arguments of the ``<Family>-Shapes<tier>-v1`` ids."""

ENV_IDS: list[str] = []
"""All registered ids, filled by :func:`register_envs`."""


def register_envs() -> list[str]:
    """Register every id (idempotent) and return them."""
    for family, (module, stem) in FAMILIES.items():
        ids = [
            (f"{family}{variant}-{VERSION}", {"backend": backend})
            for variant, backend in (("", REAL_DEFAULT_BACKENDS[family]), ("-Shapes", "shapes"))
        ]
        ids += [
            (f"{family}-Shapes{tier}-v1", {"backend": SHAPES_V3, **kwargs})
            for tier, kwargs in TIERS[family].items()
        ]
        for env_id, kwargs in ids:
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=f"{module}:{stem}Env",
                    vector_entry_point=f"{module}:{stem}VectorEnv",
                    nondeterministic=not str(kwargs["backend"]).startswith("shapes"),
                    kwargs=kwargs,
                )
            if env_id not in ENV_IDS:
                ENV_IDS.append(env_id)
    return ENV_IDS
