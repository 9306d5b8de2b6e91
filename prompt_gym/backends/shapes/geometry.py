"""Shape geometry: anti-aliased coverage from signed distances on separable coordinates.

Every object is drawn in its own *local* frame: ``u`` runs left to right and ``v`` top to bottom,
in units of the object's half-extent (the size word), after the shape's aspect stretch; ``sdf`` is
the signed distance to the shape's edge in those units (negative inside). Shapes are
axis-aligned, so the coordinates are separable: ``us = k u`` has shape ``(n, 1, W)`` and
``vs = k v`` has shape ``(n, H, 1)``, where ``k`` (per image, ``(n, 1, 1)``) converts local units
into edge-softness units (pixels per unit over the softness in pixels).

Each function writes the *depth* ``I = 0.5 - k * sdf`` (``sdf`` exact for the circle and ring,
the usual max-of-half-planes bound for polygons); the coverage is ``alpha = clip(I, 0, 1)``: an
edge ``softness`` pixels wide, centred on the true boundary. Most shapes cost one to three
full-image operations; the star, with no cheap closed form, samples an exact distance template.

>>> us = np.array([[[0.0, 20.0]]], np.float32); vs = np.zeros((1, 1, 1), np.float32)
>>> k = np.full((1, 1, 1), 10.0, np.float32); out = np.empty((1, 1, 2), np.float32)
>>> DEPTH["circle"](us, vs, k, None, out); out.tolist()  # centre 10.5 deep; 2 radii out: -9.5
[[[10.5, -9.5]]]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from prompt_gym.backends.shapes.ops import clip

DepthFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray], None]

_F = np.float32
_HALF = _F(0.5)


def _circle(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    np.add(us * us, vs * vs, out=out)
    np.sqrt(out, out=out)
    np.subtract(k + _HALF, out, out=out)


def _ring(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    assert ring is not None
    np.add(us * us, vs * vs, out=out)
    np.sqrt(out, out=out)
    out -= ring[:, 0].reshape(-1, 1, 1) * k
    np.abs(out, out=out)
    np.subtract(ring[:, 1].reshape(-1, 1, 1) * k + _HALF, out, out=out)


def _square(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    top = k + _HALF
    np.minimum(top - np.abs(us), top - np.abs(vs), out=out)


def _diamond(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    s = _F(0.70710677)
    np.add(_HALF + s * k - s * np.abs(us), -s * np.abs(vs), out=out)


def _triangle(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    # apex (0, -1.2), base corners (+-1, 0.6): the centroid is the origin
    np.add(_HALF + _F(0.583) * k - _F(0.874) * np.abs(us), _F(0.486) * vs, out=out)
    np.minimum(out, _HALF + _F(0.6) * k - vs, out=out)


def _hexagon(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    av = np.abs(vs)
    top = _HALF + _F(0.866) * k
    np.add(top - _F(0.866) * np.abs(us), _F(-0.5) * av, out=out)
    np.minimum(out, top - av, out=out)


def _pentagon(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    # point up; edge normals (0.588, -0.809), (0.951, 0.309), (0, 1) at distance cos(36 deg)
    au = np.abs(us)
    w = vs - _F(0.095) * k  # centre the bounding box
    top = _HALF + _F(0.809) * k
    np.add(top - _F(0.588) * au, _F(0.809) * w, out=out)
    np.minimum(out, (top - _F(0.951) * au) - _F(0.309) * w, out=out)
    np.minimum(out, top - w, out=out)


def _cross(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    top, arm = k + _HALF, _F(0.34) * k + _HALF
    au, av = np.abs(us), np.abs(vs)
    np.maximum(np.minimum(top - au, arm - av), np.minimum(arm - au, top - av), out=out)


# ----------------------------------------------------------------------------- templates

TEMPLATE_SIZE = 160
TEMPLATE_EXTENT = 1.4  # the template covers local coordinates [-1.4, 1.4]


def polygon_sdf(points: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact signed distance from ``(x, y)`` to a closed polygon (negative inside).

    >>> sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    >>> polygon_sdf(sq, np.array([0.0, 2.0]), np.array([0.0, 0.0])).tolist()
    [-1.0, 1.0]
    """
    a = points
    b = np.roll(points, -1, axis=0)
    px, py = x[..., None], y[..., None]
    ex, ey = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    wx, wy = px - a[:, 0], py - a[:, 1]
    t = clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dist = np.sqrt((wx - ex * t) ** 2 + (wy - ey * t) ** 2).min(axis=-1)
    crosses = ((a[:, 1] > py) != (b[:, 1] > py)) & (
        px < (b[:, 0] - a[:, 0]) * (py - a[:, 1]) / (b[:, 1] - a[:, 1] + 1e-300) + a[:, 0]
    )
    inside = crosses.sum(axis=-1) % 2 == 1
    return np.where(inside, -dist, dist)


def star_points(n: int = 5, inner: float = 0.45) -> np.ndarray:
    """Vertices of an ``n``-pointed star with outer radius 1, point up (``v`` grows downwards)."""
    k = np.arange(2 * n)
    angle = -np.pi / 2 + k * np.pi / n
    radius = np.where(k % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle) + 0.1], axis=1)


@cache
def template(name: str) -> np.ndarray:
    """The ``float32 (TEMPLATE_SIZE**2,)`` signed-distance template of a template geometry."""
    if name != "star":
        raise ValueError(f"no distance template for geometry {name!r}")
    grid = np.linspace(-TEMPLATE_EXTENT, TEMPLATE_EXTENT, TEMPLATE_SIZE)
    x, y = np.meshgrid(grid, grid)
    return polygon_sdf(star_points(), x, y).astype(np.float32).ravel()


def _star(
    us: np.ndarray, vs: np.ndarray, k: np.ndarray, ring: np.ndarray | None, out: np.ndarray
) -> None:
    scale = (TEMPLATE_SIZE - 1) / (2 * TEMPLATE_EXTENT) / k
    last = TEMPLATE_SIZE - 1
    ix = clip(np.rint(us * scale + last / 2), 0, last).astype(np.intp)
    iy = clip(np.rint(vs * scale + last / 2), 0, last).astype(np.intp)
    np.take(template("star"), iy * TEMPLATE_SIZE + ix, out=out)
    out *= -k
    out += _HALF


#: Geometry name -> ``f(us, vs, k, ring, out)`` writing the depth ``0.5 - k * sdf`` into ``out``.
#: ``ring`` is ``(n, 2)`` (band radius, band half-width) for ring geometries, else unused.
DEPTH: dict[str, DepthFunction] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "diamond": _diamond,
    "star": _star,
    "hexagon": _hexagon,
    "pentagon": _pentagon,
    "ring": _ring,
    "cross": _cross,
}
