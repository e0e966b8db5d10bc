"""The document side of the workbench: upload, password prompt, list and reading.

Uploaded files go into the store at once; their pages are read in the background
by a ``Reader`` while the list shows each document's progress.
"""

from __future__ import annotations

import hashlib
import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ocrkit.config import Settings
from ocrkit.engines import engine_names
from ocrkit.errors import EncryptedPdfError, InputFileError, OcrkitError
from ocrkit.models import Document, Page, PageStatus
from ocrkit.reading import ReadProgress, ReadReport
from ocrkit.store import Store
from ocrkit.widgets.feedback import Feedback, Kind
from ocrkit.widgets.reader import ReadCancelled, Reader, ReadJob, ReadState
from ocrkit.widgets.row_list import RowList, column
from ocrkit.widgets.upload_guard import UploadGuard

log = logging.getLogger(__name__)

ACCEPT = ".pdf,.png,.jpg,.jpeg,.tif,.tiff"
MIB = 1024 * 1024
DPI_CHOICES = (150, 200, 300, 400)
# An upload reported by the browser that has not arrived after this many seconds,
# plus one second per MB, is reported as lost.
ARRIVAL_GRACE_S = 20.0
ARRIVAL_S_PER_MB = 1.0

OpenCallback = Callable[[str], object]
PageReadCallback = Callable[[str, Page], object]


@dataclass
class _Locked:
    """An encrypted PDF waiting for its password."""

    name: str
    data: bytes


def default_engine(names: Sequence[str]) -> str:
    """Return the engine the workbench starts with: ``auto`` when it exists."""
    if "auto" in names:
        return "auto"
    if "onnx" in names:
        return "onnx"
    return names[0] if names else "onnx"


def plural(count: int, noun: str) -> str:
    """Return ``count`` with ``noun``, adding an s unless the count is one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def mb(size: int) -> str:
    """Return a byte count as MB with one decimal, as people read file sizes."""
    return f"{size / MIB:.1f} MB"


class DocumentsPanel:
    """Upload, engine and dpi choice, the password prompt and the document list.

    Args:
        store: the store files are added to.
        feedback: where messages go.
        settings: the upload limit and default dpi.
        on_open: called with a document id when the user selects a document.
        on_page_read: called from the reading thread with each page read.
        in_subprocess: read pages in a worker process (see ``Reader``).
    """

    def __init__(
        self,
        store: Store,
        feedback: Feedback,
        settings: Settings,
        *,
        on_open: OpenCallback,
        on_page_read: PageReadCallback,
        in_subprocess: bool = True,
    ) -> None:
        self.store = store
        self.feedback = feedback
        self.settings = settings
        self.on_open = on_open
        self.on_page_read = on_page_read
        self.limit_bytes = settings.upload_limit_mb * MIB
        self._locked: list[_Locked] = []
        # Files the browser held back as too large, repeated in the next summary.
        self._rejected: list[tuple[Kind, str]] = []
        self._expected: dict[str, tuple[int, float]] = {}
        self._arrival_timer: threading.Timer | None = None
        self._lock = threading.RLock()
        # Rows need int ids; each document keeps the one it got first.
        self._row_ids: dict[str, int] = {}
        self.reader = Reader(
            store,
            in_subprocess=in_subprocess,
            on_progress=self._on_progress,
            on_finished=self._on_finished,
        )
        self._build()
        self.refresh()

    # -- widgets ------------------------------------------------------------------

    def _build(self) -> None:
        guard = self.feedback.guard
        self.upload = widgets.FileUpload(
            accept=ACCEPT,
            multiple=True,
            description="Add PDFs or images",
            icon="upload",
            button_style="primary",
            tooltip=f"PDF, PNG, JPEG or TIFF, up to {self.settings.upload_limit_mb} MB "
            "each; several at once",
            layout=widgets.Layout(width="100%"),
        )
        self.upload.add_class("okw-upload")
        self.upload.observe(
            guard("Adding the uploaded files")(self._on_upload), "value"
        )
        self.guard = UploadGuard(upload=self.upload, limit_bytes=self.limit_bytes)
        self.guard.on_selected(guard("Checking the chosen files")(self._on_selected))
        self.limit_note = widgets.HTML(
            f'<span class="okw-hint">Up to {self.settings.upload_limit_mb} MB per '
            "file. Pages are read right after upload.</span>"
        )

        names = engine_names()
        self.engine = widgets.Dropdown(
            options=names,
            value=default_engine(names),
            description="Engine",
            tooltip="auto uses a PDF's text layer where it is good and OCR elsewhere",
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
            style={"description_width": "52px"},
        )
        dpi = int(self.settings.dpi)
        choices = sorted({*DPI_CHOICES, dpi})
        self.dpi = widgets.Dropdown(
            options=[(f"{value} dpi", value) for value in choices],
            value=dpi,
            description="Render",
            tooltip="Resolution PDF pages are rendered at for OCR",
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
            style={"description_width": "52px"},
        )
        self.auto_read = widgets.Checkbox(
            value=True, description="Read after upload", indent=False
        )

        self.password_note = widgets.HTML()
        self.password = widgets.Password(
            placeholder="Password",
            layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="0"),
        )
        self.password.on_msg(guard("Unlocking the PDF")(self._on_password_msg))
        self.unlock = widgets.Button(
            description="Unlock",
            button_style="primary",
            icon="unlock",
            layout=widgets.Layout(width="auto", flex="0 0 auto"),
        )
        self.unlock.on_click(guard("Unlocking the PDF")(lambda _: self.try_password()))
        self.skip = widgets.Button(
            description="Skip",
            tooltip="Do not add this file",
            layout=widgets.Layout(width="auto", flex="0 0 auto"),
        )
        self.skip.on_click(guard("Skipping the PDF")(lambda _: self.skip_locked()))
        self.password_box = widgets.VBox(
            [
                self.password_note,
                widgets.HBox([self.password, self.unlock, self.skip]),
            ],
            layout=widgets.Layout(display="none"),
        )
        self.password_box.add_class("okw-password")

        self.table = RowList(
            columns=[
                column("name", "Document"),
                column("pages", "Pages", "number", "46px"),
                column("status", "Status", "progress", "100px"),
            ],
            height="150px",
            empty_text="No documents yet: add a PDF or an image above.",
        )
        self.table.observe(guard("Opening the document")(self._on_select), "selected")

        self.read_button = widgets.Button(
            description="Read",
            icon="play",
            tooltip="Read the pages of the selected document not read yet",
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        self.read_button.on_click(guard("Reading")(lambda _: self.read_selected()))
        self.reread_button = widgets.Button(
            description="Again",
            icon="repeat",
            tooltip="Read every page again with the engine and dpi above; "
            "edited, added and verified lines are kept",
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        self.reread_button.on_click(
            guard("Reading")(lambda _: self.read_selected(again=True))
        )
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            tooltip="Stop reading the selected document after its current page",
            layout=widgets.Layout(width="auto", flex="1 1 auto"),
        )
        self.stop_button.on_click(guard("Stopping")(lambda _: self.stop_selected()))
        self.refresh_button = widgets.Button(
            icon="refresh",
            tooltip="Show documents added elsewhere, by the command line or another "
            "session",
            layout=widgets.Layout(width="36px", flex="0 0 auto"),
        )
        self.refresh_button.on_click(guard("Refreshing")(lambda _: self.refresh()))

        self.widget = widgets.VBox(
            [
                self.upload,
                self.limit_note,
                self.password_box,
                widgets.HBox([self.engine, self.dpi]),
                self.auto_read,
                self.table,
                widgets.HBox(
                    [
                        self.read_button,
                        self.reread_button,
                        self.stop_button,
                        self.refresh_button,
                    ]
                ),
                self.guard,
            ]
        )
        self.widget.add_class("okw-documents")

    # -- the document list -------------------------------------------------------

    @property
    def selected(self) -> str | None:
        """The id of the selected document, or None."""
        for row in self.table.rows:
            if row["id"] == self.table.selected:
                return str(row["document"])
        return None

    def select(self, document_id: str) -> None:
        """Select a document in the list (which opens it)."""
        for row in self.table.rows:
            if row["document"] == document_id:
                self.table.selected = int(row["id"])
                return

    def refresh(self) -> None:
        """Draw the document list again from the store and the reading states."""
        with self._lock:
            documents = self.store.documents()
            self.table.rows = [self._row(document) for document in documents]

    def _row(self, document: Document) -> dict[str, Any]:
        pages = self.store.pages(document.id)
        state = self.reader.states.get(document.id)
        row_id = self._row_ids.setdefault(document.id, len(self._row_ids) + 1)
        return {
            "id": row_id,
            "document": document.id,
            "name": document.filename,
            "pages": document.page_count,
            "status": status_cell(pages, state),
        }

    def _on_select(self, change: dict[str, Any]) -> None:
        document_id = self.selected
        if document_id is not None:
            self.on_open(document_id)

    # -- uploads -------------------------------------------------------------------

    def _on_selected(self, files: list[dict[str, Any]]) -> None:
        """Take the browser's list of chosen files before their bytes arrive."""
        self.reader.warm_up(str(self.engine.value))
        too_large = [f for f in files if f["size"] > self.limit_bytes]
        rejected: list[tuple[Kind, str]] = []
        if too_large:
            note = too_large_message(too_large, self.limit_bytes)
            self.feedback.show(note, "error")
            rejected.append(("error", note))
            log.warning(
                "upload rejected in the browser: %s",
                ", ".join(f"{f['name']} ({f['size']} bytes)" for f in too_large),
            )
        now = time.monotonic()
        with self._lock:
            self._rejected = rejected
            for item in files:
                if item["size"] <= self.limit_bytes:
                    deadline = (
                        now + ARRIVAL_GRACE_S + item["size"] / MIB * ARRIVAL_S_PER_MB
                    )
                    self._expected[item["name"]] = (item["size"], deadline)
            self._schedule_arrival_check()

    def _schedule_arrival_check(self) -> None:
        if self._arrival_timer is not None:
            self._arrival_timer.cancel()
            self._arrival_timer = None
        if not self._expected:
            return
        soonest = min(deadline for _, deadline in self._expected.values())
        delay = max(0.5, soonest - time.monotonic())
        self._arrival_timer = threading.Timer(delay, self._check_arrivals)
        self._arrival_timer.daemon = True
        self._arrival_timer.start()

    def _check_arrivals(self) -> None:
        now = time.monotonic()
        with self._lock:
            lost = [
                (name, size)
                for name, (size, deadline) in self._expected.items()
                if deadline <= now
            ]
            for name, _ in lost:
                del self._expected[name]
            self._schedule_arrival_check()
        if lost:
            names = ", ".join(f"{name} ({mb(size)})" for name, size in lost)
            log.warning("uploads chosen in the browser never arrived: %s", names)
            self.feedback.show(
                f"{names} did not arrive. The server may accept smaller messages than "
                "the workbench: start it with `ocrkit serve` or `ocrkit dashboard`, "
                "or add the file with `ocrkit add`.",
                "error",
            )

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        try:
            self.add_files([(f["name"], f["content"]) for f in files])
        finally:
            # Frees the bytes and lets the same file be chosen again.
            self.upload.value = ()

    def add_files(
        self, files: Sequence[tuple[str, bytes | memoryview]]
    ) -> list[Document]:
        """Add uploaded files to the store and queue their reading.

        Files over the upload limit, damaged files and encrypted PDFs are reported in
        one message; encrypted PDFs wait in the password prompt.
        """
        added: list[Document] = []
        already: set[str] = set()
        with self._lock:
            notes, self._rejected = self._rejected, []
            for name, _ in files:
                self._expected.pop(name, None)
            self._schedule_arrival_check()
        for name, content in files:
            size = len(content)
            if size > self.limit_bytes:
                notes.append(
                    (
                        "error",
                        too_large_message(
                            [{"name": name, "size": size}], self.limit_bytes
                        ),
                    )
                )
                continue
            data = bytes(content)
            try:
                known = self._known(data)
                document = self.store.add_bytes(data, name)
            except EncryptedPdfError:
                self._locked.append(_Locked(name, data))
                notes.append(("warning", f"{name} is encrypted: enter its password."))
                continue
            except OcrkitError as exc:
                log.warning("upload %s rejected: %s", name, exc)
                reason = str(exc)
                if isinstance(exc, InputFileError) and exc.page is None:
                    reason = exc.detail  # the message names the file already
                notes.append(("error", f"{name} was not added: {reason}"))
                continue
            if known:
                notes.append(
                    ("info", f"{name} is already in the store as {document.filename}.")
                )
                already.add(document.id)
            added.append(document)
        self._after_add(added, notes, already)
        self._show_locked()
        return added

    def _known(self, data: bytes) -> bool:
        digest = hashlib.sha256(data).hexdigest()
        return any(d.sha256 == digest for d in self.store.documents())

    def _after_add(
        self,
        added: list[Document],
        notes: list[tuple[Kind, str]],
        already: set[str] | None = None,
    ) -> None:
        """Read and select added documents; ``already`` were in the store before."""
        self.refresh()
        if added:
            already = already or set()
            new = [d for d in added if d.id not in already]
            if new:
                pages = sum(d.page_count for d in new)
                names = ", ".join(d.filename for d in new)
                reading = " Reading now." if self.auto_read.value else ""
                notes.insert(
                    0, ("success", f"Added {names} ({plural(pages, 'page')}).{reading}")
                )
            if self.auto_read.value:
                for document in added:
                    self.read(document.id)
            self.select(added[-1].id)
        if notes:
            order = {"info": 0, "success": 1, "warning": 2, "error": 3}
            kind = max((k for k, _ in notes), key=order.__getitem__)
            self.feedback.show(" ".join(text for _, text in notes), kind)

    # -- encrypted PDFs --------------------------------------------------------------

    def _show_locked(self, problem: str = "") -> None:
        if not self._locked:
            self.password_box.layout.display = "none"
            return
        current = self._locked[0]
        more = (
            f" ({len(self._locked) - 1} more after it)" if len(self._locked) > 1 else ""
        )
        problem_html = (
            f'<div class="okw-bad">{html.escape(problem)}</div>' if problem else ""
        )
        self.password_note.value = (
            f"<b>{html.escape(current.name)}</b> is encrypted{more}. "
            f"Enter its password to add it.{problem_html}"
        )
        self.password_box.layout.display = "flex"

    def _on_password_msg(
        self, widget: Any, content: dict[str, Any], buffers: Any
    ) -> None:
        if content.get("event") == "submit":
            self.try_password()

    def try_password(self) -> Document | None:
        """Add the waiting encrypted PDF with the password typed; None if it failed."""
        if not self._locked:
            return None
        current = self._locked[0]
        password = self.password.value
        try:
            document = self.store.add_bytes(
                current.data, current.name, password=password
            )
        except EncryptedPdfError:
            self.password.value = ""
            self._show_locked("The password is wrong. Try again.")
            self.feedback.show(f"The password for {current.name} is wrong.", "warning")
            return None
        self._locked.pop(0)
        self.password.value = ""
        self._after_add([document], [])
        self._show_locked()
        return document

    def skip_locked(self) -> None:
        """Drop the waiting encrypted PDF without adding it."""
        if self._locked:
            skipped = self._locked.pop(0)
            self.feedback.show(f"{skipped.name} was not added.", "info")
        self.password.value = ""
        self._show_locked()

    # -- reading -------------------------------------------------------------------

    def read(self, document_id: str, *, again: bool = False) -> None:
        """Queue reading a document's unread pages, or all of them with ``again``."""
        pages = None
        if again:
            pages = tuple(range(self.store.document(document_id).page_count))
        elif not self.store.pending_pages(document_id):
            self.feedback.show("Every page of this document is read already.", "info")
            return
        self.reader.submit(
            ReadJob(document_id, str(self.engine.value), float(self.dpi.value), pages)
        )
        self.refresh()

    def read_selected(self, *, again: bool = False) -> None:
        """Read the selected document (see ``read``)."""
        document_id = self.selected
        if document_id is None:
            self.feedback.show("Select a document in the list first.", "info")
            return
        self.read(document_id, again=again)

    def stop_selected(self) -> None:
        """Stop reading the selected document after its current page."""
        document_id = self.selected
        if document_id is not None and self.reader.cancel(document_id):
            self.feedback.show("Reading stops after the current page.", "info")
        else:
            self.feedback.show("The selected document is not being read.", "info")

    def _on_progress(self, job: ReadJob, progress: ReadProgress | None) -> None:
        self.refresh()
        if progress is not None:
            self.on_page_read(job.document_id, progress.page)

    def _on_finished(
        self, job: ReadJob, report: ReadReport | None, error: BaseException | None
    ) -> None:
        self.refresh()
        name = self.store.document(job.document_id).filename
        if isinstance(error, ReadCancelled):
            self.feedback.show(f"Reading {name} stopped.", "info")
        elif error is not None:
            self.feedback.report(error, f"Reading {name}")
        elif report is not None and report.failures:
            failed = [
                page
                for page in self.store.pages(job.document_id)
                if page.index in report.failures
            ]
            reasons = failure_reasons(name, failed)
            self.feedback.show(
                f"{name}: {len(report.failures)} of {len(report.pages)} pages failed "
                f"({reasons}).",
                "error",
            )
        elif report is not None:
            lines = sum(p.line_count for p in report.pages)
            self.feedback.show(
                f"{name}: read {plural(len(report.pages), 'page')}, "
                f"{plural(lines, 'line')}.",
                "success",
            )

    def close(self) -> None:
        """Stop reading and the upload timers."""
        self.reader.close()
        if self._arrival_timer is not None:
            self._arrival_timer.cancel()


def failure_reasons(name: str, pages: Sequence[Page]) -> str:
    """Return why failed pages of a document failed, each reason once.

    A page's error names the file and page, which the message around it already
    does, so that part is left out: "pages 3, 4: its content stream is missing".
    """
    by_reason: dict[str, list[int]] = {}
    for page in pages:
        reason = page.error.removeprefix(f"{name}, page {page.number}: ")
        by_reason.setdefault(reason, []).append(page.number)
    return "; ".join(
        f"{'pages' if len(numbers) > 1 else 'page'} "
        f"{', '.join(str(n) for n in numbers)}: {reason}"
        for reason, numbers in by_reason.items()
    )


def too_large_message(files: Sequence[dict[str, Any]], limit_bytes: int) -> str:
    """Return the message for files over the upload limit."""
    names = ", ".join(f"{f['name']} ({mb(int(f['size']))})" for f in files)
    verb = "is" if len(files) == 1 else "are"
    return (
        f"{names} {verb} over the upload limit of {limit_bytes // MIB} MB and "
        "not added. Add large files with `ocrkit add`, or raise OCRKIT_UPLOAD_LIMIT_MB."
    )


def status_cell(pages: Sequence[Page], state: ReadState | None) -> dict[str, Any]:
    """Return the progress cell of a document row: counts, label and state."""
    total = len(pages)
    read = sum(p.status in (PageStatus.done, PageStatus.no_text) for p in pages)
    failed = sum(p.status == PageStatus.failed for p in pages)
    if state is not None and state.state == "queued":
        return {"done": 0, "total": 1, "label": "queued", "state": "queued"}
    if state is not None and state.state == "reading":
        return {
            "done": state.done,
            "total": max(1, state.total),
            "label": f"reading {state.done}/{state.total}",
            "state": "reading",
        }
    if failed:
        # The bar fills to every page tried, so that it shows red even when no
        # page was read.
        label = f"{failed} failed"
        return {
            "done": read + failed,
            "total": max(1, total),
            "label": label,
            "state": "failed",
        }
    kind = "done" if read == total else "pending"
    label = f"{read}/{total} read"
    return {"done": read, "total": max(1, total), "label": label, "state": kind}
