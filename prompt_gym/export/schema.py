"""The schema of prompt-gym's score datasets (Parquet), version :data:`SCHEMA_VERSION`.

One row per scored ``(prompt, seed)``. Columns (``None`` where a value does not apply):

* ``kind``: ``"request"`` (a row the backend's recorder wrote for one request of
  :meth:`~prompt_gym.backends.RewardBackend.score`) or ``"rewrite"`` (a rewrite ``y`` of a
  source prompt ``x``, written by :func:`prompt_gym.export.rewrites.export_rewrites`).
* ``prompt``: the prompt rendered (the rewrite ``y`` for a ``"rewrite"`` row).
* ``source``: the user's prompt ``x`` of a rewrite; ``None`` for a request row.
* ``seed``: the image seed; ``backend`` and ``backend_version``: the preset and its version.
* ``aesthetic``: aesthetic score of ``image(prompt, seed)`` (``None`` if not asked for).
* ``source_aesthetic``: aesthetic score of ``image(source, seed)`` (the same seed).
* ``relevance``: the raw cosine ``cos(text(source), image(prompt, seed))`` (Promptist's ``c``).
* ``pickscore``: the preference score ``PS(source, image(prompt, seed))`` (PickScore on the
  real presets, :mod:`prompt_gym.backends.shapes.preference` on the shapes world).
* ``source_pickscore``: ``PS(source, image(source, seed))``.
* ``image_similarity``: ``cos(image(prompt, seed), image(source, seed))``, the image-image
  similarity of the rewrite's image to the source's on the same seed.
* ``valid``: whether the image was valid (finite, not all black).
* ``cache_hit``: whether the backend served the request from a cache (request rows).
* ``reward``: the episode reward of a policy rollout (offline-RL rows), else ``None``.
* ``policy``: what wrote the prompt (``"modifiers"``, a checkpoint path, ...).

The version is stored in each file's Parquet key-value metadata under :data:`VERSION_KEY`;
readers refuse a file of another version.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = "1"
"""Bumped whenever a column is added, removed or changes meaning."""
VERSION_KEY = b"prompt_gym.schema_version"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "string"),
    ("prompt", "string"),
    ("source", "string"),
    ("seed", "int64"),
    ("backend", "string"),
    ("backend_version", "string"),
    ("aesthetic", "float64"),
    ("source_aesthetic", "float64"),
    ("relevance", "float64"),
    ("pickscore", "float64"),
    ("source_pickscore", "float64"),
    ("image_similarity", "float64"),
    ("valid", "bool"),
    ("cache_hit", "bool"),
    ("reward", "float64"),
    ("policy", "string"),
)
"""Column names and pyarrow type names, in file order."""
NAMES = tuple(name for name, _ in COLUMNS)


def arrow_schema() -> Any:
    """The ``pyarrow.Schema`` of a score dataset file, with the schema version in its metadata."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
    }
    fields = [pa.field(name, types[kind], nullable=True) for name, kind in COLUMNS]
    return pa.schema(fields, metadata={VERSION_KEY: SCHEMA_VERSION.encode()})


def check_row(row: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``row`` has a key that is not a column or lacks ``prompt``/``seed``.

    >>> check_row({"kind": "request", "prompt": "a red circle", "seed": 0})
    >>> check_row({"prompt": "x", "seed": 0, "colour": "red"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown dataset columns ['colour']; known: kind, prompt, source, seed, ...
    """
    unknown = sorted(set(row) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown dataset columns {unknown}; known: {', '.join(NAMES)}")
    for key in ("prompt", "seed"):
        if row.get(key) is None:
            raise ValueError(f"a dataset row needs {key!r}, got {row}")
