"""Render the next pages of a document in a process of its own.

PyMuPDF holds the GIL while it renders, so a thread rendering the next page
stalls the models' Python steps: on 36 scanned pages it read 64.5 and 65.7
pages per minute against 64.7 and 66.4 without it. ``RenderAhead`` starts
``python -m ocrkit.rendering`` and talks to it over two pipes: it sends a
``PageTask`` and gets the ``RenderedPage`` back. It is a plain process, not a
``multiprocessing`` one, so the calling script is not imported again in it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocrkit.reading import PageTask
    from ocrkit.sources import RenderedPage

log = logging.getLogger(__name__)


class RenderAhead:
    """Render one page ahead in a render process while this process reads another.

    On 36 scanned pages on 2 cores, the onnx engine read 73 to 76 pages per
    minute with it and 68 to 70 without it. The render process takes about
    185 MB of RSS, 115 MB of which is PyMuPDF itself. A page that failed to
    render there is rendered again by the caller, so that its error is reported
    as without rendering ahead. If the process cannot start or dies, the caller
    renders every page itself.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._pending: int | None = None  # page index sent and not yet taken
        self._broken = False

    def submit(self, task: PageTask) -> None:
        """Start rendering ``task``'s page, unless a page is still pending."""
        if self._broken or self._pending is not None:
            return
        try:
            if self._requests is None:
                self._start()
            assert self._requests is not None
            self._requests.send(task)
        except (OSError, ValueError) as exc:
            log.info("render process failed: %s; pages are rendered here", exc)
            self.close()
            self._broken = True
            return
        self._pending = task.page_index

    def take(self, task: PageTask) -> RenderedPage | None:
        """Return ``task``'s page if it was rendered ahead, else None."""
        if self._pending is None or self._replies is None:
            return None
        pending, self._pending = self._pending, None
        try:
            kind, value = self._replies.recv()
        except (OSError, EOFError, ValueError) as exc:
            log.info("render process failed: %s; pages are rendered here", exc)
            self.close()
            self._broken = True
            return None
        if kind == "error":
            log.debug("page %d failed to render ahead: %s", pending + 1, value)
            return None
        return value if pending == task.page_index else None

    def close(self) -> None:
        """End the render process."""
        for connection in (self._requests, self._replies):
            if connection is not None:
                connection.close()
        self._requests = self._replies = None
        self._pending = None
        if self._process is not None:
            # Its requests pipe is closed, so it ends after the page it renders.
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ocrkit.rendering",
                    str(request_read),
                    str(reply_write),
                ],
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            os.close(request_write)
            os.close(reply_read)
            raise
        finally:
            os.close(request_read)
            os.close(reply_write)
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)


def serve(requests: Connection, replies: Connection) -> None:
    """Render each page asked for until the requests pipe closes."""
    from ocrkit.reading import close_open_source, render_page

    try:
        while True:
            try:
                task = requests.recv()
            except EOFError:
                return  # the reader is done, or ended
            reply: tuple[str, Any]
            try:
                reply = ("page", render_page(task))
            except Exception as exc:  # the reader renders the page again
                reply = ("error", f"{type(exc).__name__}: {exc}")
            try:
                replies.send(reply)
            except OSError:
                return  # the reader ended
    finally:
        close_open_source()


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the reader stops this process by
    # closing the requests pipe, with no traceback from here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(
        Connection(int(sys.argv[1]), writable=False),
        Connection(int(sys.argv[2]), readable=False),
    )
