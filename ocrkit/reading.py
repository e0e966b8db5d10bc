"""Read the pages of stored documents with an engine, page by page.

Work is split into ``PageTask`` values that a worker turns into ``PageResult``
values with ``read_page``; both are plain picklable data, so any
``concurrent.futures.Executor`` (a process pool, or a Dask ``Client`` through its
executor) can run them. Only the calling process writes to the store, one page per
transaction, so a failure or a kill keeps every page finished before it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ocrkit.engines import Engine, PageEngine, UprightEngine, get_engine
from ocrkit.errors import OcrkitError
from ocrkit.layout import is_sideways
from ocrkit.models import Page, PageStatus, RecognizedLine
from ocrkit.rendering import RenderAhead
from ocrkit.sources import (
    DEFAULT_DPI,
    DEFAULT_MAX_PIXELS,
    RenderedPage,
    Source,
    empty_render_cache,
    fit_dpi,
)
from ocrkit.store import Store
from ocrkit.tiling import is_tall, recognize_tall

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageTask:
    """Everything a worker needs to read one page, with no store access."""

    document_id: str
    path: str
    page_index: int
    dpi: float = DEFAULT_DPI
    max_pixels: int = DEFAULT_MAX_PIXELS
    engine: str = "onnx"
    engine_options: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class PageResult:
    """Result of reading one page; ``error`` is set when reading failed."""

    page: Page
    lines: list[RecognizedLine]
    error: str = ""
    error_kind: str = ""


@dataclass(frozen=True)
class ReadProgress:
    """One finished page, as passed to a progress callback."""

    document_id: str
    page: Page
    done: int
    total: int


ProgressCallback = Callable[[ReadProgress], None]


@dataclass
class ReadReport:
    """The pages a call to ``read_document`` read, and why any failed."""

    pages: list[Page] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def engine_failed(self) -> bool:
        """Whether a page failed in the engine rather than in its file."""
        return "EngineError" in self.failures.values() or any(
            kind == "MissingDependencyError" for kind in self.failures.values()
        )


_ENGINES: dict[tuple[str, str], Engine] = {}


def cached_engine(name: str, options: dict[str, Any] | None = None) -> Engine:
    """Return an engine loaded once per process and name."""
    key = (name, repr(sorted((options or {}).items())))
    if key not in _ENGINES:
        _ENGINES[key] = get_engine(name, **(options or {}))
    return _ENGINES[key]


def recognize_upright(
    engine: Engine, image: np.ndarray
) -> tuple[list[RecognizedLine], int, np.ndarray]:
    """Read a page, turning it by 90 degrees first when its lines stand upright.

    Returns the lines, the clockwise rotation applied (0, 90, 180 or 270) and the
    image the lines' coordinates refer to. An ``UprightEngine`` decides the turn
    itself, and also turns an upside-down page; other engines read a sideways page
    three times (as it is, then turned each way) and leave an upside-down one.
    """
    # TODO: a tall page turned sideways is a wide one, which no strips help, so
    # tall pages are read as they are.
    if is_tall(image):
        return recognize_tall(engine, image), 0, image
    if isinstance(engine, UprightEngine):
        found = engine.recognize_upright(image)
        if found is not None:
            return found
    lines = engine.recognize(image)
    if not is_sideways([line.bbox for line in lines]):
        return lines, 0, image
    best: tuple[float, list[RecognizedLine], int, np.ndarray] | None = None
    for rotation, turns in ((90, -1), (270, 1)):
        turned = np.ascontiguousarray(np.rot90(image, turns))
        candidate = engine.recognize(turned)
        score = sum(line.confidence * len(line.text) for line in candidate)
        if best is None or score > best[0]:
            best = (score, candidate, rotation, turned)
    assert best is not None
    # An engine may turn each line crop upright itself (a classifier, or tall
    # crops turned). Then the sideways reading can score as well as the turned
    # one, so only a clearly worse turn is rejected.
    upright_score = sum(line.confidence * len(line.text) for line in lines)
    if best[0] < 0.9 * upright_score:
        return lines, 0, image
    return best[1], best[2], best[3]


def read_page(task: PageTask) -> PageResult:
    """Read one page, returning errors instead of raising them.

    An engine with ``recognize_page`` (``text``, ``auto``) reads the page from its
    file first, in pixels at the dpi a render would use. Other pages are rendered
    and read by OCR. No page image is kept: the workbench renders the page again at
    the page's dpi and rotation, which gives the pixels OCR read.
    """
    return _read_page(task)[0]


def _read_page(
    task: PageTask, rendered: RenderedPage | None = None
) -> tuple[PageResult, bool]:
    """Read one page with ``read_page`` and return whether it was rendered too.

    ``rendered`` is the page already rendered elsewhere, used if OCR reads it.
    """
    base = Page(
        document_id=task.document_id, index=task.page_index, width_pt=0, height_pt=0
    )
    try:
        engine = cached_engine(task.engine, task.engine_options)
        source = open_source(task.path, task.name)
        if isinstance(engine, PageEngine):
            result = _read_from_file(task, engine, source)
            if result is not None:
                return result, False
        return _read_by_ocr(task, engine, source, rendered), True
    except OcrkitError as exc:
        name = task.name or task.path
        # The caller gets the reason in the result and reports it to the user.
        log.info("page %d of %s failed: %s", task.page_index + 1, name, exc)
        result = PageResult(base, [], error=str(exc), error_kind=type(exc).__name__)
    except MemoryError:
        message = "out of memory while reading the page; lower the dpi"
        result = PageResult(base, [], error=message, error_kind="MemoryError")
    except Exception as exc:  # a bug or an engine error ocrkit does not know yet
        name = task.name or task.path
        log.exception("page %d of %s failed", task.page_index + 1, name)
        # The file may be left in a state the next page should not inherit.
        close_open_source()
        message = f"unexpected {type(exc).__name__}: {exc}; see the log for details"
        result = PageResult(base, [], error=message, error_kind="EngineError")
    return result, True


def _read_from_file(
    task: PageTask, engine: PageEngine, source: Source
) -> PageResult | None:
    """Read a page with the engine's ``recognize_page``, or return None for OCR."""
    width_pt, height_pt = source.page_size_pt(task.page_index)
    dpi = fit_dpi(width_pt, height_pt, task.dpi, task.max_pixels)
    from_file = engine.recognize_page(source, task.page_index, dpi)
    if from_file is None:
        return None
    page = Page(
        document_id=task.document_id,
        index=task.page_index,
        width_pt=width_pt,
        height_pt=height_pt,
        width_px=round(width_pt * dpi / 72.0),
        height_px=round(height_pt * dpi / 72.0),
        dpi=dpi,
        status=PageStatus.done,
        engine=from_file.engine,
        model=from_file.model,
    )
    return PageResult(page=page, lines=from_file.lines)


def _read_by_ocr(
    task: PageTask,
    engine: Engine,
    source: Source,
    rendered: RenderedPage | None = None,
) -> PageResult:
    """Render a page, unless ``rendered`` is given, and read it by OCR."""
    if rendered is None:
        rendered = source.render(task.page_index, task.dpi, max_pixels=task.max_pixels)
    # An engine that passes images on (auto) names the engine that read them.
    ocr: Engine = getattr(engine, "image_engine", engine)
    lines, rotation, image = recognize_upright(ocr, rendered.image)
    width_pt, height_pt = rendered.width_pt, rendered.height_pt
    if rotation in (90, 270):
        width_pt, height_pt = height_pt, width_pt
    page = Page(
        document_id=task.document_id,
        index=task.page_index,
        width_pt=width_pt,
        height_pt=height_pt,
        width_px=int(image.shape[1]),
        height_px=int(image.shape[0]),
        dpi=rendered.dpi,
        rotation=rotation,
        status=PageStatus.done,
        engine=ocr.name,
        model=ocr.model,
    )
    return PageResult(page=page, lines=lines)


@dataclass
class _OpenFile:
    """A file a thread keeps open between pages, and when it was opened."""

    key: tuple[object, ...]
    source: Source
    resident_at_open: int | None
    pages: int = 0


# The file this thread read its last page from, kept open for the next pages.
_OPEN_FILE = threading.local()
# MuPDF keeps the fonts a document loaded until the document closes. On a
# 300-page PDF whose pages embed their own fonts (12 each), one opening for all
# pages peaked 140 MB higher than opening it every 32 pages (PyMuPDF 2.0, 2
# cores). On a PDF whose pages share their fonts, each opening loads them again,
# and the same 300 pages read a quarter slower opened every 64 pages than opened
# once. So a file is opened again once the process grew by MAX_GROWTH_PER_OPEN
# bytes since it was opened, or after PAGES_PER_OPEN pages where the process
# size cannot be read.
MAX_GROWTH_PER_OPEN = 32 * 2**20
PAGES_PER_OPEN = 128


def open_source(path: str, name: str = "") -> Source:
    """Return the file at ``path`` opened, reusing this thread's open file.

    A document's pages come one after another, and opening the PDF again for each
    page took longer than reading its text layer. The file is opened again when
    its path, size or modification time changed, or when it was kept open too
    long (see ``MAX_GROWTH_PER_OPEN``). One file per thread stays open until
    ``close_open_source`` or until the thread reads another file.

    NOTE: a long-lived worker (a Dask worker, a reused process pool) keeps the last
    file it read open, so a deleted document's file keeps its disk space until
    that worker reads another file or ends.
    """
    try:
        info = Path(path).stat()
        key: tuple[object, ...] = (path, name, info.st_size, info.st_mtime_ns)
    except OSError:
        key = ()  # Source raises the error that names the file.
    opened: _OpenFile | None = getattr(_OPEN_FILE, "file", None)
    if opened is not None and key and opened.key == key:
        if not _kept_too_long(opened):
            opened.pages += 1
            return opened.source
        close_open_source()
        # Hand the fonts' memory back to the system, so that the growth of the
        # next opening is measured from a smaller process.
        _trim_heap()
    else:
        close_open_source()
    source = Source(path, name=name or None)
    _OPEN_FILE.file = _OpenFile(key, source, _resident_bytes(), pages=1)
    return source


def close_open_source() -> None:
    """Close the file this thread keeps open for its next page, if any."""
    opened: _OpenFile | None = getattr(_OPEN_FILE, "file", None)
    _OPEN_FILE.file = None
    if opened is not None:
        opened.source.close()


def _kept_too_long(opened: _OpenFile) -> bool:
    if opened.resident_at_open is None:
        return opened.pages >= PAGES_PER_OPEN
    resident = _resident_bytes()
    if resident is None:
        return opened.pages >= PAGES_PER_OPEN
    return resident - opened.resident_at_open > MAX_GROWTH_PER_OPEN


def _resident_bytes() -> int | None:
    """Return this process's resident memory in bytes, or None off Linux."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def page_tasks(
    store: Store,
    document_id: str,
    *,
    pages: Iterable[int] | None = None,
    dpi: float = DEFAULT_DPI,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    engine: str = "onnx",
    engine_options: dict[str, Any] | None = None,
) -> list[PageTask]:
    """Build the tasks for a document's unread pages, or for the pages given."""
    indices = list(pages) if pages is not None else store.pending_pages(document_id)
    path = str(store.source_path(document_id))
    name = store.document(document_id).filename
    return [
        PageTask(
            document_id=document_id,
            path=path,
            page_index=index,
            dpi=dpi,
            max_pixels=max_pixels,
            engine=engine,
            engine_options=dict(engine_options or {}),
            name=name,
        )
        for index in indices
    ]


def read_document(
    store: Store,
    document_id: str,
    *,
    pages: Iterable[int] | None = None,
    dpi: float = DEFAULT_DPI,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    engine: str = "auto",
    engine_options: dict[str, Any] | None = None,
    executor: Executor | Literal["auto"] | None = "auto",
    progress: ProgressCallback | None = None,
) -> ReadReport:
    """Read a document's unread pages (or ``pages``) and store each as it finishes.

    The default ``engine``, ``auto``, as on the command line, takes the text of
    PDF pages whose text layer has real text and reads other pages by OCR
    (``onnx``).

    With an ``executor``, pages are read in parallel, at most twice as many in
    flight as it has workers, so memory stays bounded on long documents. The
    default ``"auto"`` starts a process pool for the call when ``parallel_workers``
    returns 2 or more, and reads in this process otherwise. None always reads in
    this process, one page after another. Returns a report of the pages read;
    failed pages keep their reason in ``Page.error``.
    """
    tasks = page_tasks(
        store,
        document_id,
        pages=pages,
        dpi=dpi,
        max_pixels=max_pixels,
        engine=engine,
        engine_options=engine_options,
    )
    report = ReadReport()

    def store_result(result: PageResult) -> None:
        if result.error:
            store.mark_page_failed(document_id, result.page.index, result.error)
            page = store.page(document_id, result.page.index)
            report.failures[page.index] = result.error_kind
        else:
            page = store.save_page(result.page, result.lines)
        report.pages.append(page)
        if progress is not None:
            progress(ReadProgress(document_id, page, len(report.pages), len(tasks)))

    if executor == "auto":
        workers = parallel_workers(engine, len(tasks))
        if workers > 1:
            with page_pool(workers) as pool:
                _run_in_order(pool, tasks, store_result)
            return report
        executor = None

    if executor is None:
        # TODO: text-layer pages use one core. On a PDF whose pages each embed
        # their own fonts, MuPDF spends about 4 ms a page loading them, which caps
        # the text engine near 150 pages/s on 2 cores. Two workers forked from
        # this process read 220 pages/s, but forking is unsafe once other threads
        # run, and spawned workers take about 1 s to import PyMuPDF 2.0.
        ahead = RenderAhead() if len(tasks) >= MIN_RENDER_AHEAD_PAGES else None
        # The next page is rendered ahead when the last page was rendered. OCR
        # engines render every page, so they start with the first.
        rendering = engine in OCR_ENGINES
        try:
            with holding_memory(engine, engine_options):
                for number, task in enumerate(tasks):
                    rendered = ahead.take(task) if ahead is not None else None
                    if ahead is not None and rendering and number + 1 < len(tasks):
                        ahead.submit(tasks[number + 1])
                    result, rendering = _read_page_and_trim(task, rendered)
                    store_result(result)
        finally:
            if ahead is not None:
                ahead.close()
            close_open_source()
        return report
    # TODO: pages read through an executor (the dashboard's reading process,
    # --workers, Dask) are rendered by the worker that reads them, while the
    # models wait, because a worker gets one page per task and no next page.
    _run_in_order(executor, tasks, store_result)
    return report


def _run_in_order(
    executor: Executor,
    tasks: list[PageTask],
    store_result: Callable[[PageResult], None],
) -> None:
    window = 2 * max(1, getattr(executor, "_max_workers", 2))
    queue = list(tasks)
    running: list[Future[PageResult]] = []
    try:
        while queue or running:
            while queue and len(running) < window:
                running.append(executor.submit(read_page_and_trim, queue.pop(0)))
            # Store pages in order, so a kill leaves no gap before the last stored
            # page.
            head = running.pop(0)
            store_result(head.result())
    finally:
        for future in running:
            future.cancel()


def holding_memory(
    name: str, options: dict[str, Any] | None
) -> AbstractContextManager[object]:
    """Return a block in which this process's engine keeps its working memory.

    An engine with ``holding_memory`` (``onnx``, also as the OCR engine of
    ``auto``) then does not free it between pages, which is faster, and frees it
    soon after the block ends. Other engines, and an engine that fails to load
    (each page then reports it), get a block that does nothing.
    """
    try:
        engine = cached_engine(name, options)
    except OcrkitError:
        return nullcontext()
    hold = getattr(getattr(engine, "image_engine", engine), "holding_memory", None)
    return hold() if hold is not None else nullcontext()


def read_page_and_trim(task: PageTask) -> PageResult:
    """Read one page with ``read_page``, then return freed memory to the system.

    glibc keeps the heap that a page's buffers grew to, so a worker otherwise stays
    at the size of the largest page it read, and MuPDF keeps the images it decoded
    (see ``empty_render_cache``). Pages read from their text layer allocate no
    page image and skip both. Elsewhere than glibc the heap is not trimmed.
    """
    return _read_page_and_trim(task)[0]


def _read_page_and_trim(
    task: PageTask, rendered: RenderedPage | None = None
) -> tuple[PageResult, bool]:
    """Read one page as ``read_page_and_trim`` does; return whether it was rendered.

    ``rendered`` is the page already rendered elsewhere, used if OCR reads it.
    """
    result, was_rendered = _read_page(task, rendered)
    if was_rendered:
        empty_render_cache()
        _trim_heap()
    return result, was_rendered


def _trim_heap() -> None:
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


# Engines built into ocrkit that read page images with a model: a fresh worker
# process can load them by name. Other engines (``text``, engines registered at
# run time) run in-process.
PARALLEL_ENGINES = frozenset({"onnx", "paddle", "auto"})
# Minimum pages for a default process pool. Each worker loads its own models
# (about 2 s and a few hundred MB for ``onnx``), which a short document does not
# win back, while this process keeps its loaded engine between calls.
MIN_PARALLEL_PAGES = 8
# Cores each default worker gets for its model threads. On 2 cores, two workers of
# one OpenVINO thread read 18 scanned pages at 38 to 39 pages per minute and peaked
# at 2.1 GB of RSS. This process alone, reading each page's lines two at once, read
# them at 39 to 40 and peaked at 1.3 GB (39 to 42 pages per minute on a 300-page
# scan). So 2 cores get no pool, and ``--workers 2`` is there for larger machines.
# This process reads one page at a time, while a render process renders the
# next (see ``ocrkit.rendering``).
# NOTE: measured on 2 cores only; 2 threads per worker on larger machines is a guess.
CORES_PER_WORKER = 2


def parallel_workers(engine: str, page_count: int) -> int:
    """Return how many worker processes ``read_document`` starts by default.

    One per ``CORES_PER_WORKER`` cores for engines in ``PARALLEL_ENGINES`` reading
    at least ``MIN_PARALLEL_PAGES`` pages; 0 or 1 means none (read in this process,
    where the engine's own threads use every core).
    """
    cores = os.cpu_count() or 1
    if engine not in PARALLEL_ENGINES or page_count < MIN_PARALLEL_PAGES:
        return 0
    return min(cores // CORES_PER_WORKER, page_count)


def page_pool(workers: int, threads: int | None = None) -> ProcessPoolExecutor:
    """Start a process pool for ``read_document`` whose workers share the cores.

    Each worker gets ``OCRKIT_THREADS`` and ``OMP_NUM_THREADS`` set to ``threads``,
    by default its share of the cores, so that model runtimes do not start a thread
    per core in every worker. Workers come from a fork server (spawned where there
    is none), never forked from this process: a child forked after ONNX Runtime and
    OpenCV started their threads hangs. Like any spawned worker, they import the
    calling script again, so a script must call ``read_document`` under ``if
    __name__ == "__main__":``.
    """
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_limit_threads,
        initargs=(threads, os.getpid()),
    )


# Engines that render every page they read.
OCR_ENGINES = frozenset({"onnx", "paddle"})
# Pages from which a document read in this process has its next page rendered in
# a render process (see ``ocrkit.rendering``). Starting that process takes about
# half a second, which a short document does not win back.
MIN_RENDER_AHEAD_PAGES = 8


def render_page(task: PageTask) -> RenderedPage:
    """Render ``task``'s page as OCR would, then free what rendering kept."""
    source = open_source(task.path, task.name)
    try:
        return source.render(task.page_index, task.dpi, max_pixels=task.max_pixels)
    finally:
        empty_render_cache()
        _trim_heap()


def _pool_context() -> Any:
    """Return the fork server context, or spawn where there is none.

    A child forked after ONNX Runtime and OpenCV started their threads hangs.
    """
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    return multiprocessing.get_context(method)


def _limit_threads(threads: int, parent_pid: int) -> None:
    os.environ["OCRKIT_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    # Workers free the models' memory after each page, because two workers on 2
    # cores already peak at 2.1 GB. The pool ends with the document anyway.
    from ocrkit.engines import onnx

    onnx.KEEP_MEMORY_S = 0.0
    # Idle workers of a parent killed with SIGKILL stayed blocked on the pool's
    # queue for good (CPython 3.11), so each one watches its parent.
    watch = threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True)
    watch.start()


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker within a second of the process that started it ending."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except (ProcessLookupError, PermissionError):
            # PermissionError: the pid now belongs to another user's process.
            os._exit(1)
