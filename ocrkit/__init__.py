"""ocrkit: read the text lines of PDFs and scans, correct them, export them.

>>> import ocrkit
>>> store = ocrkit.open_store("storage")
>>> document = store.add_file("scan.pdf")
>>> ocrkit.read_document(store, document.id)
>>> ocrkit.lines_frame(store, document.id).head()

Names are imported on first use, so that importing a submodule such as
``ocrkit.store`` does not load pandas, pyarrow or the OCR engines.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "EditConflictError": "ocrkit.errors",
    "EncryptedPdfError": "ocrkit.errors",
    "EngineError": "ocrkit.errors",
    "InputFileError": "ocrkit.errors",
    "MissingDependencyError": "ocrkit.errors",
    "NotFoundError": "ocrkit.errors",
    "OcrkitError": "ocrkit.errors",
    "StoreError": "ocrkit.errors",
    "export_lines": "ocrkit.export",
    "lines_frame": "ocrkit.export",
    "read_lines": "ocrkit.export",
    "Document": "ocrkit.models",
    "Line": "ocrkit.models",
    "LineOrigin": "ocrkit.models",
    "Page": "ocrkit.models",
    "PageStatus": "ocrkit.models",
    "ReadProgress": "ocrkit.reading",
    "ReadReport": "ocrkit.reading",
    "read_document": "ocrkit.reading",
    "Store": "ocrkit.store",
    "open_store": "ocrkit.store",
}

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
    "Store",
    "StoreError",
    "export_lines",
    "lines_frame",
    "open_store",
    "read_document",
    "read_lines",
]

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ocrkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
