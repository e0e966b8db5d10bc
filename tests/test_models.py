"""The data model: validation and dict round trips."""

from __future__ import annotations

import pytest

from ocrkit.models import (
    Document,
    Line,
    LineOrigin,
    Page,
    PageStatus,
    bbox_to_poly,
    poly_to_bbox,
)


def make_line(**changes: object) -> Line:
    values: dict[str, object] = {
        "id": 7,
        "document_id": "abc",
        "page_index": 2,
        "order": 4,
        "poly": bbox_to_poly((10.0, 20.0, 110.0, 40.0)),
        "bbox": (10.0, 20.0, 110.0, 40.0),
        "text": "¿Dónde está el año?",
        "confidence": 0.87,
        "origin": LineOrigin.ocr,
        "dpi": 200.0,
    }
    values.update(changes)
    return Line(**values)  # type: ignore[arg-type]


def test_line_round_trip() -> None:
    line = make_line(verified=True)
    assert Line.from_dict(line.to_dict()) == line


def test_page_and_document_round_trip() -> None:
    page = Page("abc", 0, 595.0, 842.0, 1653, 2339, 200.0, status=PageStatus.done)
    assert Page.from_dict(page.to_dict()) == page
    assert page.number == 1
    document = Document("abc", "ab" * 32, "acta.pdf", "pdf", 3, 1234)
    assert Document.from_dict(document.to_dict()) == document


def test_bbox_pt_scales_by_dpi() -> None:
    line = make_line()
    assert line.bbox_pt == pytest.approx((3.6, 7.2, 39.6, 14.4))


@pytest.mark.parametrize(
    "bbox", [(10, 20, 5, 40), (10, 20, 30, 10), (0, 0, float("nan"), 1)]
)
def test_line_rejects_bad_box(bbox: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="box"):
        make_line(bbox=bbox)


@pytest.mark.parametrize("confidence", [-0.1, 1.5])
def test_line_rejects_confidence_outside_range(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        make_line(confidence=confidence)


def test_poly_and_bbox_convert() -> None:
    poly = ((5.0, 7.0), (50.0, 3.0), (52.0, 20.0), (6.0, 24.0))
    assert poly_to_bbox(poly) == (5.0, 3.0, 52.0, 24.0)
    assert poly_to_bbox(bbox_to_poly((1.0, 2.0, 3.0, 4.0))) == (1.0, 2.0, 3.0, 4.0)
