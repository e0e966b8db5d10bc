"""Jupyter widgets of the ocrkit workbench; they need the ``workbench`` extra."""

from __future__ import annotations

from ocrkit.widgets.page_view import PageView, line_to_dict, lines_to_dicts

__all__ = ["PageView", "line_to_dict", "lines_to_dicts"]
