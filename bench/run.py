"""Measure ocrkit's speed, memory and accuracy beside the same models called directly,
PaddleOCR and Tesseract, and write the tables as markdown under ``bench/results``.

Two parts:

1. Pages with ground truth. Every reader reads each page once to start up and then
   ``--runs`` more times; the table gives the median seconds per page, the CPU
   seconds, the peak RSS of the reader's process tree, and the character and word
   error rates (CER, WER) of the text against the ground truth.
2. Whole documents. A scanned PDF of ``--pages`` pages built from corpus scans is
   read end to end by ``read_document`` (pages per minute, peak RSS, RSS at page 10
   and at the last page), then its first pages one at a time in one process, and
   by the peers. A born-digital PDF of ``--pages`` pages is read by the ``text``
   engine.

Each reader runs in its own subprocess, so that memory peaks do not mix and model
loading is counted once. Usage: ``python bench/run.py --pages 40``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
RESULTS = REPO / "bench" / "results"
MB = 1024 * 1024

# Pages with ground truth: page file and its text.
GROUND_TRUTH = {
    "acta-municipal-es.pdf": "acta-municipal-es.gt.txt",
    "phototest.tif": "phototest.gt.txt",
    "phototest-rotated-R.png": "phototest-rotated-R.gt.txt",
    "francais.pdf": "francais.gt.txt",
    "8071_093.3B.tif": "8071_093.3B.gt.txt",
}
# The UNLV transcription writes each character it could not type as "~".
UNLV_PAGES = {"8071_093.3B.tif"}
# Pages scanned turned, which ocrkit turns upright and RapidOCR reads as they lie.
TURNED_PAGES = {"phototest-rotated-R.png"}
# Scanned pages cycled into the long scanned document: (file, page index).
SCAN_PAGES = [
    ("acta-municipal-es.pdf", 0),
    ("francais.pdf", 0),
    ("skew.pdf", 0),
    *(("Seige_of_Vicksburg_Sample_OCR.pdf", index) for index in range(6)),
]
BORN_DIGITAL = "GeoTopo-komprimiert.pdf"
TESSERACT_LANGUAGES = "spa+eng"
# Pages of the scanned document read one at a time and by the peers: enough for a
# stable rate, few enough that the slowest peer finishes in minutes.
SAMPLE_PAGES = 18
RSS_POLL_SECONDS = 0.05


@dataclass
class Reader:
    """One column of the page table: how a page gets read."""

    label: str
    kind: str  # ocrkit, rapidocr, rapidocr_file, paddleocr or tesseract
    engine: str = ""
    missing: str = ""
    # Environment variables for the reader's process, such as OCRKIT_RUNTIME.
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Measured:
    """A subprocess run: its JSON output, peak RSS and wall time."""

    output: dict[str, Any]
    peak_rss: int
    seconds: float
    error: str = ""


@dataclass
class PageRow:
    """One reader's figures over the pages with ground truth."""

    reader: Reader
    startup: float = 0.0
    seconds: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0
    cer: float = 0.0
    wer: float = 0.0
    per_page: dict[str, tuple[float, float]] = field(default_factory=dict)
    error: str = ""


# -- measuring a subprocess ---------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Return the summed RSS in bytes of a process and all its descendants."""
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def run_measured(job: dict[str, Any], timeout: float) -> Measured:
    """Run one worker job in a subprocess and poll its tree's RSS until it exits."""
    with tempfile.TemporaryDirectory(prefix="ocrkit-bench-") as folder:
        job_path = Path(folder) / "job.json"
        result_path = Path(folder) / "result.json"
        job_path.write_text(json.dumps(job))
        command = [sys.executable, str(Path(__file__).resolve()), "worker"]
        command += [str(job_path), str(result_path)]
        env = dict(os.environ, PYTHONPATH=str(REPO), **job.get("env", {}))
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            if time.perf_counter() - started > timeout:
                process.kill()
                process.wait()
                return Measured({}, peak, timeout, f"timed out after {timeout:.0f} s")
            time.sleep(RSS_POLL_SECONDS)
        seconds = time.perf_counter() - started
        stderr = process.stderr.read() if process.stderr else ""
        if process.returncode != 0 or not result_path.is_file():
            last = stderr.strip().splitlines()[-1:] or ["no output"]
            error = f"exit code {process.returncode}: {last[0]}"
            return Measured({}, peak, seconds, error)
        output = json.loads(result_path.read_text())
        return Measured(output, peak, seconds, output.get("error", ""))


# -- text scoring ---------------------------------------------------------------


def normalise(text: str, *, unlv: bool = False, reference: bool = False) -> str:
    """Return text in NFC with straight apostrophes and single spaces.

    For the UNLV page, "~" is dropped from the reference and non-ASCII characters
    from the reading, because the transcription wrote each of them as "~".
    """
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'")
    text = text.replace("\u2018", "'")
    if unlv and reference:
        text = text.replace("~", "")
    elif unlv:
        text = "".join(char for char in text if ord(char) < 128)
    return " ".join(text.split())


def error_rates(pairs: list[tuple[str, str]]) -> tuple[float, float]:
    """Return CER and WER over (reference, reading) pairs, weighted by length."""
    import jiwer

    references = [reference or " " for reference, _ in pairs]
    readings = [reading for _, reading in pairs]
    return jiwer.cer(references, readings), jiwer.wer(references, readings)


# -- workers: these run in the subprocess -------------------------------------------


def worker_main(job_path: Path, result_path: Path) -> None:
    """Run a job written by the parent and write its JSON result."""
    job = json.loads(job_path.read_text())
    workers = {
        "ocrkit": work_ocrkit_pages,
        "rapidocr": work_rapidocr_pages,
        "rapidocr_file": work_rapidocr_file_pages,
        "paddleocr": work_paddleocr_pages,
        "tesseract": work_tesseract_pages,
        "document": work_document,
        "tesseract_batch": work_tesseract_batch,
        "rapidocr_batch": work_rapidocr_batch,
        "rapidocr_pdf": work_rapidocr_pdf,
    }
    try:
        output = workers[job["kind"]](job)
    except Exception as exc:  # reported in the table rather than stopping the run
        output = {"error": f"{type(exc).__name__}: {exc}"}
    result_path.write_text(json.dumps(output))


def timed_runs(read: Any, runs: int) -> dict[str, Any]:
    """Call ``read()`` once to start up and ``runs`` more times; return times."""
    started, cpu_started = time.perf_counter(), time.process_time()
    text = read()
    first = time.perf_counter() - started
    first_cpu = time.process_time() - cpu_started
    times, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        text = read()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {
        "first": first,
        "times": times or [first],
        "cpu": cpu or [first_cpu],
        "text": text,
    }


def work_ocrkit_pages(job: dict[str, Any]) -> dict[str, Any]:
    from ocrkit.reading import read_document
    from ocrkit.store import Store

    pages = []
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder)) as store:
        for page in job["pages"]:
            document = store.add_file(page["file"])
            index = page["index"]

            def read(document_id: str = document.id, index: int = index) -> str:
                report = read_document(
                    store, document_id, pages=[index], engine=job["engine"]
                )
                if report.failures:
                    raise RuntimeError(f"page failed: {report.pages[0].error}")
                lines = store.lines(document_id, index)
                return "\n".join(line.text for line in lines)

            pages.append({"name": page["name"], **timed_runs(read, job["runs"])})
    return {"pages": pages}


def work_rapidocr_pages(job: dict[str, Any]) -> dict[str, Any]:
    import cv2
    import rapidocr
    from rapidocr import RapidOCR

    from ocrkit.engines.onnx import OnnxEngine

    models = Path(rapidocr.__file__).parent / "models"
    ocr = RapidOCR(params=OnnxEngine().rapidocr_params(models))
    pages = []
    for page in job["pages"]:
        # Decoding the page's PNG file is timed, as Tesseract's is.
        def read(path: str = page["image"]) -> str:
            result = ocr(cv2.imread(path, cv2.IMREAD_COLOR))
            return "\n".join(
                str(text) for text in (getattr(result, "txts", None) or ())
            )

        pages.append({"name": page["name"], **timed_runs(read, job["runs"])})
    return {"pages": pages}


def file_image(file: str, index: int) -> Any:
    """Return a page of a file as a BGR array, as a RapidOCR user would get it.

    PDF pages are rendered by PyMuPDF in RGB at ocrkit's default dpi; image files
    are decoded by OpenCV.
    """
    import cv2
    import numpy as np
    import pymupdf

    from ocrkit.sources import DEFAULT_DPI

    if not file.lower().endswith(".pdf"):
        return cv2.imread(file, cv2.IMREAD_COLOR)
    with pymupdf.open(file) as document:
        pixmap = document[index].get_pixmap(dpi=DEFAULT_DPI, alpha=False)
    rgb = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(
        pixmap.height, pixmap.width, 3
    )
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def work_rapidocr_file_pages(job: dict[str, Any]) -> dict[str, Any]:
    """Read each page from its file with RapidOCR: render or decode, then OCR."""
    import rapidocr
    from rapidocr import RapidOCR

    from ocrkit.engines.onnx import OnnxEngine

    models = Path(rapidocr.__file__).parent / "models"
    ocr = RapidOCR(params=OnnxEngine().rapidocr_params(models))
    pages = []
    for page in job["pages"]:

        def read(file: str = page["file"], index: int = page["index"]) -> str:
            result = ocr(file_image(file, index))
            return "\n".join(
                str(text) for text in (getattr(result, "txts", None) or ())
            )

        pages.append({"name": page["name"], **timed_runs(read, job["runs"])})
    return {"pages": pages}


def work_paddleocr_pages(job: dict[str, Any]) -> dict[str, Any]:
    import cv2

    from ocrkit.engines.paddle import PaddleEngine, lines_from_result

    # The engine only finds the local model folders and builds the pipeline; the
    # timed calls go straight to PaddleOCR's predict().
    pipeline = PaddleEngine(**job.get("options", {}))._load()
    pages = []
    for page in job["pages"]:

        def read(path: str = page["image"]) -> str:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            lines = lines_from_result(pipeline.predict(image))
            return "\n".join(line.text for line in lines)

        pages.append({"name": page["name"], **timed_runs(read, job["runs"])})
    return {"pages": pages}


def tesseract_command(image: str) -> list[str]:
    """Return the Tesseract command that prints a page image's text."""
    return ["tesseract", image, "stdout", "-l", TESSERACT_LANGUAGES]


def work_tesseract_pages(job: dict[str, Any]) -> dict[str, Any]:
    pages = []
    for page in job["pages"]:

        def read(image: str = page["image"]) -> str:
            done = subprocess.run(
                tesseract_command(image), capture_output=True, text=True, check=True
            )
            return done.stdout

        result = timed_runs(read, job["runs"])
        # Tesseract's CPU time is its own process's; this process only waits.
        result["cpu"] = [None]
        pages.append({"name": page["name"], **result})
    return {"pages": pages}


def work_tesseract_batch(job: dict[str, Any]) -> dict[str, Any]:
    """Read page images with ``parallel`` Tesseract processes at a time."""
    from concurrent.futures import ThreadPoolExecutor

    # With its own OpenMP threads, one Tesseract at a time read the 18 sample
    # pages at 8 pages per minute and two single-thread ones at 87, so each gets one.
    env = dict(os.environ, OMP_THREAD_LIMIT="1")

    def read(image: str) -> None:
        subprocess.run(
            tesseract_command(image), capture_output=True, check=True, env=env
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(job["parallel"]) as pool:
        list(pool.map(read, job["images"]))
    return {"seconds": time.perf_counter() - started, "pages": len(job["images"])}


def work_rapidocr_batch(job: dict[str, Any]) -> dict[str, Any]:
    """Read page images one after another with RapidOCR, as ocrkit sets it up.

    The time includes loading the models, as ocrkit's whole-document times do.
    """
    import cv2
    import rapidocr
    from rapidocr import RapidOCR

    from ocrkit.engines.onnx import OnnxEngine

    started = time.perf_counter()
    models = Path(rapidocr.__file__).parent / "models"
    ocr = RapidOCR(params=OnnxEngine().rapidocr_params(models))
    for image in job["images"]:
        ocr(cv2.imread(image, cv2.IMREAD_COLOR))
    return {"seconds": time.perf_counter() - started, "pages": len(job["images"])}


def work_rapidocr_pdf(job: dict[str, Any]) -> dict[str, Any]:
    """Render a PDF's first pages with PyMuPDF and read each with RapidOCR.

    The time includes loading the models and rendering, as ocrkit's whole-document
    times do.
    """
    import rapidocr
    from rapidocr import RapidOCR

    from ocrkit.engines.onnx import OnnxEngine

    started = time.perf_counter()
    models = Path(rapidocr.__file__).parent / "models"
    ocr = RapidOCR(params=OnnxEngine().rapidocr_params(models))
    for index in range(job["pages"]):
        ocr(file_image(job["file"], index))
    return {"seconds": time.perf_counter() - started, "pages": job["pages"]}


def fixed_pool(spec: str) -> Any:
    """Start a pool from ``pool:WORKERS:THREADS``, set up as ``--workers`` sets it."""
    from ocrkit.reading import page_pool

    _, workers, threads = spec.split(":")
    return page_pool(int(workers), threads=int(threads))


def work_document(job: dict[str, Any]) -> dict[str, Any]:
    """Read a whole document with ``read_document``, sampling RSS at every page."""
    from ocrkit.reading import ReadProgress, ReadReport, read_document
    from ocrkit.store import Store

    rss_by_page: dict[int, int] = {}
    pid = os.getpid()

    def progress(event: ReadProgress) -> None:
        if event.done in (1, 10, event.total) or event.done % 25 == 0:
            rss_by_page[event.done] = tree_rss(pid)

    executor: Any = {"none": None, "auto": "auto"}.get(job["executor"])
    if job["executor"].startswith("pool:"):
        executor = fixed_pool(job["executor"])
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder)) as store:
        document = store.add_file(job["file"])
        pages = range(min(job["pages"], document.page_count))
        started = time.perf_counter()
        if job["executor"] == "serial":
            report = ReadReport()
            for index in pages:
                single = read_document(
                    store, document.id, pages=[index], engine=job["engine"]
                )
                report.pages += single.pages
                report.failures.update(single.failures)
                done = ReadProgress(document.id, single.pages[0], index + 1, len(pages))
                progress(done)
        else:
            report = read_document(
                store,
                document.id,
                pages=pages,
                engine=job["engine"],
                executor=executor,
                progress=progress,
            )
        seconds = time.perf_counter() - started
        lines = sum(page.line_count for page in store.pages(document.id))
    if executor not in (None, "auto"):
        executor.shutdown()
    return {
        "seconds": seconds,
        "pages": len(report.pages),
        "failures": len(report.failures),
        "lines": lines,
        "rss_by_page": rss_by_page,
    }


# -- the parent: building inputs, running readers, writing tables ------------------


# Names ``--readers`` accepts, in the order of the page table's columns.
READER_NAMES = (
    "ocrkit",
    "rapidocr",
    "rapidocr-file",
    "ocrkit-ort",
    "rapidocr-ort",
    "ocrkit-paddle",
    "paddleocr",
    "tesseract",
)


def available_readers(names: list[str]) -> list[Reader]:
    """Return the page-table readers, marking those whose packages are missing."""
    from ocrkit.engines import engine_names

    registered = engine_names()
    paddle_missing = ""
    if importlib.util.find_spec("paddleocr") is None:
        paddle_missing = "not installed (paddleocr)"
    elif "paddle" not in registered:
        paddle_missing = "not installed (no paddle engine)"
    tesseract_missing = ""
    try:
        subprocess.run(["tesseract", "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        tesseract_missing = "not installed (tesseract)"
    ort = {"OCRKIT_RUNTIME": "onnxruntime"}
    readers = {
        "ocrkit": Reader("ocrkit onnx (read_document)", "ocrkit", "onnx"),
        "rapidocr": Reader("rapidocr direct, same models", "rapidocr"),
        "rapidocr-file": Reader(
            "rapidocr direct from the file, same models", "rapidocr_file"
        ),
        "ocrkit-ort": Reader("ocrkit onnx on ONNX Runtime", "ocrkit", "onnx", env=ort),
        "rapidocr-ort": Reader("rapidocr direct on ONNX Runtime", "rapidocr", env=ort),
        "ocrkit-paddle": Reader(
            "ocrkit paddle (read_document)", "ocrkit", "paddle", paddle_missing
        ),
        "paddleocr": Reader(
            "PaddleOCR 3.x pipeline direct", "paddleocr", missing=paddle_missing
        ),
        "tesseract": Reader(
            f"Tesseract 5 ({TESSERACT_LANGUAGES})",
            "tesseract",
            missing=tesseract_missing,
        ),
    }
    return [readers[name] for name in names]


def render_pages(corpus: Path, files: list[str], folder: Path) -> list[dict[str, Any]]:
    """Render each page as ocrkit renders it for OCR, saved as a lossless PNG."""
    import cv2

    from ocrkit.sources import Source

    pages = []
    for name in files:
        with Source(corpus / name) as source:
            rendered = source.render(0)
        image = folder / f"{Path(name).stem}.png"
        cv2.imwrite(str(image), rendered.image[..., ::-1])
        pages.append(
            {"name": name, "file": str(corpus / name), "index": 0, "image": str(image)}
        )
    return pages


def measure_pages(
    readers: list[Reader], pages: list[dict[str, Any]], corpus: Path, runs: int
) -> list[PageRow]:
    """Run every reader over the pages and score its text."""
    rows = []
    for reader in readers:
        row = PageRow(reader)
        rows.append(row)
        if reader.missing:
            row.error = reader.missing
            continue
        job = {"kind": reader.kind, "engine": reader.engine, "pages": pages}
        job["runs"] = runs
        job["env"] = reader.env
        print(f"reading {len(pages)} pages with {reader.label}", flush=True)
        measured = run_measured(job, timeout=1800)
        if measured.error:
            row.error = measured.error
            print(f"  failed: {measured.error}", flush=True)
            continue
        row.peak_rss = measured.peak_rss
        results = measured.output["pages"]
        row.startup = results[0]["first"]
        medians = [statistics.median(result["times"]) for result in results]
        row.seconds = statistics.mean(medians)
        cpu = [statistics.median(result["cpu"]) for result in results]
        row.cpu = statistics.mean(cpu) if None not in cpu else float("nan")
        pairs = []
        for result, median in zip(results, medians, strict=True):
            name = result["name"]
            unlv = name in UNLV_PAGES
            truth = (corpus / GROUND_TRUTH[name]).read_text(encoding="utf-8")
            pair = (
                normalise(truth, unlv=unlv, reference=True),
                normalise(result["text"], unlv=unlv),
            )
            pairs.append(pair)
            row.per_page[name] = (median, error_rates([pair])[0])
        row.cer, row.wer = error_rates(pairs)
    return rows


def build_pdf(
    corpus: Path, pages: list[tuple[str, int]], count: int, path: Path
) -> None:
    """Write a PDF of ``count`` pages cycling through corpus pages.

    Consecutive pages of one file are inserted in one run, so that they share
    their fonts as the pages of one real document do.
    """
    import pymupdf

    sources = {name: pymupdf.open(corpus / name) for name, _ in pages}
    output = pymupdf.open()
    chosen = [pages[number % len(pages)] for number in range(count)]
    start = 0
    while start < len(chosen):
        name, first = chosen[start]
        end = start + 1
        while (
            end < len(chosen)
            and chosen[end][0] == name
            and chosen[end][1] == first + (end - start)
        ):
            end += 1
        last = first + (end - start) - 1
        output.insert_pdf(sources[name], from_page=first, to_page=last)
        start = end
    output.save(path, garbage=3, deflate=True)
    output.close()
    for source in sources.values():
        source.close()


def render_document(path: Path, count: int, folder: Path) -> list[str]:
    """Render the first ``count`` pages of a PDF as ocrkit does, as PNG files."""
    import cv2

    from ocrkit.sources import Source

    images = []
    with Source(path) as source:
        for index in range(min(count, source.page_count)):
            image = folder / f"page-{index + 1:04d}.png"
            cv2.imwrite(str(image), source.render(index).image[..., ::-1])
            images.append(str(image))
    return images


@dataclass
class DocumentRow:
    """Whole-document figures of one set-up."""

    label: str
    pages: int = 0
    pages_per_minute: float = 0.0
    peak_rss: int = 0
    rss_page_10: int | None = None
    rss_last: int | None = None
    note: str = ""
    error: str = ""


def document_row(label: str, measured: Measured, note: str = "") -> DocumentRow:
    """Turn a document worker's output into a table row."""
    row = DocumentRow(label, note=note)
    if measured.error:
        row.error = measured.error
        return row
    output = measured.output
    row.pages = output["pages"]
    row.pages_per_minute = 60.0 * output["pages"] / output["seconds"]
    row.peak_rss = measured.peak_rss
    rss = {int(key): value for key, value in output.get("rss_by_page", {}).items()}
    row.rss_page_10 = rss.get(10)
    row.rss_last = rss.get(row.pages)
    if output.get("failures"):
        row.note = f"{output['failures']} pages failed. {note}".strip()
    return row


def measure_documents(
    corpus: Path, page_count: int, readers: list[Reader], folder: Path
) -> list[DocumentRow]:
    """Read the long scanned and born-digital documents end to end."""
    from ocrkit.engines import engine_names

    rows: list[DocumentRow] = []
    scan = folder / "scans.pdf"
    build_pdf(corpus, SCAN_PAGES, page_count, scan)
    sample = min(page_count, SAMPLE_PAGES)
    cores = os.cpu_count() or 1

    def read(label: str, job: dict[str, Any], note: str = "") -> None:
        print(f"reading {label}", flush=True)
        row = document_row(label, run_measured(job, timeout=4 * 3600), note)
        if row.error:
            print(f"  failed: {row.error}", flush=True)
        rows.append(row)

    document = {"kind": "document", "file": str(scan), "engine": "onnx"}
    read(
        f"ocrkit onnx, default executor, {page_count} scanned pages",
        {**document, "pages": page_count, "executor": "auto"},
        f"{cores} cores",
    )
    # The single-page-at-a-time rate: each page read by its own call, so nothing
    # overlaps, with the models on one thread and then on every core.
    for threads in sorted({1, cores}):
        read(
            f"ocrkit onnx, one page at a time, {count(threads, 'model thread')}, "
            f"first {sample} pages",
            {
                **document,
                "pages": sample,
                "executor": "serial",
                "env": {"OCRKIT_THREADS": str(threads)},
            },
            "one read_document call per page",
        )
    read(
        f"ocrkit onnx, default executor, first {sample} pages",
        {**document, "pages": sample, "executor": "auto"},
        f"{cores} cores",
    )
    read(
        f"ocrkit onnx on ONNX Runtime, default executor, first {sample} pages",
        {
            **document,
            "pages": sample,
            "executor": "auto",
            "env": {"OCRKIT_RUNTIME": "onnxruntime"},
        },
        f"{cores} cores",
    )
    # A pool's start-up would swamp the rate of a few pages.
    splits = ((1, cores), (cores, 1), (cores, cores)) if sample >= 8 else ()
    for workers, threads in splits:
        read(
            f"ocrkit onnx, pool of {workers} x {count(threads, 'thread')}, "
            f"first {sample} pages",
            {**document, "pages": sample, "executor": f"pool:{workers}:{threads}"},
            "processes x model threads",
        )
    images = render_document(scan, sample, folder)
    read(
        f"rapidocr direct, same models, first {sample} pages",
        {"kind": "rapidocr_batch", "images": images},
        "images rendered beforehand",
    )
    read(
        f"rapidocr direct from the PDF, same models, first {sample} pages",
        {"kind": "rapidocr_pdf", "file": str(scan), "pages": sample},
        "rendered by PyMuPDF in the loop",
    )
    names = {reader.kind: reader for reader in readers}
    if "tesseract" in names and not names["tesseract"].missing:
        for parallel in sorted({1, cores}):
            job = {"kind": "tesseract_batch", "images": images, "parallel": parallel}
            read(
                f"Tesseract, {parallel} at a time, first {sample} pages",
                job,
                "images rendered beforehand",
            )
    if "paddleocr" in names and not names["paddleocr"].missing:
        pages = [
            {"name": Path(image).name, "image": image, "file": "", "index": 0}
            for image in images
        ]
        job = {"kind": "paddleocr", "pages": pages, "runs": 0}
        label = f"PaddleOCR pipeline direct, first {sample} pages"
        print(f"reading {label}", flush=True)
        measured = run_measured(job, timeout=3600)
        row = DocumentRow(label, note="images rendered beforehand; start-up excluded")
        if measured.error:
            row.error = measured.error
        else:
            results = measured.output["pages"][1:]
            seconds = sum(result["times"][0] for result in results)
            row.pages = len(results)
            row.pages_per_minute = 60.0 * len(results) / seconds if seconds else 0.0
            row.peak_rss = measured.peak_rss
        rows.append(row)

    if "text" in engine_names():
        digital = folder / "born-digital.pdf"
        with _open_pdf(corpus / BORN_DIGITAL) as source:
            born_pages = [(BORN_DIGITAL, index) for index in range(source.page_count)]
        build_pdf(corpus, born_pages, page_count, digital)
        read(
            f"ocrkit text engine, {page_count} born-digital pages",
            {
                "kind": "document",
                "file": str(digital),
                "engine": "text",
                "pages": page_count,
                "executor": "auto",
            },
        )
    else:
        rows.append(DocumentRow("ocrkit text engine", error="no text engine"))
    return rows


def _open_pdf(path: Path) -> Any:
    import pymupdf

    return pymupdf.open(path)


# -- writing the report -------------------------------------------------------------


def count(number: int, noun: str) -> str:
    """Return "1 thread" or "2 threads": the number and the noun it agrees with."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def megabytes(value: int | None) -> str:
    return f"{value / MB:,.0f}" if value else "-"


def page_table(rows: list[PageRow]) -> list[str]:
    """Return the markdown lines of the page table."""
    done = [row for row in rows if not row.error]
    fastest = min((row.seconds for row in done), default=0.0)
    lines = [
        "| reader | start-up s | s per page | x fastest | CPU s per page "
        "| peak RSS MB | CER | WER |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.reader.label} | {row.error} | | | | | | |")
            continue
        cpu = "-" if row.cpu != row.cpu else f"{row.cpu:.2f}"
        lines.append(
            f"| {row.reader.label} | {row.startup:.2f} | {row.seconds:.2f} "
            f"| {row.seconds / fastest:.2f} | {cpu} | {megabytes(row.peak_rss)} "
            f"| {row.cer:.3f} | {row.wer:.3f} |"
        )
    return lines


def per_page_table(rows: list[PageRow], names: list[str]) -> list[str]:
    """Return the markdown lines of seconds and CER per page and reader."""
    done = [row for row in rows if not row.error]
    header = "| page | " + " | ".join(row.reader.label for row in done) + " |"
    lines = [header, "|---|" + "---:|" * len(done)]
    for name in names:
        cells = []
        for row in done:
            seconds, cer = row.per_page[name]
            cells.append(f"{seconds:.2f} s, CER {cer:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def document_table(rows: list[DocumentRow]) -> list[str]:
    """Return the markdown lines of the whole-document table."""
    lines = [
        "| run | pages | pages per minute | peak RSS MB | RSS at page 10 MB "
        "| RSS at last page MB | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.label} | | | | | | {row.error} |")
            continue
        lines.append(
            f"| {row.label} | {row.pages} | {row.pages_per_minute:,.1f} "
            f"| {megabytes(row.peak_rss)} | {megabytes(row.rss_page_10)} "
            f"| {megabytes(row.rss_last)} | {row.note} |"
        )
    return lines


def overhead_on_rendered(ocrkit: PageRow, direct: PageRow) -> str:
    """Return ocrkit's extra time per page over a reader, and on upright pages."""
    text = f"{100 * (ocrkit.seconds / direct.seconds - 1):+.0f}%"
    upright = [name for name in direct.per_page if name not in TURNED_PAGES]
    if upright and all(name in ocrkit.per_page for name in upright):
        ours = statistics.mean(ocrkit.per_page[name][0] for name in upright)
        theirs = statistics.mean(direct.per_page[name][0] for name in upright)
        text += f" ({100 * (ours / theirs - 1):+.0f}% on the upright ones)"
    return text


def targets(page_rows: list[PageRow], document_rows: list[DocumentRow]) -> list[str]:
    """Return the markdown table of targets, measured figures and verdicts.

    A target whose rows did not run (a reader left out, a document too short) reads
    "not measured". The parallel target is judged against one page at a time on one
    thread.
    """
    pages = [row for row in page_rows if not row.error]
    documents = [row for row in document_rows if not row.error]
    cores = os.cpu_count() or 1

    def page(prefix: str) -> PageRow | None:
        return next((r for r in pages if r.reader.label.startswith(prefix)), None)

    def document(prefix: str, *, sample: bool | None = None) -> DocumentRow | None:
        for row in documents:
            if row.label.startswith(prefix) and (
                sample is None or ("first" in row.label) == sample
            ):
                return row
        return None

    def rate(prefix: str, *, sample: bool | None = None) -> float | None:
        row = document(prefix, sample=sample)
        return row.pages_per_minute if row and row.pages_per_minute > 0 else None

    def verdict(met: bool) -> str:
        return "met" if met else "missed"

    lines = ["| target | measured | verdict |", "|---|---|---|"]

    def add(target: str, measured: str | None, judged: str = "") -> None:
        """Append a row; with nothing measured, the row reads "not measured"."""
        if measured is None:
            lines.append(f"| {target} | - | not measured |")
        else:
            lines.append(f"| {target} | {measured} | {judged} |")

    ocrkit = page("ocrkit onnx (read_document)")
    direct = page("rapidocr direct, same")
    paddle = page("PaddleOCR")
    tesseract = page("Tesseract")
    long_scan = document("ocrkit onnx, default executor", sample=False)
    long_rate = rate("ocrkit onnx, default executor", sample=False)
    sample_rate = rate("ocrkit onnx, default executor", sample=True)
    direct_rate = rate("rapidocr direct, same")
    one_thread = rate("ocrkit onnx, one page at a time, 1 model thread,")
    every_core = rate(f"ocrkit onnx, one page at a time, {cores} model thread")
    pool = document(f"ocrkit onnx, pool of {cores} x 1 thread,", sample=True)
    paddle_rate = rate("PaddleOCR pipeline direct")
    tesseract_rates = [r for r in (rate("Tesseract, 1"), rate("Tesseract, 2")) if r]
    text_engine = document("ocrkit text engine")

    target = "ocrkit adds at most 5% to the time of the same models called directly"
    from_file = page("rapidocr direct from the file")
    pdf_rate = rate("rapidocr direct from the PDF")
    if ocrkit and sample_rate and from_file and pdf_rate:
        single = 100 * (ocrkit.seconds / from_file.seconds - 1)
        whole = 100 * (pdf_rate / sample_rate - 1)
        measured = (
            f"{single:+.0f}% on single pages and {whole:+.0f}% over the sample pages "
            "read as one document, against RapidOCR reading the same files"
        )
        if direct and direct_rate:
            measured += (
                f"; against RapidOCR given the pages already rendered, "
                f"{overhead_on_rendered(ocrkit, direct)} and "
                f"{100 * (direct_rate / sample_rate - 1):+.0f}%"
            )
        add(target, measured, verdict(max(single, whole) <= 5))
    elif ocrkit and direct and sample_rate and direct_rate:
        whole = 100 * (direct_rate / sample_rate - 1)
        measured = (
            f"{overhead_on_rendered(ocrkit, direct)} on single pages, {whole:+.0f}% "
            "over the sample pages read as one document, against RapidOCR given "
            "the pages already rendered"
        )
        single = 100 * (ocrkit.seconds / direct.seconds - 1)
        add(target, measured, verdict(max(single, whole) <= 5))
    else:
        add(target, None)

    target = "long scan at least 1.6 x the single-page-at-a-time rate"
    if long_rate and one_thread:
        measured = f"{long_rate / one_thread:.2f} x one page at a time on one thread"
        if every_core:
            measured += f", {long_rate / every_core:.2f} x on every core"
        if pool and pool.pages_per_minute > 0:
            measured += (
                f"; a pool of {cores} single-thread processes read the sample pages "
                f"at {pool.pages_per_minute / one_thread:.2f} x one page at a time "
                f"on one thread, peaking at {megabytes(pool.peak_rss)} MB"
            )
        add(target, measured, verdict(long_rate / one_thread >= 1.6))
    else:
        add(target, None)

    target = (
        "at least 2.5 x the PaddleOCR pipeline and Tesseract, at equal or lower CER"
    )
    if (
        long_rate
        and paddle_rate
        and tesseract_rates
        and ocrkit
        and paddle
        and tesseract
    ):
        fastest = max(tesseract_rates)
        add(
            target,
            f"{long_rate / paddle_rate:.2f} x PaddleOCR (CER {ocrkit.cer:.3f} "
            f"against {paddle.cer:.3f}), {long_rate / fastest:.2f} x Tesseract at "
            f"its fastest (CER {tesseract.cer:.3f})",
            verdict(
                long_rate >= 2.5 * max(paddle_rate, fastest)
                and ocrkit.cer <= min(paddle.cer, tesseract.cer)
            ),
        )
    else:
        add(target, None)

    target = "text engine at least 200 pages per second"
    if text_engine and text_engine.pages_per_minute > 0:
        per_second = text_engine.pages_per_minute / 60
        measured = f"{per_second:,.1f} pages per second"
        if text_engine.pages < 100:
            measured += f" (only {text_engine.pages} pages, so start-up weighs)"
        add(target, measured, verdict(per_second >= 200))
    else:
        add(target, None)

    target = "peak RSS under 1.5 GB on the long scan, flat after the first pages"
    if long_scan and long_scan.rss_page_10 and long_scan.rss_last:
        growth = long_scan.rss_last - long_scan.rss_page_10
        add(
            target,
            f"{megabytes(long_scan.peak_rss)} MB peak, "
            f"{megabytes(long_scan.rss_page_10)} MB at page 10, "
            f"{megabytes(long_scan.rss_last)} MB at page {long_scan.pages}",
            # Flat: less than 10% growth from page 10 to the last page.
            verdict(
                long_scan.peak_rss < 1.5 * 1024 * MB
                and growth < 0.1 * long_scan.rss_page_10
            ),
        )
    else:
        add(target, None)

    target = "CER at or below Tesseract's on the pages with ground truth"
    if ocrkit and tesseract:
        above = [
            f"{name} ({ocrkit.per_page[name][1]:.3f} against {theirs:.3f})"
            for name, (_, theirs) in tesseract.per_page.items()
            if ocrkit.per_page[name][1] > theirs
        ]
        overall = ocrkit.cer <= tesseract.cer
        judged = verdict(overall and not above)
        if overall and above:
            judged = f"met overall, missed on {count(len(above), 'page')}"
        add(
            target,
            f"{ocrkit.cer:.3f} against {tesseract.cer:.3f} over all pages; "
            f"above it on: {', '.join(above) or 'none'}",
            judged,
        )
    else:
        add(target, None)
    return lines


def processor() -> str:
    """Return the processor's model name and its bfloat16 units, if any.

    OpenVINO runs the models in bfloat16 where the processor has AVX-512 BF16 or
    AMX, which sets the rates more than the number of cores.
    """
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not name:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    units = [unit for flag, unit in BF16_UNITS.items() if flag in flags]
    name = name or platform.processor() or "processor unknown"
    return f"{name}, {' and '.join(units)}" if units else name


# CPU flags of the bfloat16 units OpenVINO uses, and their names.
BF16_UNITS = {"avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX"}


def versions() -> str:
    """Return the versions of the packages that ran, one line."""
    from importlib import metadata

    found = []
    packages = ("ocrkit", "rapidocr", "openvino", "onnxruntime", "pymupdf", "paddleocr")
    for package in packages:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    tesseract = subprocess.run(
        ["tesseract", "--version"], capture_output=True, text=True, check=False
    )
    first = (tesseract.stdout or tesseract.stderr).splitlines()[:1]
    if first:
        found.append(first[0])
    return ", ".join(found)


def report(
    page_rows: list[PageRow],
    names: list[str],
    document_rows: list[DocumentRow],
    settings: argparse.Namespace,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    """Return the whole markdown report."""
    lines = [
        f"# ocrkit benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()} ({processor()}), "
        f"Python {platform.python_version()}. {versions()}.",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load[0])}"
        f"; after: {', '.join(f'{v:.2f}' for v in load[1])}.",
        f"Command: `python bench/run.py {' '.join(settings.argv)}`",
        "",
        "## Pages with ground truth",
        "",
        f"Each page read once to start up, then {count(settings.runs, 'more time')}; "
        "seconds are the mean over pages of each page's median. Start-up is the "
        "first page's first read, with model loading. ocrkit renders the page "
        "from its file and stores the lines; the other readers "
        "get the page already rendered by ocrkit at the same size, as a PNG file "
        "that they decode within the time. Peak RSS is "
        "that of the reader's whole process tree. CER and WER are over all pages, "
        "after NFC and whitespace normalisation.",
        "",
        *page_table(page_rows),
        "",
        *per_page_table(page_rows, names),
        "",
        "## Whole documents",
        "",
        *document_table(document_rows),
        "",
        "## Targets",
        "",
        *targets(page_rows, document_rows),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("OCRKIT_CORPUS") or DEFAULT_CORPUS),
        help="folder of the test corpus (default: ../shared/corpus beside the repo)",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="timed reads per page after the first"
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=300,
        help="pages of the long scanned and born-digital documents (default: 300)",
    )
    parser.add_argument(
        "--page-files",
        default=",".join(GROUND_TRUTH),
        help="comma-separated corpus files with ground truth to read",
    )
    parser.add_argument(
        "--readers",
        default=",".join(READER_NAMES),
        help="comma-separated readers of the page table, from: "
        f"{', '.join(READER_NAMES)}; the peers' whole-document rows run only "
        "when their reader is listed",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="folder for the markdown report"
    )
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        worker_main(Path(argv[1]), Path(argv[2]))
        return 0
    args = parse_args(argv)
    if args.runs < 1:
        print(f"--runs must be 1 or more, not {args.runs}", file=sys.stderr)
        return 2
    reader_names = [name for name in args.readers.split(",") if name]
    unknown_readers = [name for name in reader_names if name not in READER_NAMES]
    if unknown_readers:
        print(
            f"unknown reader {', '.join(unknown_readers)}; "
            f"give some of: {', '.join(READER_NAMES)}",
            file=sys.stderr,
        )
        return 2
    names = [name for name in args.page_files.split(",") if name]
    unknown = [name for name in names if name not in GROUND_TRUTH]
    if unknown:
        print(f"no ground truth for {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not (args.corpus / "MANIFEST.md").is_file():
        print(f"corpus not found at {args.corpus}; give --corpus", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    readers = available_readers(reader_names)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ocrkit-bench-") as folder:
        pages = render_pages(args.corpus, names, Path(folder))
        page_rows = measure_pages(readers, pages, args.corpus, args.runs)
        document_rows = measure_documents(
            args.corpus, args.pages, readers, Path(folder)
        )
    text = report(page_rows, names, document_rows, args, (load_before, os.getloadavg()))
    print(text)
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"bench-{dt.datetime.now():%Y%m%d-%H%M}.md"
    path.write_text(text, encoding="utf-8")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
