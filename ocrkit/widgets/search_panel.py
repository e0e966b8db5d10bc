"""Search in the text of every document, with results that open the line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ocrkit.models import Line
from ocrkit.store import Store
from ocrkit.widgets.feedback import Feedback
from ocrkit.widgets.row_list import RowList, column

JumpCallback = Callable[[Line], object]
MAX_RESULTS = 200


class SearchPanel:
    """A search box and the matching lines of all documents.

    Args:
        store: the store to search.
        feedback: where errors of callbacks go.
        on_jump: called with the line of a result the user picked.
    """

    def __init__(
        self, store: Store, feedback: Feedback, *, on_jump: JumpCallback
    ) -> None:
        self.store = store
        self.on_jump = on_jump
        self.results: dict[int, Line] = {}
        self._quiet = False
        guard = feedback.guard
        self.query = widgets.Text(
            placeholder="Search the text of all documents",
            continuous_update=False,
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        self.query.observe(guard("Searching")(self._on_query), "value")
        self.button = widgets.Button(
            icon="search", tooltip="Search", layout=widgets.Layout(width="40px")
        )
        self.button.on_click(guard("Searching")(lambda _: self.search()))

        self.count = widgets.HTML()
        self.count.add_class("okw-count")
        self.table = RowList(
            columns=[
                column("file", "Document", width="34%"),
                column("page", "Page", "number", "42px"),
                column("text", "Text"),
            ],
            height="130px",
            empty_text="Type a word and press Enter.",
        )
        self.table.observe(guard("Opening the result")(self._on_selected), "selected")
        self.widget = widgets.VBox(
            [widgets.HBox([self.query, self.button]), self.count, self.table]
        )
        self.widget.add_class("okw-search")

    def search(self, text: str | None = None) -> list[Line]:
        """Search for ``text`` (or the box's text) and list the matching lines."""
        if text is not None:
            self._quiet = True
            try:
                self.query.value = text
            finally:
                self._quiet = False
        needle = self.query.value.strip()
        if not needle:
            self.results = {}
            self.table.rows = []
            self.count.value = ""
            return []
        found = self.store.search(needle, limit=MAX_RESULTS)

        names = {d.id: d.filename for d in self.store.documents()}
        self.results = {line.id: line for line in found}
        self.table.selected = -1
        self.table.rows = [
            {
                "id": line.id,
                "file": names.get(line.document_id, line.document_id),
                "page": line.page_index + 1,
                "text": line.text,
            }
            for line in found
        ]
        more = " (first 200 shown)" if len(found) >= MAX_RESULTS else ""
        self.count.value = f"{len(found)} lines contain “{needle}”{more}"
        self.table.empty_text = "No line contains this text."
        return found

    def _on_query(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.search()

    def _on_selected(self, change: dict[str, Any]) -> None:
        line = self.results.get(int(change["new"]))
        if line is not None:
            self.on_jump(line)
