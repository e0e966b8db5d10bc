"""A selectable list of rows drawn as one HTML table in the browser.

The workbench lists documents, text lines and search results with it. Python sends
every row at once and the browser draws them in one pass, so a page of 300 lines
costs one message and one table, not 300 widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

log = logging.getLogger(__name__)

RowCallback = Callable[[int], object]
KeyCallback = Callable[[str, int], object]

COLUMN_KINDS = ("text", "number", "confidence", "check", "progress")


def column(key: str, label: str, kind: str = "text", width: str = "") -> dict[str, str]:
    """Return a column description for ``RowList.columns``.

    ``kind`` is one of ``COLUMN_KINDS``: ``confidence`` draws a coloured 0-1 value,
    ``check`` a tick for a true value, ``progress`` a bar for a dict with ``done``,
    ``total``, ``label`` and ``state`` (``queued``, ``reading``, ``done``,
    ``failed``). ``width`` is a CSS width.
    """
    if kind not in COLUMN_KINDS:
        raise ValueError(f"column kind {kind!r} is invalid; use one of {COLUMN_KINDS}")
    return {"key": key, "label": label, "kind": kind, "width": width}


class RowList(anywidget.AnyWidget):
    """Rows with an ``id`` each; one of them may be selected.

    Clicking a row or moving with the arrow keys sets ``selected``. Double-click
    and Enter call the ``on_activate`` callbacks; the keys listed in ``row_keys`` call
    the ``on_key`` callbacks with the selected row's id.
    """

    _esm = Path(__file__).with_name("row_list.js")
    _css = Path(__file__).with_name("row_list.css")

    columns = traitlets.List(traitlets.Dict(), help="Column descriptions.").tag(
        sync=True
    )
    rows = traitlets.List(
        traitlets.Dict(), help="Row dicts with an int 'id' and a value per column."
    ).tag(sync=True)
    selected = traitlets.Int(-1, help="Id of the selected row, -1 for none.").tag(
        sync=True
    )
    height = traitlets.Unicode("320px", help="CSS height of the scrolling list.").tag(
        sync=True
    )
    empty_text = traitlets.Unicode("Nothing to show.").tag(sync=True)
    wrap = traitlets.Bool(
        False, help="Wrap long text over several lines instead of cutting it."
    ).tag(sync=True)
    row_keys = traitlets.List(
        traitlets.Unicode(), help="Keys sent to Python when pressed on a row."
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._activate_callbacks: list[RowCallback] = []
        self._key_callbacks: list[KeyCallback] = []

    def on_activate(self, callback: RowCallback) -> None:
        """Register ``callback(row_id)`` for a double-clicked row or Enter."""
        self._activate_callbacks.append(callback)

    def on_key(self, callback: KeyCallback) -> None:
        """Register ``callback(key, row_id)`` for a key of ``row_keys`` on a row."""
        self._key_callbacks.append(callback)

    def scroll_to_selected(self) -> None:
        """Scroll the list so that the selected row is visible."""
        self.send({"event": "scroll_to"})

    def focus_list(self) -> None:
        """Give the list the keyboard focus."""
        self.send({"event": "focus"})

    def row_ids(self) -> list[int]:
        """Return the ids of the rows in their order."""
        return [int(row["id"]) for row in self.rows]

    def _handle_custom_msg(self, content: Any, buffers: list[bytes]) -> None:
        event = content.get("event") if isinstance(content, dict) else None
        row_id = content.get("id") if isinstance(content, dict) else None
        if not isinstance(row_id, int):
            log.warning("row list ignored a message without a row id: %r", content)
        elif event == "activate":
            for callback in list(self._activate_callbacks):
                callback(row_id)
        elif event == "key":
            key = str(content.get("key", ""))
            for key_callback in list(self._key_callbacks):
                key_callback(key, row_id)
        else:
            log.warning("row list ignored a message of unknown kind: %r", content)
        super()._handle_custom_msg(content, buffers)
