"""Reading pages with the file each thread keeps open between pages."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from conftest import FakeEngine

from ocrkit import reading
from ocrkit.models import PageStatus, RecognizedLine
from ocrkit.reading import (
    PAGES_PER_OPEN,
    PageTask,
    close_open_source,
    open_source,
    read_document,
    read_page,
)
from ocrkit.store import Store


def write_pdf(path: Path, texts: list[str]) -> Path:
    doc = pymupdf.open()
    for text in texts:
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 100), text, fontname="helv", fontsize=12)
    doc.save(path)
    doc.close()
    return path


@pytest.fixture(autouse=True)
def no_open_source() -> Iterator[None]:
    """Start and end each test with no file kept open in this thread."""
    close_open_source()
    yield
    close_open_source()


def test_open_source_reuses_the_file(tmp_path: Path) -> None:
    path = str(write_pdf(tmp_path / "a.pdf", ["uno"]))
    first = open_source(path)
    assert open_source(path) is first
    other = str(write_pdf(tmp_path / "b.pdf", ["dos"]))
    assert open_source(other) is not first


def test_open_source_reopens_after_growth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(write_pdf(tmp_path / "a.pdf", ["uno"]))
    first = open_source(path)
    assert open_source(path) is first
    monkeypatch.setattr(reading, "MAX_GROWTH_PER_OPEN", -1)
    assert open_source(path) is not first


def test_open_source_counts_pages_without_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "_resident_bytes", lambda: None)
    path = str(write_pdf(tmp_path / "a.pdf", ["uno"]))
    first = open_source(path)
    for _ in range(PAGES_PER_OPEN - 1):
        assert open_source(path) is first
    assert open_source(path) is not first


def test_resident_bytes_is_plausible() -> None:
    resident = reading._resident_bytes()
    assert resident is not None
    assert 10 * 2**20 < resident < 64 * 2**30


def test_changed_file_is_opened_again(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    write_pdf(path, ["Primera versión"])
    task = PageTask(document_id="d", path=str(path), page_index=0, engine="text")
    before = read_page(task)
    write_pdf(path, ["Segunda versión, más larga", "¿Otra página?"])
    # An open file is reused while its size and modification time stay the same.
    # Move the time on in case the clock's resolution hides the rewrite.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = read_page(task)
    assert [line.text for line in before.lines] == ["Primera versión"]
    assert [line.text for line in after.lines] == ["Segunda versión, más larga"]


def test_missing_file_fails_the_page(tmp_path: Path) -> None:
    task = PageTask(
        document_id="d", path=str(tmp_path / "gone.pdf"), page_index=0, engine="text"
    )
    result = read_page(task)
    assert result.error_kind == "InputFileError"
    assert "cannot be read" in result.error


def test_threads_keep_their_own_file(tmp_path: Path) -> None:
    path = str(write_pdf(tmp_path / "a.pdf", ["uno"]))
    mine = open_source(path)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(open_source(path)))
    thread.start()
    thread.join()
    assert theirs[0] is not mine


def test_read_document_closes_the_file(store: Store, tmp_path: Path) -> None:
    texts = [f"Página {number}" for number in range(1, 41)]
    document = store.add_file(write_pdf(tmp_path / "largo.pdf", texts))
    report = read_document(store, document.id, engine="text", executor=None)
    assert not report.failures
    assert getattr(reading._OPEN_FILE, "file", None) is None
    pages = store.pages(document.id)
    assert [page.status for page in pages] == [PageStatus.done] * len(texts)
    first_lines = [store.lines(document.id, page.index)[0].text for page in pages]
    assert first_lines == texts


def test_render_cache_emptied_after_ocr_pages(
    store: Store, tmp_path: Path, fake_engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(reading, "empty_render_cache", lambda: calls.append(1))
    document = store.add_file(write_pdf(tmp_path / "two.pdf", ["one", "two"]))

    read_document(store, document.id, engine="text", executor=None)
    assert calls == []

    read_document(store, document.id, pages=[0, 1], engine="fake", executor=None)
    assert len(calls) == 2


def test_engine_holds_its_memory_while_reading_here(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    events: list[str] = []

    @contextmanager
    def holding_memory() -> Iterator[None]:
        events.append("hold")
        yield
        events.append("free")

    recognize = fake_engine.recognize

    def recognize_and_note(image: np.ndarray) -> list[RecognizedLine]:
        events.append("page")
        return recognize(image)

    fake_engine.holding_memory = holding_memory  # type: ignore[attr-defined]
    fake_engine.recognize = recognize_and_note  # type: ignore[method-assign]
    document = store.add_file(write_pdf(tmp_path / "three.pdf", ["a", "b", "c"]))

    read_document(store, document.id, engine="fake", executor=None)
    assert events == ["hold", "page", "page", "page", "free"]

    # An engine that cannot load keeps nothing, and its pages report why.
    report = read_document(store, document.id, pages=[0], engine="no-such-engine")
    assert report.failures == {0: "EngineError"}


def _worker_settings() -> tuple[str, str, float]:
    from ocrkit.engines import onnx

    return (
        os.environ["OCRKIT_THREADS"],
        os.environ["OMP_NUM_THREADS"],
        onnx.KEEP_MEMORY_S,
    )


@pytest.mark.parametrize(("threads", "expected"), [(None, "1"), (2, "2")])
def test_pool_workers_share_cores_and_free_memory(
    threads: int | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with reading.page_pool(2, threads=threads) as pool:
        settings = pool.submit(_worker_settings).result(timeout=120)
    assert settings == (expected, expected, 0.0)
