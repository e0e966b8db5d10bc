"""The workbench dashboard end to end: Voila, headless Chromium and the real engine.

One dashboard (``ocrkit.serve.dashboard_argv``, as ``ocrkit dashboard`` starts it)
runs on a free loopback port with a fresh store and an upload limit of 2 MB; one
browser page drives it. The tests upload through the FileUpload's file input, read
the store from this process and save screenshots under ``tests/artifacts/``.
"""

from __future__ import annotations

import io
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from playwright.sync_api import expect
from processes import free_port, stop_process_tree

from ocrkit.serve import HEALTH_PATH, dashboard_argv, server_env
from ocrkit.store import Store

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
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
UPLOAD_LIMIT_MB = 2
# The real engine reads the page in a worker process the kernel starts; on a
# loaded 2-core machine that took up to 40 s.
READ_TIMEOUT_MS = 240_000
BOXES = ".okw-page-view .opv-boxes rect.opv-box"
T = TypeVar("T")


@dataclass
class Dashboard:
    url: str
    storage: Path
    log: Path


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the dashboard exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the dashboard was not healthy within 120 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    folder = tmp_path_factory.mktemp("workbench_dashboard")
    storage = folder / "storage"
    log = folder / "dashboard.log"
    port = free_port()
    token = secrets.token_urlsafe(16)
    env = server_env(storage, token=token)
    env["OCRKIT_UPLOAD_LIMIT_MB"] = str(UPLOAD_LIMIT_MB)
    env["JUPYTER_RUNTIME_DIR"] = str(folder / "runtime")
    argv = dashboard_argv(port, token=token, upload_limit_mb=UPLOAD_LIMIT_MB)
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=output)
    try:
        wait_healthy(port, process, log)
        yield Dashboard(f"http://127.0.0.1:{port}/?token={token}", storage, log)
    finally:
        stop_process_tree(process)


@pytest.fixture(scope="module")
def page(dashboard: Dashboard) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1366, "height": 768}, accept_downloads=True
        )
        opened = context.new_page()
        opened.errors = []
        opened.on("pageerror", lambda error: opened.errors.append(str(error)))
        # Voila's template links a web font from a CDN; nothing but the loopback
        # server may be reached.
        opened.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))
                else route.abort()
            ),
        )
        opened.goto(dashboard.url, wait_until="domcontentloaded", timeout=120_000)
        opened.wait_for_selector(".okw-workbench .okw-upload", timeout=120_000)
        yield opened
        browser.close()


def choose_files(page: Any, paths: list[Path]) -> None:
    """Pick files in the upload's file input, as a user does in the file dialog."""
    with page.expect_file_chooser() as chooser:
        page.click(".okw-upload")
    chooser.value.set_files([str(path) for path in paths])


def message(page: Any) -> str:
    return str(page.inner_text(".okw-message"))


def poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 20) -> T:
    """Call ``read`` until ``done`` accepts its value; return the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def test_upload_over_limit_shows_message(
    page: Any, dashboard: Dashboard, tmp_path: Path, corpus: Path
) -> None:
    big = tmp_path / "acta-grande.pdf"
    padding = b"%" + b"x" * (UPLOAD_LIMIT_MB * 1024 * 1024) + b"\n"
    big.write_bytes((corpus / "acta-municipal-es.pdf").read_bytes() + padding)
    choose_files(page, [big])
    page.wait_for_function(
        "document.querySelector('.okw-message').innerText.includes('upload limit')",
        timeout=30_000,
    )
    text = message(page)
    assert "acta-grande.pdf (3.1 MB)" in text
    assert f"over the upload limit of {UPLOAD_LIMIT_MB} MB" in text
    page.screenshot(path=ARTIFACTS / "workbench-upload-over-limit.png")
    with Store(dashboard.storage) as store:
        assert store.documents() == []


def test_read_edit_move_and_export(
    page: Any, dashboard: Dashboard, corpus: Path
) -> None:
    choose_files(page, [corpus / "acta-municipal-es.pdf"])
    page.wait_for_function(
        f"document.querySelectorAll('{BOXES}').length >= 10", timeout=READ_TIMEOUT_MS
    )
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "workbench-read-1366.png")
    store = Store(dashboard.storage)
    (document,) = store.documents()
    assert [p.status for p in store.pages(document.id)] == ["done"]
    lines = store.lines(document.id, 0)
    assert page.locator(BOXES).count() == len(lines)
    assert any("Martín" in line.text for line in lines)

    # Select a line by its box and correct its text.
    target = next(line for line in lines if "pavimentación" in line.text)
    page.click(f"{BOXES}[data-id='{target.id}']")
    editor = page.locator(".okw-editor-text input")
    poll(editor.input_value, lambda value: value == target.text)
    assert editor.input_value() == target.text
    corrected = "concejala Peña: donde dice «pavimentación» debe decir «señalización»."
    editor.fill(corrected)
    editor.press("Enter")
    stored = poll(lambda: store.line(target.id).text, lambda text: text == corrected)
    assert stored == corrected
    assert store.line(target.id).origin == "edited"
    row = page.locator(f".okw-line-table tr[data-id='{target.id}']")
    expect(row).to_contain_text(corrected)

    # Move another line's box with the mouse.
    moved = next(line for line in lines if line.text.startswith("almacén"))
    box = page.locator(f"{BOXES}[data-id='{moved.id}']")
    box.click()
    bounds = box.bounding_box()
    x = bounds["x"] + bounds["width"] / 2
    y = bounds["y"] + bounds["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y + 6, steps=8)
    page.mouse.up()
    after = poll(lambda: store.line(moved.id).bbox, lambda bbox: bbox != moved.bbox)
    assert after[0] > moved.bbox[0] + 20
    assert after[2] - after[0] == pytest.approx(moved.bbox[2] - moved.bbox[0], abs=2)
    assert store.line(moved.id).origin == "edited"
    page.screenshot(path=ARTIFACTS / "workbench-edited-1366.png")

    # Download the document's lines as CSV for Excel.
    with page.expect_download(timeout=30_000) as download:
        page.click(".okw-download-button")
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "acta-municipal-es-lines.csv"
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    for word in ("Martín", "señalización", "¿Cuántos"):
        assert word in text
    frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert len(frame) == len(lines)
    assert corrected in set(frame.text)

    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "workbench-1920.png")
    assert page.errors == []
    store.close()
