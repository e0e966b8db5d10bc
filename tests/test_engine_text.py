"""The text engine: lines from a PDF's text layer, exact, with boxes on the words."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from ocrkit.engines import get_engine
from ocrkit.engines.text import LIGATURES, TEXT_FLAGS, clean_text, text_page_lines
from ocrkit.errors import EngineError
from ocrkit.models import LineOrigin, PageStatus
from ocrkit.reading import read_document
from ocrkit.sources import Source
from ocrkit.store import Store
from ocrkit.widgets.page_images import PageImages


def normalise(text: str) -> str:
    """Ligatures split and whitespace collapsed, as the text engine's output is."""
    return re.sub(r"\s+", " ", clean_text(text)).strip()


def page_lines(page: pymupdf.Page) -> list[str]:
    return [normalise(line) for line in page.get_text().splitlines() if line.strip()]


def ink_share(image: np.ndarray, bbox: tuple[float, ...]) -> float:
    """Return the share of dark pixels inside a box of a page image."""
    x0, y0, x1, y1 = (int(round(v)) for v in bbox)
    crop = image[max(0, y0) : y1, max(0, x0) : x1]
    if crop.size == 0:
        return 0.0
    return float((crop.mean(axis=2) < 128).mean())


def build_pdf(path: Path, pages: list[tuple[Path, int]], rotation: int = 0) -> Path:
    """Copy pages of corpus PDFs into one file, optionally turned by /Rotate."""
    out = pymupdf.open()
    for source, index in pages:
        with pymupdf.open(source) as doc:
            out.insert_pdf(doc, from_page=index, to_page=index)
    for page in out:
        page.set_rotation(rotation)
    out.save(path)
    out.close()
    return path


@pytest.mark.parametrize("index", [0, 1, 2])
def test_multicolumn_text_is_exact(corpus: Path, index: int) -> None:
    with Source(corpus / "multicolumn.pdf") as source:
        result = get_engine("text").recognize_page(source, index, 200)
        page = source.text_layer(index)
        assert page is not None
        expected_lines = page_lines(page)
        expected_text = normalise(page.get_text())
    assert result is not None
    lines = [normalise(line.text) for line in result.lines]
    assert sorted(lines) == sorted(expected_lines)
    assert normalise(" ".join(lines)) == expected_text
    assert result.engine == "text"
    assert "PyMuPDF" in result.model
    assert all(line.confidence == 1.0 for line in result.lines)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_boxes_land_on_words(tmp_path: Path, corpus: Path, rotation: int) -> None:
    path = build_pdf(
        tmp_path / f"turned-{rotation}.pdf", [(corpus / "multicolumn.pdf", 0)], rotation
    )
    with Source(path) as source:
        rendered = source.render(0, 100)
        result = get_engine("text").recognize_page(source, 0, rendered.dpi)
    assert result is not None
    assert len(result.lines) > 50
    height, width = rendered.image.shape[:2]
    on_ink = []
    shifted = []
    for line in result.lines:
        x0, y0, x1, y1 = line.bbox
        assert -1 <= x0 < x1 <= width + 1
        assert -1 <= y0 < y1 <= height + 1
        on_ink.append(ink_share(rendered.image, line.bbox))
        # The same box moved off the line by twice its smaller side: mostly paper.
        step = 2 * min(x1 - x0, y1 - y0)
        shifted.append(
            ink_share(rendered.image, (x0 + step, y0 + step, x1 + step, y1 + step))
        )
    # Printed text covers about a tenth of its line box at 100 dpi.
    assert min(on_ink) > 0.03
    assert float(np.median(on_ink)) > 2 * float(np.median(shifted))


def test_rotated_page_keeps_the_text(tmp_path: Path, corpus: Path) -> None:
    upright = build_pdf(tmp_path / "upright.pdf", [(corpus / "multicolumn.pdf", 1)])
    turned = build_pdf(tmp_path / "turned.pdf", [(corpus / "multicolumn.pdf", 1)], 90)
    texts = []
    for path in (upright, turned):
        with Source(path) as source:
            result = get_engine("text").recognize_page(source, 0, 150)
        assert result is not None
        texts.append([line.text for line in result.lines])
    assert texts[0] == texts[1]


def test_ligatures_are_split(corpus: Path) -> None:
    with Source(corpus / "GeoTopo-komprimiert.pdf") as source:
        page = source.text_layer(5)
        assert page is not None
        raw = page.get_text()
        # The same extraction with ligatures kept as single characters.
        with_ligatures = page.get_text(
            flags=TEXT_FLAGS | pymupdf.TEXT_PRESERVE_LIGATURES
        )
        lines = text_page_lines(page, 200)
    text = " ".join(line.text for line in lines)
    assert any(ligature in raw for ligature in LIGATURES)
    assert not any(ligature in text for ligature in LIGATURES)
    assert normalise(text) == normalise(with_ligatures)


def test_spanish_text_survives(tmp_path: Path) -> None:
    phrase = "¿Cuántos años tenía? ¡Sí, señor! Pingüino, acción, ñandú."
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 100), phrase, fontname="helv", fontsize=12)
    path = tmp_path / "espanol.pdf"
    doc.save(path)
    doc.close()
    with Source(path) as source:
        result = get_engine("text").recognize_page(source, 0, 200)
    assert result is not None
    assert [line.text for line in result.lines] == [phrase]


def test_read_document_stores_text_lines(store: Store, corpus: Path) -> None:
    document = store.add_file(corpus / "multicolumn.pdf")
    report = read_document(store, document.id, engine="text")
    assert not report.failures
    page = store.page(document.id, 0)
    lines = store.lines(document.id, 0)
    assert page.status == PageStatus.done
    assert page.engine == "text"
    assert page.dpi == pytest.approx(200, abs=0.5)
    assert page.width_px == pytest.approx(595.276 * page.dpi / 72, abs=1)
    assert len(lines) == 91
    assert all(line.origin == LineOrigin.text_layer for line in lines)
    assert all(line.confidence == 1.0 for line in lines)
    assert "Two-Column Document with Lorem Ipsum" in [line.text for line in lines]


@pytest.mark.parametrize("rotation", [0, 90])
def test_page_view_renders_text_pages(
    store: Store, tmp_path: Path, corpus: Path, rotation: int
) -> None:
    path = build_pdf(
        tmp_path / f"turned-{rotation}.pdf", [(corpus / "multicolumn.pdf", 0)], rotation
    )
    document = store.add_file(path)
    read_document(store, document.id, engine="text")
    page = store.page(document.id, 0)

    images = PageImages(store)
    try:
        image = images.page_image(page)
    finally:
        images.close()
    height, width = image.shape[:2]
    assert width == pytest.approx(page.width_px, abs=1)
    assert height == pytest.approx(page.height_px, abs=1)
    on_ink = []
    shifted = []
    for line in store.lines(document.id, 0):
        x0, y0, x1, y1 = line.bbox
        on_ink.append(ink_share(image, line.bbox))
        step = 2 * min(x1 - x0, y1 - y0)
        shifted.append(ink_share(image, (x0 + step, y0 + step, x1 + step, y1 + step)))
    assert len(on_ink) == 91
    assert min(on_ink) > 0.03
    assert float(np.median(on_ink)) > 2 * float(np.median(shifted))


@pytest.mark.parametrize("index", [0, 2])
def test_store_keeps_text_layer_order(store: Store, corpus: Path, index: int) -> None:
    document = store.add_file(corpus / "multicolumn.pdf")
    read_document(store, document.id, engine="text", pages=[index])
    stored = normalise(" ".join(line.text for line in store.lines(document.id, index)))
    with pymupdf.open(corpus / "multicolumn.pdf") as pdf:
        expected = normalise(pdf[index].get_text())
    assert stored == expected

    first = store.lines(document.id, index)[0]
    store.edit_line(first.id, bbox=(10, 10, 50, 30))
    drawn = store.add_line(document.id, index, (10, 40, 90, 60), "nota")
    lines = store.lines(document.id, index)
    assert lines[0].id == first.id
    assert lines[-1].id == drawn.id


def test_invisible_ocr_text_is_read(corpus: Path) -> None:
    with Source(corpus / "Seige_of_Vicksburg_Sample_OCR.pdf") as source:
        result = get_engine("text").recognize_page(source, 1, 200)
    assert result is not None
    text = " ".join(line.text for line in result.lines)
    # The earlier OCR's own misreadings, kept as the layer has them.
    assert "VICKSBUEG" in text
    assert "tie earth" in text


def test_image_file_fails_cleanly(store: Store, corpus: Path) -> None:
    document = store.add_file(corpus / "phototest.tif")
    report = read_document(store, document.id, engine="text")
    page = store.page(document.id, 0)
    assert report.failures == {0: "EngineError"}
    assert page.status == PageStatus.failed
    assert "no text layer" in page.error


def test_recognize_rejects_images() -> None:
    engine = get_engine("text")
    with pytest.raises(EngineError, match="cannot read a page image"):
        engine.recognize(np.full((32, 32, 3), 255, dtype=np.uint8))


def test_cli_reads_with_text_engine(tmp_path: Path, corpus: Path) -> None:
    from ocrkit.cli import main

    storage = tmp_path / "storage"
    code = main(
        [
            "--storage",
            str(storage),
            "ocr",
            "--engine",
            "text",
            str(corpus / "multicolumn.pdf"),
        ]
    )
    assert code == 0
    with Store(storage) as store:
        document = store.document("multicolumn.pdf")
        pages = store.pages(document.id)
    assert [page.engine for page in pages] == ["text", "text", "text"]
    assert sum(page.line_count for page in pages) == 91 + 80 + 32
