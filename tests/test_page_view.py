"""PageView, the page canvas: its Python side, then the widget in a real browser.

The browser tests serve ``tests/notebooks/page_view.ipynb`` with Voila on a free
loopback port and drive headless Chromium with Playwright. The notebook writes every
event the view sends to Python into a JSON file, which the tests read.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import traitlets
from PIL import Image
from processes import free_port, stop_process_tree

from ocrkit.models import Line, LineOrigin
from ocrkit.widgets import PageView, line_to_dict

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "tests" / "notebooks" / "page_view.ipynb"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_VIEW_LOGGER = "ocrkit.widgets.page_view"


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def make_view(**kwargs: Any) -> PageView:
    """Return a 200 x 100 px page with three lines, and record what it sends."""
    view = PageView(**kwargs)
    view.set_image(png_bytes(200, 100))
    view.lines = [
        {"id": 7, "bbox": [10, 10, 90, 30], "text": "Año", "confidence": 0.95},
        {"id": 8, "bbox": [10, 40, 120, 60], "text": "¿Qué?", "confidence": 0.5},
        {"id": 9, "bbox": [10, 70, 150, 90], "text": "¡Sí!", "origin": "edited"},
    ]
    view.sent = []  # type: ignore[attr-defined]
    view.send = lambda content, buffers=None: view.sent.append(content)  # type: ignore[method-assign]
    return view


def message(view: PageView, content: Any) -> None:
    view._handle_custom_msg(content, [])


# -- traits ----------------------------------------------------------------------------


def test_page_view_traits_sync() -> None:
    view = PageView()
    names = [
        "image",
        "image_format",
        "image_width",
        "image_height",
        "lines",
        "selected",
        "zoom",
        "mode",
        "height",
    ]
    for name in names:
        assert view.trait_metadata(name, "sync") is True, name
    assert view.selected == -1
    assert view.zoom == 1.0
    assert view.mode == "select"
    assert view.height == "720px"


def test_page_view_assets_ship_in_package() -> None:
    folder = resources.files("ocrkit.widgets")
    script = folder.joinpath("page_view.js").read_text(encoding="utf-8")
    assert "export default" in script
    assert folder.joinpath("page_view.css").is_file()
    assert str(PageView()._esm) == script


def test_lines_get_defaults_and_keep_extra_keys() -> None:
    view = PageView(lines=[{"id": 1, "bbox": (1, 2, 3, 4), "version": 5}])
    assert view.lines == [
        {
            "id": 1,
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "text": "",
            "confidence": 1.0,
            "origin": "ocr",
            "verified": False,
            "version": 5,
        }
    ]


@pytest.mark.parametrize(
    "lines",
    [
        [{"bbox": [0, 0, 1, 1]}],
        [{"id": "1", "bbox": [0, 0, 1, 1]}],
        [{"id": 1, "bbox": [0, 0, 1]}],
        [{"id": 1, "bbox": [5, 0, 1, 1]}],
        [{"id": 1, "bbox": [0, 0, float("nan"), 1]}],
        [{"id": 1, "bbox": [0, 0, 1, 1], "confidence": 1.5}],
        [{"id": 1, "bbox": [0, 0, 1, 1], "origin": "guessed"}],
        [{"id": 1, "bbox": [0, 0, 1, 1]}, {"id": 1, "bbox": [0, 0, 2, 2]}],
    ],
)
def test_invalid_lines_are_rejected(lines: list[dict[str, Any]]) -> None:
    view = PageView()
    with pytest.raises(traitlets.TraitError):
        view.lines = lines
    assert view.lines == []


def test_mode_zoom_and_format_are_checked() -> None:
    view = PageView()
    with pytest.raises(traitlets.TraitError):
        view.mode = "erase"
    view.mode = "draw"
    assert view.mode == "draw"
    view.zoom = 100.0
    assert view.zoom == 8.0
    view.zoom = 0.01
    assert view.zoom == 0.25
    with pytest.raises(traitlets.TraitError):
        view.zoom = -1.0
    view.image_format = "JPG"
    assert view.image_format == "jpeg"
    with pytest.raises(traitlets.TraitError):
        view.image_format = "gif"


def test_selection_drops_when_line_leaves() -> None:
    view = make_view()
    view.selected = 8
    view.lines = [line for line in view.lines if line["id"] != 8]
    assert view.selected == -1


# -- images ----------------------------------------------------------------------------


def test_set_image_reads_format_and_size() -> None:
    view = PageView()
    view.set_image(png_bytes(30, 20))
    assert (view.image_format, view.image_width, view.image_height) == ("png", 30, 20)
    view.set_image(png_bytes(30, 20), width=300, height=200)
    assert (view.image_width, view.image_height) == (300, 200)


def test_set_image_rejects_gif() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="GIF")
    with pytest.raises(ValueError, match="gif"):
        PageView().set_image(buffer.getvalue())


def test_set_image_array_encodes_jpeg() -> None:
    view = PageView()
    view.set_image_array(np.full((40, 60, 3), 200, dtype=np.uint8))
    assert view.image_format == "jpeg"
    assert view.image[:2] == b"\xff\xd8"
    assert (view.image_width, view.image_height) == (60, 40)


# -- messages from the browser ---------------------------------------------------------


def test_box_changed_calls_back_with_pixels() -> None:
    view = make_view()
    received: list[tuple[int, list[float]]] = []
    view.on_box_changed(lambda line_id, bbox: received.append((line_id, bbox)))
    message(view, {"event": "box_changed", "id": 8, "bbox": [12.5, 41, 130, 62]})
    assert received == [(8, [12.5, 41.0, 130.0, 62.0])]
    assert view.lines[1]["bbox"] == [12.5, 41.0, 130.0, 62.0]
    assert view.lines[1]["text"] == "¿Qué?"
    assert view.sent[-1] == {"event": "redraw"}


def test_box_changed_is_clipped_to_page() -> None:
    view = make_view()
    received: list[list[float]] = []
    view.on_box_changed(lambda line_id, bbox: received.append(bbox))
    message(view, {"event": "box_changed", "id": 7, "bbox": [-5, 80, 250, 130]})
    assert received == [[0.0, 80.0, 200.0, 100.0]]


def test_box_added_goes_to_callback() -> None:
    view = make_view()
    received: list[list[float]] = []
    view.on_box_added(received.append)
    message(view, {"event": "box_added", "bbox": [20, 20, 60, 35]})
    assert received == [[20.0, 20.0, 60.0, 35.0]]
    assert [line["id"] for line in view.lines] == [7, 8, 9]


def test_box_added_without_callback_adds_line() -> None:
    view = make_view()
    message(view, {"event": "box_added", "bbox": [20, 20, 60, 35]})
    new_line = view.lines[-1]
    assert new_line["id"] == 10
    assert new_line["bbox"] == [20.0, 20.0, 60.0, 35.0]
    assert new_line["origin"] == "added"
    assert view.selected == 10


def test_box_deleted_removes_line() -> None:
    view = make_view()
    view.selected = 9
    received: list[int] = []
    view.on_box_deleted(received.append)
    message(view, {"event": "box_deleted", "id": 9})
    assert received == [9]
    assert [line["id"] for line in view.lines] == [7, 8]
    assert view.selected == -1


@pytest.mark.parametrize(
    "content",
    [
        "box_changed",
        {"event": "box_resized", "id": 7, "bbox": [0, 0, 5, 5]},
        {"event": "box_changed", "bbox": [0, 0, 5, 5]},
        {"event": "box_changed", "id": 99, "bbox": [0, 0, 5, 5]},
        {"event": "box_changed", "id": True, "bbox": [0, 0, 5, 5]},
        {"event": "box_changed", "id": 7},
        {"event": "box_changed", "id": 7, "bbox": [0, 0, 5]},
        {"event": "box_changed", "id": 7, "bbox": [0, 0, "5", 5]},
        {"event": "box_changed", "id": 7, "bbox": [0, 0, float("inf"), 5]},
        {"event": "box_changed", "id": 7, "bbox": [9, 9, 3, 3]},
        {"event": "box_changed", "id": 7, "bbox": [250, 0, 260, 5]},
        {"event": "box_added", "bbox": [5, 5, 5.5, 20]},
        {"event": "box_added", "bbox": None},
        {"event": "box_deleted", "id": 99},
        {"event": "box_deleted", "id": "7"},
    ],
)
def test_invalid_message_is_ignored(
    content: Any, caplog: pytest.LogCaptureFixture
) -> None:
    view = make_view()
    before = [dict(line) for line in view.lines]
    calls: list[object] = []
    view.on_box_changed(lambda *args: calls.append(args))
    view.on_box_added(lambda *args: calls.append(args))
    view.on_box_deleted(lambda *args: calls.append(args))
    with caplog.at_level(logging.WARNING, logger=PAGE_VIEW_LOGGER):
        message(view, content)
    assert calls == []
    assert view.lines == before
    warnings = [r for r in caplog.records if r.name == PAGE_VIEW_LOGGER]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "ignored" in warnings[0].getMessage()


def test_failing_callback_is_logged_and_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = make_view()
    received: list[int] = []

    def fail(line_id: int) -> None:
        raise RuntimeError("store is read-only")

    view.on_box_deleted(fail)
    view.on_box_deleted(received.append)
    with caplog.at_level(logging.ERROR, logger=PAGE_VIEW_LOGGER):
        message(view, {"event": "box_deleted", "id": 7})
    assert received == [7]
    assert any("store is read-only" in r.exc_text for r in caplog.records if r.exc_text)


def test_callback_can_be_removed() -> None:
    view = make_view()
    received: list[int] = []
    view.on_box_deleted(received.append)
    view.on_box_deleted(received.append, remove=True)
    message(view, {"event": "box_deleted", "id": 7})
    assert received == []


def test_other_message_listeners_still_called() -> None:
    view = make_view()
    seen: list[Any] = []
    view.on_msg(lambda widget, content, buffers: seen.append(content))
    message(view, {"event": "box_deleted", "id": 7})
    assert seen == [{"event": "box_deleted", "id": 7}]


# -- Python API ------------------------------------------------------------------------


def test_scroll_to_selects_and_sends() -> None:
    view = make_view()
    view.scroll_to(9)
    assert view.selected == 9
    assert view.sent == [{"event": "scroll_to", "id": 9}]


def test_scroll_to_unknown_line_raises() -> None:
    view = make_view()
    with pytest.raises(ValueError, match="line 42"):
        view.scroll_to(42)
    assert view.selected == -1
    assert view.sent == []


def test_line_to_dict_from_stored_line() -> None:
    line = Line(
        id=3,
        document_id="doc",
        page_index=0,
        order=0,
        poly=((1, 2), (30, 2), (30, 12), (1, 12)),
        bbox=(1, 2, 30, 12),
        text="Peña",
        confidence=0.8,
        origin=LineOrigin.edited,
        verified=True,
    )
    view = PageView(lines=[line_to_dict(line)])
    assert view.lines[0]["origin"] == "edited"
    assert view.lines[0]["verified"] is True
    assert view.lines[0]["text"] == "Peña"
    assert view.lines[0]["bbox"] == [1.0, 2.0, 30.0, 12.0]


# -- the widget in a browser, served by Voila ------------------------------------------


@dataclass
class VoilaServer:
    url: str
    events: Path


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"voila exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"voila did not listen on port {port} within 90 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def voila_server(
    tmp_path_factory: pytest.TempPathFactory, corpus: Path
) -> Iterator[VoilaServer]:
    folder = tmp_path_factory.mktemp("page_view_voila")
    events = folder / "events.json"
    log = folder / "voila.log"
    port = free_port()
    env = {
        **os.environ,
        "OCRKIT_TEST_PDF": str(corpus / "acta-municipal-es.pdf"),
        "OCRKIT_TEST_EVENTS": str(events),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
    }
    command = [
        sys.executable,
        "-m",
        "voila",
        NOTEBOOK.name,
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
    ]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=NOTEBOOK.parent, env=env, stdout=output, stderr=output
        )
    try:
        wait_for_port(port, process, log)
        yield VoilaServer(url=f"http://127.0.0.1:{port}/", events=events)
    finally:
        stop_process_tree(process)


@pytest.fixture(scope="module")
def browser_page(voila_server: VoilaServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        # Voila's template links a web font stylesheet from a CDN; the tests reach
        # nothing but the loopback server.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith("http://127.0.0.1")
                or route.request.url.startswith("ws://127.0.0.1")
                else route.abort()
            ),
        )
        page.goto(voila_server.url, wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_selector(
            ".fixture-300 .ocrkit-page-view[data-box-count='300']", timeout=120_000
        )
        yield page
        browser.close()


def read_events(server: VoilaServer) -> list[dict[str, Any]]:
    if not server.events.exists():
        return []
    return json.loads(server.events.read_text(encoding="utf-8"))


def wait_for_event(
    server: VoilaServer,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    since: int = 0,
) -> dict[str, Any]:
    """Return the first event from index ``since`` on that matches ``predicate``."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for event in read_events(server)[since:]:
            if predicate(event):
                return event
        time.sleep(0.1)
    pytest.fail(f"no matching event within 15 s; events: {read_events(server)}")


def shown_page(server: VoilaServer) -> dict[str, Any]:
    return wait_for_event(server, lambda event: event["event"] == "shown")


def boxes(page: Any) -> Any:
    return page.locator(".fixture-page .opv-boxes rect.opv-box")


def box_for(page: Any, line_id: int) -> Any:
    return page.locator(f".fixture-page .opv-boxes rect[data-id='{line_id}']")


def toolbar_button(page: Any, label: str) -> Any:
    return page.locator(".fixture-page .opv-button", has_text=label)


def stage_geometry(page: Any, image_width: int) -> tuple[float, float, float]:
    """Return the page's left and top on screen and its screen pixels per image px."""
    stage = page.locator(".fixture-page .opv-stage").bounding_box()
    return stage["x"], stage["y"], stage["width"] / image_width


def viewport_scroll(page: Any) -> tuple[float, float]:
    return page.locator(".fixture-page .opv-viewport").evaluate(
        "viewport => [viewport.scrollLeft, viewport.scrollTop]"
    )


def inside_viewport(page: Any, line_id: int) -> bool:
    viewport = page.locator(".fixture-page .opv-viewport").bounding_box()
    box = box_for(page, line_id).bounding_box()
    return (
        box["y"] >= viewport["y"]
        and box["y"] + box["height"] <= viewport["y"] + viewport["height"]
    )


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def centre(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def select_line(page: Any, server: VoilaServer, line_id: int) -> None:
    since = len(read_events(server))
    box = box_for(page, line_id)
    box.scroll_into_view_if_needed()
    box.click()
    wait_for_event(
        server, lambda e: e["event"] == "selected" and e["id"] == line_id, since=since
    )


@pytest.mark.browser
def test_browser_draws_every_box(browser_page: Any, voila_server: VoilaServer) -> None:
    shown = shown_page(voila_server)
    assert boxes(browser_page).count() == len(shown["lines"])
    for line in shown["lines"]:
        rect = box_for(browser_page, line["id"])
        x0, y0, x1, y1 = line["bbox"]
        assert float(rect.get_attribute("x")) == pytest.approx(x0)
        assert float(rect.get_attribute("y")) == pytest.approx(y0)
        assert float(rect.get_attribute("width")) == pytest.approx(x1 - x0)
        assert float(rect.get_attribute("height")) == pytest.approx(y1 - y0)

    grid = browser_page.locator(".fixture-300 .ocrkit-page-view")
    assert grid.locator(".opv-boxes rect.opv-box").count() == 300
    draw_ms = float(grid.get_attribute("data-draw-ms"))
    # 100 ms is about where a user starts to see a delay. draw-ms leaves out the
    # browser's paint: a zoom of this view, which repaints all 300 boxes, took
    # 19 to 34 ms per frame in headless Chromium on 2 cores.
    assert draw_ms < 100

    line = shown["lines"][2]
    browser_page.mouse.move(*centre(box_for(browser_page, line["id"])))
    tooltip = browser_page.locator(".fixture-page .opv-tooltip-text")
    assert tooltip.inner_text() == line["text"]

    ARTIFACTS.mkdir(exist_ok=True)
    browser_page.locator(".fixture-page .ocrkit-page-view").screenshot(
        path=ARTIFACTS / "page_view.png"
    )
    assert browser_page.errors == []


@pytest.mark.browser
def test_browser_drag_sends_pixel_bbox(
    browser_page: Any, voila_server: VoilaServer
) -> None:
    shown = shown_page(voila_server)
    line = shown["lines"][2]
    _, _, scale = stage_geometry(browser_page, shown["image_width"])
    since = len(read_events(voila_server))
    start = centre(box_for(browser_page, line["id"]))
    drag(browser_page, start, (start[0] + 60, start[1] + 30))

    event = wait_for_event(
        voila_server,
        lambda e: e["event"] == "box_changed" and e["id"] == line["id"],
        since=since,
    )
    x0, y0, x1, y1 = line["bbox"]
    expected = [x0 + 60 / scale, y0 + 30 / scale, x1 + 60 / scale, y1 + 30 / scale]
    assert event["bbox"] == pytest.approx(expected, abs=1.0)
    rect = box_for(browser_page, line["id"])
    assert float(rect.get_attribute("x")) == pytest.approx(event["bbox"][0], abs=0.01)
    assert float(rect.get_attribute("y")) == pytest.approx(event["bbox"][1], abs=0.01)
    assert browser_page.errors == []


@pytest.mark.browser
def test_browser_drag_on_paper_scrolls(
    browser_page: Any, voila_server: VoilaServer
) -> None:
    shown = shown_page(voila_server)
    browser_page.locator(".fixture-page .opv-viewport").evaluate(
        "viewport => viewport.scrollTo(0, 0)"
    )
    left, top, scale = stage_geometry(browser_page, shown["image_width"])
    # The paper right of the heading line has no text, so no box is hit there.
    start = (left + 700 * scale, top + 60 * scale)
    drag(browser_page, start, (start[0], start[1] - 120))
    assert viewport_scroll(browser_page)[1] == pytest.approx(120, abs=2)


@pytest.mark.browser
def test_browser_zoom_keeps_pixel_coordinates(
    browser_page: Any, voila_server: VoilaServer
) -> None:
    shown = shown_page(voila_server)
    _, _, fit_scale = stage_geometry(browser_page, shown["image_width"])
    since = len(read_events(voila_server))
    for _ in range(3):
        toolbar_button(browser_page, "+").click()
    event = wait_for_event(
        voila_server, lambda e: e["event"] == "zoom" and e["value"] > 1.9, since=since
    )
    assert event["value"] == pytest.approx(1.25**3)
    _, _, scale = stage_geometry(browser_page, shown["image_width"])
    assert scale == pytest.approx(fit_scale * 1.25**3, rel=0.01)

    line = shown["lines"][0]
    select_line(browser_page, voila_server, line["id"])
    since = len(read_events(voila_server))
    handle = browser_page.locator(".fixture-page .opv-handle-se")
    start = centre(handle)
    drag(browser_page, start, (start[0] + 40, start[1] + 20))
    event = wait_for_event(
        voila_server,
        lambda e: e["event"] == "box_changed" and e["id"] == line["id"],
        since=since,
    )
    x0, y0, x1, y1 = line["bbox"]
    expected = [x0, y0, x1 + 40 / scale, y1 + 20 / scale]
    assert event["bbox"] == pytest.approx(expected, abs=1.0)
    browser_page.locator(".fixture-page .ocrkit-page-view").screenshot(
        path=ARTIFACTS / "page_view_zoomed.png"
    )

    since = len(read_events(voila_server))
    toolbar_button(browser_page, "Fit width").click()
    wait_for_event(
        voila_server, lambda e: e["event"] == "zoom" and e["value"] == 1.0, since=since
    )
    since = len(read_events(voila_server))
    viewport = browser_page.locator(".fixture-page .opv-viewport")
    browser_page.mouse.move(*centre(viewport))
    browser_page.keyboard.down("Control")
    browser_page.mouse.wheel(0, -300)
    browser_page.keyboard.up("Control")
    event = wait_for_event(voila_server, lambda e: e["event"] == "zoom", since=since)
    assert event["value"] > 1.0
    toolbar_button(browser_page, "Fit width").click()
    assert browser_page.errors == []


@pytest.mark.browser
def test_browser_scroll_to_brings_line_into_view(
    browser_page: Any, voila_server: VoilaServer
) -> None:
    for _ in range(4):
        toolbar_button(browser_page, "+").click()
    browser_page.locator(".fixture-page .opv-viewport").evaluate(
        "viewport => viewport.scrollTo(0, 0)"
    )
    bottom_id = int(
        browser_page.locator(".fixture-page .opv-boxes").evaluate(
            "layer => [...layer.querySelectorAll('rect.opv-box')]"
            ".sort((a, b) => b.y.baseVal.value - a.y.baseVal.value)[0].dataset.id"
        )
    )
    assert not inside_viewport(browser_page, bottom_id)

    since = len(read_events(voila_server))
    browser_page.locator(".fixture-scroll").click()
    event = wait_for_event(
        voila_server, lambda e: e["event"] == "selected", since=since
    )
    assert event["id"] == bottom_id
    # The viewport scrolls smoothly, so the box arrives after a few frames.
    browser_page.wait_for_function(
        "id => { const view = document.querySelector('.fixture-page .opv-viewport');"
        " const box = view.querySelector(`rect[data-id='${id}']`)"
        ".getBoundingClientRect(); const frame = view.getBoundingClientRect();"
        " return box.top >= frame.top && box.bottom <= frame.bottom; }",
        arg=bottom_id,
    )
    selected = browser_page.locator(".fixture-page .opv-boxes .opv-selected")
    assert selected.get_attribute("data-id") == str(bottom_id)
    toolbar_button(browser_page, "Fit width").click()
    assert browser_page.errors == []


@pytest.mark.browser
def test_browser_draw_mode_adds_box(
    browser_page: Any, voila_server: VoilaServer
) -> None:
    shown = shown_page(voila_server)
    count = boxes(browser_page).count()
    toolbar_button(browser_page, "Draw").click()
    browser_page.locator(".fixture-page .opv-viewport").evaluate(
        "viewport => viewport.scrollTo(0, 0)"
    )
    left, top, scale = stage_geometry(browser_page, shown["image_width"])
    # The band above the first text line is empty paper.
    target = [100, 20, 400, 60]
    start = (left + target[0] * scale, top + target[1] * scale)
    end = (left + target[2] * scale, top + target[3] * scale)
    since = len(read_events(voila_server))
    drag(browser_page, start, end)

    event = wait_for_event(
        voila_server, lambda e: e["event"] == "box_added", since=since
    )
    assert event["bbox"] == pytest.approx(target, abs=1.0)
    browser_page.wait_for_function(
        "count => document.querySelectorAll("
        "'.fixture-page .opv-boxes rect.opv-box').length === count",
        arg=count + 1,
    )
    added = browser_page.locator(".fixture-page .opv-boxes rect.opv-origin-added")
    assert added.count() >= 1
    toolbar_button(browser_page, "Select").click()
    assert browser_page.errors == []


@pytest.mark.browser
def test_browser_delete_key_removes_box(
    browser_page: Any, voila_server: VoilaServer
) -> None:
    shown = shown_page(voila_server)
    line = shown["lines"][-1]
    count = boxes(browser_page).count()
    select_line(browser_page, voila_server, line["id"])
    since = len(read_events(voila_server))
    browser_page.keyboard.press("Delete")

    wait_for_event(
        voila_server,
        lambda e: e["event"] == "box_deleted" and e["id"] == line["id"],
        since=since,
    )
    browser_page.wait_for_function(
        "count => document.querySelectorAll("
        "'.fixture-page .opv-boxes rect.opv-box').length === count",
        arg=count - 1,
    )
    assert box_for(browser_page, line["id"]).count() == 0
    assert browser_page.errors == []
