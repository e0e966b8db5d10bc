"""The auto choice: the text layer where it contains real text, OCR elsewhere."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ocrkit.engines.text import assess_text_layer, largest_image_share, text_quality
from ocrkit.models import LineOrigin, PageStatus
from ocrkit.reading import read_document
from ocrkit.store import Store
from ocrkit.widgets.page_images import PageImages

# (file, zero-based page, expected decision, words the reason must contain)
LAYER_CASES = [
    ("multicolumn.pdf", 0, True, "text layer"),
    ("multicolumn.pdf", 2, True, "text layer"),
    ("libreoffice-writer-password.pdf", 0, True, "text layer"),
    # Mathematics: unmapped symbols and short tokens stay under the limits.
    ("GeoTopo-komprimiert.pdf", 14, True, "text layer"),
    ("GeoTopo-komprimiert.pdf", 44, True, "text layer"),
    ("GeoTopo-komprimiert.pdf", 91, True, "text layer"),
    ("francais.pdf", 0, False, "no text layer"),
    ("skew.pdf", 0, False, "no text layer"),
    ("multipage.pdf", 0, False, "no text layer"),
    ("truetype_font_nomapping.pdf", 0, False, "does not read as words"),
    ("Seige_of_Vicksburg_Sample_OCR.pdf", 0, False, "earlier OCR"),
    ("Seige_of_Vicksburg_Sample_OCR.pdf", 1, False, "earlier OCR"),
    ("multipage.pdf", 3, False, "earlier OCR"),
]


@pytest.mark.parametrize(("name", "index", "use_text", "reason"), LAYER_CASES)
def test_layer_decision(
    corpus: Path, name: str, index: int, use_text: bool, reason: str
) -> None:
    with pymupdf.open(corpus / name) as doc:
        if doc.needs_pass:
            assert doc.authenticate("openpassword")
        assessment = assess_text_layer(doc[index])
    assert assessment.use_text is use_text
    assert reason in assessment.reason


def test_trusted_earlier_ocr_is_used(corpus: Path) -> None:
    with pymupdf.open(corpus / "Seige_of_Vicksburg_Sample_OCR.pdf") as doc:
        assessment = assess_text_layer(doc[1], trust_invisible_text=True)
    assert assessment.use_text
    assert assessment.stats["invisible_share"] == pytest.approx(1.0)


def scan_with_text(tmp_path: Path, corpus: Path, text: str) -> pymupdf.Page:
    """Return an A4 page with francais.pdf's scan across its width, plus text."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    with pymupdf.open(corpus / "francais.pdf") as scan:
        page.show_pdf_page(page.rect, scan, 0)
    page.insert_text((40, 40), text, fontsize=6)
    path = tmp_path / "scan-with-text.pdf"
    doc.save(path)
    doc.close()
    return pymupdf.open(path)[0]


def test_scan_with_a_stamp_is_ocred(tmp_path: Path, corpus: Path) -> None:
    page = scan_with_text(tmp_path, corpus, "Página 1 de 3")
    assessment = assess_text_layer(page)
    assert not assessment.use_text
    assert "page-sized image" in assessment.reason


def test_text_over_a_background_is_used(tmp_path: Path, corpus: Path) -> None:
    with pymupdf.open(corpus / "multicolumn.pdf") as doc:
        text = doc[0].get_text()
    page = scan_with_text(tmp_path, corpus, text)
    assessment = assess_text_layer(page)
    assert largest_image_share(page) > 0.5
    assert assessment.use_text


@pytest.mark.parametrize(
    ("text", "junk"),
    [
        ('"7+%-', True),
        ("\ufffd\ufffd\ufffd \ufffd\ufffd", True),
        ("\ue000\ue001\ue002 \ue003", True),
        ("#$%& @@!! ++**", True),
        ("El niño comió ñoquis: ¿quién pagó?", False),
        ("1.1 1.2 4.2.1 12,50 € 3,75 €", False),
    ],
)
def test_text_quality_flags_junk(text: str, junk: bool) -> None:
    stats = text_quality(text)
    flagged = (
        stats["broken_share"] > 0.2
        or stats["alnum_share"] < 0.3
        or stats["wordlike_share"] < 0.5
    )
    assert flagged is junk


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Store:
    """A store holding a scanned page followed by a born-digital page, read by auto."""
    folder = tmp_path_factory.mktemp("auto")
    doc = pymupdf.open()
    for name, index in (("francais.pdf", 0), ("multicolumn.pdf", 0)):
        with pymupdf.open(corpus / name) as source:
            doc.insert_pdf(source, from_page=index, to_page=index)
    doc.save(folder / "mixed.pdf")
    doc.close()
    store = Store(folder / "storage")
    document = store.add_file(folder / "mixed.pdf")
    report = read_document(store, document.id, engine="auto")
    assert not report.failures, report.failures
    for name in ("phototest.tif", "truetype_font_nomapping.pdf"):
        added = store.add_file(corpus / name)
        report = read_document(store, added.id, engine="auto")
        assert not report.failures, report.failures
    return store


def test_auto_ocrs_the_scanned_page(mixed_store: Store) -> None:
    document = mixed_store.document("mixed.pdf")
    page = mixed_store.page(document.id, 0)
    lines = mixed_store.lines(document.id, 0)
    text = " ".join(line.text for line in lines)
    assert page.status == PageStatus.done
    assert page.engine == "onnx"
    assert "PP-OCRv6" in page.model
    assert all(line.origin == LineOrigin.ocr for line in lines)
    assert "Portez ce vieux whisky" in text


def test_auto_uses_the_text_layer(mixed_store: Store) -> None:
    document = mixed_store.document("mixed.pdf")
    page = mixed_store.page(document.id, 1)
    lines = mixed_store.lines(document.id, 1)
    assert page.status == PageStatus.done
    assert page.engine == "text"
    assert "PyMuPDF" in page.model
    assert len(lines) == 91
    assert all(line.origin == LineOrigin.text_layer for line in lines)
    assert all(line.confidence == 1.0 for line in lines)
    assert "Two-Column Document with Lorem Ipsum" in [line.text for line in lines]


def test_auto_ocrs_image_files(mixed_store: Store) -> None:
    document = mixed_store.document("phototest.tif")
    page = mixed_store.page(document.id, 0)
    lines = mixed_store.lines(document.id, 0)
    assert page.engine == "onnx"
    assert len(lines) >= 7


def test_auto_ocrs_a_junk_layer(mixed_store: Store) -> None:
    document = mixed_store.document("truetype_font_nomapping.pdf")
    page = mixed_store.page(document.id, 0)
    text = " ".join(line.text for line in mixed_store.lines(document.id, 0))
    assert page.engine == "onnx"
    # The label the page shows, which its text layer extracts as '"7+%-'.
    assert "Phone" in text


def test_page_view_renders_both_kinds_of_page(mixed_store: Store) -> None:
    document = mixed_store.document("mixed.pdf")
    pages = mixed_store.pages(document.id)
    assert [page.engine for page in pages] == ["onnx", "text"]
    images = PageImages(mixed_store)
    try:
        for page in pages:
            image = images.page_image(page)
            assert image.shape == (page.height_px, page.width_px, 3)
            assert image.min() < 128  # the page's text is on it
    finally:
        images.close()
