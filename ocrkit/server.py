"""The health endpoint, as a Jupyter server extension and inside Voila standalone.

``GET /ocrkit/health`` needs no token and returns counts only (no paths, no file
names)::

    {"status": "healthy", "service": "PDF OCR Lines Manager",
     "timestamp": "2025-01-31T12:00:00.000+00:00",
     "store": {"documents": 3, "pages": 41, "schema_version": 1}}

or status 503 with ``{"status": "unhealthy", "reason": ...}`` when the store cannot
be opened. Each request opens the store's database once in a worker thread and runs
COUNT queries; it never lists the storage folder.

JupyterLab loads this module as the server extension ``ocrkit.server``. Voila
standalone loads no server extensions, so ``python -m ocrkit.server NOTEBOOK``
runs Voila with the handler added (``ocrkit.serve.dashboard_argv`` builds that
command).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.utils import url_path_join
from traitlets import Integer
from voila.app import Voila

from ocrkit.config import load_settings
from ocrkit.errors import StoreError
from ocrkit.models import utc_now
from ocrkit.serve import HEALTH_PATH
from ocrkit.store import Store

log = logging.getLogger(__name__)

SERVICE = "PDF OCR Lines Manager"


def store_counts(root: Path) -> dict[str, int]:
    """Open the store in ``root`` and return its document and page counts.

    Raises:
        StoreError: the folder or its database cannot be opened.
    """
    with Store(root) as store:
        stats = store.stats()
        return {
            "documents": stats["documents"],
            "pages": stats["pages"],
            "schema_version": store.schema_version,
        }


def _unhealthy_reason(exc: StoreError) -> str:
    """Return a reason for a failed store that names no path."""
    cause = exc.__cause__
    if isinstance(cause, OSError):
        return "the store folder cannot be created or opened"
    if isinstance(cause, sqlite3.DatabaseError):
        return "the store database cannot be opened"
    return "the store cannot be opened"


class HealthHandler(tornado.web.RequestHandler):
    """``GET /ocrkit/health``: the service's state and the store's counts."""

    def initialize(self, storage: Path) -> None:
        self.storage = storage

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    @allow_unauthenticated
    async def get(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            counts = await loop.run_in_executor(None, store_counts, self.storage)
        except StoreError as exc:
            log.error("health check failed: %s", exc)
            self.set_status(503)
            self._write_json({"status": "unhealthy", "reason": _unhealthy_reason(exc)})
            return
        self._write_json(
            {
                "status": "healthy",
                "service": SERVICE,
                "timestamp": utc_now(),
                "store": counts,
            }
        )

    def _write_json(self, body: dict[str, Any]) -> None:
        self.finish(json.dumps(body))


def health_handlers(base_url: str, storage: Path | None = None) -> list[Any]:
    """Return the tornado rules that serve the health endpoint under ``base_url``."""
    if storage is None:
        storage = load_settings().storage
    pattern = url_path_join(base_url, HEALTH_PATH)
    return [(pattern, HealthHandler, {"storage": Path(storage).resolve()})]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "ocrkit.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the health endpoint to a running Jupyter server."""
    web_app = serverapp.web_app
    handlers = health_handlers(web_app.settings["base_url"])
    web_app.add_handlers(".*$", handlers)
    serverapp.log.info("ocrkit health endpoint at %s", handlers[0][0])


class DashboardApp(Voila):
    """Voila standalone with the health endpoint and larger socket buffers."""

    max_body_size = Integer(
        512 * 1024 * 1024,
        config=True,
        help="Largest HTTP request body, in bytes.",
    )
    max_buffer_size = Integer(
        512 * 1024 * 1024,
        config=True,
        help="Largest data buffered from one connection, in bytes. A websocket "
        "message must fit in it whole.",
    )

    def init_handlers(self) -> list[Any]:
        # The health rule comes first: a single-notebook Voila serves every other
        # path with the notebook.
        return [*health_handlers(self.server_url), *super().init_handlers()]

    def listen(self) -> None:
        # Voila 0.5 starts its HTTP server with tornado's defaults (100 MiB socket
        # buffer) and no option to change them, so the sizes are bound in here.
        self.app.listen = functools.partial(  # type: ignore[method-assign]
            self.app.listen,
            max_body_size=self.max_body_size,
            max_buffer_size=self.max_buffer_size,
        )
        super().listen()


def main() -> None:
    """Run the Voila dashboard with the same options as ``voila``."""
    DashboardApp.launch_instance()


if __name__ == "__main__":
    main()
