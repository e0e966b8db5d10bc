"""Messages and the log of the workbench, and a guard that runs widget callbacks.

JupyterLab and Voila print an exception raised in a widget callback to the kernel's
stderr, where a dashboard user never sees it. ``Feedback.guard`` wraps each callback:
an ``OcrkitError`` becomes a short message in the page, any other exception a short
message plus its traceback in the log panel.
"""

from __future__ import annotations

import functools
import html
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

import ipywidgets as widgets

from ocrkit.errors import OcrkitError

log = logging.getLogger(__name__)

Kind = Literal["info", "success", "warning", "error"]
P = ParamSpec("P")
R = TypeVar("R")

# The log panel keeps this many records; older ones are dropped.
MAX_LOG_RECORDS = 400
_ICONS = {"info": "ℹ", "success": "✓", "warning": "⚠", "error": "✕"}


# Seconds an error stays on show below the info and success messages that follow
# it, such as the end of reading the other files of the same upload.
ERROR_KEPT_S = 30.0


def _note_html(kind: Kind, text: str, stamp: str = "") -> str:
    """Return the HTML of one message, with the time it was shown when given."""
    time_html = f'<span class="okw-time">{stamp}</span>' if stamp else ""
    return (
        f'<div class="okw-note okw-{kind}" role="status">'
        f'<span class="okw-icon">{_ICONS[kind]}</span>'
        f"<span>{html.escape(text)}</span>{time_html}</div>"
    )


class OutputLogHandler(logging.Handler):
    """A logging handler that appends formatted records to an ``Output`` widget."""

    def __init__(self, output: widgets.Output, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.output = output
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            outputs = self.output.outputs[-(MAX_LOG_RECORDS - 1) :]
            self.output.outputs = (
                *outputs,
                {"output_type": "stream", "name": "stdout", "text": text},
            )
        except Exception:  # a log handler must never raise into the caller
            self.handleError(record)


class Feedback:
    """The message line at the top of the workbench and the log panel below it.

    Messages are short: they state what happened and what to do next. Details and
    tracebacks go to the log. Methods may be called from any thread.
    """

    def __init__(self, logger_name: str = "ocrkit") -> None:
        self.message = widgets.HTML(layout=widgets.Layout(min_height="28px"))
        self.message.add_class("okw-message")
        self.output = widgets.Output(layout=widgets.Layout(max_height="220px"))
        self.output.add_class("okw-log")
        self.log_panel = widgets.Accordion(children=[self.output], selected_index=None)
        self.log_panel.set_title(0, "Log")
        self.log_panel.add_class("okw-log-panel")
        self._handler = OutputLogHandler(self.output)
        self._logger = logging.getLogger(logger_name)
        self._lock = threading.Lock()
        self.last: tuple[Kind, str] | None = None
        self._error: tuple[float, str] | None = None  # when shown, and its text
        self._attach()

    def _attach(self) -> None:
        # Only the newest workbench of a kernel logs: a re-run notebook cell would
        # otherwise write every record into each older, hidden log panel too.
        for handler in list(self._logger.handlers):
            if isinstance(handler, OutputLogHandler):
                self._logger.removeHandler(handler)
        self._logger.addHandler(self._handler)
        self._level = self._logger.level
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)

    def close(self) -> None:
        """Stop receiving log records and restore the logger's level."""
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)

    def show(self, text: str, kind: Kind = "info") -> None:
        """Show one short message, replacing the previous one.

        An error shown less than ``ERROR_KEPT_S`` seconds before stays below an
        info or success message, so that it is not gone before it is read.
        """
        with self._lock:
            self.last = (kind, text)
            now = time.monotonic()
            recent_error = ""
            if self._error is not None and now - self._error[0] < ERROR_KEPT_S:
                recent_error = self._error[1]
            notes = _note_html(kind, text, time.strftime("%H:%M:%S"))
            if kind == "error":
                self._error = (now, text)
            elif kind in ("info", "success") and recent_error:
                notes += _note_html("error", recent_error)
            self.message.value = notes

    def clear(self) -> None:
        """Remove the message."""
        with self._lock:
            self.last = None
            self._error = None
            self.message.value = ""

    def report(self, exc: BaseException, action: str) -> None:
        """Show an exception raised while doing ``action`` and log its details."""
        if isinstance(exc, OcrkitError):
            log.warning("%s failed: %s", action, exc)
            self.show(f"{action} failed: {exc}", "error")
        else:
            log.error("%s failed", action, exc_info=exc)
            self.show(
                f"{action} failed: {type(exc).__name__}: {exc}. "
                "The log below has the details.",
                "error",
            )

    def guard(self, action: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
        """Return a decorator that reports exceptions of a callback instead of raising.

        The wrapped callback returns None when it failed.
        """

        def decorate(function: Callable[P, R]) -> Callable[P, R | None]:
            @functools.wraps(function)
            def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
                try:
                    return function(*args, **kwargs)
                except Exception as exc:
                    self.report(exc, action)
                    return None

            return run

        return decorate

    def call(self, action: str, function: Callable[..., R], *args: Any) -> R | None:
        """Call ``function(*args)`` and report any exception; None when it failed."""
        return self.guard(action)(function)(*args)
