"""A browser-side size check for ipywidgets' ``FileUpload``.

``FileUpload`` sends all chosen files in one websocket message, and the Jupyter
server drops a message over its ``websocket_max_message_size`` without telling the
kernel. ``UploadGuard`` receives the chosen files in the browser first. It reports
each name and size to Python and removes files over ``limit_bytes`` before they
are sent. Python can then say which files were too large, and notice files that were
sent but never arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

log = logging.getLogger(__name__)

SelectedCallback = Callable[[list[dict[str, Any]]], object]


class UploadGuard(anywidget.AnyWidget):
    """Watches ``upload`` in the browser; it needs no display to work."""

    _esm = Path(__file__).with_name("upload_guard.js")

    upload = traitlets.Instance(widgets.FileUpload, allow_none=True).tag(
        sync=True, **widgets.widget_serialization
    )
    limit_bytes = traitlets.Int(0, help="Largest file sent, in bytes; 0 for any.").tag(
        sync=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._selected_callbacks: list[SelectedCallback] = []

    def on_selected(self, callback: SelectedCallback) -> None:
        """Register ``callback(files)``; each file is a dict with name and size."""
        self._selected_callbacks.append(callback)

    def _handle_custom_msg(self, content: Any, buffers: list[bytes]) -> None:
        files = content.get("files") if isinstance(content, dict) else None
        if isinstance(files, list):
            chosen = [
                {"name": str(item.get("name", "")), "size": int(item.get("size", 0))}
                for item in files
                if isinstance(item, dict)
            ]
            for callback in list(self._selected_callbacks):
                callback(chosen)
        else:
            log.warning("upload guard ignored a message: %r", content)
        super()._handle_custom_msg(content, buffers)
