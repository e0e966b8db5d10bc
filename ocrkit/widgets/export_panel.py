"""Export of the line table from the workbench, as a download in the browser."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import PurePath

import ipywidgets as widgets

from ocrkit.export import export_bytes, lines_frame
from ocrkit.store import Store
from ocrkit.widgets.download import DownloadButton
from ocrkit.widgets.feedback import Feedback

log = logging.getLogger(__name__)

MIME_TYPES = {
    "csv": "text/csv;charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
}
SUFFIXES = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl"}
SCOPE_DOCUMENT = "document"
SCOPE_ALL = "all"


def export_filename(name: str | None, fmt: str) -> str:
    """Return the download's file name: the document's name, or ``ocrkit-lines``."""
    stem = PurePath(name).stem if name else "ocrkit-lines"
    # Keep letters of any script, digits, dot, dash and underscore.
    stem = re.sub(r"[^\w.-]+", "_", stem).strip("._") or "lines"
    suffix = "" if name is None else "-lines"
    return f"{stem}{suffix}.{SUFFIXES[fmt]}"


class ExportPanel:
    """Scope, format and byte order mark choice, and the download button.

    Args:
        store: the store to export from.
        feedback: where messages go.
        current_document: returns the id of the open document, or None.
        before_export: called first, to save text still being typed.
    """

    def __init__(
        self,
        store: Store,
        feedback: Feedback,
        *,
        current_document: Callable[[], str | None],
        before_export: Callable[[], object],
    ) -> None:
        self.store = store
        self.feedback = feedback
        self.current_document = current_document
        self.before_export = before_export
        self.scope = widgets.ToggleButtons(
            options=[("This document", SCOPE_DOCUMENT), ("All", SCOPE_ALL)],
            value=SCOPE_DOCUMENT,
            tooltips=["Lines of the open document", "Lines of every document"],
            style={"button_width": "auto"},
        )
        self.scope.add_class("okw-scope")

        self.format = widgets.Dropdown(
            options=[("CSV", "csv"), ("Parquet", "parquet"), ("JSON Lines", "jsonl")],
            value="csv",
            layout=widgets.Layout(width="104px"),
        )
        self.bom = widgets.Checkbox(
            value=True,
            description="Excel BOM",
            tooltip="Start the CSV with a UTF-8 byte order mark, so that Excel shows "
            "accents right",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.format.observe(lambda _: self._update(), "value")

        self.button = DownloadButton(
            builder=feedback.guard("Exporting")(self.build),
            description="Export",
            tooltip="Download the lines as a table file",
        )
        label = widgets.HTML('<span class="okw-export-label">Export</span>')
        self.widget = widgets.HBox(
            [label, self.scope, self.format, self.bom, self.button]
        )
        self.widget.add_class("okw-export")
        self._update()

    def _update(self) -> None:
        self.bom.disabled = self.format.value != "csv"

    def build(self) -> tuple[str, str, bytes] | None:
        """Return the file name, MIME type and bytes of the requested export."""
        self.before_export()
        fmt = str(self.format.value)
        if self.scope.value == SCOPE_DOCUMENT:
            document_id = self.current_document()
            if document_id is None:
                self.feedback.show("Open a document first, or export all.", "info")
                return None
            document = self.store.document(document_id)
            frame = lines_frame(self.store, [document_id])
            filename = export_filename(document.filename, fmt)
            what = document.filename
        else:
            if not self.store.documents():
                self.feedback.show("The store has no documents to export.", "info")
                return None
            frame = lines_frame(self.store)
            filename = export_filename(None, fmt)
            what = "all documents"
        data = export_bytes(frame, fmt, bom=bool(self.bom.value) and fmt == "csv")
        self.feedback.show(
            f"Exported {len(frame)} lines of {what} as {filename}.", "success"
        )
        return filename, MIME_TYPES[fmt], data
