"""OCR engines: a small interface and the registry of engines by name.

An engine turns an RGB page image into lines with four-point polygons, text and a
confidence from 0 to 1, and reads a single cropped region into text. Engines load
their models lazily and offline: every model comes from an installed package or a
local folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ocrkit.errors import EngineError
from ocrkit.models import RecognizedLine

if TYPE_CHECKING:
    from ocrkit.sources import Source


@runtime_checkable
class Engine(Protocol):
    """Interface of an OCR engine."""

    name: str

    @property
    def model(self) -> str:
        """The models the engine runs, as recorded on each page it reads."""
        ...

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Detect and read every text line of an RGB page image."""
        ...

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        """Read a cropped RGB image holding one line; return text and confidence."""
        ...


@dataclass(frozen=True)
class PageText:
    """Lines an engine read from a page's file, and the engine and model to record."""

    lines: list[RecognizedLine]
    engine: str
    model: str


@runtime_checkable
class PageEngine(Protocol):
    """An engine that can read a page from its file, without a page image.

    ``read_page`` calls ``recognize_page`` first; when it returns None the page
    image is read with ``recognize``.
    """

    def recognize_page(
        self, source: Source, page_index: int, dpi: float
    ) -> PageText | None:
        """Read a page with coordinates in pixels at ``dpi``, or return None."""
        ...


@runtime_checkable
class UprightEngine(Protocol):
    """An engine that finds out by itself whether a page lies sideways or upside down.

    ``read_page`` calls ``recognize_upright`` on pages that are not tall. When it
    returns None, ``read_page`` reads the page with ``recognize`` and checks it.
    """

    def recognize_upright(
        self, image: np.ndarray
    ) -> tuple[list[RecognizedLine], int, np.ndarray] | None:
        """Return the lines, the clockwise turn applied and the image they refer to."""
        ...


EngineFactory = Callable[..., Engine]
_FACTORIES: dict[str, EngineFactory] = {}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make an engine available to ``get_engine`` under ``name``."""
    _FACTORIES[name] = factory


def engine_names() -> list[str]:
    """Return the names of the registered engines."""
    _register_builtins()
    return sorted(_FACTORIES)


def get_engine(name: str = "onnx", **options: Any) -> Engine:
    """Create the engine registered as ``name`` with engine-specific options."""
    _register_builtins()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(_FACTORIES))
        raise EngineError(f"unknown engine {name!r}; choose one of: {known}") from None
    return factory(**options)


def _register_builtins() -> None:
    if "onnx" in _FACTORIES:
        return
    from ocrkit.engines.onnx import OnnxEngine
    from ocrkit.engines.paddle import PaddleEngine
    from ocrkit.engines.text import AutoEngine, TextEngine

    register_engine("onnx", OnnxEngine)
    register_engine("paddle", PaddleEngine)
    register_engine("text", TextEngine)
    register_engine("auto", AutoEngine)
