"""The shapes world's preference score: a procedural PickScore analog, ``PS(x, image)``.

PickScore rewards images that are both faithful to the prompt and good to look at, on a scale
of about 16..23. The shapes analog mixes the two, multiplicatively (the look only counts when
the image shows the prompt), on the 16x16 thumbnail's terms (:mod:`.aesthetic`) and the
scorer's embeddings (``c = cos(text(x), image)``):

* faithfulness ``F = sigmoid((c - 0.25) / 0.04)``: near 1 for a faithful render
  (``c`` about 0.36), near 0 once a modifier replaces the subject (``c`` below 0.15);
* look ``L = (H + min(K / 0.25, 1) + q_size) / 3`` in ``[0, 1]``: colour harmony
  ``H = clip(1 - |C - 0.35| / 0.35, 0, 1)`` (moderate colourfulness ``C`` is best, where the
  aesthetic score keeps rising to 0.55), contrast ``K`` and the subject-size term ``q_size``;
* ``PS = 16 + 6 * F * (0.4 + 0.6 * L)``, in ``[16, 22]``.

It is neither the aesthetic score nor the relevance: "rainbow" raises the aesthetic score and
lowers ``PS`` (it destroys faithfulness); "foggy" leaves Promptist's relevance hinge at 0 and
lowers ``PS`` (lower ``c`` and contrast); a garish palette is penalised here and not there.
Measured on 64x64 renders (mean of seeds 0-3): "a red circle" 20.5, "+ vivid" 20.7,
"+ rainbow" 16.0, "+ foggy" 19.3; "a green star" 18.7, "+ rainbow" 16.3 (while its aesthetic
score goes from 2.6 to 5.7).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from prompt_gym.backends.shapes.aesthetic import components
from prompt_gym.backends.shapes.features import thumbnail

if TYPE_CHECKING:
    from prompt_gym.backends.reward_backend import RewardBackend

PS_BASE, PS_SPAN = 16.0, 6.0
COS_MID, COS_WIDTH = 0.25, 0.04
HARMONY_C, CONTRAST_K = 0.35, 0.25
LOOK_FLOOR = 0.4


def faithfulness(cos: np.ndarray) -> np.ndarray:
    """``F = sigmoid((c - 0.25) / 0.04)``.

    >>> faithfulness(np.array([0.25])).tolist()
    [0.5]
    """
    return 1.0 / (1.0 + np.exp(-(np.asarray(cos, dtype=np.float64) - COS_MID) / COS_WIDTH))


def look(images: np.ndarray) -> np.ndarray:
    """``L = (H + min(K / 0.25, 1) + q_size) / 3`` of ``uint8 (N, H, W, 3)`` images, in ``[0, 1]``."""
    c = components(thumbnail(images))
    harmony = np.clip(1.0 - np.abs(c["colourfulness"] - HARMONY_C) / HARMONY_C, 0.0, 1.0)
    contrast = np.minimum(c["contrast"] / CONTRAST_K, 1.0)
    return (harmony + contrast + c["q_size"]) / 3.0


def preference_score(cos: np.ndarray, looks: np.ndarray) -> np.ndarray:
    """``PS = 16 + 6 * F(c) * (0.4 + 0.6 * L)``.

    >>> preference_score(np.array([0.25]), np.array([1.0])).tolist()
    [19.0]
    """
    return PS_BASE + PS_SPAN * faithfulness(cos) * (LOOK_FLOOR + (1 - LOOK_FLOOR) * looks)


class ShapesPreference:
    """The shapes world's PickScore analog (see the module docstring), for one backend.

    Args:
        backend: The shapes backend whose scorer embeds the texts and images.
    """

    def __init__(self, backend: RewardBackend) -> None:
        self.backend = backend

    def config(self) -> dict[str, Any]:
        """The formula's constants and the scorer's configuration."""
        return {
            "name": "shapes-preference",
            "constants": [PS_BASE, PS_SPAN, COS_MID, COS_WIDTH, HARMONY_C, CONTRAST_K, LOOK_FLOOR],
            "scorer": self.backend.scorer.config(),
        }

    def preference(self, texts: Sequence[str], images: np.ndarray) -> np.ndarray:
        """``PS(texts[i], images[i])``, ``float32 (N,)``."""
        images = np.asarray(images)
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts for {len(images)} images")
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        text = self.backend.embed_texts(list(texts)).astype(np.float64)
        image = self.backend.embed_images(images).astype(np.float64)
        cos = np.einsum("nd,nd->n", text, image)
        return preference_score(cos, look(images)).astype(np.float32)
