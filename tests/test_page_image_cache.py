"""The page image cache: grey pages in one channel, no pixel lost, turns kept."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrkit.reading import read_document
from ocrkit.sources import Source
from ocrkit.store import Store, write_page_image
from ocrkit.widgets.page_images import PageImages


@pytest.mark.parametrize(
    ("name", "channels"),
    [("acta-municipal-es.pdf", 1), ("Seige_of_Vicksburg_Sample_OCR.pdf", 3)],
)
def test_page_image_round_trip(
    corpus: Path, tmp_path: Path, name: str, channels: int
) -> None:
    with Source(corpus / name) as source:
        image = source.render(0).image
    path = write_page_image(tmp_path / "page.png", image)

    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert (1 if stored.ndim == 2 else stored.shape[2]) == channels
    back = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
    assert back.shape == image.shape
    assert np.array_equal(back, image)


@pytest.mark.parametrize("turn", [90, 180])
def test_uncached_page_is_shown_turned_as_read(
    corpus: Path, tmp_path: Path, store: Store, turn: int
) -> None:
    upright = cv2.imread(str(corpus / "phototest.tif"), cv2.IMREAD_COLOR)
    # Scanned turned back by ``turn`` degrees, so reading turns it by ``turn``.
    scan = tmp_path / f"scan-{turn}.png"
    cv2.imwrite(str(scan), np.rot90(upright, turn // 90))
    document = store.add_file(scan)
    read_document(store, document.id, engine="onnx", executor=None)
    page = store.page(document.id, 0)
    assert page.rotation == turn
    lines = store.lines(document.id, 0)
    assert lines[0].text.startswith("This is a lot of 12 point text")

    cached = store.cached_page_image(document.id, 0)
    assert cached is not None
    as_read = cv2.imread(str(cached), cv2.IMREAD_COLOR)[..., ::-1]
    cached.unlink()
    images = PageImages(store)
    try:
        on_screen = images.page_image(page)
    finally:
        images.close()
    assert np.array_equal(on_screen, as_read)
