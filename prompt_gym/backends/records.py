"""What the score caches hold: one frozen :class:`ScoreRecord` per (prompt, seed).

The memory cache holds records as they are; the disk cache holds them as bytes
(:func:`encode` / :func:`decode`, little-endian: flags and tokens as ``int32``, the aesthetic
and the embedding as ``float32``). A record scored without its aesthetic has ``aesthetic=None``
(on disk: ``nan`` and the flag bit :data:`FLAG_NO_AESTHETIC`); a request that asks for the
aesthetic treats it as a miss, and the recomputed record, stored with it, replaces it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FLAG_NONFINITE = 1
"""Flag bit: the generator produced NaN/inf (the image was zeroed)."""
FLAG_BLACK = 2
"""Flag bit: the image is all black."""
FLAG_NO_AESTHETIC = 4
"""Flag bit (disk only): the aesthetic score was not computed."""


class ScoreRecord(NamedTuple):
    """The scores of one generated image (immutable).

    Attributes:
        embed: ``float32 (D,)`` unit image embedding.
        aesthetic: The aesthetic score, ``None`` if it was not computed (``nan`` if the scorer
            has none).
        flags: :data:`FLAG_NONFINITE` | :data:`FLAG_BLACK`.
        tokens: Text-encoder tokens of the prompt, ``-1`` if unknown (in the scene store of
            :class:`~prompt_gym.backends.reward_backend.RewardBackend`: of the prompt that drew it).
    """

    embed: np.ndarray
    aesthetic: float | None
    flags: int
    tokens: int


def encode(record: ScoreRecord) -> bytes:
    """The disk form of a record.

    >>> r = ScoreRecord(np.ones(2, np.float32), None, 2, 5)
    >>> decode(encode(r), 2)[1:]
    (None, 2, 5)
    """
    flags, aes = record.flags, record.aesthetic
    if aes is None:
        flags, aes = flags | FLAG_NO_AESTHETIC, float("nan")
    head = np.array([flags, record.tokens], dtype="<i4").tobytes()
    return head + np.asarray([aes], dtype="<f4").tobytes() + record.embed.astype("<f4").tobytes()


def decode(value: bytes, dim: int) -> ScoreRecord:
    """A record from its disk form.

    Raises:
        ValueError: If ``value`` is not the size of a record of dimension ``dim``.
    """
    if len(value) != 12 + 4 * dim:
        raise ValueError("cache entry has the wrong size")
    flags, tokens = (int(x) for x in np.frombuffer(value, dtype="<i4", count=2))
    aes: float | None = float(np.frombuffer(value, dtype="<f4", count=1, offset=8)[0])
    if flags & FLAG_NO_AESTHETIC:
        flags, aes = flags & ~FLAG_NO_AESTHETIC, None
    embed = np.frombuffer(value, dtype="<f4", offset=12).astype(np.float32)
    return ScoreRecord(embed, aes, flags, tokens)
