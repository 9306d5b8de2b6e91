"""numpy's ``einsum`` and ``clip`` without their Python wrappers: the same results, bit for bit.

The shapes world calls them a few hundred times per batch on small arrays, where the wrappers
(argument checks that this package never needs) cost as much as the work: ``np.einsum`` without
``optimize`` hands its arguments to the C ``c_einsum`` unchanged, and ``np.clip`` ends in the
``clip`` ufunc.

>>> import numpy as np
>>> x = np.linspace(-1.0, 2.0, 7)
>>> bool((clip(x, 0.0, 1.0) == np.clip(x, 0.0, 1.0)).all())
True
>>> bool((einsum("i,i->", x, x) == np.einsum("i,i->", x, x)))
True
"""

from __future__ import annotations

try:  # numpy >= 2
    from numpy._core.multiarray import c_einsum as einsum
    from numpy._core.umath import clip
except ImportError:  # pragma: no cover - numpy 1.26
    from numpy.core.multiarray import c_einsum as einsum  # type: ignore[no-redef]
    from numpy.core.umath import clip  # type: ignore[no-redef]

__all__ = ["clip", "einsum"]
