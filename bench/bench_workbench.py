"""Time the workbench: page turns to 300 boxes drawn, and edits to the store.

Builds a store with one PDF whose pages hold 300 and 290 lines in turn (lines
stored directly, as OCR would leave them), serves the workbench with
``ocrkit.serve.dashboard_argv`` on a free loopback port and drives it with headless
Chromium:

* page turn: from the click on "next page" to the page view's SVG holding that
  page's boxes, timed inside the browser (``performance.now`` and
  ``requestAnimationFrame`` polling). The workbench prepares the previews of the
  pages beside the one shown, so this is the usual case;
* page jump: the same from typing a page number three pages ahead, a page whose
  preview is not prepared: the kernel renders the page and encodes the JPEG first;
* edit: from typing a line's new text (then Enter, or then nothing) to the store
  holding it, timed in this process by polling the store every 5 ms.

Run it with the project's environment::

    .venv/bin/python bench/bench_workbench.py --turns 9 --edits 9

It prints each figure's median and every measurement. Times depend on the machine
and its load; report them with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pymupdf

from ocrkit.models import PageStatus, RecognizedLine, bbox_to_poly
from ocrkit.serve import HEALTH_PATH, dashboard_argv, server_env
from ocrkit.sources import Source
from ocrkit.store import Store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOXES = ".okw-page-view .opv-boxes rect.opv-box"
DPI = 200.0

# Clicks "next page" (or types page number ``target``) and resolves with the
# milliseconds until the page view shows the expected number of boxes.
TURN_PAGE_JS = """
async ([selector, expected, target]) => {
  const started = performance.now();
  if (target === null) {
    document.querySelector(".okw-next").click();
  } else {
    const input = document.querySelector(".okw-page-number input");
    input.value = String(target);
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }
  while (document.querySelectorAll(selector).length !== expected) {
    if (performance.now() - started > 30000) return -1;
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  return performance.now() - started;
}
"""


def line_counts(pages: int) -> list[int]:
    """Return the lines of each page: 290 and 300 in turn, so every turn differs."""
    return [300 if index % 2 else 290 for index in range(pages)]


def build_store(root: Path, pages: int) -> Store:
    """Create a store with one PDF of ``pages`` pages, each read with many lines."""
    pdf = root / "bench-300-lines.pdf"
    document = pymupdf.open()
    for number in range(pages):
        page = document.new_page(width=595, height=842)
        for row in range(100):
            y = 30 + row * 7.9
            for column in range(3):
                page.insert_text(
                    (30 + column * 185, y),
                    f"p{number + 1} l{row} c{column} señal",
                    fontsize=5,
                )
    document.save(pdf)
    document.close()
    store = Store(root / "storage")
    added = store.add_file(pdf)
    with Source(store.source_path(added.id)) as source:
        for index, count in enumerate(line_counts(pages)):
            rendered = source.render(index, DPI)
            height, width = rendered.image.shape[:2]
            page = replace(
                store.page(added.id, index),
                width_px=width,
                height_px=height,
                dpi=rendered.dpi,
                status=PageStatus.done,
                engine="bench",
                model="stored lines",
            )
            store.save_page(page, fake_lines(count, width, height))
    return store


def fake_lines(count: int, width: int, height: int) -> list[RecognizedLine]:
    """Return ``count`` boxes in three columns, with confidences from 0.5 to 1."""
    rows = (count + 2) // 3
    step = (height - 120) / rows
    column_width = (width - 100) / 3
    lines = []
    for number in range(count):
        row, column = divmod(number, 3)
        x0 = 50 + column * column_width
        y0 = 60 + row * step
        box = (x0, y0, x0 + column_width - 20, y0 + step * 0.8)
        confidence = 0.5 + (number * 37 % 50) / 100
        lines.append(RecognizedLine(bbox_to_poly(box), f"renglón {number}", confidence))
    return lines


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_dashboard(storage: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    token = secrets.token_urlsafe(16)
    env = server_env(storage, token=token)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            dashboard_argv(port, token=token), env=env, stdout=output, stderr=output
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the dashboard exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=2
            ) as response:
                if response.status == 200:
                    return process, f"http://127.0.0.1:{port}/?token={token}"
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the dashboard did not start within 120 s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the dashboard and the kernels it started, by process id."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    for child in children:
        if child.is_running():
            child.kill()


def page_count(turns: int, jumps: int) -> int:
    """Return the pages the benchmark document needs: turns, then jumps of three."""
    return turns + 1 + 3 * jumps


def measure(
    url: str, store: Store, turns: int, jumps: int, edits: int, shots: Path | None
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    counts = line_counts(page_count(turns, jumps))
    (document,) = store.documents()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))
                else route.abort()
            ),
        )
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function(
            f"document.querySelectorAll('{BOXES}').length === {counts[0]}",
            timeout=120_000,
        )
        page.wait_for_timeout(1000)
        turn_ms = []
        for index in range(1, turns + 1):
            elapsed = page.evaluate(TURN_PAGE_JS, [BOXES, counts[index], None])
            if elapsed < 0:
                raise SystemExit(f"page {index + 1} did not show its boxes within 30 s")
            turn_ms.append(elapsed)
            # Let the prefetch of the next page run, as it does while a person reads.
            page.wait_for_timeout(600)
        if shots is not None:
            page.screenshot(path=shots / "bench-300-lines-1366.png")
        jump_ms = []
        for index in range(turns + 3, page_count(turns, jumps), 3):
            elapsed = page.evaluate(TURN_PAGE_JS, [BOXES, counts[index], index + 1])
            if elapsed < 0:
                raise SystemExit(f"page {index + 1} did not show its boxes within 30 s")
            jump_ms.append(elapsed)
            page.wait_for_timeout(600)

        page_index = page_count(turns, jumps) - 1
        lines = store.lines(document.id, page_index)
        editor = page.locator(".okw-editor-text input")
        enter_ms, pause_ms = [], []
        for number in range(edits):
            for with_enter, results in ((True, enter_ms), (False, pause_ms)):
                line = lines[(2 * number + (0 if with_enter else 1)) % len(lines)]
                page.click(f".okw-line-table tr[data-id='{line.id}']")
                page.wait_for_function(
                    "document.querySelector('.okw-editor-text input').value === "
                    + json.dumps(line.text)
                )
                text = f"{line.text} corregido {number} ¿sí?"
                started = time.perf_counter()
                editor.fill(text)
                if with_enter:
                    editor.press("Enter")
                while store.line(line.id).text != text:
                    if time.perf_counter() - started > 30:
                        raise SystemExit(f"line {line.id} was not stored within 30 s")
                    time.sleep(0.005)
                results.append((time.perf_counter() - started) * 1000)
        browser.close()
    return {
        "page_turn_ms": turn_ms,
        "page_jump_ms": jump_ms,
        "edit_enter_ms": enter_ms,
        "edit_pause_ms": pause_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=9, help="page turns to time")
    parser.add_argument("--jumps", type=int, default=5, help="page jumps to time")
    parser.add_argument(
        "--edits", type=int, default=9, help="edits of each kind to time"
    )
    parser.add_argument("--screenshots", type=Path, help="folder for a screenshot")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ocrkit-bench-") as folder:
        root = Path(folder)
        store = build_store(root, page_count(args.turns, args.jumps))
        process, url = start_dashboard(store.root, root / "dashboard.log")
        try:
            results = measure(
                url, store, args.turns, args.jumps, args.edits, args.screenshots
            )
        finally:
            stop(process)
            store.close()
    labels = {
        "page_turn_ms": "page turn to 290/300 boxes drawn",
        "page_jump_ms": "page jump (preview not prepared) to boxes drawn",
        "edit_enter_ms": "edit + Enter to stored",
        "edit_pause_ms": "edit, no Enter, to stored",
    }
    for key, label in labels.items():
        values = results[key]
        print(
            f"{label}: median {statistics.median(values):.0f} ms "
            f"(min {min(values):.0f}, max {max(values):.0f}, n={len(values)})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
