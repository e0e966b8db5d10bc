"""The default engine on real corpus pages: text, accents, order, orientation.

Character error rates were measured with the onnx engine (PP-OCRv6 small,
rapidocr 3.10) at 200 dpi, the same on OpenVINO and on ONNX Runtime; each
threshold leaves headroom above the measured value for small differences between
machines:

| page | measured CER | threshold |
|---|---|---|
| acta-municipal-es.pdf | 0.001 | 0.01 |
| phototest.tif | 0.000 | 0.01 |
| phototest-rotated-R.png | 0.000 | 0.01 |
| francais.pdf | 0.003 | 0.02 |
| 8071_093.3B.tif (4 columns, in reading order) | 0.044 | 0.07 |
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import jiwer
import pytest

from ocrkit.models import PageStatus
from ocrkit.reading import read_document
from ocrkit.store import Store


def normalise(text: str) -> str:
    """NFC, UNLV's '~' wildcards dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text).replace("~", "")
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def read_corpus(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Store:
    store = Store(tmp_path_factory.mktemp("ocr") / "storage")
    for name in [*CASES, "skew.pdf"]:
        document = store.add_file(corpus / name)
        report = read_document(store, document.id)
        assert not report.failures, report.failures
    return store


CASES = {
    "acta-municipal-es.pdf": ("acta-municipal-es.gt.txt", 0.01),
    "phototest.tif": ("phototest.gt.txt", 0.01),
    "phototest-rotated-R.png": ("phototest-rotated-R.gt.txt", 0.01),
    "francais.pdf": ("francais.gt.txt", 0.02),
    "8071_093.3B.tif": ("8071_093.3B.gt.txt", 0.07),
}


@pytest.mark.parametrize("name", list(CASES))
def test_character_error_rate(read_corpus: Store, corpus: Path, name: str) -> None:
    truth_file, threshold = CASES[name]
    document = read_corpus.document(name)
    text = " ".join(line.text for line in read_corpus.lines(document.id))
    truth = (corpus / truth_file).read_text("utf-8")
    cer = jiwer.cer(normalise(truth), normalise(text))
    print(f"{name}: CER {cer:.4f}")
    assert cer <= threshold


@pytest.mark.parametrize("name", list(CASES))
def test_lines_found_with_boxes_and_confidence(read_corpus: Store, name: str) -> None:
    document = read_corpus.document(name)
    page = read_corpus.page(document.id, 0)
    lines = read_corpus.lines(document.id, 0)
    assert page.status == PageStatus.done
    assert page.engine == "onnx"
    assert "PP-OCRv6" in page.model
    assert len(lines) >= 7
    for line in lines:
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= page.width_px + 2
        assert 0 <= y0 < y1 <= page.height_px + 2
        assert 0.0 < line.confidence <= 1.0


def test_spanish_accents_kept(read_corpus: Store) -> None:
    document = read_corpus.document("acta-municipal-es.pdf")
    text = " ".join(line.text for line in read_corpus.lines(document.id))
    for word in ["Martín", "Ibáñez", "Núñez", "Begoña", "Álvarez", "¿Cuántos", "Añil"]:
        assert word in text
    assert "«Cervantes»" in text


def test_french_diacritics_kept(read_corpus: Store) -> None:
    document = read_corpus.document("francais.pdf")
    text = " ".join(line.text for line in read_corpus.lines(document.id))
    for word in ["île", "intérieure", "côté", "l'alcôve", "ovoïde", "bûches", "œuvre"]:
        assert word in text


def test_sideways_image_is_turned_upright(read_corpus: Store) -> None:
    document = read_corpus.document("phototest-rotated-R.png")
    page = read_corpus.page(document.id, 0)
    lines = read_corpus.lines(document.id, 0)
    assert page.rotation == 270
    assert (page.width_px, page.height_px) == (640, 480)
    assert lines[0].text.startswith("This is a lot of 12 point text")
    assert all(
        line.bbox[2] - line.bbox[0] > line.bbox[3] - line.bbox[1] for line in lines
    )


def test_magazine_columns_in_reading_order(read_corpus: Store) -> None:
    document = read_corpus.document("8071_093.3B.tif")
    texts = [line.text for line in read_corpus.lines(document.id)]

    def position(start: str) -> int:
        return next(i for i, text in enumerate(texts) if text.startswith(start))

    # Each column is read to its end before the next begins.
    assert position("wandered around the house") < position("ply, he talked with her")
    assert position("questioned her until he learned") < position("ply, he talked")
    assert position("successful American families") < position("Guarendi's book shows")
    assert position("from real-life experience") < position("one day when he was")


def test_skewed_column_read_top_down(read_corpus: Store) -> None:
    # The brochure is skewed by about 1.9 degrees, so the boxes around its lines
    # overlap their neighbours'.
    document = read_corpus.document("skew.pdf")
    texts = [line.text for line in read_corpus.lines(document.id)]

    def position(start: str) -> int:
        return next(i for i, text in enumerate(texts) if text.startswith(start))

    column = [
        "Recording a Sequence",
        "To record a sequence",
        "then play your MIDI keyboard",
        "click track. When the sequence",
        "you'll hear what you played",
        "corrected! (Timing correction",
        "Any additional notes played",
    ]
    positions = [position(start) for start in column]
    assert positions == sorted(positions)
    assert position("The LinnSequencer is a") < position("Recording a Sequence")
    # The left column ends before the right one begins.
    assert position("sustain pedal") < position("simply use LOCATE")
    assert position("simply use LOCATE") < position("Creating a Song")
    assert position("Creating a Song") < position("Composition Without")


def test_edit_survives_real_rerun(read_corpus: Store) -> None:
    document = read_corpus.document("phototest.tif")
    line = read_corpus.lines(document.id)[2]
    read_corpus.edit_line(line.id, text="of file format (checked).")
    read_document(read_corpus, document.id, pages=[0])
    lines = read_corpus.lines(document.id)
    assert [entry.text for entry in lines].count("of file format (checked).") == 1
    assert sum(1 for entry in lines if entry.text.startswith("of file format")) == 1
    assert len(lines) == 8
    read_corpus.undo(document.id)
    assert read_corpus.line(line.id).text == line.text
