"""Target sets for ImageInversion: shapes-world scenes, or shipped prompts rendered by the backend.

A target set is indexable and lazy: a real backend renders a target only when an episode draws it
(then keeps it), so building an env costs nothing.
"""

from __future__ import annotations

import zlib
from importlib import resources

import numpy as np

from prompt_gym.backends import RewardBackend, Target

TARGET_SEED_BASE = 10_000
"""Seeds of rendered targets are ``TARGET_SEED_BASE + index``: never equal to an episode seed by design."""


def is_shapes(backend: RewardBackend) -> bool:
    """Whether ``backend`` renders with the shapes world (whose targets carry scene specs)."""
    return backend.generator.config().get("name") == "shapes"


def shipped_prompts(name: str) -> list[str]:
    """Non-empty, non-comment lines of ``prompt_gym/data/<name>.txt``."""
    text = resources.files("prompt_gym.data").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class TargetSet:
    """The targets an ImageInversion env draws from.

    Args:
        backend: The env's backend.
        level: Difficulty level for the shapes world (``objects``, ``attributes``,
            ``background``, ``style``); for a real backend, the shipped prompt list
            ``targets_<level>`` if it exists, else ``targets``.
        size: Number of targets (shapes world); a real backend uses the whole list.
        seed: Seed of the set (shapes world), so train and test sets can differ.
    """

    def __init__(
        self, backend: RewardBackend, level: str = "objects", size: int = 64, seed: int = 0
    ):
        if size < 1:
            raise ValueError(f"target set size must be >= 1, got {size}")
        self.backend, self.level, self.seed = backend, level, seed
        self._targets: list[Target | None]
        if is_shapes(backend):
            from prompt_gym.backends.shapes.targets import LEVELS, make_targets

            if level not in LEVELS:
                raise ValueError(f"unknown target level {level!r}; shapes levels: {list(LEVELS)}")
            config = backend.generator.config()
            resolution, world = int(config.get("resolution", 64)), int(config.get("world", 2))
            self._targets = list(make_targets(level, size, seed, resolution, world))
            self.prompts = [t.caption or "" for t in self._targets]
        else:
            try:
                self.prompts = shipped_prompts(f"targets_{level}")
            except FileNotFoundError:
                self.prompts = shipped_prompts("targets")
            self._targets = [None] * len(self.prompts)

    def __len__(self) -> int:
        return len(self._targets)

    def __getitem__(self, index: int) -> Target:
        target = self._targets[index]
        if target is None:
            prompt = self.prompts[index]
            image = self.backend.generate([prompt], [TARGET_SEED_BASE + index])[0]
            crc = zlib.crc32(prompt.encode())
            target = Target(
                image=image, caption=prompt, target_id=f"{self.level}-{index}-{crc:08x}"
            )
            self._targets[index] = target
        return target


def as_target(value: object) -> Target:
    """Turn a user's ``options["target"]`` into a :class:`Target`.

    Accepts a :class:`Target` or a ``uint8`` array of shape ``(H, W, 3)``.

    Raises:
        ValueError: For anything else, saying what was expected.
    """
    if isinstance(value, Target):
        image = value.image
    elif isinstance(value, np.ndarray):
        image = value
    else:
        raise ValueError(
            f"options['target'] must be a Target or a uint8 (H, W, 3) array, got {type(value).__name__}"
        )
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise ValueError(f"target image must be uint8 with shape (H, W, 3), got {dtype} {shape}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"target image is too small: {image.shape[:2]} (need at least 8x8)")
    if isinstance(value, Target):
        return value
    crc = zlib.crc32(image.tobytes())
    return Target(image=image.copy(), target_id=f"user-{crc:08x}")
