"""The editor of the selected line: its text, verified mark and line actions.

The text box sends every change to Python (``continuous_update``), and the editor
saves it once typing pauses for ``save_delay`` seconds, at once on Enter, and
before any other action. So a paste is stored even when no Enter or blur
follows, and the stored text matches the shown text within ``save_delay``.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ocrkit.models import Line
from ocrkit.widgets.feedback import Feedback

log = logging.getLogger(__name__)

SaveText = Callable[[int, str], "Line | None"]
LineAction = Callable[[int], object]
Action = Callable[[], object]

DEFAULT_SAVE_DELAY = 0.5


class LineEditor:
    """Text box and buttons acting on one line.

    Args:
        feedback: where errors of callbacks go.
        lock: the workbench's lock; saves from the timer thread take it, so they
            never interleave with other actions.
        save_text: stores a line's text and returns the stored line (None if it
            failed).
        save_delay: seconds of no typing before the text is saved; 0 saves on every
            change.
    """

    def __init__(
        self,
        feedback: Feedback,
        lock: threading.RLock,
        *,
        save_text: SaveText,
        on_verified: Callable[[int, bool], object],
        on_read_again: LineAction,
        on_delete: LineAction,
        on_undo: Action,
        on_redo: Action,
        save_delay: float = DEFAULT_SAVE_DELAY,
    ) -> None:
        self.feedback = feedback
        self.lock = lock
        self.save_text = save_text
        self.save_delay = save_delay
        self.line: Line | None = None
        self._pending: tuple[int, str] | None = None
        self._timer: threading.Timer | None = None
        self._loading = False
        guard = feedback.guard

        self.title = widgets.HTML()
        self.title.add_class("okw-editor-title")
        self.text = widgets.Text(
            placeholder="Select a line on the page or in the list",
            continuous_update=True,
            disabled=True,
            layout=widgets.Layout(width="100%"),
        )
        self.text.add_class("okw-editor-text")
        self.text.observe(guard("Saving the text")(self._on_text), "value")
        self.text.on_msg(guard("Saving the text")(self._on_text_msg))
        self.status = widgets.HTML()
        self.status.add_class("okw-save-status")

        def button(description: str, icon: str, tooltip: str) -> widgets.Button:
            made = widgets.Button(
                description=description,
                icon=icon,
                tooltip=tooltip,
                layout=widgets.Layout(width="auto", flex="1 1 auto"),
            )
            made.add_class("okw-action")
            return made

        self.verified = widgets.ToggleButton(
            description="Verified",
            icon="check",
            tooltip="Mark the line as checked (key v in the list)",
            disabled=True,
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        self.verified.add_class("okw-verified")
        self.verified.observe(guard("Marking the line")(self._on_verified), "value")
        self._on_verified_cb = on_verified
        self.read_again = button(
            "Read again", "eye", "Read the box again with the engine (key r)"
        )
        self.read_again.on_click(
            guard("Reading the box")(lambda _: self._with_line(on_read_again))
        )
        self.delete = button("Delete", "trash", "Delete the line (key Delete)")
        self.delete.add_class("okw-danger")
        self.delete.on_click(
            guard("Deleting the line")(lambda _: self._with_line(on_delete))
        )
        self.undo = button("Undo", "undo", "Undo the last change of this document")
        self.undo.on_click(guard("Undoing")(lambda _: self._then(on_undo)))
        self.redo = button("Redo", "repeat", "Redo the change undone last")
        self.redo.on_click(guard("Redoing")(lambda _: self._then(on_redo)))
        self.widget = widgets.VBox(
            [
                self.title,
                self.text,
                self.status,
                widgets.HBox([self.verified, self.read_again, self.delete]),
                widgets.HBox([self.undo, self.redo]),
            ]
        )
        self.widget.add_class("okw-editor")
        self.set_line(None)

    # -- showing a line ------------------------------------------------------------

    def set_line(self, line: Line | None) -> None:
        """Show a line (or none); a pending change of the previous one is saved."""
        self.flush()
        self.line = line
        self._loading = True
        try:
            if line is None:
                self.title.value = '<span class="okw-muted">No line selected</span>'
                self.text.value = ""
                self.text.disabled = True
                self.verified.value = False
                self.verified.disabled = True
                self.status.value = ""
            else:
                self.title.value = line_title(line)
                self.text.value = line.text
                self.text.disabled = False
                self.verified.value = line.verified
                self.verified.disabled = False
                self.status.value = ""
        finally:
            self._loading = False
        for control in (self.read_again, self.delete):
            control.disabled = line is None

    def refresh(self, line: Line) -> None:
        """Show the stored state of the line being edited, keeping unsaved typing."""
        if self.line is None or line.id != self.line.id:
            return
        self.line = line
        self._loading = True
        try:
            self.title.value = line_title(line)
            self.verified.value = line.verified
            if self._pending is None and self.text.value != line.text:
                self.text.value = line.text
        finally:
            self._loading = False

    def focus(self) -> None:
        """Put the keyboard focus in the text box."""
        self.text.focus()

    # -- saving --------------------------------------------------------------------

    def _on_text(self, change: dict[str, Any]) -> None:
        if self._loading or self.line is None:
            return
        with self.lock:
            self._pending = (self.line.id, str(change["new"]))
            self.status.value = '<span class="okw-muted">Saving…</span>'
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.save_delay <= 0:
                self.flush()
                return
            self._timer = threading.Timer(self.save_delay, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # a timer thread has no caller to raise to
            self.feedback.report(exc, "Saving the text")

    def _on_text_msg(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self.flush()

    def flush(self) -> None:
        """Save the pending text change now, if there is one."""
        with self.lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pending, self._pending = self._pending, None
            if pending is None:
                return
            line_id, text = pending
            saved = self.save_text(line_id, text)
            if saved is not None and self.line is not None and saved.id == self.line.id:
                self.line = saved
                self.title.value = line_title(saved)
                self.status.value = (
                    f'<span class="okw-saved">Saved {time.strftime("%H:%M:%S")}</span>'
                )
            elif saved is None:
                self.status.value = '<span class="okw-bad">Not saved</span>'

    def has_pending(self) -> bool:
        """Return whether typed text waits to be saved."""
        with self.lock:
            return self._pending is not None

    # -- actions -------------------------------------------------------------------

    def _on_verified(self, change: dict[str, Any]) -> None:
        if self._loading or self.line is None:
            return
        self.flush()
        self._on_verified_cb(self.line.id, bool(change["new"]))

    def _with_line(self, action: LineAction) -> None:
        self.flush()
        if self.line is None:
            self.feedback.show("Select a line first.", "info")
            return
        action(self.line.id)

    def _then(self, action: Action) -> None:
        self.flush()
        action()

    def close(self) -> None:
        """Save what is pending and stop the timer."""
        self.flush()


def line_title(line: Line) -> str:
    """Return the editor's heading for a line: number, page, confidence, origin."""
    state = "verified" if line.verified else str(line.origin)
    return (
        f"<b>Line {line.order + 1}</b> of page {line.page_index + 1}"
        f'<span class="okw-muted"> · confidence {line.confidence:.2f} · '
        f"{html.escape(state)}</span>"
    )
