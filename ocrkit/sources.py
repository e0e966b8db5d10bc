"""Open PDFs and images and render their pages as RGB arrays.

PyMuPDF renders PDF pages; Pillow decodes image files so that palette, alpha, grey,
CMYK and 16-bit images all reach an engine as 8-bit RGB. PyMuPDF objects are not
safe to share between threads: open one ``Source`` per thread or process.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageOps, UnidentifiedImageError

from ocrkit.errors import EncryptedPdfError, InputFileError

log = logging.getLogger(__name__)

DEFAULT_DPI = 200
# 40 million pixels is an A3 page at 400 dpi and 120 MB as RGB; larger pages are
# rendered at a lower dpi so that the image fits.
DEFAULT_MAX_PIXELS = 40_000_000
MIN_DPI = 24
IMAGE_DEFAULT_DPI = 72.0
# Exceptions Pillow 13 raises on damaged or truncated image files. Besides OSError, a
# TIFF cut before its first IFD raises TypeError ("Missing dimensions"), and the
# PNG, GIF and TIFF plugins raise EOFError when a frame is missing.
_IMAGE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    TypeError,
    EOFError,
)

_MAGIC = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
SUFFIXES = {"pdf": ".pdf", "png": ".png", "jpeg": ".jpg", "tiff": ".tif"}


def sniff_kind(data: bytes, path: str | Path) -> str:
    """Return ``pdf``, ``png``, ``jpeg`` or ``tiff`` from a file's first bytes.

    The name's suffix is ignored: a JPEG renamed ``.pdf`` is a JPEG.
    """
    if not data:
        raise InputFileError(path, "the file is empty", fix="Check the upload or copy")
    head = data[:1024]
    for magic, kind in _MAGIC:
        if kind == "pdf" and magic in head:
            return kind
        if head.startswith(magic):
            return kind
    raise InputFileError(
        path,
        "not a PDF, PNG, JPEG or TIFF file (unknown content)",
        fix="Convert it to PDF or one of those image formats",
    )


@dataclass(frozen=True)
class RenderedPage:
    """A page image and the geometry needed to map its pixels back to points."""

    image: np.ndarray
    dpi: float
    width_pt: float
    height_pt: float


def normalise_image(image: Image.Image) -> np.ndarray:
    """Convert any Pillow image to an 8-bit RGB array with dark text on light.

    Transparent images are composited on white and on black, and the one with more
    contrast is kept, so text drawn on a hidden background of its own colour stays
    visible. A result that is mostly dark is inverted, because PP-OCR reads dark
    text on a light ground best.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        high = array.max() or 1.0
        image = Image.fromarray((array * (255.0 / high)).astype(np.uint8), "L")
    elif image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        high = array.max() or 1.0
        image = Image.fromarray(
            np.clip(array * (255.0 / high), 0, 255).astype(np.uint8)
        )
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
            weight = alpha[..., None].astype(np.float32) / 255.0
            on_white = rgb * weight + 255.0 * (1.0 - weight)
            on_black = rgb * weight
            pick = on_white if on_white.std() >= on_black.std() else on_black
            return _dark_on_light(pick.astype(np.uint8))
    if image.mode in ("1", "L"):
        # Inverting one channel and then widening it is a third of the work.
        return _grey_to_rgb(_dark_on_light(np.asarray(image.convert("L"))))
    rgb_array = np.asarray(image.convert("RGB"))
    return _dark_on_light(rgb_array)


def _dark_on_light(pixels: np.ndarray) -> np.ndarray:
    grey_mean = float(pixels.mean()) if pixels.size else 255.0
    if grey_mean < 96:
        pixels = 255 - pixels
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def fit_dpi(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """Return ``dpi`` lowered so that the page image has at most ``max_pixels``.

    MuPDF rounds each side of the image up to whole pixels, so each side counts
    one pixel more here than its exact length.
    """
    width_in, height_in = width_pt / 72.0, height_pt / 72.0
    if (width_in * dpi + 1) * (height_in * dpi + 1) <= max_pixels:
        return dpi
    # The positive root of (width_in * d + 1) * (height_in * d + 1) = max_pixels.
    area, perimeter = width_in * height_in, width_in + height_in
    root = math.sqrt(perimeter**2 + 4 * area * (max_pixels - 1))
    return math.floor((root - perimeter) / (2 * area) * 100) / 100


class Source:
    """An opened PDF or image file whose pages can be rendered one at a time."""

    def __init__(
        self,
        path: str | Path,
        *,
        password: str | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        # Messages name the file as people know it, not the store's copy.
        self.name = name or str(path)
        try:
            with self.path.open("rb") as handle:
                head = handle.read(1024)
        except OSError as exc:
            raise InputFileError(self.name, f"cannot be read ({exc.strerror})") from exc
        self.kind = sniff_kind(head, self.name)
        self._doc: pymupdf.Document | None = None
        self._image: Image.Image | None = None
        # Files are opened, not read whole: pages are decoded one at a time.
        if self.kind == "pdf":
            self._doc = _open_pdf(self.path, self.name, password)
            self.page_count = self._doc.page_count
        else:
            self._image = _open_image(self.path, self.name)
            self.page_count = getattr(self._image, "n_frames", 1)

    def close(self) -> None:
        """Release the file."""
        if self._doc is not None:
            self._doc.close()
        if self._image is not None:
            self._image.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page_size_pt(self, index: int) -> tuple[float, float]:
        """Return the visible width and height of a page in points."""
        self._check_index(index)
        if self._doc is not None:
            rect = self._doc[index].rect
            return (rect.width, rect.height)
        frame = self._frame(index)
        dpi = _image_dpi(frame)
        return (frame.width * 72.0 / dpi, frame.height * 72.0 / dpi)

    def render(
        self,
        index: int,
        dpi: float = DEFAULT_DPI,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> RenderedPage:
        """Render a page as an RGB array.

        PDF pages honour ``/Rotate`` and the CropBox; their dpi is lowered to fit
        ``max_pixels`` before anything is allocated. Images keep their own pixels
        and resolution, unless they exceed ``max_pixels``.
        """
        self._check_index(index)
        if self._doc is not None:
            return self._render_pdf_page(index, dpi, max_pixels)
        return self._render_image(index, max_pixels)

    def text_layer(self, index: int) -> pymupdf.Page | None:
        """Return the PyMuPDF page for text extraction, or None for images."""
        self._check_index(index)
        if self._doc is None:
            return None
        page = self._doc[index]
        self._check_repaired_page(page, index)
        return page

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.page_count:
            raise InputFileError(
                self.name,
                f"has no page {index + 1} (it has {self.page_count})",
            )

    def _render_pdf_page(self, index: int, dpi: float, max_pixels: int) -> RenderedPage:
        assert self._doc is not None
        page = self._doc[index]
        self._check_repaired_page(page, index)
        width_pt, height_pt = page.rect.width, page.rect.height
        if width_pt <= 0 or height_pt <= 0:
            raise InputFileError(self.name, "has an empty page box", page=index + 1)
        used_dpi = fit_dpi(width_pt, height_pt, dpi, max_pixels)
        if used_dpi < MIN_DPI:
            raise InputFileError(
                self.name,
                f"page is {width_pt / 72:.0f} x {height_pt / 72:.0f} inches, too large "
                f"to render within {max_pixels:,} pixels at {MIN_DPI} dpi or more",
                page=index + 1,
                fix="Raise the pixel budget (OCRKIT_MAX_PIXELS) or crop the page",
            )
        if used_dpi < dpi:
            log.warning(
                "%s page %d: rendering at %.0f dpi instead of %.0f to stay within "
                "%d pixels",
                self.name,
                index + 1,
                used_dpi,
                dpi,
                max_pixels,
            )
        repaired = self._doc.is_repaired
        if repaired:
            pymupdf.TOOLS.reset_mupdf_warnings()
        try:
            zoom = used_dpi / 72.0
            grey = _is_grey(page)
            pixmap = page.get_pixmap(
                matrix=pymupdf.Matrix(zoom, zoom),
                alpha=False,
                colorspace=pymupdf.csGRAY if grey else pymupdf.csRGB,
            )
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise InputFileError(
                self.name, f"page cannot be rendered ({exc})", page=index + 1
            ) from exc
        if repaired:
            self._check_rendered_whole(index)
        if grey:
            samples = np.frombuffer(pixmap.samples, dtype=np.uint8)
            image = _grey_to_rgb(samples.reshape(pixmap.height, pixmap.width))
            return RenderedPage(image, used_dpi, width_pt, height_pt)
        image = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(
            pixmap.height, pixmap.width, 3
        )
        # MuPDF rounds the pixel size up, so the last row or column may lie partly
        # outside the page. Every pixel is still at ``used_dpi``, so rendering at it
        # again gives the same pixels.
        return RenderedPage(image.copy(), used_dpi, width_pt, height_pt)

    def _check_repaired_page(self, page: pymupdf.Page, index: int) -> None:
        """Raise for a page whose objects a repaired (truncated) PDF lost.

        MuPDF renders such a page blank without an error, which would pass for a
        page without text.
        """
        assert self._doc is not None
        if not self._doc.is_repaired:
            return
        problem = _missing_page_objects(self._doc, page)
        if problem:
            raise self._damaged_page(index, f"because {problem}")

    def _check_rendered_whole(self, index: int) -> None:
        """Raise when MuPDF reported a cut or broken object while rendering a page.

        In a repaired PDF, a page whose image or content stream was cut short
        renders partly or entirely blank, with only a warning from MuPDF.
        """
        warnings = pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines()
        damage = [line for line in warnings if _DAMAGE_WARNING.search(line)]
        if damage:
            raise self._damaged_page(index, f"(MuPDF: {damage[0]})")

    def _damaged_page(self, index: int, reason: str) -> InputFileError:
        return InputFileError(
            self.name,
            f"the page is damaged {reason}",
            page=index + 1,
            fix="The file looks truncated or corrupt; add a complete copy",
        )

    def _frame(self, index: int) -> Image.Image:
        assert self._image is not None
        try:
            self._image.seek(index)
        except _IMAGE_ERRORS as exc:
            raise InputFileError(
                self.name, f"frame cannot be read ({exc})", page=index + 1
            ) from exc
        return self._image

    def _render_image(self, index: int, max_pixels: int) -> RenderedPage:
        frame = self._frame(index)
        dpi = _image_dpi(frame)
        width_pt = frame.width * 72.0 / dpi
        height_pt = frame.height * 72.0 / dpi
        if frame.width * frame.height > max_pixels:
            scale = math.sqrt(max_pixels / (frame.width * frame.height))
            size = (max(1, int(frame.width * scale)), max(1, int(frame.height * scale)))
            frame = frame.resize(size, Image.Resampling.LANCZOS)
            dpi = dpi * scale
        try:
            image = normalise_image(frame)
        except _IMAGE_ERRORS as exc:
            raise InputFileError(
                self.name, f"image cannot be decoded ({exc})", page=index + 1
            ) from exc
        return RenderedPage(image, dpi, width_pt, height_pt)


def _is_grey(page: pymupdf.Page) -> bool:
    """Return whether a page shows only shades of grey.

    Such a page is a greyscale or black-and-white scan, with at most grey or
    invisible text and grey lines over it. It is rendered in one channel, so MuPDF
    skips converting each pixel to RGB through the scan's colour profile. A grey A4
    scan rendered in 0.076 s at 200 dpi against 0.107 s in RGB, and in 0.058 s
    against 0.130 s at 300 dpi, with the same pixels. The checks take 1 to 5 ms.
    """
    if page.first_annot is not None or page.first_widget is not None:
        return False
    images = page.get_image_info()
    # A one-bit stencil (colorspace 0) is painted in the current fill colour.
    if not images or any(image["colorspace"] != 1 for image in images):
        return False
    for path in page.get_cdrawings():
        for key in ("color", "fill"):
            if not _grey_colour(path.get(key)):
                return False
    # Type 3 is invisible text, which scanners lay over the image.
    return all(
        span["type"] == 3 or _grey_colour(span["color"])
        for span in page.get_texttrace()
    )


def _grey_colour(colour: tuple[float, ...] | None) -> bool:
    return (
        not colour
        or len(colour) == 1
        or (len(colour) == 3 and colour[0] == colour[1] == colour[2])
    )


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Return a greyscale array as RGB, three equal channels."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_GRAY2RGB)


def empty_render_cache() -> None:
    """Drop the fonts and decoded images MuPDF keeps for pages already rendered.

    MuPDF keeps them in a store of up to 256 MB for as long as their file is
    open. Reading 50 scanned pages from one open PDF grew RSS by 200 MB with it
    and by 36 MB when it was emptied after each page. The next page of a scan
    has images of its own, so emptying it costs no speed.
    """
    pymupdf.TOOLS.store_shrink(100)


def _open_pdf(file: Path, path: str, password: str | None) -> pymupdf.Document:
    try:
        doc = pymupdf.open(file, filetype="pdf")
    except (RuntimeError, ValueError) as exc:
        raise _damaged_pdf(path, exc, file) from exc
    if doc.needs_pass:
        if password is None:
            raise EncryptedPdfError(
                path,
                "the PDF is encrypted and needs a password",
                fix="Give the password (--password on the command line)",
            )
        if not doc.authenticate(password):
            raise EncryptedPdfError(
                path, "the password is wrong", fix="Check the password and try again"
            )
    try:
        # MuPDF reads the page tree only now; a PDF cut short may fail here.
        page_count = doc.page_count
    except RuntimeError as exc:
        raise _damaged_pdf(path, exc, file) from exc
    if page_count == 0 and doc.is_repaired:
        raise InputFileError(
            path,
            "damaged or truncated PDF (no page was found in what is left of it)",
            fix="Repair it (for example with qpdf) or get a fresh copy",
        )
    if page_count == 0:
        raise InputFileError(path, "the PDF has no pages")
    if doc.is_repaired and file not in _REPAIRED_LOGGED:
        _REPAIRED_LOGGED.add(file)
        log.warning("%s: the PDF was damaged and MuPDF repaired it", path)
    return doc


# Files whose repair was logged already: this process opens a file several times.
_REPAIRED_LOGGED: set[Path] = set()
# MuPDF warnings, while rendering a page of a repaired PDF, that a stream or object
# of the page was cut short or is broken.
_DAMAGE_WARNING = re.compile(
    r"syntax error|may not be correct|truncated|premature end|not a stream|"
    r"Length incorrect|could not parse|missing",
    re.IGNORECASE,
)


def _describe(exc: Exception, file: Path, path: str) -> str:
    """Return an exception's message with the file named as the user knows it.

    MuPDF and Pillow put the path they opened in their messages. The stored
    copy's path means nothing to the user, and it would show a dashboard's users
    where the server keeps its files.
    """
    return str(exc).replace(str(file), Path(path).name)


def _damaged_pdf(path: str, exc: Exception, file: Path) -> InputFileError:
    return InputFileError(
        path,
        f"damaged or truncated PDF ({_describe(exc, file, path)})",
        fix="Repair it (for example with qpdf) or get a fresh copy",
    )


def _missing_page_objects(doc: pymupdf.Document, page: pymupdf.Page) -> str:
    """Return what a page lacks among its page object, contents and images."""
    try:
        if doc.xref_get_key(page.xref, "Type") != ("name", "/Page"):
            return "its page object is missing"
        if not all(doc.xref_is_stream(xref) for xref in page.get_contents()):
            return "its content stream is missing"
        images = [item[0] for item in page.get_images(full=True)]
        if not all(doc.xref_is_stream(xref) for xref in images):
            return "an image on it is missing"
    except (RuntimeError, ValueError) as exc:
        return f"its objects are missing or unreadable (MuPDF: {exc})"
    return ""


def _open_image(file: Path, path: str) -> Image.Image:
    """Open an image lazily and decode its first frame to check it is readable."""
    try:
        image = Image.open(file)
        image.load()
        # Counting frames follows the file's chain of frames, which may be cut.
        getattr(image, "n_frames", 1)
    except Image.DecompressionBombError as exc:
        raise InputFileError(
            path,
            f"the image is too large to decode safely ({exc})",
            fix="Scale it down before adding it",
        ) from exc
    except _IMAGE_ERRORS as exc:
        raise InputFileError(
            path,
            f"damaged or unreadable image ({_describe(exc, file, path)})",
            fix="Get a fresh copy",
        ) from exc
    return image


def _image_dpi(image: Image.Image) -> float:
    dpi = image.info.get("dpi")
    if dpi:
        try:
            value = float(dpi[0])
        except (TypeError, ValueError, IndexError):
            value = 0.0
        if 20.0 <= value <= 2400.0:
            return value
    return IMAGE_DEFAULT_DPI
