"""Reading order of the lines on a page, and detection of sideways pages.

PP-OCR's detector returns lines sorted top to bottom, which interleaves the columns
of a multi-column page. ``reading_order`` sorts them with a recursive XY-cut:

1. Look for a gutter, a vertical strip at least a fifth of a line height wide that few
   lines cross, with at least two lines wholly on each side of it. Failing that,
   look for one that only the region's wide lines cross, such as the paragraphs
   of a single-column part above or below the columns.
2. If lines cross it (a headline over two columns, or two lines the detector
   merged across the gutter), they cut the region into bands above and below
   them, and each band is ordered on its own.
3. Otherwise the region is split at the gutter, and the left part is read before
   the right part.
4. A region without a gutter is read band by band, top to bottom.

On a skewed scan, the boxes around slanted lines overlap their neighbours, so the
lines are first turned level by the page's skew, measured from their polygons.

NOTE: a heading between two blocks of columns is read with the column above it
when it is no wider than that column. On the corpus brochure (``skew.pdf``),
"Additional Features" comes before the right-hand column it follows on the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median

import numpy as np

from ocrkit.models import BBox, Poly, poly_to_bbox

# A gutter is at least this many median line heights wide.
GUTTER_WIDTH_LINES = 0.2
# Lines allowed to cross a gutter, as a share of the region's lines (at least 1).
GUTTER_CROSSING_SHARE = 0.05
# Lines wider than this share of their region may cross a gutter between columns
# above or below them.
WIDE_LINE_SHARE = 0.6
# Skew, in degrees, below which boxes are ordered as they are. Levelling the UNLV
# magazine scan by its 0.45 degrees raised its CER from 0.043 to 0.062. Levelling
# skew.pdf by 1.9 degrees cut its CER against the rough reference from 0.50 to
# 0.34, and reading its wide lines as separators then to 0.012.
MIN_SKEW_DEGREES = 1.0
# Lines at least this many times as long as high measure the skew: a short line's
# polygon slants more with the detector's noise.
SKEW_LINE_ASPECT = 4.0


def reading_order(
    boxes: Sequence[BBox], polys: Sequence[Poly] | None = None
) -> list[int]:
    """Return the indices of ``boxes`` in reading order.

    ``polys``, the lines' polygons as the detector found them (clockwise from the
    top-left corner), let a skewed page be ordered as if it were level.
    """
    if not boxes:
        return []
    if polys is not None:
        skew = page_skew(polys)
        if abs(skew) >= MIN_SKEW_DEGREES:
            boxes = level_boxes(polys, skew)
    heights = [max(1.0, b[3] - b[1]) for b in boxes]
    min_width = GUTTER_WIDTH_LINES * median(heights)
    order: list[int] = []
    _order_region(list(range(len(boxes))), boxes, min_width, order)
    return order


def _order_region(
    indices: list[int], boxes: Sequence[BBox], min_width: float, out: list[int]
) -> None:
    if len(indices) <= 1:
        out.extend(indices)
        return
    gutter = _find_gutter(indices, boxes, min_width)
    if gutter is None:
        gutter = _gutter_between_wide_lines(indices, boxes, min_width)
    if gutter is not None:
        left_edge, right_edge = gutter
        crossing = [
            i for i in indices if boxes[i][0] < left_edge and boxes[i][2] > right_edge
        ]
        if crossing:
            _order_bands_around(indices, crossing, boxes, min_width, out)
            return
        middle = (left_edge + right_edge) / 2
        left = [i for i in indices if (boxes[i][0] + boxes[i][2]) / 2 < middle]
        right = [i for i in indices if (boxes[i][0] + boxes[i][2]) / 2 >= middle]
        _order_region(left, boxes, min_width, out)
        _order_region(right, boxes, min_width, out)
        return
    bands = _bands(indices, boxes)
    if len(bands) > 1:
        for band in bands:
            _order_region(band, boxes, min_width, out)
        return
    # Lines that overlap vertically and have no gutter between them: left to right.
    out.extend(sorted(indices, key=lambda i: (boxes[i][0], boxes[i][1])))


def _gutter_between_wide_lines(
    indices: list[int], boxes: Sequence[BBox], min_width: float
) -> tuple[float, float] | None:
    """Return a gutter that only the region's wide lines cross, or None.

    A page with a single-column part above or below its columns has too many
    lines across the gutter for ``_find_gutter``. Those lines are then read as
    separators between the blocks of columns.
    """
    x_start = min(boxes[i][0] for i in indices)
    x_end = max(boxes[i][2] for i in indices)
    wide = WIDE_LINE_SHARE * (x_end - x_start)
    narrow = [i for i in indices if boxes[i][2] - boxes[i][0] < wide]
    if len(narrow) == len(indices) or len(narrow) < 4:
        return None
    return _find_gutter(narrow, boxes, min_width)


def _order_bands_around(
    indices: list[int],
    crossing: list[int],
    boxes: Sequence[BBox],
    min_width: float,
    out: list[int],
) -> None:
    """Read the lines above each crossing line, then the crossing line, and so on."""
    crossing = sorted(crossing, key=lambda i: boxes[i][1])
    rest = [i for i in indices if i not in set(crossing)]
    for separator in crossing:
        centre = (boxes[separator][1] + boxes[separator][3]) / 2
        above = [i for i in rest if (boxes[i][1] + boxes[i][3]) / 2 < centre]
        rest = [i for i in rest if (boxes[i][1] + boxes[i][3]) / 2 >= centre]
        _order_region(above, boxes, min_width, out)
        out.append(separator)
    _order_region(rest, boxes, min_width, out)


def _find_gutter(
    indices: list[int], boxes: Sequence[BBox], min_width: float
) -> tuple[float, float] | None:
    """Return the x-interval of the best gutter of a region, or None."""
    x_start = min(boxes[i][0] for i in indices)
    x_end = max(boxes[i][2] for i in indices)
    span = int(np.ceil(x_end - x_start)) + 1
    if span < 3:
        return None
    coverage = np.zeros(span + 1, dtype=np.int32)
    for i in indices:
        coverage[int(boxes[i][0] - x_start)] += 1
        coverage[int(np.ceil(boxes[i][2] - x_start))] -= 1
    coverage = np.cumsum(coverage)[:span]
    allowed = max(1, int(GUTTER_CROSSING_SHARE * len(indices)))
    open_strip = coverage <= allowed
    best: tuple[int, float, tuple[float, float]] | None = None
    start = None
    for x in range(span + 1):
        inside = x < span and open_strip[x]
        if inside and start is None:
            start = x
        elif not inside and start is not None:
            left_edge, right_edge = x_start + start, x_start + x
            if right_edge - left_edge >= min_width:
                left = sum(1 for i in indices if boxes[i][2] <= left_edge)
                right = sum(1 for i in indices if boxes[i][0] >= right_edge)
                if left >= 2 and right >= 2:
                    crossings = int(coverage[start:x].max())
                    key = (-crossings, right_edge - left_edge, (left_edge, right_edge))
                    if best is None or key[:2] > best[:2]:
                        best = key
            start = None
    return best[2] if best else None


def _bands(indices: list[int], boxes: Sequence[BBox]) -> list[list[int]]:
    """Split a region into horizontal bands of lines that overlap vertically.

    A line overlapping the band above by less than a third of its height starts a
    new band, so tightly set or slightly skewed lines stay apart.
    """
    ordered = sorted(indices, key=lambda i: boxes[i][1])
    bands: list[list[int]] = [[ordered[0]]]
    reach = boxes[ordered[0]][3]
    for i in ordered[1:]:
        top, bottom = boxes[i][1], boxes[i][3]
        if top >= reach - (bottom - top) / 3:
            bands.append([i])
            reach = bottom
        else:
            bands[-1].append(i)
            reach = max(reach, bottom)
    return bands


def page_skew(polys: Sequence[Poly]) -> float:
    """Return the median slant of the lines' top edges, in degrees.

    Positive when lines fall to the right, as image rows grow downwards. Only
    lines at least ``SKEW_LINE_ASPECT`` times as long as high count, and with
    none the skew is 0.
    """
    angles = []
    for poly in polys:
        if len(poly) != 4:
            continue
        (left_x, left_y), (right_x, right_y), _, (low_x, low_y) = poly
        length = math.hypot(right_x - left_x, right_y - left_y)
        height = math.hypot(low_x - left_x, low_y - left_y)
        if right_x > left_x and length >= SKEW_LINE_ASPECT * max(1.0, height):
            angles.append(math.degrees(math.atan2(right_y - left_y, right_x - left_x)))
    return median(angles) if angles else 0.0


def level_boxes(polys: Sequence[Poly], skew: float) -> list[BBox]:
    """Return the boxes of ``polys`` turned by ``-skew`` degrees about the origin."""
    cos, sin = math.cos(math.radians(skew)), math.sin(math.radians(skew))
    level = []
    for poly in polys:
        turned = tuple((x * cos + y * sin, y * cos - x * sin) for x, y in poly)
        level.append(poly_to_bbox(turned))  # type: ignore[arg-type]
    return level


def is_sideways(boxes: Sequence[BBox]) -> bool:
    """Return True when most line boxes are much taller than wide.

    Text lines are wide, so a page whose lines stand upright was scanned or
    rendered turned by 90 degrees.
    """
    tall = sum(1 for b in boxes if (b[3] - b[1]) > 1.5 * (b[2] - b[0]))
    return len(boxes) >= 2 and tall > len(boxes) / 2
