"""Page images for the page view: JPEG previews and crops of the page OCR read.

A page is rendered from its file at the dpi it was read at and turned by its
rotation, which gives the pixels the engine read, so the boxes line up. Previews
are scaled down to ``max_width`` pixels. The page view stretches the image over
the page's pixel space, so boxes stay in page pixels.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from ocrkit.errors import InputFileError
from ocrkit.models import BBox, Page
from ocrkit.sources import DEFAULT_DPI, DEFAULT_MAX_PIXELS, Source
from ocrkit.store import Store

log = logging.getLogger(__name__)

# PyMuPDF is not thread-safe; every render in this process goes through this lock.
RENDER_LOCK = threading.Lock()

PREVIEW_MAX_WIDTH = 1600
PREVIEW_QUALITY = 82


@dataclass(frozen=True)
class PagePreview:
    """A JPEG of a page and the pixel space its boxes use."""

    jpeg: bytes
    width: int
    height: int


class PageImages:
    """Loads, scales and caches page previews; safe to use from several threads.

    Args:
        store: the store the pages belong to.
        max_width: widest preview in pixels; wider pages are scaled down.
        quality: JPEG quality, 1 to 100.
        cache_size: previews kept in memory, newest used first.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_width: int = PREVIEW_MAX_WIDTH,
        quality: int = PREVIEW_QUALITY,
        cache_size: int = 16,
    ) -> None:
        self.store = store
        self.max_width = max_width
        self.quality = quality
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[object, ...], PagePreview] = OrderedDict()
        self._lock = threading.Lock()
        self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="okw-prefetch")

    def preview(self, page: Page) -> PagePreview:
        """Return the preview of a page, from the cache when it is there."""
        key = _key(page)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        image = self.page_image(page)
        preview = self._encode(image, page)
        with self._lock:
            self._cache[key] = preview
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return preview

    def prefetch(self, pages: Iterable[Page]) -> None:
        """Prepare previews of pages in the background, for quick page turns."""
        for page in pages:
            self._prefetcher.submit(self._prefetch_one, page)

    def _prefetch_one(self, page: Page) -> None:
        try:
            self.preview(page)
        except Exception:  # the page is loaded again, and errors shown, on view
            log.debug("prefetch of page %d failed", page.number, exc_info=True)

    def forget(self, document_id: str) -> None:
        """Drop the cached previews of a document, after its pages were read again."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == document_id]:
                del self._cache[key]

    def page_image(self, page: Page) -> np.ndarray:
        """Return the RGB page image whose pixels the page's boxes use."""
        dpi = page.dpi or DEFAULT_DPI
        # A page read within a larger pixel budget than the default needs that
        # budget again, or its dpi would be lowered.
        budget = (page.width_px + 2) * (page.height_px + 2)
        max_pixels = max(DEFAULT_MAX_PIXELS, budget)
        path = self.store.source_path(page.document_id)
        name = self.store.document(page.document_id).filename
        with RENDER_LOCK, Source(path, name=name) as source:
            image = source.render(page.index, dpi, max_pixels=max_pixels).image
        if page.rotation:
            # rot90 turns counter-clockwise; page.rotation is clockwise.
            image = np.ascontiguousarray(np.rot90(image, -(page.rotation // 90)))
        return image

    def crop(self, page: Page, bbox: BBox, *, margin: int = 2) -> np.ndarray:
        """Return the RGB crop of a box of a page, a few pixels wider on each side."""
        image = self.page_image(page)
        height, width = image.shape[:2]
        # Boxes are in the page's pixel space, which a rendered image may miss by a
        # pixel of rounding; scale in case the two differ.
        scale_x = width / page.width_px if page.width_px else 1.0
        scale_y = height / page.height_px if page.height_px else 1.0
        x0, y0, x1, y1 = bbox
        left = max(0, int(x0 * scale_x) - margin)
        top = max(0, int(y0 * scale_y) - margin)
        right = min(width, int(round(x1 * scale_x)) + margin)
        bottom = min(height, int(round(y1 * scale_y)) + margin)
        if right - left < 2 or bottom - top < 2:
            raise InputFileError(
                f"page {page.number}",
                f"the box {tuple(round(v) for v in bbox)} is too small to read",
                fix="Draw a larger box around the line",
            )
        return np.ascontiguousarray(image[top:bottom, left:right])

    def _encode(self, image: np.ndarray, page: Page) -> PagePreview:
        height, width = image.shape[:2]
        if width > self.max_width:
            scale = self.max_width / width
            size = (self.max_width, max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(
            ".jpg",
            np.ascontiguousarray(image[..., ::-1]),
            [cv2.IMWRITE_JPEG_QUALITY, self.quality],
        )
        if not ok:
            raise InputFileError(
                f"page {page.number}", "the page preview cannot be encoded as JPEG"
            )
        return PagePreview(
            jpeg=encoded.tobytes(),
            width=page.width_px or width,
            height=page.height_px or height,
        )

    def close(self) -> None:
        """Stop the prefetch thread."""
        self._prefetcher.shutdown(wait=False, cancel_futures=True)


def _key(page: Page) -> tuple[object, ...]:
    return (
        page.document_id,
        page.index,
        page.dpi,
        page.width_px,
        page.height_px,
        page.rotation,
        page.updated_at,
    )
