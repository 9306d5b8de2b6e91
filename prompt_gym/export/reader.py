"""Reading score datasets: every part file, schema version checked, damage named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prompt_gym.export.recorder import PART_GLOB
from prompt_gym.export.schema import SCHEMA_VERSION, VERSION_KEY


class DatasetError(ValueError):
    """A dataset file is unreadable (truncated, not Parquet) or of another schema version."""


def part_files(path: str | Path) -> list[Path]:
    """The part files of a dataset directory (or the one file ``path``), sorted by name.

    Raises:
        DatasetError: If ``path`` does not exist or holds no part file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    files = sorted(path.glob(PART_GLOB)) if path.is_dir() else []
    if not files:
        raise DatasetError(f"{path}: no dataset here (expected {PART_GLOB} files)")
    return files


def read_part(file: Path) -> Any:
    """One part file as a ``pyarrow.Table``.

    Raises:
        DatasetError: Naming the file, if it is truncated or not Parquet, or its schema version
            is not :data:`~prompt_gym.export.schema.SCHEMA_VERSION`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
    except (pa.ArrowInvalid, OSError) as err:
        raise DatasetError(
            f"{file}: not a complete Parquet file ({err}); it was truncated or damaged "
            "outside prompt-gym (its writers rename complete files into place): delete it"
        ) from err
    version = (table.schema.metadata or {}).get(VERSION_KEY, b"").decode() or None
    if version != SCHEMA_VERSION:
        raise DatasetError(
            f"{file}: schema version {version!r}, this prompt-gym reads {SCHEMA_VERSION!r}"
        )
    return table


def read_dataset(path: str | Path) -> Any:
    """Every row of a dataset directory (or file) as one ``pyarrow.Table``.

    Raises:
        DatasetError: See :func:`part_files` and :func:`read_part`.
    """
    import pyarrow as pa

    return pa.concat_tables([read_part(f) for f in part_files(path)])


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a dataset as a dict (small datasets; see :func:`read_dataset`)."""
    return read_dataset(path).to_pylist()
