"""The editor of the selected line: its text, verified mark and line actions.

The text box sends every change to Python (``continuous_update``), and the editor
saves it once typing pauses for ``save_delay`` seconds, at once on Enter, and
before any other action. So a paste is stored even when no Enter or blur
follows, and the stored text matches the shown text within ``save_delay``.
"""

from __future__ import annotations

import functools
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
        self.text = self._text_field(None, "")
        self._previous_text: widgets.Text | None = None
        self.text_slot = widgets.Box([self.text], layout=widgets.Layout(width="100%"))
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
                self.text_slot,
                self.status,
                widgets.HBox([self.verified, self.read_again, self.delete]),
                widgets.HBox([self.undo, self.redo]),
            ]
        )
        self.widget.add_class("okw-editor")
        self.set_line(None)

    # -- showing a line ------------------------------------------------------------

    def _text_field(self, line_id: int | None, text: str) -> widgets.Text:
        """Return a text box whose changes are saved to line ``line_id`` only.

        Each line gets its own text box. The browser sends typed text with some
        delay, and keystrokes that arrive after another line was selected must
        still go to the line they were typed into, never to the line now shown.
        """
        guard = self.feedback.guard
        field = widgets.Text(
            value=text,
            placeholder=(
                "Type the line's text"
                if line_id is not None
                else "Select a line on the page or in the list"
            ),
            continuous_update=True,
            disabled=line_id is None,
            layout=widgets.Layout(width="100%"),
        )
        field.add_class("okw-editor-text")
        field.observe(
            guard("Saving the text")(functools.partial(self._on_text, line_id)),
            "value",
        )
        field.on_msg(guard("Saving the text")(self._on_text_msg))
        return field

    def set_line(self, line: Line | None) -> None:
        """Show a line (or none); a pending change of the previous one is saved."""
        self.flush()
        self.line = line
        self._loading = True
        try:
            # The box before the last is closed; the last stays open a while to
            # take keystrokes still on their way from the browser.
            if self._previous_text is not None:
                self._previous_text.close()
            self._previous_text = self.text
            self.text = self._text_field(
                line.id if line else None, line.text if line else ""
            )
            self.text_slot.children = (self.text,)
            if line is None:
                self.title.value = '<span class="okw-muted">No line selected</span>'
                self.verified.value = False
                self.verified.disabled = True
                self.status.value = ""
            else:
                self.title.value = line_title(line)
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

    def _on_text(self, line_id: int | None, change: dict[str, Any]) -> None:
        if self._loading or line_id is None:
            return
        with self.lock:
            if self._pending is not None and self._pending[0] != line_id:
                self.flush()
            self._pending = (line_id, str(change["new"]))
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
