"""Every env id, registered in one place: three families times their backends and tiers, in a loop.

``<Family>-v0`` uses the real default backend of the family; ``<Family>-Shapes-v0`` uses the
shapes world v2 (as first released). ``<Family>-Shapes-v1`` uses the shapes world v3, where every
word conditions the render, and the benchmark's difficulty tiers are registered beside it
(:data:`TIERS`, Minigrid-style: an id per configuration, each a set of keyword arguments). Every
id takes ``backend=`` and the family's keyword arguments, and has a native vector env
(``gym.make_vec(id, num_envs=64)`` sends one backend call per step).

Each id is registered three more ways (:data:`NAMESPACED_IDS`, :data:`FLAT_IDS`):

* ``prompt_gym/<id>``, the same env under the package's namespace;
* ``<name>-Flat-vN`` and ``prompt_gym/<name>-Flat-vN``, with a flat ``Box`` observation whose
  first ``action_space.n`` entries are the action mask (see :mod:`prompt_gym.envs.wrappers`).

Gymnasium >= 1.0 has no plugin hook, so a script that does not ``import prompt_gym`` names the
module in the id: ``gym.make("prompt_gym:prompt_gym/ImageInversion-Shapes-v1")`` (Gymnasium
imports ``prompt_gym`` first). Every spec's ``max_episode_steps`` is the limit the env enforces
itself (:func:`max_episode_steps`); raising ``n_tokens``/``max_tokens``/``max_modifiers``/
``max_new_tokens`` in ``gym.make`` raises the env's own limit but not the spec's, so pass
``max_episode_steps=max_episode_steps(family, kwargs)`` (or ``-1``) with them.

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

import importlib
from collections.abc import Mapping
from functools import partial
from typing import Any

import gymnasium as gym

from prompt_gym.envs.wrappers import make_flat, make_flat_vec

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

NAMESPACE = "prompt_gym"
ENV_IDS: list[str] = []
"""The registered ids without namespace or flattening, filled by :func:`register_envs`."""
NAMESPACED_IDS: list[str] = []
"""``prompt_gym/<id>`` for every id in :data:`ENV_IDS`."""
FLAT_IDS: list[str] = []
"""The ``-Flat`` twins of :data:`ENV_IDS`, with and without the namespace."""


def max_episode_steps(family: str, kwargs: Mapping[str, Any]) -> int:
    """The step limit a ``family`` env made with ``kwargs`` enforces itself (it truncates there).

    Each family module's own ``max_episode_steps`` (the formula its core uses): twice the most
    actions a valid episode takes (the choices plus STOP), so that penalized no-ops cannot
    stretch an episode forever.

    >>> max_episode_steps("ImageInversion", {"n_tokens": 12})
    26
    >>> max_episode_steps("PromptRewriteTokens", {"max_new_tokens": (15, 75)})
    152
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: expected one of {sorted(FAMILIES)}")
    return importlib.import_module(FAMILIES[family][0]).max_episode_steps(kwargs)


def _flat_id(env_id: str) -> str:
    name, version = env_id.rsplit("-", 1)
    return f"{name}-Flat-{version}"


def _register(env_id: str, family: str, kwargs: dict[str, object], flat: bool) -> None:
    module, stem = FAMILIES[family]
    entry_point, vector_entry_point = f"{module}:{stem}Env", f"{module}:{stem}VectorEnv"
    if flat:
        entry_point = partial(make_flat, entry_point)
        vector_entry_point = partial(make_flat_vec, vector_entry_point)
    gym.register(
        id=env_id,
        entry_point=entry_point,
        vector_entry_point=vector_entry_point,
        nondeterministic=not str(kwargs["backend"]).startswith("shapes"),
        max_episode_steps=max_episode_steps(family, kwargs),
        kwargs=kwargs,
    )


def register_envs() -> list[str]:
    """Register every id, namespaced and flat twins too (idempotent); return :data:`ENV_IDS`."""
    for family in FAMILIES:
        ids = [
            (f"{family}{variant}-{VERSION}", {"backend": backend})
            for variant, backend in (("", REAL_DEFAULT_BACKENDS[family]), ("-Shapes", "shapes"))
        ]
        ids += [
            (f"{family}-Shapes{tier}-v1", {"backend": SHAPES_V3, **kwargs})
            for tier, kwargs in TIERS[family].items()
        ]
        for env_id, kwargs in ids:
            flat_id = _flat_id(env_id)
            for name, flat, listing in (
                (env_id, False, ENV_IDS),
                (f"{NAMESPACE}/{env_id}", False, NAMESPACED_IDS),
                (flat_id, True, FLAT_IDS),
                (f"{NAMESPACE}/{flat_id}", True, FLAT_IDS),
            ):
                if name not in gym.registry:
                    _register(name, family, kwargs, flat)
                if name not in listing:
                    listing.append(name)
    return ENV_IDS
