"""ocrkit: read the text lines of PDFs and scans, correct them, export them.

>>> import ocrkit
>>> store = ocrkit.open_store("storage")
>>> document = store.add_file("scan.pdf")
>>> ocrkit.read_document(store, document.id)
>>> ocrkit.lines_frame(store, [document.id]).head()
"""

from __future__ import annotations

from ocrkit.errors import (
    EditConflictError,
    EncryptedPdfError,
    EngineError,
    InputFileError,
    MissingDependencyError,
    NotFoundError,
    OcrkitError,
    StoreError,
)
from ocrkit.export import export_lines, lines_frame, read_lines
from ocrkit.models import Document, Line, LineOrigin, Page, PageStatus
from ocrkit.reading import ReadProgress, ReadReport, read_document
from ocrkit.store import Store, open_store

__version__ = "0.1.0"

__all__ = [
    "Document",
    "EditConflictError",
    "EncryptedPdfError",
    "EngineError",
    "InputFileError",
    "Line",
    "LineOrigin",
    "MissingDependencyError",
    "NotFoundError",
    "OcrkitError",
    "Page",
    "PageStatus",
    "ReadProgress",
    "ReadReport",
    "StoreError",
    "Store",
    "export_lines",
    "lines_frame",
    "open_store",
    "read_document",
    "read_lines",
]
