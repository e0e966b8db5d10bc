"""The workbench: upload documents, see their lines on the page, correct, export.

``Workbench`` is one ipywidgets box that runs the same in JupyterLab and as a
Voila dashboard::

    from ocrkit.widgets.workbench import Workbench, default_storage
    from ocrkit import open_store

    Workbench(store=open_store(default_storage()))

Left: upload, the document list, search and export. Middle: the page with every
line's box (``PageView``). Right: the line list and the editor of the selected
line. The page and the list stay in step: selecting, editing, moving, drawing or
deleting a line in one shows in the other, and every change is stored at once
with ``expected_version``, so edits from another session are detected.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from ocrkit.config import Settings, load_settings
from ocrkit.errors import EditConflictError, NotFoundError
from ocrkit.models import BBox, Document, Line, Page, PageStatus
from ocrkit.reading import cached_engine
from ocrkit.store import Store, open_store
from ocrkit.widgets.documents import DocumentsPanel
from ocrkit.widgets.export_panel import ExportPanel
from ocrkit.widgets.feedback import Feedback
from ocrkit.widgets.line_editor import DEFAULT_SAVE_DELAY, LineEditor
from ocrkit.widgets.line_list import SCOPE_DOCUMENT, LineList
from ocrkit.widgets.page_images import PageImages
from ocrkit.widgets.page_view import PageView, lines_to_dicts
from ocrkit.widgets.search_panel import SearchPanel

log = logging.getLogger(__name__)

STYLE = Path(__file__).with_name("workbench.css")
PAGE_VIEW_HEIGHT = "calc(100vh - 178px)"
# Shown in place of a page whose image cannot be loaded: a light grey A4 sheet.
BLANK_PAGE = np.full((297, 210, 3), 240, dtype=np.uint8)


def default_storage() -> Path:
    """Return the store folder the workbench opens.

    This is ``OCRKIT_STORAGE`` when it is set, as the serve commands do. Otherwise
    it is the ``storage`` folder of the project that contains the working
    directory, so a kernel started in ``notebooks/`` opens the same store as the
    command line run from the project folder. Failing both, it is ``./storage``.
    """
    configured = os.environ.get("OCRKIT_STORAGE")
    if configured:
        return Path(configured)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "storage").is_dir() and (folder / "notebooks").is_dir():
            return folder / "storage"
    return load_settings().storage


class Workbench(widgets.VBox):
    """The whole workbench as one widget.

    Args:
        store: the store to work on; by default the one ``default_storage`` finds.
        settings: upload limit and default dpi; by default from the environment.
        read_in_subprocess: read pages in a worker process (the default), or in a
            thread of this process, for engines registered only here.
        save_delay: seconds of no typing before typed text is saved.
        page_view_factory: builds the page canvas (a ``PageView`` by default).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        settings: Settings | None = None,
        read_in_subprocess: bool = True,
        save_delay: float = DEFAULT_SAVE_DELAY,
        page_view_factory: Callable[..., PageView] = PageView,
    ) -> None:
        self.store = store if store is not None else open_store(default_storage())
        self.settings = settings or load_settings()
        self.feedback = Feedback()
        self.lock = threading.RLock()
        self.images = PageImages(self.store)
        self.document: Document | None = None
        self.pages: list[Page] = []
        self.page_index = 0
        self.page_lines: list[Line] = []
        self.lines_by_id: dict[int, Line] = {}
        self.selected: int | None = None
        self._quiet = False
        guard = self.feedback.guard

        self.documents = DocumentsPanel(
            self.store,
            self.feedback,
            self.settings,
            on_open=guard("Opening the document")(self._on_open),
            on_page_read=guard("Showing the page read")(self._on_page_read),
            in_subprocess=read_in_subprocess,
        )
        self.search = SearchPanel(
            self.store, self.feedback, on_jump=guard("Opening the line")(self.jump_to)
        )
        self.export = ExportPanel(
            self.store,
            self.feedback,
            current_document=lambda: self.document.id if self.document else None,
            before_export=self.flush,
        )
        self.line_list = LineList(
            self.feedback,
            on_pick=lambda line_id: self.select_line(line_id, scroll=True),
            on_key=self._on_row_key,
            on_scope=lambda _: self._refresh_list(),
            on_activate=lambda _: self.editor.focus(),
        )
        self.editor = LineEditor(
            self.feedback,
            self.lock,
            save_text=lambda line_id, text: self._edit(line_id, text=text),
            on_verified=self.set_verified,
            on_read_again=self.read_again,
            on_delete=self.delete_line,
            on_undo=self.undo,
            on_redo=self.redo,
            save_delay=save_delay,
        )
        self.page_view = page_view_factory(height=PAGE_VIEW_HEIGHT)
        self.page_view.add_class("okw-page-view")
        self.page_view.observe(
            guard("Selecting the line")(self._on_view_selected), "selected"
        )
        self.page_view.on_box_changed(guard("Moving the box")(self.move_box))
        self.page_view.on_box_added(guard("Adding the line")(self.add_box))
        self.page_view.on_box_deleted(guard("Deleting the line")(self._on_box_deleted))
        self._build_page_bar()
        super().__init__(children=self._layout())
        self.add_class("okw-workbench")
        log.info("workbench opened the store %s", self.store.root)
        documents = self.store.documents()
        if documents:
            self.documents.select(documents[-1].id)
        else:
            self._show_empty()

    # -- layout --------------------------------------------------------------------

    def _build_page_bar(self) -> None:
        guard = self.feedback.guard
        self.title = widgets.HTML()
        self.title.add_class("okw-doc-title")

        self.prev_button = widgets.Button(
            icon="chevron-left",
            tooltip="Previous page",
            layout=widgets.Layout(width="36px"),
        )
        self.prev_button.on_click(
            guard("Turning the page")(lambda _: self.step_page(-1))
        )
        self.next_button = widgets.Button(
            icon="chevron-right",
            tooltip="Next page",
            layout=widgets.Layout(width="36px"),
        )
        self.next_button.on_click(
            guard("Turning the page")(lambda _: self.step_page(1))
        )
        self.prev_button.add_class("okw-prev")
        self.next_button.add_class("okw-next")

        self.page_number = widgets.BoundedIntText(
            value=1, min=1, max=1, layout=widgets.Layout(width="64px")
        )
        self.page_number.add_class("okw-page-number")
        self.page_number.observe(
            guard("Turning the page")(self._on_page_number), "value"
        )
        self.page_count = widgets.HTML()
        self.page_info = widgets.HTML()
        self.page_info.add_class("okw-page-info")

        self.empty = widgets.HTML(
            '<div class="okw-empty-page"><div class="okw-empty-title">No document open'
            "</div><div>Add PDFs or images with the button on the left. Their pages "
            "are read in the background; open a document from the list to see its "
            "lines on the page.</div></div>",
            layout=widgets.Layout(display="none"),
        )

    def _layout(self) -> list[widgets.Widget]:
        style = widgets.HTML(f"<style>{STYLE.read_text(encoding='utf-8')}</style>")
        style.add_class("okw-style")
        header = widgets.HBox(
            [
                widgets.HTML(
                    '<div class="okw-brand">ocrkit <span>workbench</span></div>'
                ),
                self.feedback.message,
                self.export.widget,
            ]
        )
        header.add_class("okw-header")

        left = widgets.VBox(
            [
                _section("Documents", self.documents.widget),
                _section("Search", self.search.widget),
            ]
        )
        left.add_class("okw-left")

        page_bar = widgets.HBox(
            [
                self.title,
                widgets.HBox(
                    [
                        self.prev_button,
                        self.page_number,
                        self.page_count,
                        self.next_button,
                    ]
                ),
            ]
        )
        page_bar.add_class("okw-page-bar")

        middle = widgets.VBox([page_bar, self.page_info, self.empty, self.page_view])
        middle.add_class("okw-middle")

        right = widgets.VBox(
            [
                _section("Lines", self.line_list.widget),
                _section("Selected line", self.editor.widget),
            ]
        )
        right.add_class("okw-right")

        body = widgets.HBox([left, middle, right])
        body.add_class("okw-body")
        return [style, header, body, self.feedback.log_panel]

    def _show_empty(self) -> None:
        self.empty.layout.display = "block"
        self.page_view.layout.display = "none"
        self.title.value = '<span class="okw-muted">No document</span>'
        self.page_count.value = ""
        self.page_info.value = ""
        for control in (self.prev_button, self.next_button, self.page_number):
            control.disabled = True
        self.line_list.set_lines([])
        self.editor.set_line(None)

    # -- documents and pages ------------------------------------------------------

    def _on_open(self, document_id: str) -> None:
        if self.document is not None and self.document.id == document_id:
            return
        self.open_document(document_id)

    def open_document(
        self, document_id: str, page_index: int = 0, *, select: int | None = None
    ) -> None:
        """Show a page of a document, selecting line ``select`` if given."""
        with self.lock:
            self.editor.flush()
            self.document = self.store.document(document_id)
            self.documents.select(document_id)
            self.empty.layout.display = "none"
            self.page_view.layout.display = ""
            self.show_page(page_index, select=select)

    def show_page(self, page_index: int, *, select: int | None = None) -> None:
        """Show a page of the open document with its lines."""
        with self.lock:
            if self.document is None:
                return
            self.editor.flush()
            self.pages = self.store.pages(self.document.id)
            if not self.pages:
                return
            page_index = min(max(0, page_index), len(self.pages) - 1)
            self.page_index = page_index
            page = self.pages[page_index]
            lines = self.store.lines(self.document.id, page_index)
            self.page_lines = lines
            self.lines_by_id = {line.id: line for line in lines}
            if select not in self.lines_by_id:
                select = None
            self.selected = select
            try:
                preview = self.images.preview(page)
            except Exception as exc:
                self.feedback.report(exc, f"Showing page {page.number}")
                preview = None
            with self._quietly(), self.page_view.hold_sync():
                if preview is not None:
                    self.page_view.set_image(
                        preview.jpeg, width=preview.width, height=preview.height
                    )
                else:
                    # A blank sheet, so that the page before is not left on show.
                    self.page_view.set_image_array(
                        BLANK_PAGE,
                        image_format="png",
                        width=page.width_px or None,
                        height=page.height_px or None,
                    )
                self.page_view.lines = lines_to_dicts(lines)
                self.page_view.selected = -1 if select is None else select
            self._update_page_bar()
            self._refresh_list()
            self.editor.set_line(self.lines_by_id.get(select) if select else None)
            if select is not None:
                self.page_view.scroll_to(select)
            neighbours = [
                i for i in (page_index + 1, page_index - 1) if 0 <= i < len(self.pages)
            ]
            self.images.prefetch(self.pages[i] for i in neighbours)

    def step_page(self, step: int) -> None:
        """Turn ``step`` pages forward (or back, when negative)."""
        self.show_page(self.page_index + step)

    def _on_page_number(self, change: dict[str, Any]) -> None:
        if self._quiet or self.document is None:
            return
        index = int(change["new"]) - 1
        if index != self.page_index:
            self.show_page(index)

    def _update_page_bar(self) -> None:
        assert self.document is not None
        page = self.pages[self.page_index]
        count = len(self.pages)
        with self._quietly():
            self.page_number.max = count
            self.page_number.value = page.number
        self.page_number.disabled = count <= 1
        self.prev_button.disabled = self.page_index <= 0
        self.next_button.disabled = self.page_index >= count - 1
        self.page_count.value = f'<span class="okw-of">of {count}</span>'
        self.title.value = (
            f'<span class="okw-doc-name" title="{html.escape(self.document.filename)}">'
            f"{html.escape(self.document.filename)}</span>"
        )
        self.page_info.value = page_summary(page, len(self.page_lines))

    def _on_page_read(self, document_id: str, page: Page) -> None:
        """Show a page the background reader finished, if it is on screen."""
        with self.lock:
            if self.document is None:
                self.open_document(document_id)
                return
            if self.document.id != document_id:
                return
            if page.index == self.page_index:
                self.show_page(self.page_index, select=self.selected)
            else:
                self.pages = self.store.pages(document_id)
                if self.line_list.scope.value == SCOPE_DOCUMENT:
                    self._refresh_list()

    # -- selection ---------------------------------------------------------------------

    def select_line(self, line_id: int, *, scroll: bool = False) -> None:
        """Select a line on the page and in the list, turning to its page if needed."""
        with self.lock:
            self.editor.flush()
            line = self.lines_by_id.get(line_id)
            if line is None:
                try:
                    line = self.store.line(line_id)
                except NotFoundError:
                    self.feedback.show("That line no longer exists.", "warning")
                    self.reload()
                    return
                if self.document is None or line.document_id != self.document.id:
                    self.open_document(
                        line.document_id, line.page_index, select=line_id
                    )
                    return
                if line.page_index != self.page_index:
                    self.show_page(line.page_index, select=line_id)
                    return
            self.selected = line_id
            with self._quietly():
                self.page_view.selected = line_id
            self.line_list.select(line_id)
            self.editor.set_line(line)
            if scroll:
                self.page_view.scroll_to(line_id)

    def jump_to(self, line: Line) -> None:
        """Open a line's document and page, select it and scroll to its box."""
        if self.document is None or self.document.id != line.document_id:
            self.open_document(line.document_id, line.page_index, select=line.id)
        elif line.page_index != self.page_index:
            self.show_page(line.page_index, select=line.id)
        else:
            self.select_line(line.id, scroll=True)

    def _on_view_selected(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        line_id = int(change["new"])
        if line_id < 0:
            with self.lock:
                self.editor.flush()
                self.selected = None
                self.line_list.select(None)
                self.editor.set_line(None)
            return
        self.select_line(line_id)

    def _on_row_key(self, key: str, line_id: int) -> None:
        if line_id != self.selected:
            self.select_line(line_id)
        if key == "v":
            line = self.lines_by_id.get(line_id)
            if line is not None:
                self.set_verified(line_id, not line.verified)
        elif key == "r":
            self.read_again(line_id)
        elif key == "Delete":
            self.delete_line(line_id)

    # -- edits -----------------------------------------------------------------------

    def flush(self) -> None:
        """Save text still being typed."""
        self.editor.flush()

    def _edit(self, line_id: int, **changes: Any) -> Line | None:
        """Store a change of a line shown; None when another session got there first."""
        with self.lock:
            shown = self.lines_by_id.get(line_id)
            version = shown.version if shown is not None else None
            try:
                line = self.store.edit_line(
                    line_id, expected_version=version, **changes
                )
            except EditConflictError as exc:
                number = shown.order + 1 if shown is not None else line_id
                self.feedback.show(
                    f"Line {number} was changed in another session (version "
                    f"{exc.current_version}, this page showed {exc.expected_version}). "
                    "The page now shows the stored lines: make your change again.",
                    "warning",
                )
                log.warning("edit of line %d rejected: %s", line_id, exc)
                self.reload()
                return None
            except NotFoundError:
                self.feedback.show(
                    "That line no longer exists; the page was reloaded.", "warning"
                )
                self.reload()
                return None
            if "bbox" in changes:
                # A moved box can change the reading order of the whole page.
                self.show_page(self.page_index, select=line_id)
            else:
                self._line_changed(line)
            return line

    def _line_changed(self, line: Line) -> None:
        if line.id in self.lines_by_id:
            self.lines_by_id[line.id] = line
            self.page_lines = [
                line if old.id == line.id else old for old in self.page_lines
            ]
            with self._quietly():
                self.page_view.lines = lines_to_dicts(self.page_lines)
        self.line_list.update_line(line)
        self.editor.refresh(line)

    def set_verified(self, line_id: int, verified: bool) -> None:
        """Mark a line verified or not."""
        with self.lock:
            self.editor.flush()
            self._edit(line_id, verified=verified)

    def read_again(self, line_id: int) -> None:
        """Read the selected line's box again with the engine, and store the text."""
        with self.lock:
            self.editor.flush()
            line = self.lines_by_id.get(line_id)
            if line is None:
                return
            text, confidence = self._read_box(line.bbox)
            saved = self._edit(line_id, text=text, confidence=confidence)
            if saved is None:
                return
            if text:
                self.feedback.show(
                    f"Line {saved.order + 1} read again: “{text}” (confidence "
                    f"{confidence:.2f}).",
                    "success",
                )
            else:
                self.feedback.show(
                    "The engine found no text in the box; its text is now empty.",
                    "warning",
                )
            self.editor.set_line(saved)

    def move_box(self, line_id: int, bbox: Sequence[float]) -> None:
        """Store a box the user moved or resized on the page."""
        with self.lock:
            self.editor.flush()
            box: BBox = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
            line = self._edit(line_id, bbox=box)
            if line is not None:
                self.feedback.show(
                    f"Box of line {line.order + 1} moved. “Read again” reads its text "
                    "from the new box.",
                    "info",
                )

    def add_box(self, bbox: Sequence[float]) -> None:
        """Add a line for a box drawn on the page, with the text the engine reads."""
        with self.lock:
            self.editor.flush()
            if self.document is None:
                return
            box: BBox = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
            problem = ""
            try:
                text, confidence = self._read_box(box)
            except Exception as exc:  # the line is still added, to be typed in
                log.warning("reading the new box %s failed", box, exc_info=exc)
                problem = f" Reading it failed ({exc}):"
                text, confidence = "", 0.0
            line = self.store.add_line(
                self.document.id, self.page_index, box, text, confidence=confidence
            )
            self.show_page(self.page_index, select=line.id)
            self.page_view.mode = "select"
            if text:
                self.feedback.show(
                    f"Added line {line.order + 1}: “{text}”. Check its text.", "success"
                )
            else:
                problem = problem or " The engine read no text:"
                self.feedback.show(
                    f"Added line {line.order + 1}.{problem} type its text.", "warning"
                )
            self.editor.focus()

    def _read_box(self, bbox: BBox) -> tuple[str, float]:
        page = self.pages[self.page_index]
        crop = self.images.crop(page, bbox)
        # TODO: this loads a second copy of the engine's models in the kernel, beside
        # the reading worker's; sending crops to the worker would save that memory
        # but make a box wait for the page being read.
        engine = cached_engine(str(self.documents.engine.value))
        text, confidence = engine.recognize_region(crop)
        return text.strip(), float(confidence)

    def delete_line(self, line_id: int) -> None:
        """Delete a line; Undo brings it back."""
        with self.lock:
            self.editor.flush()
            shown = self.lines_by_id.get(line_id)
            try:
                self.store.delete_line(
                    line_id, expected_version=shown.version if shown else None
                )
            except EditConflictError as exc:
                self.feedback.show(
                    f"The line was changed in another session ({exc}). The page now "
                    "shows the stored lines.",
                    "warning",
                )
                self.reload()
                return
            self.show_page(self.page_index)
            number = shown.order + 1 if shown else line_id
            self.feedback.show(f"Deleted line {number}. Undo brings it back.", "info")

    def _on_box_deleted(self, line_id: int) -> None:
        self.delete_line(line_id)

    def undo(self) -> None:
        """Undo the latest change of the open document."""
        self._step(self.store.undo, "Undid", "Nothing to undo in this document.")

    def redo(self) -> None:
        """Redo the change undone last in the open document."""
        self._step(self.store.redo, "Redid", "Nothing to redo in this document.")

    def _step(
        self,
        action: Callable[[str], dict[str, Any] | None],
        verb: str,
        nothing: str,
    ) -> None:
        with self.lock:
            self.editor.flush()
            if self.document is None:
                return
            edit = action(self.document.id)
            if edit is None:
                self.feedback.show(nothing, "info")
                return
            line_id = int(edit["line_id"])
            visible = not self.store.is_deleted(line_id)
            self.show_page(int(edit["page_index"]), select=line_id if visible else None)
            if visible:
                self.page_view.scroll_to(line_id)
            self.feedback.show(
                f"{verb} {describe_edit(edit)} on page {int(edit['page_index']) + 1}.",
                "info",
            )

    def reload(self) -> None:
        """Show the stored state of the open page again."""
        with self.lock:
            if self.document is not None:
                self.show_page(self.page_index, select=self.selected)

    # -- helpers -----------------------------------------------------------------------

    def _refresh_list(self) -> None:
        if self.document is not None and self.line_list.scope.value == SCOPE_DOCUMENT:
            lines = self.store.lines(self.document.id)
            for line in lines:
                if line.page_index == self.page_index:
                    self.lines_by_id[line.id] = line
            self.line_list.set_lines(lines, selected=self.selected or -1)
        else:
            self.line_list.set_lines(self.page_lines, selected=self.selected or -1)

    def _quietly(self) -> _Quiet:
        return _Quiet(self)

    def close(self) -> None:
        """Save pending text, stop background work and close the widgets."""
        self.editor.close()
        self.documents.close()
        self.images.close()
        self.feedback.close()
        super().close()


class _Quiet:
    """Within it, selection and page number changes made by code are not acted on."""

    def __init__(self, owner: Workbench) -> None:
        self.owner = owner
        self.before = False

    def __enter__(self) -> None:
        self.before = self.owner._quiet
        self.owner._quiet = True

    def __exit__(self, *exc: object) -> None:
        self.owner._quiet = self.before


def _section(title: str, body: widgets.Widget) -> widgets.VBox:
    heading = widgets.HTML(f'<div class="okw-section-title">{html.escape(title)}</div>')
    box = widgets.VBox([heading, body])
    box.add_class("okw-section")
    return box


def page_summary(page: Page, line_count: int) -> str:
    """Return the line under the page bar: status, engine, dpi and line count."""
    parts: list[str]
    if page.status == PageStatus.pending:
        parts = ["not read yet"]
    elif page.status == PageStatus.failed:
        parts = [f'<span class="okw-bad">failed: {html.escape(page.error)}</span>']
    else:
        parts = [f"{line_count} lines" if page.status == PageStatus.done else "no text"]
        if page.engine:
            parts.append(html.escape(page.engine))
        if page.dpi:
            parts.append(f"{page.dpi:.0f} dpi")
        if page.rotation:
            parts.append(f"turned {page.rotation}°")
    return f'<span class="okw-muted">{" · ".join(parts)}</span>'


def describe_edit(edit: dict[str, Any]) -> str:
    """Return a few words for an edit of the store's edit log."""
    action = edit.get("action")
    new = edit.get("new") or {}
    if action == "add":
        return "adding a line"
    if action == "delete":
        return "deleting a line"
    if action == "verify":
        return "a verified mark"
    changed = []
    if "text" in new:
        changed.append("text")
    if "x0" in new or "y0" in new:
        changed.append("box")
    if "verified" in new:
        changed.append("verified mark")
    return "the " + " and ".join(changed or ["change"]) + " of a line"
