"""Line tables: the store's lines as a pandas DataFrame, and files written from it.

One row per line with the columns in ``COLUMNS``. Boxes are in PDF points relative
to the visible page's top-left corner; ``page`` is one-based.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ocrkit.errors import OcrkitError
from ocrkit.models import Document, Line
from ocrkit.store import Store

COLUMNS = [
    "document",
    "file",
    "page",
    "line",
    "x0",
    "y0",
    "x1",
    "y1",
    "text",
    "confidence",
    "origin",
    "verified",
    "line_id",
    "updated_at",
]
FORMATS = ("csv", "parquet", "jsonl")
_DTYPES = {
    "document": "string",
    "file": "string",
    "page": "int64",
    "line": "int64",
    "x0": "float64",
    "y0": "float64",
    "x1": "float64",
    "y1": "float64",
    "text": "string",
    "confidence": "float64",
    "origin": "string",
    "verified": "bool",
    "line_id": "int64",
    "updated_at": "string",
}
# C0 control characters other than tab and newline, which spreadsheets show as junk
# or cut cells at.
# A cell starting with one of these runs as a formula in Excel and LibreOffice.
_FORMULA_START = re.compile(r"^([=+\-@])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def lines_frame(
    store: Store,
    documents: str | Sequence[str] | None = None,
    *,
    page: int | None = None,
) -> pd.DataFrame:
    """Return lines as a typed DataFrame, one row per line in reading order.

    Args:
        store: the store to read.
        documents: a document id or name, several, or None for every document.
        page: a one-based page number, as in the table, to get that page only.
    """
    if isinstance(documents, str):
        documents = [documents]
    chosen = _documents(store, documents)
    page_index = page - 1 if page is not None else None
    rows = []
    for document in chosen:
        rows.extend(_rows(document, store.lines(document.id, page_index)))
    return frame_from_rows(rows)


def frame_from_rows(rows: Iterable[dict[str, object]]) -> pd.DataFrame:
    """Build the line table from row dicts, coercing numpy and other numbers."""
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    return frame.astype(_DTYPES)


def export_lines(
    frame: pd.DataFrame, path: str | Path, fmt: str = "csv", *, bom: bool = False
) -> Path:
    """Write a line table as CSV, Parquet or JSON Lines.

    CSV is UTF-8; ``bom=True`` starts it with a byte order mark so that Excel
    recognises UTF-8 and shows accents. Such a CSV is meant for a spreadsheet, so
    text cells that a spreadsheet would run as a formula (starting with ``=``,
    ``+``, ``-`` or ``@``) get a leading apostrophe, which spreadsheets show as
    plain text. In CSV text, carriage returns become newlines and other control
    characters except tab are removed. Parquet and JSON Lines keep the text as is.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise OcrkitError(
            f"unknown export format {fmt!r}; choose csv, parquet or jsonl"
        )
    frame = frame.astype({k: v for k, v in _DTYPES.items() if k in frame.columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        clean = frame.copy()
        # Python's csv module quotes a cell holding "\n" but not one holding a lone
        # "\r", which CSV readers then take as the end of the row.
        text = clean["text"].str.replace(r"\r\n?", "\n", regex=True)
        clean["text"] = text.str.replace(_CONTROL, "", regex=True)
        if bom:
            for column in ("text", "file"):
                clean[column] = clean[column].str.replace(
                    _FORMULA_START, r"'\1", regex=True
                )
        clean.to_csv(
            path,
            index=False,
            encoding="utf-8-sig" if bom else "utf-8",
            lineterminator="\n",
        )
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def export_bytes(frame: pd.DataFrame, fmt: str = "csv", *, bom: bool = True) -> bytes:
    """Return a line table serialised as ``export_lines`` writes it."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"lines.{fmt}"
        export_lines(frame, target, fmt, bom=bom)
        return target.read_bytes()


def read_lines(path: str | Path) -> pd.DataFrame:
    """Read a line table written by ``export_lines`` back, with its types."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "parquet":
        frame = pd.read_parquet(path)
    elif suffix in ("jsonl", "json"):
        frame = pd.read_json(path, orient="records", lines=True, dtype=False)
    else:
        frame = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    return frame.astype({k: v for k, v in _DTYPES.items() if k in frame.columns})


def _documents(store: Store, refs: Sequence[str] | None) -> list[Document]:
    if not refs:
        return store.documents()
    return [store.document(ref) for ref in refs]


def _rows(document: Document, lines: Iterable[Line]) -> list[dict[str, object]]:
    rows = []
    for line in lines:
        x0, y0, x1, y1 = line.bbox_pt
        rows.append(
            {
                "document": document.id,
                "file": document.filename,
                "page": line.page_index + 1,
                "line": line.order + 1,
                "x0": round(x0, 2),
                "y0": round(y0, 2),
                "x1": round(x1, 2),
                "y1": round(y1, 2),
                "text": line.text,
                "confidence": round(line.confidence, 4),
                "origin": str(line.origin),
                "verified": line.verified,
                "line_id": line.id,
                "updated_at": line.updated_at,
            }
        )
    return rows
