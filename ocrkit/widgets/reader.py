"""Reading documents in the background while the workbench stays usable.

``Reader`` runs ``read_document`` jobs one after another in a thread. By default
the pages themselves are read in one worker process: the engine gets its own
process (and its memory stays there), and PyMuPDF, which is not thread-safe, never
renders in two threads of the kernel at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ocrkit.reading import ReadProgress, ReadReport, cached_engine, read_document
from ocrkit.store import Store
from ocrkit.widgets.page_images import RENDER_LOCK

log = logging.getLogger(__name__)

# The worker process keeps the engine's models in memory: the onnx engine peaked
# near 1 GB on a 3312 x 2550 px page. So the worker stops after this many idle
# seconds, and the next job starts a new one.
WORKER_IDLE_S = 300.0


@dataclass
class ReadState:
    """The reading state of a document, for its row in the document list."""

    state: str  # queued, reading, done, failed or cancelled
    done: int = 0
    total: int = 0
    failures: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadJob:
    """One request to read pages of a document."""

    document_id: str
    engine: str
    dpi: float
    pages: tuple[int, ...] | None = None


ProgressCallback = Callable[[ReadJob, "ReadProgress | None"], object]
FinishedCallback = Callable[
    [ReadJob, "ReadReport | None", "BaseException | None"], object
]


class InlineExecutor(Executor):
    """Runs each task at once in the calling thread, holding the render lock.

    For engines registered only in this process (tests, notebooks), which a
    worker process would not know.
    """

    _max_workers = 1

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        future: Future[Any] = Future()
        with RENDER_LOCK:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
        return future


class ReadCancelled(Exception):
    """Raised inside a progress callback to stop reading a document."""


class Reader:
    """A queue of read jobs, run one at a time in a background thread.

    Args:
        store: the store to read documents of and write pages to.
        in_subprocess: read pages in a worker process (True), or in the reading
            thread of this process (False, for engines registered at run time).
        on_progress: called from the reading thread when a job starts (with None)
            and after each page.
        on_finished: called from the reading thread when a job ends, with its
            report, or with the exception that stopped it.
    """

    def __init__(
        self,
        store: Store,
        *,
        in_subprocess: bool = True,
        on_progress: ProgressCallback | None = None,
        on_finished: FinishedCallback | None = None,
    ) -> None:
        self.store = store
        self.in_subprocess = in_subprocess
        self.on_progress = on_progress
        self.on_finished = on_finished
        self.states: dict[str, ReadState] = {}
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="okw-read")
        self._pages: Executor | None = None
        self._lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._pending: list[Future[None]] = []
        self._warm: set[str] = set()
        self._idle_timer: threading.Timer | None = None
        self.idle_seconds = WORKER_IDLE_S

    def submit(self, job: ReadJob) -> None:
        """Queue a job; a document already queued or being read is not queued again."""
        with self._lock:
            current = self.states.get(job.document_id)
            if current is not None and current.state in ("queued", "reading"):
                log.info("document %s is already queued for reading", job.document_id)
                return
            self._cancel_idle_timer()
            self._cancelled.discard(job.document_id)
            self.states[job.document_id] = ReadState("queued")
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._thread.submit(self._run, job))

    def warm_up(self, engine: str) -> None:
        """Start the worker process and load ``engine`` in it, without waiting.

        The workbench calls this when files are chosen, so the model loads while
        the files upload.
        """
        with self._lock:
            if not self.in_subprocess or engine in self._warm:
                return
            self._cancel_idle_timer()
            self._warm.add(engine)
            self._executor().submit(warm_engine, engine)
            self._schedule_idle_stop()

    def cancel(self, document_id: str) -> bool:
        """Stop reading a document after its current page; return whether it was."""
        with self._lock:
            state = self.states.get(document_id)
            if state is None or state.state not in ("queued", "reading"):
                return False
            self._cancelled.add(document_id)
            return True

    def busy(self) -> bool:
        """Return whether a job is queued or running."""
        with self._lock:
            return any(not f.done() for f in self._pending)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued job has ended; return False on timeout."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        """Stop the reading thread and the worker process after the current page."""
        with self._lock:
            self._cancel_idle_timer()
            self._cancelled.update(self.states)
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._pages is not None:
            self._pages.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> Executor:
        if self._pages is None:
            if self.in_subprocess:
                # spawn: forking a kernel with running threads can copy held locks.
                context = multiprocessing.get_context("spawn")
                self._pages = ProcessPoolExecutor(1, mp_context=context)
            else:
                self._pages = InlineExecutor()
        return self._pages

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _schedule_idle_stop(self) -> None:
        """Stop the worker process after ``idle_seconds`` without jobs."""
        if not isinstance(self._pages, ProcessPoolExecutor):
            return
        self._cancel_idle_timer()
        self._idle_timer = threading.Timer(self.idle_seconds, self._stop_idle_worker)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _stop_idle_worker(self) -> None:
        with self._lock:
            if any(not f.done() for f in self._pending) or self._pages is None:
                return
            pages, self._pages = self._pages, None
            self._warm.clear()
            self._idle_timer = None
        log.info("stopping the idle reading worker process")
        pages.shutdown(wait=False)

    def _run(self, job: ReadJob) -> None:
        state = self.states[job.document_id]
        if job.document_id in self._cancelled:
            state.state = "cancelled"
            self._finished(job, None, ReadCancelled())
            return
        state.state = "reading"
        pages = job.pages
        if pages is None:
            pages = tuple(self.store.pending_pages(job.document_id))
        state.total = len(pages)
        self._progress(job, None)
        report: ReadReport | None = None
        error: BaseException | None = None
        try:
            report = read_document(
                self.store,
                job.document_id,
                pages=pages,
                dpi=job.dpi,
                engine=job.engine,
                executor=self._executor(),
                progress=lambda progress: self._progress(job, progress),
            )
            state.failures = dict(report.failures)
            state.state = "failed" if report.failures else "done"
        except ReadCancelled as exc:
            state.state = "cancelled"
            error = exc
        except Exception as exc:
            log.exception("reading document %s failed", job.document_id)
            state.state = "failed"
            error = exc
        self._finished(job, report, error)
        with self._lock:
            if len([f for f in self._pending if not f.done()]) <= 1:
                self._schedule_idle_stop()

    def _progress(self, job: ReadJob, progress: ReadProgress | None) -> None:
        state = self.states[job.document_id]
        if progress is not None:
            state.done = progress.done
            state.total = progress.total
        if job.document_id in self._cancelled:
            raise ReadCancelled(job.document_id)
        if self.on_progress is not None:
            try:
                self.on_progress(job, progress)
            except Exception:
                log.exception(
                    "progress callback of document %s failed", job.document_id
                )

    def _finished(
        self, job: ReadJob, report: ReadReport | None, error: BaseException | None
    ) -> None:
        if self.on_finished is None:
            return
        try:
            self.on_finished(job, report, error)
        except Exception:
            log.exception("finish callback of document %s failed", job.document_id)


def warm_engine(name: str) -> None:
    """Load an engine in this process by reading a blank line image with it."""
    engine = cached_engine(name)
    engine.recognize_region(np.full((32, 96, 3), 255, dtype=np.uint8))
