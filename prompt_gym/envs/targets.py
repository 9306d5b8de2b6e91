"""The targets an ImageInversion env draws from: its backend's world's, shared per backend.

The world (:mod:`prompt_gym.backends.world`) says what the targets of a ``(level, size, seed)``
are; :class:`EnvTargets` binds that set to the env's backend, which renders a target of a real
world only when an episode first draws it (then keeps it for every env of the backend), so
building an env costs nothing.
"""

from __future__ import annotations

import zlib

import numpy as np

from prompt_gym.backends import RewardBackend, Target
from prompt_gym.backends.world import TargetSet
from prompt_gym.envs.memo import BackendMemo

_TARGET_SETS = BackendMemo()


class EnvTargets:
    """The targets of ``backend.world`` for ``(level, size, seed)``, rendered by ``backend``.

    Args:
        backend: The env's backend.
        level: Difficulty level (the shapes world: ``objects``, ``attributes``, ``background``,
            ``style``; the text world: the shipped list ``targets_<level>`` if it exists, else
            ``targets``).
        size: Number of targets (the shapes world; the text world uses its whole list).
        seed: Seed of the set (the shapes world), so train and test sets can differ.

    Raises:
        ValueError: For an unknown level or a size below 1.
    """

    def __init__(self, backend: RewardBackend, level: str, size: int, seed: int) -> None:
        self.backend = backend
        self._set: TargetSet = _TARGET_SETS.get(
            backend,
            (level, size, seed),
            lambda: backend.world.target_set(backend.generator, level, size, seed),
        )

    def __len__(self) -> int:
        return len(self._set)

    def __getitem__(self, index: int) -> Target:
        return self._set.get(index, self.backend.generate)


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
