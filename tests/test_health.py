"""The servers as started by ``ocrkit serve`` and ``ocrkit dashboard``.

Each server runs once per module on a free loopback port: JupyterLab over an empty
store, JupyterLab over a store folder of 50,000 files, and the Voila dashboard.
The health handler's error cases run in-process, without a server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import nbformat
import psutil
import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
from conftest import make_text_pdf
from processes import free_port

from ocrkit.serve import HEALTH_PATH, MIB, WORKBENCH
from ocrkit.server import SERVICE, health_handlers
from ocrkit.store import DATABASE_NAME, SCHEMA_VERSION, Store

T = TypeVar("T")

TOKEN = "test-token-" + uuid.uuid4().hex
CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 180.0
# A 100 MiB file, base64-encoded, plus room: what FileUpload sends at worst.
UPLOAD_MESSAGE_BYTES = 100 * MIB * 4 // 3 + MIB
RSS_MARGIN_MB = 15.0


# -- helpers ------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


def http_get(url: str, *, token: str | None = None, timeout: float = 60) -> Response:
    """GET ``url`` without following redirects."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with _opener.open(request, timeout=timeout) as reply:
            return Response(reply.status, dict(reply.headers), reply.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end in a thread of its own.

    Playwright's sync API keeps an event loop running in the main thread while the
    module's browser is open, so asyncio.run cannot be called there.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def write_notebook(folder: Path) -> Path:
    """Write a one-cell notebook named like the workbench into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    source = (
        "import os\n"
        "print('ocrkit test notebook')\n"
        "print('storage=' + os.environ.get('OCRKIT_STORAGE', 'unset'))"
    )
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    # The upload's name and size go to a file beside the store, where the test
    # reads them.
    upload = (
        "import ipywidgets, pathlib\n"
        "report = pathlib.Path(os.environ['OCRKIT_STORAGE']).parent / 'upload.txt'\n"
        "upload = ipywidgets.FileUpload(description='Upload')\n"
        "def received(change):\n"
        "    for item in change['new']:\n"
        "        report.write_text(f\"{item['name']} {len(item['content'])}\")\n"
        "upload.observe(received, names='value')\n"
        "upload"
    )
    notebook.cells.append(nbformat.v4.new_code_cell(upload))
    path = folder / WORKBENCH
    nbformat.write(notebook, path)
    return path


def fill_storage(root: Path, count: int, *, start: int = 0) -> None:
    """Write ``count`` small files into ``root/pages/<document>/``, 100 a folder."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for number in range(start, start + count):
        folder = root / "pages" / f"doc{number // 100:05d}"
        if number % 100 == 0 or number == start:
            folder.mkdir(parents=True, exist_ok=True)
        # os.open takes fewer system calls than Path.write_bytes: 40% faster here.
        descriptor = os.open(folder / f"page-{number % 100:03d}.png", flags, 0o644)
        os.write(descriptor, b"\x89PNG tiny")
        os.close(descriptor)


def add_documents(root: Path, page_counts: list[int]) -> None:
    """Add one small text PDF per entry, with that many pages, to the store."""
    with Store(root) as store:
        for number, pages in enumerate(page_counts):
            pdf = root.parent / f"document-{number}.pdf"
            make_text_pdf(
                pdf, [[f"Página {i + 1}, ¿año {number}?"] for i in range(pages)]
            )
            store.add_file(pdf)
            pdf.unlink()


@dataclass
class Server:
    """A server process started for the tests."""

    url: str
    process: subprocess.Popen[bytes]
    storage: Path
    log_path: Path
    startup_rss_mb: float = 0.0
    notes: dict[str, float] = field(default_factory=dict)

    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / MIB

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def start_server(command: str, tmp: Path, storage: Path, notebooks: Path) -> Server:
    """Run ``ocrkit COMMAND`` and wait until its health endpoint responds."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        OCRKIT_TOKEN=TOKEN,
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
    )
    env.pop("JUPYTER_TOKEN", None)

    argv = [
        sys.executable,
        "-m",
        "ocrkit",
        "--storage",
        str(storage),
        command,
        "--port",
        str(port),
        "--notebooks",
        str(notebooks),
    ]
    log_path = tmp / f"{command}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp
        )
    server = Server(f"http://127.0.0.1:{port}", process, storage, log_path)

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ocrkit {command} exited early:\n{server.log_tail()}")
        try:
            if http_get(server.url + HEALTH_PATH, timeout=5).status in (200, 503):
                break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        stop_server(server)
        pytest.fail(f"ocrkit {command} did not respond:\n{server.log_tail()}")

    time.sleep(1.0)
    server.startup_rss_mb = server.rss_mb()
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=30)


async def _send_large_message(
    ws_url: str, msg_type: str, channel: str, content: dict[str, object]
) -> dict[str, object] | None:
    """Send a kernel message with a padding field of UPLOAD_MESSAGE_BYTES.

    Returns the kernel's reply, or None when the server closed the connection.
    """
    connection = await tornado.websocket.websocket_connect(ws_url)
    message_id = uuid.uuid4().hex
    message = {
        "header": {
            "msg_id": message_id,
            "msg_type": msg_type,
            "session": uuid.uuid4().hex,
            "username": "test",
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {"padding": "A" * UPLOAD_MESSAGE_BYTES},
        "content": content,
        "channel": channel,
        "buffers": [],
    }
    await connection.write_message(json.dumps(message))
    del message
    expected = msg_type.replace("_request", "_reply")
    try:
        async with asyncio.timeout(180):
            while True:
                raw = await connection.read_message()
                if raw is None:
                    return None
                reply = json.loads(raw)
                if (
                    reply.get("parent_header", {}).get("msg_id") == message_id
                    and reply["header"]["msg_type"] == expected
                ):
                    return reply
    finally:
        connection.close()


def upload_in_browser(browser: Any, url: str, file: Path, report: Path) -> float:
    """Upload ``file`` through the notebook's FileUpload; return the seconds taken.

    Fails unless the kernel writes the file's size to ``report``.
    """
    report.unlink(missing_ok=True)
    page = browser.new_page()
    try:
        page.goto(url, timeout=120_000)
        button = page.get_by_text("Upload (0)")
        button.wait_for(timeout=120_000)
        begin = time.monotonic()
        with page.expect_file_chooser() as chooser:
            button.click()
        chooser.value.set_files(str(file))
        deadline = begin + 180
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        seconds = time.monotonic() - begin
    finally:
        page.close()
    assert report.exists(), f"the kernel received no upload after {seconds:.0f} s"
    assert report.read_text() == f"{file.name} {file.stat().st_size}"
    return seconds


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="module")
def lab_empty(module_tmp: Path) -> Iterator[Server]:
    """JupyterLab over an empty store."""
    tmp = module_tmp / "empty"
    notebooks = tmp / "notebooks"
    write_notebook(notebooks)
    server = start_server("serve", tmp, tmp / "storage", notebooks)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def lab_full(module_tmp: Path) -> Iterator[Server]:
    """JupyterLab whose root folder contains a store of 50,000 files."""
    tmp = module_tmp / "full"
    notebooks = tmp / "notebooks"
    write_notebook(notebooks)
    # The store sits inside the server's root folder, the worst case for anything
    # that would list or watch the root.
    storage = notebooks / "storage"
    started = time.monotonic()
    fill_storage(storage, 50_000)
    add_documents(storage, [3, 2])
    server = start_server("serve", tmp, storage, notebooks)
    server.notes["fill_seconds"] = time.monotonic() - started
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def dashboard(module_tmp: Path) -> Iterator[Server]:
    """The Voila dashboard over a store of two documents."""
    tmp = module_tmp / "dashboard"
    notebooks = tmp / "notebooks"
    write_notebook(notebooks)
    storage = tmp / "storage"
    add_documents(storage, [1, 4])
    server = start_server("dashboard", tmp, storage, notebooks)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def large_file(module_tmp: Path) -> Path:
    """A 120 MB file of random bytes, larger than any default message limit."""
    path = module_tmp / "scan-120mb.bin"
    with open(path, "wb") as handle:
        for _ in range(120):
            handle.write(os.urandom(1_000_000))
    return path


# -- JupyterLab -----------------------------------------------------------------------


def test_lab_health_without_token(lab_empty: Server) -> None:
    response = http_get(lab_empty.url + HEALTH_PATH)
    assert response.status == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["service"] == SERVICE
    assert body["store"] == {
        "documents": 0,
        "pages": 0,
        "schema_version": SCHEMA_VERSION,
    }


def test_lab_health_counts_documents_not_files(lab_full: Server) -> None:
    body = http_get(lab_full.url + HEALTH_PATH).json()
    assert body["status"] == "healthy"
    assert body["store"]["documents"] == 2
    assert body["store"]["pages"] == 5


@pytest.mark.parametrize("path", ["/lab", "/lab/tree/" + WORKBENCH, "/tree"])
def test_lab_pages_redirect_to_login(lab_empty: Server, path: str) -> None:
    response = http_get(lab_empty.url + path)
    assert response.status == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "path", ["/api/contents", "/api/kernels", "/api/sessions", "/api/terminals"]
)
def test_lab_api_rejects_missing_token(lab_empty: Server, path: str) -> None:
    assert http_get(lab_empty.url + path).status == 403
    assert http_get(lab_empty.url + path, token="wrong-" + TOKEN).status == 403


def test_lab_api_accepts_token(lab_empty: Server) -> None:
    response = http_get(lab_empty.url + "/api/contents", token=TOKEN)
    assert response.status == 200
    names = [item["name"] for item in response.json()["content"]]
    assert WORKBENCH in names


def test_lab_page_opens_with_token(lab_empty: Server) -> None:
    response = http_get(f"{lab_empty.url}/lab?token={TOKEN}")
    assert response.status == 200
    assert b"JupyterLab" in response.body


def test_lab_voila_render_needs_token(lab_empty: Server) -> None:
    path = f"/voila/render/{WORKBENCH}"
    without = http_get(lab_empty.url + path)
    assert without.status == 302
    assert "/login" in without.headers["Location"]
    rendered = http_get(lab_empty.url + path, token=TOKEN, timeout=120)
    assert rendered.status == 200
    assert b"ocrkit test notebook" in rendered.body


def test_lab_kernel_gets_storage_path(lab_empty: Server) -> None:
    rendered = http_get(
        f"{lab_empty.url}/voila/render/{WORKBENCH}", token=TOKEN, timeout=120
    )
    assert rendered.status == 200
    assert f"storage={lab_empty.storage.resolve()}".encode() in rendered.body


def test_lab_log_hides_configured_token(lab_empty: Server) -> None:
    log = lab_empty.log_path.read_text(errors="replace")
    assert "/lab?token=<OCRKIT_TOKEN>" in log
    assert TOKEN not in log


def test_lab_accepts_100_mb_message(lab_empty: Server) -> None:
    started = http_request_post(lab_empty.url + "/api/kernels", TOKEN)
    kernel_id = started["id"]
    ws_url = (
        lab_empty.url.replace("http://", "ws://")
        + f"/api/kernels/{kernel_id}/channels?token={TOKEN}"
    )
    begin = time.monotonic()
    reply = run_async(
        _send_large_message(
            ws_url,
            "execute_request",
            "shell",
            {"code": "1 + 1", "silent": False, "store_history": False},
        )
    )
    seconds = time.monotonic() - begin
    print(
        f"lab: {UPLOAD_MESSAGE_BYTES / MIB:.0f} MiB message answered in {seconds:.1f} s"
    )
    assert reply is not None, "the server dropped the large message"
    assert reply["content"]["status"] == "ok"


def http_request_post(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    request.add_header("Authorization", f"token {token}")
    request.add_header("Content-Type", "application/json")
    with _opener.open(request, timeout=120) as reply:
        return json.loads(reply.read())


@pytest.mark.browser
def test_lab_voila_receives_120_mb_upload(
    lab_empty: Server, browser: Any, large_file: Path
) -> None:
    url = f"{lab_empty.url}/voila/render/{WORKBENCH}?token={TOKEN}"
    report = lab_empty.storage.parent / "upload.txt"
    seconds = upload_in_browser(browser, url, large_file, report)
    print(f"lab: 120 MB upload through FileUpload in {seconds:.1f} s")


def test_rss_independent_of_storage_files(lab_empty: Server, lab_full: Server) -> None:
    # Only health checks reach lab_full, so its memory is comparable with the empty
    # server's right after start.
    empty = lab_empty.startup_rss_mb
    full = lab_full.startup_rss_mb
    fill_storage(lab_full.storage, 10_000, start=50_000)
    for _ in range(5):
        assert http_get(lab_full.url + HEALTH_PATH).status == 200
    time.sleep(1.0)
    after = lab_full.rss_mb()
    print(
        f"server RSS: empty store {empty:.1f} MB, 50,000 files {full:.1f} MB, "
        f"60,000 files {after:.1f} MB (files written in "
        f"{lab_full.notes['fill_seconds']:.1f} s)"
    )
    assert full - empty < RSS_MARGIN_MB
    assert after - empty < RSS_MARGIN_MB


# -- Voila dashboard ------------------------------------------------------------------


def test_dashboard_needs_token(dashboard: Server) -> None:
    without = http_get(dashboard.url + "/")
    assert without.status == 302
    assert "/login" in without.headers["Location"]
    wrong = http_get(dashboard.url + "/?token=wrong-" + TOKEN)
    assert wrong.status == 302


def test_dashboard_accepts_100_mb_message(dashboard: Server) -> None:
    page = http_get(f"{dashboard.url}/?token={TOKEN}", timeout=120)
    assert page.status == 200
    assert b"ocrkit test notebook" in page.body
    match = re.search(rb'"kernelId": "([0-9a-f-]{36})"', page.body)
    assert match is not None, "no kernel id in the dashboard page"
    kernel_id = match.group(1).decode()
    ws_url = (
        dashboard.url.replace("http://", "ws://")
        + f"/api/kernels/{kernel_id}/channels?token={TOKEN}"
    )
    begin = time.monotonic()
    reply = run_async(_send_large_message(ws_url, "kernel_info_request", "shell", {}))
    seconds = time.monotonic() - begin
    print(f"dashboard: {UPLOAD_MESSAGE_BYTES / MIB:.0f} MiB message in {seconds:.1f} s")
    assert reply is not None, "the server dropped the large message"
    assert reply["content"]["status"] == "ok"


@pytest.mark.browser
def test_dashboard_receives_120_mb_upload(
    dashboard: Server, browser: Any, large_file: Path
) -> None:
    url = f"{dashboard.url}/?token={TOKEN}"
    report = dashboard.storage.parent / "upload.txt"
    seconds = upload_in_browser(browser, url, large_file, report)
    print(f"dashboard: 120 MB upload through FileUpload in {seconds:.1f} s")


def test_dashboard_health_then_broken_store(dashboard: Server) -> None:
    healthy = http_get(dashboard.url + HEALTH_PATH)
    assert healthy.status == 200
    assert healthy.json()["store"]["documents"] == 2
    assert healthy.json()["store"]["pages"] == 5

    (dashboard.storage / DATABASE_NAME).write_bytes(b"not a database " * 1000)
    broken = http_get(dashboard.url + HEALTH_PATH)
    assert broken.status == 503
    assert broken.json()["status"] == "unhealthy"
    assert str(dashboard.storage) not in broken.body.decode()


# -- the handler, in-process ----------------------------------------------------------


async def _fetch_health(storage: Path) -> tornado.httpclient.HTTPResponse:
    app = tornado.web.Application(health_handlers("/", storage))
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        client = tornado.httpclient.AsyncHTTPClient()
        return await client.fetch(
            f"http://127.0.0.1:{port}{HEALTH_PATH}", raise_error=False
        )
    finally:
        server.stop()


def fetch_health(storage: Path) -> tuple[int, dict[str, object], str]:
    response = run_async(_fetch_health(storage))
    text = response.body.decode()
    return response.code, json.loads(text), response.headers.get("Cache-Control", "")


def test_health_json_shape(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    add_documents(storage, [2, 1, 1])
    before = datetime.now(UTC)
    status, body, cache = fetch_health(storage)
    after = datetime.now(UTC)
    assert status == 200
    assert set(body) == {"status", "service", "timestamp", "store"}
    assert body["status"] == "healthy"
    assert body["service"] == "PDF OCR Lines Manager"
    assert body["store"] == {
        "documents": 3,
        "pages": 4,
        "schema_version": SCHEMA_VERSION,
    }
    stamp = datetime.fromisoformat(str(body["timestamp"]))
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0
    assert before.replace(microsecond=0) <= stamp.replace(microsecond=0)
    assert stamp <= after
    assert cache == "no-store"
    assert str(tmp_path) not in json.dumps(body)
    assert "document-" not in json.dumps(body)


def _storage_is_file(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    path.write_text("a file where the store folder should be")
    return path


def _corrupt_database(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    path.mkdir()
    (path / DATABASE_NAME).write_bytes(b"\x00garbage" * 4096)
    return path


def _newer_schema(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    path.mkdir()
    with sqlite3.connect(path / DATABASE_NAME) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    return path


@pytest.mark.parametrize(
    ("make_storage", "reason"),
    [
        (_storage_is_file, "the store folder cannot be created or opened"),
        (_corrupt_database, "the store database cannot be opened"),
        (_newer_schema, "the store cannot be opened"),
    ],
)
def test_health_broken_store_is_503(tmp_path: Path, make_storage, reason: str) -> None:
    storage = make_storage(tmp_path)
    status, body, cache = fetch_health(storage)
    assert status == 503
    assert body == {"status": "unhealthy", "reason": reason}
    assert str(tmp_path) not in json.dumps(body)
    assert cache == "no-store"
