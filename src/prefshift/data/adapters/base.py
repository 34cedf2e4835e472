"""What every source adapter shares: reading a hub id or local copy, checking columns, one parsed row type.

Why one parsed type: every real source says the same four things about a row — who asked what (a
conversation), the preferred response, maybe a dispreferred one, and an id/domain for bookkeeping.
Parsing once into ``Example`` lets the three views the study needs (preference pairs, SFT rows,
target prompts with references; see ``views``) be written once instead of once per source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import pyarrow.parquet as pq

Task = Literal["summarisation", "dialogue"]
Message = dict[str, str]


class AdapterError(ValueError):
    """A source cannot be read or mapped: names the source (file or hub id), and the row/column."""


@dataclass(frozen=True)
class Example:
    """One source row in prefshift's terms.

    ``messages`` is the prompt as a conversation ending with a user turn (a summarisation prompt is a
    single user turn holding the task template); ``chosen`` is the preferred response, or the
    reference/SFT target for sources without preferences; ``rejected`` is ``None`` for those sources.
    """

    id: str
    domain: str
    messages: list[Message]
    chosen: str
    rejected: str | None = None


@dataclass(frozen=True)
class Adapter:
    """How one hub dataset maps to ``Example`` rows.

    ``parse(row)`` returns ``None`` for rows the source itself marks as unusable (a tie, two identical
    responses); it raises ``KeyError``/``TypeError``/``ValueError`` for malformed rows, which
    ``read_examples`` reports with the source and row index.
    """

    name: str
    hub_id: str
    task: Task
    columns: tuple[str, ...]
    parse: Callable[[Mapping[str, Any]], Example | None]
    split: str = "train"
    config_name: str | None = None
    has_pairs: bool = True


_LOADERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def load_raw(
    path: str, split: str, config_name: str | None = None, data_dir: str | None = None
) -> datasets.Dataset:
    """Read ``path`` with ``datasets.load_dataset``: a hub id, a local directory, or one local file.

    A single file is one split, so ``split`` is ignored for it; a directory is resolved by
    ``datasets``' own split patterns (``data/<split>-00000-of-00001.jsonl``), as a hub repository is.
    ``config_name`` only applies to hub ids (a local copy is already one configuration).
    """
    p = Path(path)
    try:
        if p.is_file():
            loader = _LOADERS.get(p.suffix.lower())
            if loader is None:
                raise AdapterError(f"{p}: unsupported file type {p.suffix!r}; use {sorted(_LOADERS)}")
            # datasets' own error for an empty file ("corresponds to no data") hides the cause
            if _rows_in_file(p) == 0:
                raise AdapterError(f"{p}: the dataset is empty (0 rows)")
            return datasets.load_dataset(loader, data_files=str(p), split="train")
        if p.is_dir():
            return datasets.load_dataset(str(p), data_dir=data_dir, split=split)
        if p.suffix.lower() in _LOADERS:
            raise AdapterError(f"{p}: file not found")
        return datasets.load_dataset(path, config_name, data_dir=data_dir, split=split)
    except AdapterError:
        raise
    # datasets raises many types (malformed file, bad split, no network): name the source in one type
    except Exception as exc:
        raise AdapterError(f"{path} [split {split!r}]: could not be loaded: {exc}") from exc


def _rows_in_file(p: Path) -> int | None:
    """0 for an empty file (parquet: from its footer); None when only reading it would tell."""
    if p.suffix.lower() == ".parquet":
        return pq.read_metadata(p).num_rows
    with open(p, "rb") as f:
        head = f.read(1 << 16)  # a few blank lines at most; never read a large file whole
    return 0 if not head.strip() and len(head) < 1 << 16 else None


def check_columns(ds: datasets.Dataset, columns: tuple[str, ...], where: str, adapter: str) -> None:
    """Fail before any mapping when the source is empty or lacks a column the adapter reads."""
    if len(ds) == 0:
        raise AdapterError(f"{where}: the dataset is empty (0 rows); adapter {adapter!r} needs rows")
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise AdapterError(
            f"{where}: missing column(s) {missing} for adapter {adapter!r}; "
            f"required: {list(columns)}, found: {ds.column_names}"
        )


def read_examples(adapter: Adapter, ds: datasets.Dataset, where: str) -> list[Example]:
    """Parse every row; malformed rows raise with the source, row index and the missing field."""
    check_columns(ds, adapter.columns, where, adapter.name)
    out: list[Example] = []
    for i, row in enumerate(ds):
        try:
            ex = adapter.parse(row)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise AdapterError(f"{where}: row {i}: cannot map to adapter {adapter.name!r}: {exc!r}") from exc
        if ex is not None:
            out.append(ex)
    if not out:
        raise AdapterError(f"{where}: adapter {adapter.name!r} kept no rows (all ties or empty responses)")
    return out


def text(value: Any, field: str) -> str:
    """A required non-empty string field, stripped; the error names the field."""
    if not isinstance(value, str):
        raise TypeError(f"field {field!r}: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"field {field!r}: empty string")
    return value.strip()
