"""Read page images far taller than wide in overlapping strips.

RapidOCR scales an image so that its long side fits a limit (2000 px for the
``onnx`` engine), then its detector scales it back up so that the short side
reaches 736 px. On a 612 x 20000 pt page at 130 dpi the first step shrinks text
to a few pixels. The second makes a detector input of 17 million pixels, which
took about 3 GB of memory and a minute on a 2-core machine and read no line.
Cut into strips of an ordinary page's shape, the same page reads like any other.

TODO: pages far wider than tall still go to the engine whole, because strips side
by side would cut their lines in pieces. Their text shrinks below what the engine
reads: a 20000 x 612 pt page with four lines of 24 pt text was stored as no_text.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from ocrkit.engines import Engine
from ocrkit.models import RecognizedLine

log = logging.getLogger(__name__)

# Pages taller than this many widths are read in strips.
MAX_HEIGHT_RATIO = 3.0
# Each strip is this many widths tall ...
STRIP_HEIGHT_RATIO = 2.0
# ... and overlaps the next by this share of its height, which must exceed the
# height of the tallest line so that every line lies whole inside one strip.
STRIP_OVERLAP = 0.25
# A strip whose grey levels all lie within this range is blank and not read.
BLANK_CONTRAST = 24


def is_tall(image: np.ndarray) -> bool:
    """Return whether a page image is read in strips."""
    height, width = image.shape[:2]
    return height > MAX_HEIGHT_RATIO * max(1, width)


def strip_bounds(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Return ``(top, bottom, keep_top, keep_bottom)`` rows of each strip.

    Strips overlap; the keep ranges do not, and together they cover every row, so
    a line belongs to the strip whose keep range contains its centre.
    """
    size = max(1, round(STRIP_HEIGHT_RATIO * width))
    step = max(1, size - round(STRIP_OVERLAP * size))
    tops = list(range(0, max(1, height - size) + 1, step))
    if tops[-1] + size < height:
        tops.append(height - size)
    spans = [(top, min(height, top + size)) for top in tops]
    bounds = []
    for i, (top, bottom) in enumerate(spans):
        keep_top = 0 if i == 0 else (spans[i - 1][1] + top) // 2
        keep_bottom = height if i == len(spans) - 1 else (bottom + spans[i + 1][0]) // 2
        bounds.append((top, bottom, keep_top, keep_bottom))
    return bounds


def recognize_tall(engine: Engine, image: np.ndarray) -> list[RecognizedLine]:
    """Read a page image, in strips when it is tall; boxes refer to the whole page."""
    if not is_tall(image):
        return engine.recognize(image)
    height, width = image.shape[:2]
    bounds = strip_bounds(height, width)
    log.info("reading a %d x %d px page in %d strips", width, height, len(bounds))
    lines: list[RecognizedLine] = []
    for top, bottom, keep_top, keep_bottom in bounds:
        strip = np.ascontiguousarray(image[top:bottom])
        if int(strip.max()) - int(strip.min()) < BLANK_CONTRAST:
            continue
        for line in engine.recognize(strip):
            x0, y0, x1, y1 = line.bbox
            centre = top + (y0 + y1) / 2
            if keep_top <= centre < keep_bottom:
                poly = tuple((x, y + top) for x, y in line.poly)
                lines.append(replace(line, poly=poly))  # type: ignore[arg-type]
    return lines
