"""Broken, odd and extreme input files: each is read right or rejected clearly.

Every test builds its own input, and the real engine reads the pages. Messages
must name the file as the user knows it, the page (one-based) and what to do next.
A rejected file must leave the store as it was.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pymupdf
import pytest
from PIL import Image

from ocrkit.errors import EncryptedPdfError, InputFileError
from ocrkit.export import export_lines, frame_from_rows, lines_frame, read_lines
from ocrkit.models import PageStatus
from ocrkit.reading import read_document
from ocrkit.sources import DEFAULT_DPI, DEFAULT_MAX_PIXELS
from ocrkit.store import Store

SMALL_PAGE = (420.0, 298.0)  # A5 landscape, in points: quick to read


# -- helpers ---------------------------------------------------------------------


def squash(text: str) -> str:
    """Return text in NFC, case-folded, without spaces, for comparing OCR output."""
    return "".join(unicodedata.normalize("NFC", text).casefold().split())


def similarity(read: str, expected: str) -> float:
    """Return how close OCR output is to the expected text, from 0 to 1."""
    return difflib.SequenceMatcher(None, squash(read), squash(expected)).ratio()


def write_text_pdf(
    path: Path,
    pages: list[list[str]],
    *,
    size: tuple[float, float] = SMALL_PAGE,
    fontsize: float = 20,
    **save_options: object,
) -> Path:
    """Write a PDF with the given lines of text on each page (Helvetica)."""
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=size[0], height=size[1])
        for number, text in enumerate(lines):
            point = (36, 60 + number * 2 * fontsize)
            page.insert_text(point, text, fontsize=fontsize, fontname="helv")
    doc.save(path, **save_options)
    doc.close()
    return path


def page_text(store: Store, document_id: str, page_index: int) -> str:
    """Return the text read on a page, one line per line."""
    return "\n".join(line.text for line in store.lines(document_id, page_index))


def snapshot(store: Store) -> tuple[object, ...]:
    """Return what a rejected file must leave unchanged in the store."""
    files = sorted(p.name for p in (store.root / "files").iterdir())
    return (store.stats(), files, held_lines(store))


def held_lines(store: Store) -> dict[int, tuple[str, int]]:
    """Return the text and version of every line in the store, by line id."""
    return {line.id: (line.text, line.version) for line in store.lines()}


def assert_lines_kept(store: Store, before: dict[int, tuple[str, int]]) -> None:
    """Check that every line held before is still there, unchanged."""
    now = held_lines(store)
    assert before
    for line_id, held in before.items():
        assert now.get(line_id) == held, line_id


@pytest.fixture
def filled_store(store: Store, tmp_path: Path) -> Store:
    """A store already holding one document read by the real engine."""
    pdf = write_text_pdf(tmp_path / "previo.pdf", [["Documento previo del Año"]])
    document = store.add_file(pdf)
    read_document(store, document.id)
    assert (
        similarity(page_text(store, document.id, 0), "Documento previo del Año") > 0.9
    )
    return store


def run_measured(code: str, cwd: Path, *args: str) -> dict[str, object]:
    """Run Python code in a fresh process; return its JSON output and peak RSS.

    The code prints one JSON object as its last line of output. ``max_rss_mb`` is
    the process's own peak resident memory, VmHWM from ``/proc/self/status``.
    Linux keeps ``getrusage``'s ``ru_maxrss`` across fork and exec, so that would
    report the test runner's own peak instead.
    """
    footer = (
        "\nimport json as _json, re as _re\n"
        "_status = open('/proc/self/status').read()\n"
        "_result['max_rss_mb'] = "
        "int(_re.search(r'VmHWM:\\s+(\\d+) kB', _status).group(1)) / 1024\n"
        "print(_json.dumps(_result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code + footer, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


# Reading a blank page of 40 million pixels (120 MB as RGB) with the onnx engine
# peaked at about 1.1 GB on a 2-core test machine. The limit leaves room above it.
MAX_RSS_MB = 2000


# -- encrypted PDFs --------------------------------------------------------------


def test_user_password_is_asked_then_read(filled_store: Store, tmp_path: Path):
    store = filled_store
    pdf = write_text_pdf(
        tmp_path / "cifrado.pdf",
        [["Informe reservado uno"], ["Informe reservado dos"]],
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        user_pw="abre2024",
        owner_pw="dueño2024",
    )
    before = snapshot(store)
    lines_before = held_lines(store)

    with pytest.raises(EncryptedPdfError) as missing:
        store.add_file(pdf)
    assert "cifrado.pdf" in str(missing.value)
    assert "needs a password" in str(missing.value)
    assert "--password" in str(missing.value)
    assert snapshot(store) == before

    with pytest.raises(EncryptedPdfError, match="cifrado.pdf: the password is wrong"):
        store.add_file(pdf, password="otra")
    assert snapshot(store) == before

    document = store.add_file(pdf, password="abre2024")
    assert document.page_count == 2
    # Later reads need no password: the store keeps a decrypted copy.
    assert not pymupdf.open(store.source_path(document.id)).needs_pass
    report = read_document(store, document.id)
    assert report.failures == {}
    assert similarity(page_text(store, document.id, 0), "Informe reservado uno") > 0.9
    assert similarity(page_text(store, document.id, 1), "Informe reservado dos") > 0.9
    assert_lines_kept(store, lines_before)


@pytest.mark.parametrize("user_password", [None, ""])
def test_owner_password_only_opens_freely(
    store: Store, tmp_path: Path, user_password: str | None
) -> None:
    options: dict[str, object] = {
        "encryption": pymupdf.PDF_ENCRYPT_AES_256,
        "owner_pw": "dueño2024",
        "permissions": 0,  # no printing, no copying: only the owner may
    }
    if user_password is not None:
        options["user_pw"] = user_password
    pdf = write_text_pdf(
        tmp_path / "protegido.pdf",
        [["Acta con permisos"], ["Segunda hoja del acta"]],
        **options,
    )
    encrypted = pymupdf.open(pdf)
    assert "AES" in (encrypted.metadata or {}).get("encryption", "")
    assert not encrypted.needs_pass
    assert not encrypted.permissions & pymupdf.PDF_PERM_COPY

    document = store.add_file(pdf)
    report = read_document(store, document.id)

    assert report.failures == {}
    assert similarity(page_text(store, document.id, 0), "Acta con permisos") > 0.9
    assert similarity(page_text(store, document.id, 1), "Segunda hoja del acta") > 0.9


# -- damaged and mislabelled files -----------------------------------------------


def write_scan_like_pdf(path: Path, pages: int) -> bytes:
    """Write a PDF of pages with a JPEG background and a line of text each.

    The images make each page's objects large, so cutting the file loses whole
    pages at its end.
    """
    rng = np.random.default_rng(7)
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=SMALL_PAGE[0], height=SMALL_PAGE[1])
        paper = (rng.random((150, 200)) * 40 + 215).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(paper).save(buffer, "JPEG", quality=90)
        page.insert_image(page.rect, stream=buffer.getvalue())
        page.insert_text((40, 90), f"Hoja {number} de {pages}", fontsize=24)
    doc.save(path)
    doc.close()
    return path.read_bytes()


def test_truncated_pdf_reads_surviving_pages(filled_store: Store, tmp_path: Path):
    """Pages MuPDF can rebuild are read; the lost ones fail by number, not as blank."""
    store = filled_store
    whole = write_scan_like_pdf(tmp_path / "entero.pdf", 13)
    cut = tmp_path / "cortado.pdf"
    cut.write_bytes(whole[: int(len(whole) * 0.6)])
    lines_before = held_lines(store)

    document = store.add_file(cut)
    assert document.page_count == 13
    # By OCR, so that the pages are rendered, in a render process ahead of OCR.
    report = read_document(store, document.id, engine="onnx")

    pages = store.pages(document.id)
    done = [p for p in pages if p.status == PageStatus.done]
    failed = [p for p in pages if p.status == PageStatus.failed]
    assert len(done) + len(failed) == 13, [p.status for p in pages]
    assert len(done) >= 5
    assert len(failed) >= 3
    # The file lost its end: the pages read come first.
    assert max(p.index for p in done) < min(p.index for p in failed)
    for page in done:
        expected = f"Hoja {page.number} de 13"
        assert similarity(page_text(store, document.id, page.index), expected) > 0.85
    for page in failed:
        assert f"cortado.pdf, page {page.number}: the page is damaged" in page.error
        assert "complete copy" in page.error
        assert report.failures[page.index] == "InputFileError"
        assert store.lines(document.id, page.index) == []
    assert_lines_kept(store, lines_before)
    assert store.integrity_check() == []


def test_truncated_pdf_on_command_line(tmp_path: Path) -> None:
    whole = write_scan_like_pdf(tmp_path / "entero.pdf", 13)
    cut = tmp_path / "cortado.pdf"
    cut.write_bytes(whole[: int(len(whole) * 0.6)])
    environment = {**os.environ, "OCRKIT_STORAGE": str(tmp_path / "storage")}

    done = subprocess.run(
        [sys.executable, "-m", "ocrkit", "ocr", str(cut)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )

    assert done.returncode == 2, done.stderr  # a bad input file
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert 3 <= len(errors) <= 8, done.stderr
    first_failed = 14 - len(errors)
    for number, line in enumerate(errors, start=first_failed):
        start = f"ocrkit: error: cortado.pdf, page {number}: the page is damaged "
        assert line.startswith(start), line
        assert line.count("cortado.pdf") == 1, line
        assert line.endswith("add a complete copy")
    read = first_failed - 1
    assert f"  {read}/13 pages read, {len(errors)} failed  {read} lines  " in (
        done.stdout
    )


def test_pages_cut_inside_their_streams_fail(
    store: Store, corpus: Path, tmp_path: Path
) -> None:
    """Pages MuPDF renders partly or wholly blank after repairing fail by number."""
    cut = tmp_path / "multipage-cut.pdf"
    cut.write_bytes((corpus / "multipage.pdf").read_bytes()[:400_000])
    document = store.add_file(cut)
    assert document.page_count == 6

    report = read_document(store, document.id, executor=None)

    assert sorted(report.failures) == list(range(6))
    for page in store.pages(document.id):
        assert page.status == PageStatus.failed
        assert f"multipage-cut.pdf, page {page.number}: the page is damaged" in (
            page.error
        )
        assert page.error.endswith("add a complete copy")
        assert store.lines(document.id, page.index) == []
    # Page 1 renders without its image: MuPDF cannot parse the image's colour space.
    first = store.page(document.id, 0).error
    assert "(MuPDF: syntax error: could not parse color space" in first


def test_pdf_cut_before_its_page_tree_is_rejected(
    store: Store, corpus: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "vicksburg-cut.pdf"
    data = (corpus / "Seige_of_Vicksburg_Sample_OCR.pdf").read_bytes()
    cut.write_bytes(data[:100_000])

    with pytest.raises(InputFileError) as error:
        store.add_file(cut)

    message = str(error.value)
    assert message.startswith(f"{cut}: damaged or truncated PDF (no page was found")
    assert message.endswith("get a fresh copy")
    assert store.documents() == []
    assert list((store.root / "files").iterdir()) == []


def test_pdf_cut_too_short_is_rejected(filled_store: Store, tmp_path: Path) -> None:
    """A PDF cut before its first page's objects cannot be repaired at all."""
    store = filled_store
    whole = write_text_pdf(tmp_path / "t.pdf", [[f"Hoja {n}"] for n in range(13)])
    cut = tmp_path / "sin final.pdf"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.1)])
    before = snapshot(store)

    with pytest.raises(InputFileError) as error:
        store.add_file(cut)

    message = str(error.value)
    assert message.startswith(f"{cut}: damaged or truncated PDF")
    assert "fresh copy" in message
    assert snapshot(store) == before
    assert not list((store.root / "files").glob(".tmp-*"))


@pytest.mark.parametrize("how", ["file", "upload"])
def test_zero_byte_file_is_rejected(filled_store: Store, tmp_path: Path, how: str):
    store = filled_store
    empty = tmp_path / "vacío.pdf"
    empty.write_bytes(b"")
    before = snapshot(store)

    with pytest.raises(InputFileError) as error:
        if how == "file":
            store.add_file(empty)
        else:
            store.add_bytes(b"", "vacío.pdf")

    assert "vacío.pdf: the file is empty" in str(error.value)
    assert snapshot(store) == before


def test_jpeg_named_pdf_is_read_as_jpeg(store: Store, tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=120)
    page.insert_text((30, 70), "Factura del Año", fontsize=28, fontname="helv")
    pixmap = page.get_pixmap(dpi=150)
    jpeg = tmp_path / "escaneo.pdf"
    jpeg.write_bytes(pixmap.tobytes("jpeg"))

    document = store.add_file(jpeg)
    report = read_document(store, document.id)

    assert document.kind == "jpeg"
    assert document.filename == "escaneo.pdf"
    assert store.source_path(document.id).suffix == ".jpg"
    assert report.failures == {}
    assert similarity(page_text(store, document.id, 0), "Factura del Año") > 0.9


# -- page geometry: CropBox, /Rotate and a MediaBox off the origin ----------------
#
# ocrkit's boxes are in points of the page as shown: after /Rotate, inside the
# CropBox, origin at the top-left corner (``Line.bbox_pt`` and the exported x0..y1).
# PyMuPDF's ``search_for`` returns rectangles of the unrotated page, relative to
# the CropBox's top-left corner. ``page.derotation_matrix`` maps a shown point to
# that space, so an exported box mapped through it must cover the word's rectangle.

ROTATED_WORDS = {"Dirección": (60, 100), "Pingüino": (250, 300), "Cuaderno": (100, 650)}


def write_rotated_cropped_pdf(path: Path) -> Path:
    """Write a landscape page with a CropBox and /Rotate 90, its words upright."""
    doc = pymupdf.open()
    page = doc.new_page(width=842, height=595)
    page.set_cropbox(pymupdf.Rect(60, 50, 800, 560))
    page.set_rotation(90)
    for word, shown in ROTATED_WORDS.items():
        # Text turned 90 degrees anticlockwise reads upright once /Rotate 90 turns
        # the page clockwise.
        point = pymupdf.Point(shown) * page.derotation_matrix
        page.insert_text(point, word, fontsize=24, fontname="helv", rotate=90)
    # Left of the CropBox: on the MediaBox, but cropped away.
    page.insert_text((-30, 300), "FUERA", fontsize=24, fontname="helv", rotate=90)
    doc.save(path)
    doc.close()
    return path


def covers(outer: pymupdf.Rect, inner: pymupdf.Rect, tolerance: float = 2.0) -> bool:
    """Return whether ``outer`` contains ``inner``, give or take ``tolerance`` pt."""
    return (
        outer.x0 <= inner.x0 + tolerance
        and outer.y0 <= inner.y0 + tolerance
        and outer.x1 >= inner.x1 - tolerance
        and outer.y1 >= inner.y1 - tolerance
    )


def match_rows(frame: pd.DataFrame, words: list[str]) -> dict[str, pd.Series]:
    """Return, for each word, the exported row whose text is closest to it."""
    matched = {}
    for word in words:
        scores = [similarity(text, word) for text in frame["text"]]
        best = int(np.argmax(scores))
        assert scores[best] > 0.8, (word, frame["text"].tolist())
        matched[word] = frame.iloc[best]
    return matched


def test_cropbox_and_rotate_boxes_cover_words(store: Store, tmp_path: Path) -> None:
    pdf = write_rotated_cropped_pdf(tmp_path / "girada.pdf")
    document = store.add_file(pdf)
    read_document(store, document.id)
    frame = lines_frame(store, [document.id])
    original = pymupdf.open(pdf)[0]

    page = store.page(document.id, 0)
    assert (page.width_pt, page.height_pt) == (510, 740)  # the CropBox, turned
    assert page.rotation == 0  # upright as shown: ocrkit turned nothing
    assert page.width_px > page.width_pt * DEFAULT_DPI / 72 - 2
    assert len(frame) == len(ROTATED_WORDS), frame["text"].tolist()
    assert not any("FUERA" in text.upper() for text in frame["text"])
    for word, row in match_rows(frame, list(ROTATED_WORDS)).items():
        shown = pymupdf.Rect(row["x0"], row["y0"], row["x1"], row["y1"])
        unrotated = shown * original.derotation_matrix
        (found,) = original.search_for(word)
        assert covers(unrotated, found), (word, unrotated, found)
        # The box is no more than a few points larger than the word.
        assert unrotated.get_area() < 1.6 * found.get_area(), (word, unrotated, found)


def test_mediabox_off_origin_boxes_cover_words(store: Store, tmp_path: Path) -> None:
    words = {"Expediente": (72, 120), "Señora": (300, 400), "Ciudad": (120, 700)}
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    doc.xref_set_key(page.xref, "MediaBox", "[100 200 712 992]")
    page = doc.reload_page(page)
    for word, point in words.items():
        page.insert_text(point, word, fontsize=24, fontname="helv")
    doc.save(tmp_path / "desplazada.pdf")
    doc.close()

    document = store.add_file(tmp_path / "desplazada.pdf")
    read_document(store, document.id)
    frame = lines_frame(store, [document.id])
    original = pymupdf.open(tmp_path / "desplazada.pdf")[0]

    assert original.mediabox.x0 == 100  # MuPDF keeps the offset ...
    assert tuple(original.rect) == (0, 0, 612, 792)  # ... and shows the page at 0, 0
    page_read = store.page(document.id, 0)
    assert (page_read.width_pt, page_read.height_pt) == (612, 792)
    assert len(frame) == len(words), frame["text"].tolist()
    for word, row in match_rows(frame, list(words)).items():
        box = pymupdf.Rect(row["x0"], row["y0"], row["x1"], row["y1"])
        (found,) = original.search_for(word)
        assert covers(box, found), (word, box, found)
        assert box.get_area() < 1.6 * found.get_area(), (word, box, found)


# -- pixel budget ----------------------------------------------------------------

# Run in a fresh process, so that its peak memory is that of reading one page.
READ_IN_CHILD = """
import sys
from ocrkit.store import Store
from ocrkit.reading import read_document
store = Store("storage")
document = store.add_file(sys.argv[1])
_result = {"pages": []}
for dpi in [float(value) for value in sys.argv[2:]]:
    report = read_document(store, document.id, pages=[0], dpi=dpi)
    _result["pages"].append(report.pages[0].to_dict())
_result["lines"] = [[line.text, *line.bbox_pt] for line in store.lines(document.id)]
"""


def read_in_child(pdf: Path, *dpis: float) -> dict[str, object]:
    """Read page 1 of a PDF at each dpi in a new process; return pages and lines."""
    return run_measured(READ_IN_CHILD, pdf.parent, str(pdf), *map(str, dpis))


def test_huge_blank_page_is_rendered_within_budget(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page(width=120 / 2.54 * 72, height=90 / 2.54 * 72)  # 120 x 90 cm
    doc.save(tmp_path / "mural.pdf")

    result = read_in_child(tmp_path / "mural.pdf", DEFAULT_DPI, 600)

    pages = result["pages"]
    assert isinstance(pages, list)
    for page, dpi in zip(pages, (DEFAULT_DPI, 600), strict=True):
        assert page["status"] == "no_text", page
        assert page["width_px"] * page["height_px"] <= DEFAULT_MAX_PIXELS
        assert page["width_px"] * page["height_px"] > 0.99 * DEFAULT_MAX_PIXELS
        assert page["dpi"] < dpi
    assert "mural.pdf page 1: rendering at 155 dpi instead of 600" in str(
        result["stderr"]
    )
    assert float(result["max_rss_mb"]) < MAX_RSS_MB, result["max_rss_mb"]


def test_tall_page_is_read_whole(tmp_path: Path) -> None:
    baselines = [100, 5000, 10000, 15000, 19900]
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=20000)
    for y in baselines:
        page.insert_text((72, y), f"Renglón a {y} puntos", fontsize=24, fontname="helv")
    doc.save(tmp_path / "rollo.pdf")

    result = read_in_child(tmp_path / "rollo.pdf", DEFAULT_DPI)

    (page,) = result["pages"]  # type: ignore[misc]
    assert page["status"] == "done", page
    assert page["width_px"] * page["height_px"] <= DEFAULT_MAX_PIXELS
    lines = result["lines"]
    assert isinstance(lines, list)
    assert len(lines) == len(baselines), lines
    for (text, _x0, y0, _x1, y1), baseline in zip(lines, baselines, strict=True):
        assert similarity(text, f"Renglón a {baseline} puntos") > 0.9, text
        assert y0 < baseline < y1 + 8, (text, y0, y1)
    assert float(result["max_rss_mb"]) < MAX_RSS_MB, result["max_rss_mb"]


def test_big_image_in_small_place_keeps_dpi(tmp_path: Path) -> None:
    side = np.arange(6000, dtype=np.uint16)
    pixels = np.empty((6000, 6000, 3), np.uint8)
    pixels[..., 0] = side[None, :] % 256
    pixels[..., 1] = side[:, None] % 256
    pixels[..., 2] = (side[None, :] + side[:, None]) % 256
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    square = 2 / 2.54 * 72  # 2 cm
    page.insert_image(pymupdf.Rect(72, 72, 72 + square, 72 + square), stream=buffer)
    page.insert_text((72, 300), "Sello del registro", fontsize=24, fontname="helv")
    doc.save(tmp_path / "sello.pdf")

    result = read_in_child(tmp_path / "sello.pdf", DEFAULT_DPI)

    (page,) = result["pages"]  # type: ignore[misc]
    assert page["status"] == "done", page
    assert round(page["dpi"]) == DEFAULT_DPI
    texts = [line[0] for line in result["lines"]]  # type: ignore[union-attr]
    assert any(similarity(text, "Sello del registro") > 0.9 for text in texts), texts
    assert float(result["max_rss_mb"]) < MAX_RSS_MB, result["max_rss_mb"]


# -- image modes -----------------------------------------------------------------

IMAGE_LINES = ["Año de la Pingüina", "Dirección ¿Qué?"]


def ink_mask() -> np.ndarray:
    """Return the coverage (0-255) of two lines of text rendered at 200 dpi."""
    doc = pymupdf.open()
    page = doc.new_page(width=360, height=100)
    for number, text in enumerate(IMAGE_LINES):
        page.insert_text((20, 45 + 35 * number), text, fontsize=22, fontname="helv")
    pixmap = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
    grey = np.frombuffer(pixmap.samples, np.uint8).reshape(pixmap.height, -1)
    return 255 - grey


def image_variants() -> dict[str, tuple[Image.Image, str]]:
    """Return the same two lines as images of many modes, with their file format."""
    ink = ink_mask()
    height, width = ink.shape
    grey = 255 - ink
    variants: dict[str, tuple[Image.Image, str]] = {}

    def rgba(text: int, ground: int) -> Image.Image:
        # The colour channels hold the ground everywhere except under the text,
        # and alpha hides the ground: only the text is visible.
        pixels = np.full((height, width, 4), ground, np.uint8)
        share = ink[..., None].astype(np.float32) / 255
        pixels[..., :3] = (text * share + ground * (1 - share)).astype(np.uint8)
        pixels[..., 3] = ink
        return Image.fromarray(pixels, "RGBA")

    variants["black text, hidden black ground"] = (rgba(0, 0), "PNG")
    variants["white text, hidden white ground"] = (rgba(255, 255), "PNG")
    variants["white text, hidden black ground"] = (rgba(255, 0), "PNG")
    variants["black text, hidden white ground"] = (rgba(0, 255), "PNG")
    grey_alpha = np.stack([np.zeros_like(ink), ink], axis=-1)
    variants["grey and alpha"] = (Image.fromarray(grey_alpha, "LA"), "PNG")
    variants["grey"] = (Image.fromarray(grey, "L"), "PNG")
    variants["16-bit grey"] = (Image.fromarray(grey.astype(np.uint16) * 257), "PNG")
    rgb = Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")
    variants["palette"] = (rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG")
    variants["CMYK JPEG"] = (rgb.convert("CMYK"), "JPEG")
    return variants


@pytest.fixture(scope="module")
def image_mode_texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Read every image variant through the store; return the text of each."""
    folder = tmp_path_factory.mktemp("modes")
    texts = {}
    with Store(folder / "storage") as store:
        for name, (image, fmt) in image_variants().items():
            buffer = io.BytesIO()
            image.save(buffer, fmt, dpi=(200, 200))
            suffix = ".jpg" if fmt == "JPEG" else ".png"
            document = store.add_bytes(buffer.getvalue(), f"{name}{suffix}")
            assert Image.open(store.source_path(document.id)).mode == image.mode
            read_document(store, document.id)
            texts[name] = page_text(store, document.id, 0)
    return texts


@pytest.mark.parametrize("name", list(image_variants()))
def test_image_mode_gives_same_text(image_mode_texts: dict[str, str], name: str):
    reference = image_mode_texts["grey"]
    assert similarity(reference, "\n".join(IMAGE_LINES)) > 0.9, reference
    assert image_mode_texts[name] == reference


# -- pages without text ----------------------------------------------------------


def photo_like(height: int, width: int) -> np.ndarray:
    """Return a smooth colour gradient with soft blobs and noise, and no text."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack(
        [x / width * 200 + 30, y / height * 180 + 40, (x + y) / (width + height) * 150],
        axis=-1,
    )
    for cx, cy, radius in ((0.3, 0.35, 0.15), (0.7, 0.6, 0.22)):
        blob = (x - cx * width) ** 2 + (y - cy * height) ** 2 < (radius * width) ** 2
        pixels[blob] *= 0.7
    pixels += rng.normal(0, 10, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def test_blank_page_and_photo_are_no_text(store: Store, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(photo_like(600, 800)).save(buffer, "JPEG", quality=85)
    doc = pymupdf.open()
    page = doc.new_page(width=SMALL_PAGE[0], height=SMALL_PAGE[1])
    page.insert_text((40, 80), "Texto del Año", fontsize=22, fontname="helv")
    doc.new_page(width=SMALL_PAGE[0], height=SMALL_PAGE[1])
    page = doc.new_page(width=SMALL_PAGE[0], height=SMALL_PAGE[1])
    page.insert_image(page.rect, stream=buffer.getvalue())
    doc.save(tmp_path / "mixto.pdf")

    document = store.add_file(tmp_path / "mixto.pdf")
    report = read_document(store, document.id)

    assert report.failures == {}
    statuses = [page.status for page in store.pages(document.id)]
    assert statuses == [PageStatus.done, PageStatus.no_text, PageStatus.no_text]
    assert similarity(page_text(store, document.id, 0), "Texto del Año") > 0.9
    assert store.lines(document.id, 1) == []
    assert store.lines(document.id, 2) == []


def tiny_text_strip() -> np.ndarray:
    """Return a 200 x 15 px image holding one line of 12 pt text at 72 dpi."""
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=15)
    page.insert_text((4, 12), "Año 2024 Pingüino", fontsize=12, fontname="helv")
    pixmap = page.get_pixmap(dpi=72)
    return np.frombuffer(pixmap.samples, np.uint8).reshape(15, 200, 3)


def tiny_images() -> dict[str, np.ndarray]:
    """Return small images without text, by file name."""
    rule = np.full((15, 200, 3), 255, np.uint8)
    rule[5:9, 20:180] = 0  # a thick horizontal rule, no letters
    noise = np.random.default_rng(1).integers(0, 255, (10, 10, 3), np.uint8)
    return {
        "blanco-200x15.png": np.full((15, 200, 3), 255, np.uint8),
        "raya-200x15.png": rule,
        "blanco-10x10.png": np.full((10, 10, 3), 255, np.uint8),
        "ruido-10x10.png": noise,
        "punto-1x1.png": np.zeros((1, 1, 3), np.uint8),
    }


@pytest.mark.parametrize("name", list(tiny_images()))
def test_tiny_image_without_text_is_no_text(store: Store, name: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(tiny_images()[name]).save(buffer, "PNG")
    document = store.add_bytes(buffer.getvalue(), name)
    report = read_document(store, document.id)

    assert report.failures == {}
    assert store.page(document.id, 0).status == PageStatus.no_text
    assert store.lines(document.id) == []


def test_tiny_image_with_text_is_read(store: Store) -> None:
    buffer = io.BytesIO()
    Image.fromarray(tiny_text_strip()).save(buffer, "PNG")
    document = store.add_bytes(buffer.getvalue(), "tira-200x15.png")
    read_document(store, document.id)

    assert store.page(document.id, 0).status == PageStatus.done
    assert "2024" in page_text(store, document.id, 0)


# -- export ----------------------------------------------------------------------

HARD_TEXTS = [
    "vertical\x0btab",
    "form\x0cfeed",
    "start\x02of text",
    "nul\x00inside",
    "carriage\rreturn",
    "windows\r\nline end",
    "unix\nline end",
    "line\u2028separator",
    "next\x85line",
    '"quoted", with comma; and semicolon',
    "¿Qué? ¡Hola! Año Pingüino",
]


def hard_rows() -> list[dict[str, object]]:
    """Return line rows with awkward text and numpy numbers of several types."""
    return [
        {
            "document": "d1",
            "file": "año.pdf",
            "page": np.int64(1),
            "line": np.int32(n + 1),
            "x0": np.float32(10.5),
            "y0": np.float32(20.25),
            "x1": np.float64(110.125),
            "y1": np.int64(40),
            "text": text,
            "confidence": np.float32(0.875),
            "origin": "ocr",
            "verified": np.bool_(n % 2),
            "line_id": np.int64(1000 + n),
            "updated_at": "2026-01-01T00:00:00.000+00:00",
        }
        for n, text in enumerate(HARD_TEXTS)
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_every_row_survives_export(tmp_path: Path, fmt: str) -> None:
    frame = frame_from_rows(hard_rows())
    path = export_lines(frame, tmp_path / f"lineas.{fmt}", fmt, bom=True)
    back = read_lines(path)

    assert len(back) == len(HARD_TEXTS)
    assert back["line_id"].tolist() == [1000 + n for n in range(len(HARD_TEXTS))]
    assert back["x0"].tolist() == [10.5] * len(HARD_TEXTS)
    assert back["y1"].tolist() == [40.0] * len(HARD_TEXTS)
    assert back["confidence"].tolist() == [0.875] * len(HARD_TEXTS)
    assert back["verified"].tolist() == [bool(n % 2) for n in range(len(HARD_TEXTS))]
    assert back["file"].tolist() == ["año.pdf"] * len(HARD_TEXTS)
    if fmt == "csv":
        # CSV drops control characters other than tab and newline, and turns
        # carriage returns into newlines, which quoted cells keep.
        assert back["text"].tolist()[:4] == [
            "verticaltab",
            "formfeed",
            "startof text",
            "nulinside",
        ]
        assert back["text"].tolist()[4:6] == ["carriage\nreturn", "windows\nline end"]
        assert back["text"].tolist()[6:] == HARD_TEXTS[6:]
    else:
        assert back["text"].tolist() == HARD_TEXTS


def test_csv_numbers_are_plain(tmp_path: Path) -> None:
    path = export_lines(frame_from_rows(hard_rows()), tmp_path / "l.csv", "csv")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))

    assert len(rows) == len(HARD_TEXTS)
    for row in rows:
        assert row["page"] == "1"
        assert row["line_id"].isdigit()
        assert row["x0"] == "10.5"
        assert row["y1"] == "40.0"
        assert row["confidence"] == "0.875"
        assert row["verified"] in ("True", "False")


def test_jsonl_numbers_are_plain(tmp_path: Path) -> None:
    path = export_lines(frame_from_rows(hard_rows()), tmp_path / "l.jsonl", "jsonl")
    # JSON Lines ends records with "\n" only; str.splitlines would also split at
    # U+2028 and U+0085 inside the text.
    lines = path.read_text("utf-8").rstrip("\n").split("\n")
    records = [json.loads(line) for line in lines]

    assert len(records) == len(HARD_TEXTS)
    for record in records:
        for key in ("page", "line", "line_id"):
            assert type(record[key]) is int, (key, record[key])
        for key in ("x0", "y0", "x1", "y1", "confidence"):
            assert type(record[key]) in (int, float), (key, record[key])
        assert type(record["verified"]) is bool
    assert records[0]["x0"] == 10.5
    assert records[0]["confidence"] == 0.875


# -- CSV for spreadsheets --------------------------------------------------------

SPANISH_WORDS = ["Dirección", "Año", "Pingüino", "¿Qué?", "¡Hola!"]


def spanish_frame() -> pd.DataFrame:
    """Return a line table of Spanish words, from a file with an accented name."""
    rows = hard_rows()[: len(SPANISH_WORDS)]
    for row, word in zip(rows, SPANISH_WORDS, strict=True):
        row["text"] = word
    return frame_from_rows(rows)


@pytest.mark.parametrize("bom", [True, False])
def test_spanish_csv_reads_back_identical(tmp_path: Path, bom: bool) -> None:
    frame = spanish_frame()
    path = export_lines(frame, tmp_path / "palabras.csv", "csv", bom=bom)
    data = path.read_bytes()

    assert data.startswith(b"\xef\xbb\xbf") == bom
    text = data.decode("utf-8-sig")  # strict: raises on any byte that is not UTF-8
    assert unicodedata.is_normalized("NFC", text)
    for word in SPANISH_WORDS:
        assert word.encode("utf-8") in data
    back = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    assert back["text"].tolist() == SPANISH_WORDS
    assert back.columns[0] == "document"
    pd.testing.assert_frame_equal(read_lines(path), frame)


def test_spanish_csv_opens_in_libreoffice(tmp_path: Path) -> None:
    """LibreOffice Calc imports the BOM CSV as UTF-8 with every accent intact.

    Headless conversion takes the import options a user picks in Calc's text
    import dialog: comma, double quote, UTF-8 (character set 76).
    """
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    source = export_lines(spanish_frame(), tmp_path / "palabras.csv", "csv", bom=True)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--headless",
            "--infilter=CSV:44,34,76,1",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    cells = xlsx_cells(out / "palabras.xlsx")

    assert cells[0][0] == "document"  # the BOM is not part of the first cell
    text_column = cells[0].index("text")
    assert [row[text_column] for row in cells[1:]] == SPANISH_WORDS
    assert {row[cells[0].index("file")] for row in cells[1:]} == {"año.pdf"}


def xlsx_cells(path: Path) -> list[list[str]]:
    """Return the cells of the first sheet of an .xlsx file as text, row by row."""
    import xml.etree.ElementTree as ElementTree
    import zipfile

    namespace = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as archive:
        shared = [
            "".join(node.itertext())
            for node in ElementTree.fromstring(
                archive.read("xl/sharedStrings.xml")
            ).findall("x:si", namespace)
        ]
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iterfind(".//x:row", namespace):
        cells = []
        for cell in row.iterfind("x:c", namespace):
            value = cell.findtext("x:v", default="", namespaces=namespace)
            cells.append(shared[int(value)] if cell.get("t") == "s" else value)
        rows.append(cells)
    return rows
