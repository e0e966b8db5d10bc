"""The page view's image: rendered again from the file, the pixels OCR read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import ocrkit.reading
from ocrkit.reading import read_document
from ocrkit.store import SCHEMA_VERSION, Store
from ocrkit.widgets.page_images import PageImages


@pytest.fixture
def images_read(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Collect the upright images that OCR read, in page order."""
    read: list[np.ndarray] = []
    recognize = ocrkit.reading.recognize_upright

    def recording(engine: Any, image: np.ndarray) -> Any:
        lines, rotation, upright = recognize(engine, image)
        read.append(upright.copy())
        return lines, rotation, upright

    monkeypatch.setattr(ocrkit.reading, "recognize_upright", recording)
    return read


@pytest.fixture
def page_images(store: Store) -> Iterator[PageImages]:
    images = PageImages(store)
    yield images
    images.close()


@pytest.mark.parametrize(
    "name",
    ["acta-municipal-es.pdf", "Seige_of_Vicksburg_Sample_OCR.pdf", "8071_093.3B.tif"],
)
def test_page_view_shows_the_pixels_ocr_read(
    corpus: Path,
    store: Store,
    images_read: list[np.ndarray],
    page_images: PageImages,
    name: str,
) -> None:
    document = store.add_file(corpus / name)
    read_document(store, document.id, pages=[0], engine="onnx", executor=None)
    page = store.page(document.id, 0)
    assert page.line_count > 0
    on_screen = page_images.page_image(page)
    assert on_screen.shape == (page.height_px, page.width_px, 3)
    assert np.array_equal(on_screen, images_read[0])
    # Nothing but the stored file and the database is written while reading.
    assert not (store.root / "pages").exists()


@pytest.mark.parametrize("turn", [90, 180])
def test_turned_scan_is_shown_as_read(
    corpus: Path,
    tmp_path: Path,
    store: Store,
    images_read: list[np.ndarray],
    page_images: PageImages,
    turn: int,
) -> None:
    upright = cv2.imread(str(corpus / "phototest.tif"), cv2.IMREAD_COLOR)
    # Scanned turned back by ``turn`` degrees, so reading turns it by ``turn``.
    scan = tmp_path / f"scan-{turn}.png"
    cv2.imwrite(str(scan), np.rot90(upright, turn // 90))
    document = store.add_file(scan)
    read_document(store, document.id, engine="onnx", executor=None)
    page = store.page(document.id, 0)
    assert page.rotation == turn
    lines = store.lines(document.id, 0)
    assert lines[0].text.startswith("This is a lot of 12 point text")
    assert np.array_equal(page_images.page_image(page), images_read[0])


def test_larger_pixel_budget_keeps_dpi(
    corpus: Path, store: Store, images_read: list[np.ndarray], page_images: PageImages
) -> None:
    document = store.add_file(corpus / "acta-municipal-es.pdf")
    # Twice the default budget: the page view must not lower this page's dpi.
    read_document(store, document.id, dpi=600, max_pixels=80_000_000, executor=None)
    page = store.page(document.id, 0)
    assert page.dpi == pytest.approx(600, abs=1)
    assert np.array_equal(page_images.page_image(page), images_read[0])


def test_store_of_schema_1_drops_its_page_images(tmp_path: Path, corpus: Path) -> None:
    root = tmp_path / "storage"
    with Store(root) as store:
        document = store.add_file(corpus / "multipage.pdf")
    # Schema version 1 named a cached image for each page read by OCR.
    with sqlite3.connect(root / "ocrkit.sqlite") as db:
        db.execute("ALTER TABLE pages ADD COLUMN image TEXT")
        db.execute("UPDATE pages SET image = 'pages/x/p00001-200dpi.png'")
        db.execute("PRAGMA user_version=1")
    image = root / "pages" / document.id / "p00001-200dpi.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\x89PNG")

    with Store(root) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.document(document.id).filename == "multipage.pdf"
        assert len(store.pages(document.id)) == document.page_count
    assert not (root / "pages").exists()
