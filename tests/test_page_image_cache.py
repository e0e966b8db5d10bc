"""The page image cache writes grey pages with one channel and loses no pixel."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrkit.sources import Source
from ocrkit.store import write_page_image


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
