"""Opening and rendering PDFs and images, and the errors bad files get."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from ocrkit import sources
from ocrkit.errors import EncryptedPdfError, InputFileError
from ocrkit.sources import Source, fit_dpi, normalise_image, sniff_kind


def test_pdf_page_renders_at_dpi(corpus: Path) -> None:
    with Source(corpus / "acta-municipal-es.pdf") as source:
        page = source.render(0, 100)
    height, width, channels = page.image.shape
    assert (height, width, channels) == (
        pytest.approx(1169, abs=1),
        pytest.approx(826, abs=1),
        3,
    )
    assert page.dpi == pytest.approx(100, rel=0.01)
    assert (page.width_pt, page.height_pt) == pytest.approx((595, 842), abs=1)


def test_rotate_is_honoured(corpus: Path) -> None:
    with Source(corpus / "rotated_skew.pdf") as source:
        width_pt, height_pt = source.page_size_pt(0)
        page = source.render(0, 72)
    # The MediaBox is landscape; /Rotate 90 shows it as portrait.
    assert (width_pt, height_pt) == pytest.approx((612, 792))
    assert page.image.shape[:2] == (792, 612)


def test_cropbox_limits_the_page(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=600, height=800)
    page.set_cropbox(pymupdf.Rect(100, 100, 400, 500))
    doc.save(tmp_path / "cropped.pdf")
    with Source(tmp_path / "cropped.pdf") as source:
        assert source.page_size_pt(0) == pytest.approx((300, 400))
        assert source.render(0, 72).image.shape[:2] == (400, 300)


def test_multipage_tiff_gives_one_page_per_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (200, 100), shade) for shade in (255, 200, 150)]
    frames[0].save(tmp_path / "three.tif", save_all=True, append_images=frames[1:])
    with Source(tmp_path / "three.tif") as source:
        assert source.page_count == 3
        assert source.render(2).image.shape == (100, 200, 3)


def test_image_keeps_its_own_resolution(corpus: Path) -> None:
    with Source(corpus / "phototest.tif") as source:
        page = source.render(0, dpi=300)
    assert page.image.shape == (480, 640, 3)
    assert page.dpi == pytest.approx(200)


def test_pixel_budget_lowers_dpi(corpus: Path) -> None:
    with Source(corpus / "hugemono.pdf") as source:
        page = source.render(0, 200, max_pixels=10_000_000)
    height, width = page.image.shape[:2]
    assert width * height <= 10_000_000
    assert page.dpi < 30


def test_pixel_budget_refuses_hopeless_page(corpus: Path) -> None:
    with (
        Source(corpus / "hugemono.pdf") as source,
        pytest.raises(InputFileError, match="page 1: .*too large"),
    ):
        source.render(0, 200, max_pixels=100_000)


def test_fit_dpi_keeps_small_pages() -> None:
    assert fit_dpi(595, 842, 200, 40_000_000) == 200
    assert fit_dpi(8400, 8400, 200, 40_000_000) < 60


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0....", "jpeg"),
        (b"II*\x00....", "tiff"),
    ],
)
def test_sniff_kind_by_content(data: bytes, kind: str) -> None:
    assert sniff_kind(data, "x.bin") == kind


def test_sniff_rejects_unknown_content() -> None:
    with pytest.raises(InputFileError, match="notes.pdf: not a PDF, PNG, JPEG or TIFF"):
        sniff_kind(b"hello, this is text", "notes.pdf")


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty.pdf: the file is empty"):
        Source(tmp_path / "empty.pdf")


def test_damaged_pdf_is_rejected(corpus: Path) -> None:
    with pytest.raises(InputFileError, match="invalid.pdf: damaged or truncated PDF"):
        Source(corpus / "invalid.pdf")


def test_image_renamed_pdf_opens_as_image(corpus: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.open(corpus / "phototest.tif").convert("L").save(buffer, "JPEG")
    (tmp_path / "scan.pdf").write_bytes(buffer.getvalue())
    with Source(tmp_path / "scan.pdf") as source:
        assert source.kind == "jpeg"
        assert source.render(0).image.shape == (480, 640, 3)


def test_encrypted_pdf_asks_for_password(corpus: Path) -> None:
    path = corpus / "libreoffice-writer-password.pdf"
    with pytest.raises(EncryptedPdfError, match="needs a password"):
        Source(path)
    with pytest.raises(EncryptedPdfError, match="password is wrong"):
        Source(path, password="nope")
    with Source(path, password="openpassword") as source:
        assert source.render(0, 50).image.mean() < 255


def test_empty_user_password_opens(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "owner only")
    doc.save(
        tmp_path / "owner.pdf",
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        owner_pw="owner-secret",
        user_pw="",
    )
    with Source(tmp_path / "owner.pdf") as source:
        assert source.page_count == 1


def test_pdf_without_pages_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nopages.pdf"
    # PyMuPDF cannot save a PDF without pages, so write the smallest one by hand,
    # with a cross-reference table so that MuPDF need not repair it.
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    )
    offsets = [body.index(b"1 0 obj"), body.index(b"2 0 obj")]
    xref = b"xref\n0 3\n0000000000 65535 f \n" + b"".join(
        b"%010d 00000 n \n" % offset for offset in offsets
    )
    trailer = b"trailer<</Size 3/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % len(body)
    path.write_bytes(body + xref + trailer)
    with pytest.raises(InputFileError, match="nopages.pdf: the PDF has no pages"):
        Source(path)


def test_pdf_repaired_to_no_pages_is_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "sin-tabla.pdf"
    # Without a cross-reference table MuPDF repairs the file and finds no page.
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    with pytest.raises(InputFileError) as error:
        Source(path)
    assert "sin-tabla.pdf: damaged or truncated PDF" in str(error.value)
    assert str(error.value).endswith("get a fresh copy")


def test_page_index_out_of_range(corpus: Path) -> None:
    with (
        Source(corpus / "francais.pdf") as source,
        pytest.raises(InputFileError, match="has no page 5 \\(it has 1\\)"),
    ):
        source.render(4)


def _text_image() -> np.ndarray:
    """Return a mask with a black block of 'ink' in the middle."""
    mask = np.zeros((60, 200), dtype=np.uint8)
    mask[20:40, 30:170] = 255
    return mask


@pytest.mark.parametrize("ink", [0, 255])
def test_transparent_png_shows_text_dark_on_light(ink: int) -> None:
    mask = _text_image()
    rgba = np.zeros((60, 200, 4), dtype=np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = mask
    image = normalise_image(Image.fromarray(rgba, "RGBA"))
    assert image.shape == (60, 200, 3)
    assert image[30, 100].max() < 64  # the ink is dark
    assert image[5, 5].min() > 192  # the ground is light


@pytest.mark.parametrize("mode", ["L", "LA", "P", "CMYK", "I;16", "1"])
def test_every_image_mode_becomes_rgb(mode: str) -> None:
    grey = Image.fromarray(255 - _text_image(), "L")
    converted = grey.convert(mode) if mode != "I;16" else grey.convert("I;16")
    image = normalise_image(converted)
    assert image.dtype == np.uint8
    assert image.shape == (60, 200, 3)
    assert image[30, 100].max() < 64
    assert image[5, 5].min() > 192


def grey_scan_pdf(corpus: Path) -> pymupdf.Document:
    """Return a new one-page PDF holding the acta's grey JPEG scan."""
    document = pymupdf.open()
    with pymupdf.open(corpus / "acta-municipal-es.pdf") as acta:
        document.insert_pdf(acta)
    return document


def rgb_render(path: Path, dpi: float = 200) -> np.ndarray:
    with pymupdf.open(path) as document:
        pixmap = document[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    return np.frombuffer(pixmap.samples, np.uint8).reshape(
        pixmap.height, pixmap.width, 3
    )


@pytest.mark.parametrize(
    ("name", "grey"),
    [
        ("acta-municipal-es.pdf", True),
        ("skew.pdf", True),  # a one-bit scan
        ("Seige_of_Vicksburg_Sample_OCR.pdf", False),  # colour layers
        ("masks.pdf", False),  # stencils painted in colour
        ("multicolumn.pdf", False),  # no image at all
    ],
)
def test_grey_pages_render_as_in_rgb(corpus: Path, name: str, grey: bool) -> None:
    with pymupdf.open(corpus / name) as document:
        assert sources._is_grey(document[0]) is grey
    with Source(corpus / name) as source:
        rendered = source.render(0)
    assert np.array_equal(rendered.image, rgb_render(corpus / name))


@pytest.mark.parametrize("addition", ["red text", "invisible text", "highlight"])
def test_colour_over_a_grey_scan_renders_in_rgb(
    corpus: Path, tmp_path: Path, addition: str
) -> None:
    path = tmp_path / "scan.pdf"
    document = grey_scan_pdf(corpus)
    page = document[0]
    if addition == "red text":
        page.insert_text((72, 800), "Sello: ¡recibido!", color=(1, 0, 0))
    elif addition == "invisible text":
        page.insert_text((72, 800), "capa de texto", render_mode=3)
    else:
        page.add_highlight_annot(pymupdf.Rect(72, 100, 300, 130))
    grey = addition == "invisible text"
    assert sources._is_grey(page) is grey
    document.save(path)
    document.close()
    with Source(path) as source:
        rendered = source.render(0)
    assert np.array_equal(rendered.image, rgb_render(path))
    channels_differ = not np.array_equal(rendered.image[..., 0], rendered.image[..., 2])
    assert channels_differ is not grey
