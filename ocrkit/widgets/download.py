"""A download button that works in JupyterLab and in Voila.

A click requests the file from Python, which builds it and sends the bytes back in
one message. The browser saves them under the given file name. Nothing is written
to the server's disk and no URL of the server is involved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

log = logging.getLogger(__name__)

# (file name, MIME type, bytes) or None when there is nothing to download.
FileBuilder = Callable[[], "tuple[str, str, bytes] | None"]


class DownloadButton(anywidget.AnyWidget):
    """A button; on click it calls ``builder`` and sends the file to the browser."""

    _esm = Path(__file__).with_name("download.js")
    _css = Path(__file__).with_name("download.css")

    description = traitlets.Unicode("Download").tag(sync=True)
    tooltip = traitlets.Unicode("").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)

    def __init__(self, builder: FileBuilder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.builder = builder
        self.sent: list[tuple[str, int]] = []

    def _handle_custom_msg(self, content: Any, buffers: list[bytes]) -> None:
        if isinstance(content, dict) and content.get("event") == "request":
            self.download()
        else:
            log.warning("download button ignored a message: %r", content)
        super()._handle_custom_msg(content, buffers)

    def download(self) -> None:
        """Build the file and send it to the browser; exceptions propagate."""
        self.busy = True
        try:
            built = self.builder()
            if built is None:
                return
            filename, mime, data = built
            self.send(
                {"event": "file", "filename": filename, "mime": mime}, buffers=[data]
            )
            self.sent.append((filename, len(data)))
            log.info("sent %s (%d bytes) to the browser", filename, len(data))
        finally:
            self.busy = False
