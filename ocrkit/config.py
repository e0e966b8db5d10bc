"""Settings read from environment variables, in one place.

| variable | sets | default |
|---|---|---|
| ``OCRKIT_STORAGE`` | the store's folder | ``./storage`` |
| ``OCRKIT_DPI`` | resolution pages are rendered at for OCR, in dots per inch | 200 |
| ``OCRKIT_ENGINE`` | engine: ``auto``, ``onnx``, ``paddle`` or ``text`` | ``auto`` |
| ``OCRKIT_MAX_PIXELS`` | largest page image; larger pages get a lower dpi | 40000000 |
| ``OCRKIT_PORT`` | the port the workbench serves on | 8888 |
| ``OCRKIT_UPLOAD_LIMIT_MB`` | largest file the workbench accepts, in MB | 200 |
| ``OCRKIT_IP`` | the address the workbench listens on | ``127.0.0.1`` |
| ``OCRKIT_TOKEN`` | the token that opens the workbench | a new random one |
| ``OCRKIT_RUNTIME`` | what runs the onnx engine: openvino or onnxruntime | openvino |
| ``OCRKIT_THREADS`` | threads the engine's models use in each process | all cores |
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ocrkit.errors import OcrkitError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """ocrkit's settings; see the module docstring for the variables."""

    storage: Path
    dpi: float
    engine: str
    max_pixels: int
    port: int
    upload_limit_mb: int
    ip: str = "127.0.0.1"
    # None makes each server start with a new random token. repr() leaves it out.
    token: str | None = field(default=None, repr=False)


def _number(name: str, default: str, kind: type[int] | type[float]) -> int | float:
    raw = os.environ.get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise OcrkitError(
            f"{name}={raw!r} is not a number; unset it or fix it"
        ) from None
    if value <= 0:
        raise OcrkitError(f"{name}={raw!r} must be greater than zero")
    return value


RUNTIMES = ("openvino", "onnxruntime")


def env_threads() -> int | None:
    """Return ``OCRKIT_THREADS`` as a thread count, or None when unset or invalid."""
    raw = os.environ.get("OCRKIT_THREADS", "").strip()
    if not raw:
        return None
    try:
        return max(1, int(raw))
    except ValueError:
        log.warning("OCRKIT_THREADS=%r is not a whole number; using every core", raw)
        return None


def load_settings() -> Settings:
    """Read the settings from the environment, raising ``OcrkitError`` if invalid."""
    runtime = os.environ.get("OCRKIT_RUNTIME", "").strip().lower()
    if runtime and runtime not in RUNTIMES:
        raise OcrkitError(
            f"OCRKIT_RUNTIME={runtime!r} is invalid; "
            f"give one of: {', '.join(RUNTIMES)}, or unset it"
        )
    if os.environ.get("OCRKIT_THREADS", "").strip():
        _number("OCRKIT_THREADS", "", int)
    return Settings(
        storage=Path(os.environ.get("OCRKIT_STORAGE") or "storage"),
        dpi=float(_number("OCRKIT_DPI", "200", float)),
        engine=os.environ.get("OCRKIT_ENGINE") or "auto",
        max_pixels=int(_number("OCRKIT_MAX_PIXELS", "40000000", int)),
        port=int(_number("OCRKIT_PORT", "8888", int)),
        upload_limit_mb=int(_number("OCRKIT_UPLOAD_LIMIT_MB", "200", int)),
        ip=os.environ.get("OCRKIT_IP") or "127.0.0.1",
        token=os.environ.get("OCRKIT_TOKEN", "").strip() or None,
    )
