"""Every env id, registered in one place: three families times two backends, in a loop.

``<Family>-v0`` uses the real default backend of the family; ``<Family>-Shapes-v0`` uses the
shapes world. Every id takes ``backend=`` and the family's keyword arguments, and has a native
vector env (``gym.make_vec(id, num_envs=64)`` sends one backend call per step).
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

ENV_IDS: list[str] = []
"""All registered ids, filled by :func:`register_envs`."""


def register_envs() -> list[str]:
    """Register every id (idempotent) and return them."""
    for family, (module, stem) in FAMILIES.items():
        for variant, backend in (("", REAL_DEFAULT_BACKENDS[family]), ("-Shapes", "shapes")):
            env_id = f"{family}{variant}-{VERSION}"
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=f"{module}:{stem}Env",
                    vector_entry_point=f"{module}:{stem}VectorEnv",
                    nondeterministic=backend != "shapes",
                    kwargs={"backend": backend},
                )
            if env_id not in ENV_IDS:
                ENV_IDS.append(env_id)
    return ENV_IDS
