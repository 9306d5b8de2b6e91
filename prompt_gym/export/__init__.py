"""Score datasets: record every scored request, export rewrites, read them back (Parquet).

See :mod:`prompt_gym.export.schema` for the columns, :mod:`prompt_gym.export.recorder` for
the append-safe writer and :mod:`prompt_gym.export.rewrites` for the rewrite exporter.
pyarrow is needed (``pip install prompt-gym[data]``); it is imported only when used.
"""

from prompt_gym.export.reader import DatasetError, read_dataset, read_rows
from prompt_gym.export.recorder import Recorder
from prompt_gym.export.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "DatasetError", "Recorder", "read_dataset", "read_rows"]
