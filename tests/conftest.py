"""Shared fixtures: the corpus of real files, a fresh store, and a fake engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from ocrkit.engines import register_engine
from ocrkit.models import RecognizedLine, bbox_to_poly
from ocrkit.store import Store

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("OCRKIT_CORPUS", REPO.parent / "shared" / "corpus"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow", action="store_true", help="also run whole-document tests"
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="whole-document test; give --runslow to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The folder of real test files described by its MANIFEST.md."""
    if not (CORPUS / "MANIFEST.md").is_file():
        pytest.fail(f"test corpus not found at {CORPUS}; set OCRKIT_CORPUS")
    return CORPUS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty store in a temporary folder."""
    with Store(tmp_path / "storage") as opened:
        yield opened


class FakeEngine:
    """An engine that finds one line per dark horizontal band of the image.

    It reads no text: each line's text is "line N" with N counting from 1 down
    the page, and its confidence is 0.9. Widget and store tests use it so that
    they run in milliseconds; OCR quality is tested with the real engine.
    """

    name = "fake"
    model = "fake-bands"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        from ocrkit.errors import EngineError

        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise EngineError(f"fake engine told to fail on call {self.calls}")
        dark = (image.min(axis=2) < 128).any(axis=1)
        # Rows of ink separated by less than a few light rows (accents above
        # capitals, dots) belong to the same band.
        bands: list[list[int]] = []
        for y in np.nonzero(dark)[0].tolist():
            if bands and y - bands[-1][1] <= 6:
                bands[-1][1] = y
            else:
                bands.append([y, y])
        lines = []
        for top, bottom in bands:
            ink = (image[top : bottom + 1].min(axis=2) < 128).any(axis=0)
            columns = np.nonzero(ink)[0]
            box = (
                float(columns[0]),
                float(top),
                float(columns[-1] + 1),
                float(bottom + 1),
            )
            text = f"line {len(lines) + 1}"
            lines.append(RecognizedLine(bbox_to_poly(box), text, 0.9))
        return lines

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        return ("region", 0.8)


@pytest.fixture
def fake_engine() -> FakeEngine:
    """Register a fresh fake engine as ``fake`` and return it."""
    engine = FakeEngine()
    register_engine("fake", lambda **options: engine)
    from ocrkit import reading

    reading._ENGINES.pop(("fake", "[]"), None)
    return engine


def make_text_pdf(path: Path, pages: list[list[str]], *, fontsize: float = 16) -> Path:
    """Write an A4 PDF with the given lines of text on each page."""
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=595, height=842)
        for number, text in enumerate(lines):
            page.insert_text(
                (72, 100 + number * 2.2 * fontsize), text, fontsize=fontsize
            )
    doc.save(path)
    doc.close()
    return path
