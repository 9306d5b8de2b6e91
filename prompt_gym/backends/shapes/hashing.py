"""Counter-based random numbers: every random choice of an image is a hash of (seed, field).

The renderer never keeps a random state. Field ``j`` of the image with seed ``s`` is
``splitmix64(splitmix64(s) + (j + 1) * golden)`` mapped to ``[0, 1)``, so the same (prompt, seed)
renders the same bytes in any batch, in any order, at any batch size, and whole batches hash in
a handful of vectorised ``uint64`` operations.

>>> u = uniforms([0, 1, 2**63 - 1], 4)
>>> u.shape, bool(((u >= 0) & (u < 1)).all())
((3, 4), True)
>>> bool((uniforms([1], 4)[0] == u[1]).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of ``x + golden`` on a ``uint64`` array (wrapping arithmetic).

    >>> int(splitmix64(np.array([0], dtype=np.uint64))[0])
    16294208416658607535
    """
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniforms(seeds: Sequence[int] | np.ndarray, n_fields: int) -> np.ndarray:
    """Return ``float64 (len(seeds), n_fields)`` uniforms in ``[0, 1)``, one row per seed.

    Args:
        seeds: Non-negative integers below ``2**64``.
        n_fields: How many independent numbers each seed needs.
    """
    s = np.asarray(seeds, dtype=np.uint64).reshape(-1, 1)
    base = splitmix64(s)
    fields = (np.arange(1, n_fields + 1, dtype=np.uint64) * _GOLDEN).reshape(1, -1)
    z = splitmix64(base + fields)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
