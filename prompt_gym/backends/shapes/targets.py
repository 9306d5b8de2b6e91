"""Target sets for image inversion in the shapes world, at four difficulty levels.

=============  ============================================================================
level          what a target specifies
=============  ============================================================================
objects        one shape word and one colour, on the plain background
attributes     + a size (60%), a position (60%), two or three objects (40%)
background     + a background colour (always, different from the object colour)
style          + one or two style modifiers
=============  ============================================================================

Each :class:`~prompt_gym.backends.protocols.Target` carries the rendered ``image``, its ``spec``
(a :class:`~prompt_gym.backends.shapes.scene.SceneSpec`), the canonical prompt as ``caption`` and
``target_id = f"{level}-{seed}-{i}"``. Everything is a pure function of ``(level, seed, i)``:
target ``i`` does not depend on ``n``, and its image seed is a hash of ``(seed, i)``.

>>> targets = make_targets("objects", 3, seed=7, resolution=32)
>>> [t.target_id for t in targets], targets[0].image.shape
(['objects-7-0', 'objects-7-1', 'objects-7-2'], (32, 32, 3))
"""

from __future__ import annotations

import numpy as np

from prompt_gym.backends.protocols import Target
from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.hashing import uniforms
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.backends.shapes.scene import SceneSpec

LEVELS: tuple[str, ...] = ("objects", "attributes", "background", "style")
_SIZES = ("tiny", "small", "large", "huge")
_POSITIONS = tuple(p for p in vocab.POSITIONS if p != "corner")
_N_FIELDS = 16


def _pick(options: tuple[str, ...] | list[str], x: float) -> str:
    return options[min(int(x * len(options)), len(options) - 1)]


def random_spec(level: str, u: np.ndarray) -> SceneSpec:
    """The spec a target of ``level`` gets from 16 uniforms ``u`` in ``[0, 1)``."""
    if level not in LEVELS:
        raise ValueError(f"unknown target level {level!r}; expected one of {LEVELS}")
    depth = LEVELS.index(level)
    shape = _pick(vocab.SHAPE_NAMES, u[0])
    colour = _pick(vocab.COLOUR_NAMES, u[1])
    size = position = background = None
    count = 1
    styles: tuple[str, ...] = ()
    if depth >= 1:
        size = _pick(_SIZES, u[3]) if u[2] < 0.6 else None
        position = _pick(_POSITIONS, u[5]) if u[4] < 0.6 else None
        count = (2 if u[7] < 0.5 else 3) if u[6] < 0.4 else 1
    if depth >= 2:
        others = [c for c in vocab.COLOUR_NAMES if c != colour]
        background = _pick(others, u[8])
    if depth >= 3:
        names = list(vocab.STYLES)
        first = _pick(names, u[9])
        styles = (first,)
        if u[10] < 0.5:
            second = _pick([s for s in names if s != first], u[11])
            styles = tuple(sorted((first, second)))
    return SceneSpec(shape, colour, background, size, position, count, styles)


def make_targets(
    level: str, n: int, seed: int, resolution: int = 64, world: int = 2
) -> list[Target]:
    """Generate ``n`` targets of a difficulty level.

    Args:
        level: One of :data:`LEVELS`.
        n: Number of targets (non-negative).
        seed: Set seed; the same ``(level, seed)`` always gives the same targets.
        resolution: Image side in pixels.
        world: Shapes-world version the targets are rendered in (their captions, rendered).

    Raises:
        ValueError: On an unknown level, a negative ``n`` or a negative ``seed``.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown target level {level!r}; expected one of {LEVELS}")
    if not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if n == 0:
        return []
    u = uniforms([int(seed)], n * (_N_FIELDS + 1)).reshape(n, _N_FIELDS + 1)
    specs = [random_spec(level, row) for row in u]
    image_seeds = [int(x * 2**62) for x in u[:, _N_FIELDS]]
    prompts = [s.to_prompt() for s in specs]
    images = ShapesGenerator(resolution, world).generate(prompts, image_seeds)
    return [
        Target(
            image=images[i],
            spec=specs[i],
            caption=prompts[i],
            target_id=f"{level}-{seed}-{i}",
            extra={"image_seed": image_seeds[i], "level": level, "world": world},
        )
        for i in range(n)
    ]
