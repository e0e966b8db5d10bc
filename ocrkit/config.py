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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ocrkit.errors import OcrkitError


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


def load_settings() -> Settings:
    """Read the settings from the environment."""
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
