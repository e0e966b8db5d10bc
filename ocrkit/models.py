"""The data model: documents hold pages, pages hold text lines.

Geometry convention, used everywhere in ocrkit:

- ``bbox`` is ``(x0, y0, x1, y1)`` in pixels of the page image at ``Page.dpi``, origin
  at the top-left corner of the page as shown, that is after the page's ``/Rotate``
  and any rotation ocrkit applied, and inside its CropBox.
- ``poly`` holds four ``(x, y)`` points in the same pixels, clockwise from the top-left
  corner of the text, as PP-OCR's detector returns them.
- Points are pixels times ``72 / dpi``: ``Line.bbox_pt`` is the same box in PDF points
  relative to the visible page's top-left corner.
- ``confidence`` runs from 0.0 to 1.0.
- ``page_index`` is zero-based in code; tables and messages show one-based page numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

Point = tuple[float, float]
Poly = tuple[Point, Point, Point, Point]
BBox = tuple[float, float, float, float]


def utc_now() -> str:
    """Return the current time as an ISO 8601 string in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class PageStatus(StrEnum):
    """Reading state of a page."""

    pending = "pending"
    done = "done"
    no_text = "no_text"
    failed = "failed"


class LineOrigin(StrEnum):
    """Source of a line's current text and box."""

    ocr = "ocr"
    text_layer = "text_layer"
    edited = "edited"
    added = "added"


def check_bbox(bbox: BBox) -> BBox:
    """Return ``bbox`` as floats, or raise ValueError if it is not a proper box."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"box {bbox!r} has a value that is not a finite number")
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box {bbox!r} has x1 < x0 or y1 < y0")
    return (x0, y0, x1, y1)


def bbox_to_poly(bbox: BBox) -> Poly:
    """Return the four corners of an axis-aligned box, clockwise from top-left."""
    x0, y0, x1, y1 = bbox
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def poly_to_bbox(poly: Poly) -> BBox:
    """Return the smallest axis-aligned box around a polygon."""
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class Line:
    """One text line on a page, as read or as a user corrected it.

    ``version`` grows by one with every change, so two sessions editing the same
    line find out about each other (see ``Store.edit_line``).
    """

    id: int
    document_id: str
    page_index: int
    order: int
    poly: Poly
    bbox: BBox
    text: str
    confidence: float
    origin: LineOrigin
    verified: bool = False
    updated_at: str = field(default_factory=utc_now)
    dpi: float = 72.0
    version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", check_bbox(self.bbox))
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside 0..1")

    @property
    def bbox_pt(self) -> BBox:
        """The box in PDF points, relative to the visible page's top-left corner."""
        scale = 72.0 / self.dpi
        x0, y0, x1, y1 = self.bbox
        return (x0 * scale, y0 * scale, x1 * scale, y1 * scale)

    def to_dict(self) -> dict[str, Any]:
        """Return the line as plain JSON-ready values."""
        data = asdict(self)
        data["poly"] = [list(p) for p in self.poly]
        data["bbox"] = list(self.bbox)
        data["origin"] = str(self.origin)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Line:
        """Build a line from the output of ``to_dict``."""
        values = dict(data)
        values["poly"] = tuple(tuple(p) for p in values["poly"])
        values["bbox"] = tuple(values["bbox"])
        values["origin"] = LineOrigin(values["origin"])
        return cls(**values)


@dataclass(frozen=True)
class Page:
    """One page of a document and how it was read.

    ``width_pt``/``height_pt`` are the visible page (CropBox after ``/Rotate``);
    ``width_px``/``height_px`` the page image at ``dpi``. ``rotation`` is the
    clockwise rotation in degrees ocrkit applied on top of the file's own, found by
    orientation detection.
    """

    document_id: str
    index: int
    width_pt: float
    height_pt: float
    width_px: int = 0
    height_px: int = 0
    dpi: float = 0.0
    rotation: int = 0
    status: PageStatus = PageStatus.pending
    error: str = ""
    engine: str = ""
    model: str = ""
    line_count: int = 0
    updated_at: str = field(default_factory=utc_now)

    @property
    def number(self) -> int:
        """The one-based page number people see."""
        return self.index + 1

    def to_dict(self) -> dict[str, Any]:
        """Return the page as plain JSON-ready values."""
        data = asdict(self)
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        """Build a page from the output of ``to_dict``."""
        return cls(**{**data, "status": PageStatus(data["status"])})


@dataclass(frozen=True)
class Document:
    """A file added to the store, identified by the SHA-256 of its bytes."""

    id: str
    sha256: str
    filename: str
    kind: str
    page_count: int
    size_bytes: int
    added_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        """Return the document as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        """Build a document from the output of ``to_dict``."""
        return cls(**data)


@dataclass(frozen=True)
class RecognizedLine:
    """A line as an engine returns it, before the store gives it an id."""

    poly: Poly
    text: str
    confidence: float

    @property
    def bbox(self) -> BBox:
        """The axis-aligned box around ``poly``."""
        return poly_to_bbox(self.poly)

    def rotated(self, poly: Poly) -> RecognizedLine:
        """Return a copy with another polygon."""
        return replace(self, poly=poly)
