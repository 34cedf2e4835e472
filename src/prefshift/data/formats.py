"""Load and validate datasets in the TRL formats prefshift trains on.

Three kinds, with TRL's column names so a user's existing data loads unchanged:

* ``paired``   — ``prompt``, ``chosen``, ``rejected`` (standard strings, or conversational lists of
  ``{"role", "content"}`` messages; a paired set without ``prompt`` whose chosen/rejected conversations
  share their opening turns has the prompt extracted, as TRL does);
* ``unpaired`` — ``prompt``, ``completion``, ``label`` (bool: desirable), for KTO;
* ``sft``      — ``prompt``, ``completion``.

A source is a ``datasets.Dataset``, a local ``.jsonl``/``.json``/``.parquet`` file, or a hub id. Bad data
fails before any compute with an error that names the source, the row and the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import datasets

Kind = Literal["paired", "unpaired", "sft"]

COLUMNS: dict[str, tuple[str, ...]] = {
    "paired": ("prompt", "chosen", "rejected"),
    "unpaired": ("prompt", "completion", "label"),
    "sft": ("prompt", "completion"),
}


class DataFormatError(ValueError):
    """A dataset does not have the columns or value types its kind requires."""


def _read(source: str | Path | datasets.Dataset, split: str) -> tuple[datasets.Dataset, str]:
    if isinstance(source, datasets.Dataset):
        return source, "<in-memory dataset>"
    path = Path(source)
    suffix = "".join(path.suffixes[-1:]).lower()
    if path.exists():
        loader = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(suffix)
        if loader is None:
            raise DataFormatError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json or .parquet")
        try:
            ds = datasets.load_dataset(loader, data_files=str(path), split="train")
        except Exception as exc:  # datasets raises many types for a malformed file; name the file
            raise DataFormatError(f"{path}: could not be read as {loader}: {exc}") from exc
        return ds, str(path)
    if suffix in {".jsonl", ".json", ".parquet"}:
        raise DataFormatError(f"{path}: file not found")
    return datasets.load_dataset(str(source), split=split), f"{source}[{split}]"


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


def _extract_prompt(example: dict) -> dict:
    """Split shared opening turns of chosen/rejected conversations into ``prompt`` (TRL's implicit format)."""
    chosen, rejected = example["chosen"], example["rejected"]
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    return {"prompt": chosen[:n], "chosen": chosen[n:], "rejected": rejected[n:]}


def validate(ds: datasets.Dataset, kind: Kind, where: str = "<dataset>") -> datasets.Dataset:
    """Check columns and value types; return the dataset (with an implicit prompt made explicit)."""
    if kind not in COLUMNS:
        raise DataFormatError(f"unknown data kind {kind!r}; valid: {sorted(COLUMNS)}")
    if len(ds) == 0:
        raise DataFormatError(
            f"{where}: the dataset is empty (0 rows); a {kind} dataset needs at least one row"
        )
    if (
        kind == "paired"
        and "prompt" not in ds.column_names
        and {"chosen", "rejected"} <= set(ds.column_names)
    ):
        if not _is_messages(ds[0]["chosen"]):
            raise DataFormatError(
                f"{where}: column 'prompt' is missing; only conversational chosen/rejected can imply it"
            )
        ds = ds.map(_extract_prompt)
    missing = [c for c in COLUMNS[kind] if c not in ds.column_names]
    if missing:
        raise DataFormatError(
            f"{where}: missing column(s) {missing} for {kind} data; required: {list(COLUMNS[kind])}, "
            f"found: {ds.column_names}"
        )
    text_cols = [c for c in COLUMNS[kind] if c != "label"]
    conversational = _is_messages(ds[0][text_cols[0]])
    for i, row in enumerate(ds.select_columns(list(COLUMNS[kind]))):
        for col in text_cols:
            value = row[col]
            ok = _is_messages(value) if conversational else isinstance(value, str)
            if not ok:
                want = "a list of {role, content} messages" if conversational else "a string"
                raise DataFormatError(
                    f"{where}: row {i}, column {col!r}: expected {want}, got {type(value).__name__} ({value!r:.60})"
                )
            if col != "prompt" and not conversational and not value.strip():
                raise DataFormatError(f"{where}: row {i}, column {col!r}: empty completion")
        if kind == "unpaired" and not isinstance(row["label"], bool):
            raise DataFormatError(
                f"{where}: row {i}, column 'label': expected a bool (True = desirable), got {row['label']!r}"
            )
    return ds


def load(source: str | Path | datasets.Dataset, kind: Kind, split: str = "train") -> datasets.Dataset:
    """Load ``source`` and validate it as ``kind`` data."""
    ds, where = _read(source, split)
    return validate(ds, kind, where)
