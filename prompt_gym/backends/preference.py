"""Preference scorers: ``PS(text, image)``, a human-preference score of an image for a prompt.

BeautifulPrompt's reward mixes an aesthetic score with PickScore (Kirstain et al. 2023),
``PS = logit_scale * cos(text(x), image(y))`` in PickScore's own CLIP space, scored against the
user's prompt ``x``. A backend preset names its preference scorer
(:attr:`~prompt_gym.backends.registry.BackendPreset.preference`, a ``"preference"`` component
of :data:`~prompt_gym.backends.registry.COMPONENTS`): PickScore on the real presets
(:mod:`prompt_gym.backends.real.pickscore`), its tiny random twin on ``tiny``, and the shapes
world's procedural analog (:mod:`prompt_gym.backends.shapes.preference`). It is not one of the
backend's components: only the reward configs and exports that need it build it, with
:func:`load_preference`, so no env pays for a model it does not use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from prompt_gym.backends.reward_backend import RewardBackend


@runtime_checkable
class PreferenceScorer(Protocol):
    """Scores images for prompts, batched: a list of texts and ``(N, H, W, 3)`` images in,
    ``float32 (N,)`` out; deterministic."""

    def preference(self, texts: Sequence[str], images: np.ndarray) -> np.ndarray:
        """``PS(texts[i], images[i])`` for each ``i``."""
        ...

    def config(self) -> dict[str, Any]:
        """What determines the scores (for dataset provenance)."""
        ...


def load_preference(backend: RewardBackend) -> PreferenceScorer:
    """The preference scorer of ``backend``'s preset, built for that backend.

    Raises:
        ValueError: If the backend was not built from a preset by
            :func:`~prompt_gym.backends.factory.make_backend`, or its preset has no preference
            scorer.
    """
    from prompt_gym.backends.registry import BACKENDS, resolve

    preset = BACKENDS.get(backend.name)
    if preset is None or preset.preference is None:
        raise ValueError(
            f"backend {backend.name!r} has no preference scorer (PickScore); the presets that "
            f"have one: {sorted(n for n, p in BACKENDS.items() if p.preference is not None)}"
        )
    return resolve("preference", preset.preference)(backend)
