"""Reading order of synthetic lines: skewed pages, columns between wide lines."""

from __future__ import annotations

import math

import pytest

from ocrkit.layout import page_skew, reading_order
from ocrkit.models import BBox, Poly, poly_to_bbox


def slanted_line(
    top: float, degrees: float, length: float = 1000.0, left: float = 100.0
) -> Poly:
    """Return a 40 px high line polygon falling ``degrees`` to the right."""
    rise = length * math.tan(math.radians(degrees))
    return (
        (left, top),
        (left + length, top + rise),
        (left + length, top + rise + 40.0),
        (left, top + 40.0),
    )


@pytest.mark.parametrize("degrees", [-2.5, 1.9, 3.0])
def test_skew_measured_from_long_lines(degrees: float) -> None:
    polys = [slanted_line(100.0 + 50.0 * k, degrees) for k in range(6)]
    # A short word box slanted the other way does not count.
    polys.append(slanted_line(500.0, -degrees, length=60.0))
    assert page_skew(polys) == pytest.approx(degrees, abs=0.01)


def test_skewed_lines_ordered_top_down() -> None:
    # Lines 50 px apart, slanting 40 px over their length: their boxes overlap by
    # more than a third of a line, so boxes alone put them in one band.
    polys = [slanted_line(100.0 + 50.0 * k, 2.3) for k in range(5)]
    boxes = [poly_to_bbox(poly) for poly in polys]
    shuffled = [3, 0, 4, 1, 2]
    order = reading_order([boxes[i] for i in shuffled], [polys[i] for i in shuffled])
    assert [shuffled[i] for i in order] == [0, 1, 2, 3, 4]


def test_slight_skew_keeps_box_order() -> None:
    polys = [slanted_line(100.0 + 60.0 * k, 0.5) for k in range(4)]
    boxes = [poly_to_bbox(poly) for poly in polys]
    assert reading_order(boxes, polys) == reading_order(boxes)
    assert reading_order(boxes, polys) == [0, 1, 2, 3]


def test_columns_between_wide_paragraphs() -> None:
    # Three full-width lines, two columns of four lines, two full-width lines.
    def box(left: float, top: float, right: float) -> BBox:
        return (left, top, right, top + 30.0)

    boxes = [box(100.0, 100.0 + 40.0 * k, 1100.0) for k in range(3)]
    boxes += [box(100.0, 240.0 + 40.0 * k, 560.0) for k in range(4)]
    boxes += [box(640.0, 240.0 + 40.0 * k, 1100.0) for k in range(4)]
    boxes += [box(100.0, 420.0 + 40.0 * k, 1100.0) for k in range(2)]
    assert reading_order(boxes) == list(range(13))
