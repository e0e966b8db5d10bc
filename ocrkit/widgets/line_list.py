"""The line list: the lines of a page or a document, filtered and sorted for review.

All rows go to the browser as one ``RowList`` table, so a page of 300 lines shows
without lag. The list reports picks; the workbench selects the line on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ocrkit.models import Line
from ocrkit.widgets.feedback import Feedback
from ocrkit.widgets.row_list import RowList, column

PickCallback = Callable[[int], object]
KeyCallback = Callable[[str, int], object]
ScopeCallback = Callable[[str], object]

SCOPE_PAGE = "page"
SCOPE_DOCUMENT = "document"
SORT_ORDER = "order"
SORT_CONFIDENCE = "confidence"
# Keys pressed on a selected row that the workbench acts on.
ROW_KEYS = ["v", "r", "Delete"]


def filter_lines(
    lines: Sequence[Line],
    *,
    max_confidence: float = 1.0,
    unverified_only: bool = False,
    sort: str = SORT_ORDER,
) -> list[Line]:
    """Return the lines at or below ``max_confidence``, in the requested order.

    ``sort`` is ``order`` (page, then reading order) or ``confidence`` (lowest
    first, ties in reading order).
    """
    kept = [
        line
        for line in lines
        if line.confidence <= max_confidence + 1e-9
        and not (unverified_only and line.verified)
    ]
    if sort == SORT_CONFIDENCE:
        return sorted(
            kept, key=lambda line: (line.confidence, line.page_index, line.order)
        )
    return sorted(kept, key=lambda line: (line.page_index, line.order, line.id))


class LineList:
    """Filter controls above a table of lines.

    Args:
        feedback: where errors of callbacks go.
        on_pick: called with a line id when the user selects a row.
        on_key: called with a key of ``ROW_KEYS`` and the selected line id.
        on_scope: called with ``page`` or ``document`` when the scope changes.
        on_activate: called with a line id on double-click or Enter.
    """

    def __init__(
        self,
        feedback: Feedback,
        *,
        on_pick: PickCallback,
        on_key: KeyCallback,
        on_scope: ScopeCallback,
        on_activate: PickCallback,
    ) -> None:
        self.feedback = feedback
        self.on_pick = on_pick
        self.on_scope = on_scope
        self.lines: list[Line] = []
        self.shown: list[Line] = []
        self._quiet = False
        guard = feedback.guard

        self.scope = widgets.ToggleButtons(
            options=[("This page", SCOPE_PAGE), ("Whole document", SCOPE_DOCUMENT)],
            value=SCOPE_PAGE,
            tooltips=[
                "Lines of the page shown",
                "Lines of every page; picking one turns to its page",
            ],
            style={"button_width": "auto"},
        )
        self.scope.add_class("okw-scope")
        self.scope.observe(guard("Changing the list")(self._on_scope), "value")
        self.max_confidence = widgets.FloatSlider(
            value=1.0,
            min=0.0,
            max=1.0,
            step=0.05,
            description="Confidence ≤",
            readout_format=".2f",
            continuous_update=False,
            style={"description_width": "88px"},
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        self.unverified_only = widgets.Checkbox(
            value=False,
            description="Unverified only",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.sort = widgets.Dropdown(
            options=[
                ("Reading order", SORT_ORDER),
                ("Lowest confidence first", SORT_CONFIDENCE),
            ],
            value=SORT_ORDER,
            description="Sort",
            style={"description_width": "34px"},
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        for control in (self.max_confidence, self.unverified_only, self.sort):
            control.observe(
                guard("Filtering the lines")(lambda _: self.redraw()), "value"
            )
        self.count = widgets.HTML()
        self.count.add_class("okw-count")
        self.table = RowList(
            columns=self._columns(),
            height="calc(100vh - 470px)",
            empty_text="No lines on this page.",
            row_keys=ROW_KEYS,
            wrap=True,
        )
        self.table.add_class("okw-line-table")
        self.table.observe(guard("Selecting the line")(self._on_selected), "selected")
        self.table.on_key(guard("Acting on the line")(on_key))
        self.table.on_activate(guard("Editing the line")(on_activate))
        self.widget = widgets.VBox(
            [
                self.scope,
                widgets.HBox([self.max_confidence]),
                widgets.HBox([self.sort, self.unverified_only]),
                self.count,
                self.table,
            ]
        )
        self.widget.add_class("okw-line-list")

    def _columns(self) -> list[dict[str, str]]:
        columns = [column("number", "#", "number", "44px")]
        if self.scope.value == SCOPE_DOCUMENT:
            columns.append(column("page", "Page", "number", "46px"))
        columns += [
            column("text", "Text"),
            column("confidence", "Conf.", "confidence", "56px"),
            column("verified", "✓", "check", "26px"),
        ]
        return columns

    def set_lines(self, lines: Sequence[Line], *, selected: int | None = None) -> None:
        """Show these lines (the scope's), filtered, with ``selected`` highlighted."""
        self.lines = list(lines)
        self.redraw(selected=selected)

    def redraw(self, *, selected: int | None = None) -> None:
        """Apply the filters again and redraw the table."""
        self.shown = filter_lines(
            self.lines,
            max_confidence=float(self.max_confidence.value),
            unverified_only=bool(self.unverified_only.value),
            sort=str(self.sort.value),
        )
        rows = [_row(line) for line in self.shown]
        total = len(self.lines)
        where = "page" if self.scope.value == SCOPE_PAGE else "document"
        if len(rows) == total:
            self.count.value = f"{total} lines on this {where}"
        else:
            self.count.value = f"{len(rows)} of {total} lines on this {where} shown"
        self.table.empty_text = (
            f"No lines on this {where}."
            if not total
            else "No line matches the filters."
        )
        with self.quiet():
            self.table.rows = rows
            if selected is not None:
                self.table.selected = selected

    def select(self, line_id: int | None) -> None:
        """Highlight a line without reporting a pick."""
        with self.quiet():
            self.table.selected = -1 if line_id is None else line_id

    def update_line(self, line: Line) -> None:
        """Show a changed line in place, keeping the order of the rows."""
        self.lines = [line if old.id == line.id else old for old in self.lines]
        self.shown = [line if old.id == line.id else old for old in self.shown]
        with self.quiet():
            self.table.rows = [
                _row(line) if row["id"] == line.id else row for row in self.table.rows
            ]

    def quiet(self) -> _Quiet:
        """Return a context in which selection changes are not reported."""
        return _Quiet(self)

    def _on_selected(self, change: dict[str, Any]) -> None:
        if self._quiet or change["new"] < 0:
            return
        self.on_pick(int(change["new"]))

    def _on_scope(self, change: dict[str, Any]) -> None:
        self.table.columns = self._columns()
        self.on_scope(str(change["new"]))


class _Quiet:
    def __init__(self, owner: LineList) -> None:
        self.owner = owner
        self.before = False

    def __enter__(self) -> None:
        self.before = self.owner._quiet
        self.owner._quiet = True

    def __exit__(self, *exc: object) -> None:
        self.owner._quiet = self.before


def _row(line: Line) -> dict[str, Any]:
    return {
        "id": line.id,
        "number": line.order + 1,
        "page": line.page_index + 1,
        "text": line.text,
        "confidence": round(line.confidence, 3),
        "verified": line.verified,
    }
