"""The ``text`` engine: lines taken from a PDF's text layer, and the ``auto`` choice.

The text engine reads lines with PyMuPDF's ``page.get_text("dict")``; reading needs
no page image. Each line keeps its exact box, turned into page pixels at the page's
dpi: PyMuPDF returns coordinates on the unrotated page, so they are mapped through
``page.rotation_matrix`` onto the page as shown (``/Rotate`` applied, CropBox
origin), and rounded to 0.01 pixel. Confidence is 1.

Ligatures are expanded (``ﬁ`` becomes ``fi``): MuPDF splits the glyphs it knows as
ligatures, and the Latin ligature code points U+FB00 to U+FB06 left in the text are
replaced by their letters. Nothing else is normalised, so ``½``, ``²`` or ``…`` stay
as the page shows them.

The ``auto`` engine reads each PDF page from its text layer where the layer contains
real text, and runs OCR on the page image otherwise (see ``assess_text_layer``).
Image files have no text layer and always get OCR.
"""

from __future__ import annotations

import collections
import functools
import logging
import string
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymupdf

from ocrkit.engines import Engine, PageText, get_engine
from ocrkit.errors import EngineError
from ocrkit.models import BBox, RecognizedLine, bbox_to_poly
from ocrkit.sources import Source

log = logging.getLogger(__name__)

# PyMuPDF's flags for get_text("dict") without TEXT_PRESERVE_LIGATURES (so MuPDF
# splits ligatures) and TEXT_PRESERVE_IMAGES (so no image blocks are returned).
# Glyphs whose font has no Unicode mapping come out as U+FFFD.
TEXT_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
_LIGATURE_TABLE = str.maketrans(LIGATURES)

# Thresholds of the text layer check; see assess_text_layer.
MIN_CHARACTERS = 1
MAX_BROKEN_SHARE = 0.2
MIN_ALNUM_SHARE = 0.3
MIN_WORDLIKE_SHARE = 0.5
_PUNCTUATION = string.punctuation + "«»“”‘’„‚¿¡…–—·•"
INVISIBLE_SHARE = 0.5
LARGE_IMAGE_SHARE = 0.5
MIN_CHARACTERS_OVER_IMAGE = 200


def clean_text(text: str) -> str:
    """Replace Latin ligature code points by their letters; keep all else."""
    return text.translate(_LIGATURE_TABLE)


@dataclass(frozen=True)
class LayerLine:
    """A text-layer line in points on the page as shown, and how it is drawn."""

    bbox_pt: BBox
    text: str
    visible: bool


def layer_lines(page: pymupdf.Page) -> list[LayerLine]:
    """Return the non-empty lines of a page's text layer, in content order."""
    # Plain arithmetic on tuples, because pymupdf.Rect and Matrix operations took
    # a quarter of this function's time on pages of 50 lines.
    a, b, c, d, e, f = page.rotation_matrix
    left, top, right, bottom = page.rect
    lines: list[LayerLine] = []
    for block in page.get_text("dict", flags=TEXT_FLAGS).get("blocks", []):
        if block.get("type", 0) != 0:
            continue
        for line in block.get("lines", []):
            spans = line.get("spans", [])
            text = clean_text("".join([span.get("text", "") for span in spans])).strip()
            if not text:
                continue
            # The rotation matrix turns by a multiple of 90 degrees, so two
            # opposite corners give the turned box.
            x0, y0, x1, y1 = line["bbox"]
            xa, xb = a * x0 + c * y0 + e, a * x1 + c * y1 + e
            ya, yb = b * x0 + d * y0 + f, b * x1 + d * y1 + f
            box = (
                max(min(xa, xb), left),
                max(min(ya, yb), top),
                min(max(xa, xb), right),
                min(max(ya, yb), bottom),
            )
            if box[0] >= box[2] or box[1] >= box[3]:
                continue
            # MuPDF reports text drawn in render mode 3 (invisible) with alpha 0.
            visible = any(span.get("alpha", 255) > 0 for span in spans)
            lines.append(LayerLine(box, text, visible))
    return lines


def text_page_lines(page: pymupdf.Page, dpi: float) -> list[RecognizedLine]:
    """Return a page's text-layer lines in page pixels at ``dpi``, in content order.

    The content order is the order the PDF draws its text, the order of
    ``page.get_text()``. Authoring tools write it in reading order, and it reads a
    table row by row, where ``ocrkit.layout.reading_order`` would read it column
    by column.
    """
    return lines_in_pixels(layer_lines(page), dpi)


def lines_in_pixels(lines: list[LayerLine], dpi: float) -> list[RecognizedLine]:
    """Turn text-layer lines in points into recognized lines in pixels at ``dpi``.

    Coordinates are rounded to 0.01 pixel, which keeps the store's rows short.
    """
    scale = dpi / 72.0
    recognized = []
    for line in lines:
        x0, y0, x1, y1 = (round(v * scale, 2) for v in line.bbox_pt)
        poly = bbox_to_poly((x0, y0, x1, y1))
        recognized.append(RecognizedLine(poly=poly, text=line.text, confidence=1.0))
    return recognized


# -- the text layer check ----------------------------------------------------


@dataclass(frozen=True)
class TextLayerAssessment:
    """Whether a page's text layer can stand in for OCR, and why."""

    use_text: bool
    reason: str
    characters: int = 0
    stats: dict[str, float] = field(default_factory=dict)


def assess_text_layer(
    page: pymupdf.Page,
    *,
    trust_invisible_text: bool = False,
    lines: list[LayerLine] | None = None,
) -> TextLayerAssessment:
    """Decide whether a PDF page is read from its text layer or by OCR.

    The cases, checked in this order:

    - No text at all (a scan, an image-only page): OCR.
    - Text that is not text: fonts without a Unicode mapping extract as U+FFFD,
      private-use code points, control characters, or symbol soup such as
      ``"7+%-``. The layer is junk when more than 20% of its characters are
      broken, when under 30% are letters or digits, or when under half of its
      words look like words (see ``text_quality``). Mathematics passes: its
      unmapped symbols and short tokens stay under those limits.
    - Invisible text (render mode 3) making up most of the layer: an earlier OCR
      drawn under or over a scan. Such layers often carry OCR errors
      ("VICKSBUEG"), so the page is OCRed again unless ``trust_invisible_text``.
    - A page-sized image with little visible text (under 200 characters, such as
      a stamp or a page number added to a scan): OCR, which reads the image and
      the visible text alike.
    - Anything else is born-digital text: the text layer, exact and fast.

    ``lines`` are the page's ``layer_lines``, when the caller has them already.
    The share of the page the largest image covers (``stats["image_share"]``) is
    measured only for pages with under 200 visible characters, because finding
    the images takes another pass over the page's content.

    NOTE: text inside a smaller image on a born-digital page (a scanned figure)
    is not read, and neither is a junk layer made of letters (a font whose
    mapping shifts every letter); both pass as real text.
    """
    if lines is None:
        lines = layer_lines(page)
    text = "".join(line.text for line in lines)
    characters = [c for c in text if not c.isspace()]
    if len(characters) < MIN_CHARACTERS:
        return TextLayerAssessment(False, "the page has no text layer")
    stats = text_quality(" ".join(line.text for line in lines))
    count = len(characters)
    if stats["broken_share"] > MAX_BROKEN_SHARE:
        reason = "the text layer has unmapped or private-use characters"
        return TextLayerAssessment(False, reason, count, stats)
    if stats["alnum_share"] < MIN_ALNUM_SHARE or (
        stats["wordlike_share"] < MIN_WORDLIKE_SHARE
    ):
        reason = "the text layer does not read as words"
        return TextLayerAssessment(False, reason, count, stats)
    visible = sum(len(line.text) for line in lines if line.visible)
    invisible_share = 1.0 - visible / max(1, sum(len(line.text) for line in lines))
    stats["invisible_share"] = invisible_share
    if invisible_share > INVISIBLE_SHARE and not trust_invisible_text:
        reason = "the text layer is invisible text, likely from an earlier OCR"
        return TextLayerAssessment(False, reason, count, stats)
    if invisible_share > INVISIBLE_SHARE:
        return TextLayerAssessment(
            True, "invisible text from an earlier OCR, trusted", count, stats
        )
    visible_characters = sum(
        len(line.text.replace(" ", "")) for line in lines if line.visible
    )
    if visible_characters < MIN_CHARACTERS_OVER_IMAGE:
        stats["image_share"] = largest_image_share(page)
        if stats["image_share"] >= LARGE_IMAGE_SHARE:
            reason = "a page-sized image with little text of its own"
            return TextLayerAssessment(False, reason, count, stats)
    return TextLayerAssessment(True, "the page has a text layer", count, stats)


def text_quality(text: str) -> dict[str, float]:
    """Return the shares of broken, alphanumeric and word-like text in ``text``.

    ``broken_share`` counts U+FFFD, private-use and control characters among the
    non-space characters, and ``alnum_share`` counts letters and digits.
    ``wordlike_share`` looks at each whitespace-separated token with its outer
    punctuation removed. A token with two letters or more is a word when letters
    make up 60% of it and come from one script. A token of two characters or more
    with no letter that is not a number is symbol soup, not a word. Single
    letters, lone symbols such as ``€``, numbers and bare punctuation do not count
    either way.
    """
    # Each distinct character is classified once: a page repeats a few dozen.
    counts = collections.Counter(text)
    characters = sum(n for c, n in counts.items() if not c.isspace())
    if not characters:
        return {"broken_share": 0.0, "alnum_share": 0.0, "wordlike_share": 0.0}
    broken = sum(n for c, n in counts.items() if _is_broken(c))
    alnum = sum(n for c, n in counts.items() if c.isalnum())
    counted = 0
    wordlike = 0
    for token in text.split():
        core = token.strip(_PUNCTUATION)
        letters = [c for c in core if c.isalpha()]
        if len(letters) >= 2:
            counted += 1
            # ASCII letters are all Latin.
            one_script = core.isascii() or len({_script(c) for c in letters}) == 1
            if len(letters) >= 0.6 * len(core) and one_script:
                wordlike += 1
        elif not letters and len(core) >= 2 and not _is_number(core):
            counted += 1
    return {
        "broken_share": broken / characters,
        "alnum_share": alnum / characters,
        # A layer of numbers alone, such as a table of figures, has no words.
        "wordlike_share": wordlike / counted if counted else 1.0,
    }


def _is_broken(character: str) -> bool:
    category = unicodedata.category(character)
    return character == "\ufffd" or category in ("Co", "Cc", "Cn", "Cs")


def _is_number(token: str) -> bool:
    digits = sum(1 for c in token if c.isdigit())
    return digits >= 0.5 * len(token)


@functools.lru_cache(maxsize=4096)
def _script(letter: str) -> str:
    """Return the first word of a letter's Unicode name: LATIN, GREEK, CJK..."""
    name = unicodedata.name(letter, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def largest_image_share(page: pymupdf.Page) -> float:
    """Return the share of the visible page the largest image covers."""
    area = abs(page.rect)
    if area <= 0:
        return 0.0
    best = 0.0
    for info in page.get_image_info():
        rect = pymupdf.Rect(info["bbox"]) * page.rotation_matrix & page.rect
        if not rect.is_empty:
            best = max(best, abs(rect) / area)
    return best


# -- engines -----------------------------------------------------------------


class TextEngine:
    """Lines from a PDF's text layer, with confidence 1.

    It reads pages through ``recognize_page``. A page image has no text layer, so
    ``recognize`` raises ``EngineError`` and ``recognize_region`` reads the crop
    with the OCR engine ``region_engine`` (default ``onnx``).
    """

    name = "text"

    def __init__(self, *, region_engine: str = "onnx") -> None:
        self.region_engine_name = region_engine
        self._region_engine: Engine | None = None

    @property
    def model(self) -> str:
        """The text extractor and its version."""
        return f"PDF text layer (PyMuPDF {pymupdf.VersionBind})"

    def recognize_page(
        self, source: Source, page_index: int, dpi: float
    ) -> PageText | None:
        """Return the text-layer lines of a PDF page in pixels at ``dpi``."""
        page = source.text_layer(page_index)
        if page is None:
            raise EngineError(
                f"{source.name} is an image and has no text layer; read it with an "
                "OCR engine (onnx or paddle) or with auto"
            )
        lines = text_page_lines(page, dpi)
        return PageText(lines, self.name, self.model)

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Raise ``EngineError``: a page image has no text layer."""
        raise EngineError(
            "the text engine reads a PDF's text layer and cannot read a page image; "
            "use an OCR engine (onnx or paddle) or auto"
        )

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        """Read a cropped RGB image holding one line with the OCR engine."""
        if self._region_engine is None:
            self._region_engine = get_engine(self.region_engine_name)
        return self._region_engine.recognize_region(image)


class AutoEngine:
    """Per page, the text layer where it contains real text, else OCR.

    Args:
        ocr_engine: the engine that reads scans and images (``onnx`` or ``paddle``).
        trust_invisible_text: use invisible text from an earlier OCR as it is,
            instead of reading the page again.
        **ocr_options: options passed to the OCR engine.
    """

    name = "auto"

    def __init__(
        self,
        *,
        ocr_engine: str = "onnx",
        trust_invisible_text: bool = False,
        **ocr_options: Any,
    ) -> None:
        if ocr_engine in ("auto", "text"):
            raise EngineError(f"auto needs an OCR engine, not {ocr_engine!r}")
        self.trust_invisible_text = trust_invisible_text
        self.image_engine: Engine = get_engine(ocr_engine, **ocr_options)
        self.text_engine = TextEngine(region_engine=ocr_engine)
        self.last_assessment: TextLayerAssessment | None = None

    @property
    def model(self) -> str:
        """The models of the OCR engine, which reads every page without text."""
        return self.image_engine.model

    def recognize_page(
        self, source: Source, page_index: int, dpi: float
    ) -> PageText | None:
        """Read a PDF page from its text layer, or return None to OCR its image."""
        page = source.text_layer(page_index)
        if page is None:
            return None
        lines = layer_lines(page)
        assessment = assess_text_layer(
            page, trust_invisible_text=self.trust_invisible_text, lines=lines
        )
        self.last_assessment = assessment
        log.info(
            "%s page %d: %s, so %s",
            source.name,
            page_index + 1,
            assessment.reason,
            "the text layer is used" if assessment.use_text else "it is OCRed",
        )
        if not assessment.use_text:
            return None
        text = self.text_engine
        return PageText(lines_in_pixels(lines, dpi), text.name, text.model)

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Read a page image with the OCR engine."""
        return self.image_engine.recognize(image)

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        """Read a cropped RGB image holding one line with the OCR engine."""
        return self.image_engine.recognize_region(image)
