"""Rendering the next page in a render process while the current one is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEngine

from ocrkit import reading
from ocrkit.reading import PageTask, read_document
from ocrkit.rendering import RenderAhead
from ocrkit.sources import Source
from ocrkit.store import Store


def task(path: Path, index: int) -> PageTask:
    return PageTask(document_id="d", path=str(path), page_index=index, name=path.name)


def test_pages_rendered_ahead_match(corpus: Path) -> None:
    path = corpus / "multipage.pdf"
    ahead = RenderAhead()
    try:
        for index in (0, 3):
            ahead.submit(task(path, index))
            rendered = ahead.take(task(path, index))
            assert rendered is not None
            with Source(path) as source:
                in_process = source.render(index)
            assert rendered.dpi == in_process.dpi
            assert rendered.width_pt == in_process.width_pt
            assert np.array_equal(rendered.image, in_process.image)
    finally:
        ahead.close()


def test_failed_render_leaves_page_to_caller(corpus: Path) -> None:
    path = corpus / "multipage.pdf"
    ahead = RenderAhead()
    try:
        ahead.submit(task(path, 99))
        assert ahead.take(task(path, 99)) is None
        # The render process goes on with the next page.
        ahead.submit(task(path, 1))
        assert ahead.take(task(path, 1)) is not None
        process = ahead._process
        assert process is not None
    finally:
        ahead.close()
    assert process.returncode == 0
    assert ahead.take(task(path, 2)) is None


def test_long_document_is_rendered_ahead(
    store: Store,
    corpus: Path,
    tmp_path: Path,
    fake_engine: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reading, "MIN_RENDER_AHEAD_PAGES", 3)
    rendered_ahead: list[bool] = []
    take = RenderAhead.take

    def counted(self: RenderAhead, page: PageTask):  # noqa: ANN202
        rendered = take(self, page)
        rendered_ahead.append(rendered is not None)
        return rendered

    monkeypatch.setattr(RenderAhead, "take", counted)
    document = store.add_file(corpus / "multipage.pdf")
    read_document(store, document.id, engine="fake", executor=None)

    # The fake engine is not an OCR engine, so rendering ahead starts once it has
    # rendered a page. The first two pages are rendered in this process.
    assert rendered_ahead == [False, False] + [True] * (document.page_count - 2)
    monkeypatch.setattr(reading, "MIN_RENDER_AHEAD_PAGES", 100)
    with Store(tmp_path / "here") as other:
        alone = other.add_file(corpus / "multipage.pdf")
        read_document(other, alone.id, engine="fake", executor=None)
        assert len(rendered_ahead) == document.page_count
        for page in other.pages(alone.id):
            in_process = [line.bbox for line in other.lines(alone.id, page.index)]
            ahead = [line.bbox for line in store.lines(document.id, page.index)]
            assert in_process == ahead
