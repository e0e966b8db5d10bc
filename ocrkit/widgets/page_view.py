"""The page canvas: a page image with its text-line boxes, to check and correct them.

``PageView`` is an anywidget, so it runs in JupyterLab and in Voila with no
front-end extension of its own. The browser draws every line's box over the page
image, and a user selects, moves, resizes, draws and deletes boxes there. The view
sends each finished change to Python, to the callbacks registered with
``on_box_changed``, ``on_box_added`` and ``on_box_deleted``.

Boxes are ``[x0, y0, x1, y1]`` in pixels of the page image, origin at the top-left
corner, the convention of ``ocrkit.models``. ``image_width`` and ``image_height``
define that pixel space: the browser stretches the image to it, so a smaller preview
image (a JPEG at a lower dpi, say) may be shown under boxes measured on the full
page. Boxes the browser sends back are in the same pixels, whatever the zoom.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets
from PIL import Image

from ocrkit.models import Line

logger = logging.getLogger(__name__)

BBoxList = list[float]
BoxChangedCallback = Callable[[int, BBoxList], object]
BoxAddedCallback = Callable[[BBoxList], object]
BoxDeletedCallback = Callable[[int], object]

MODES = ("select", "draw")
IMAGE_FORMATS = ("png", "jpeg")
LINE_ORIGINS = ("ocr", "text_layer", "edited", "added")
MIN_ZOOM = 0.25
MAX_ZOOM = 8.0
# Below the first value a box is drawn as low confidence, from the second on as high.
DEFAULT_CONFIDENCE_THRESHOLDS = (0.6, 0.85)
# Boxes narrower or lower than this, in image pixels, are rejected as accidental.
MIN_BOX_SIZE = 1.0


class PageView(anywidget.AnyWidget):
    """A page image with its line boxes, which a user can select and edit.

    Python sets ``image`` (or calls ``set_image``) and ``lines``. The view keeps
    ``lines`` in step with what the user does: a moved or resized box gets its new
    ``bbox`` and a deleted box leaves ``lines``, both before the callbacks run.
    A drawn box has no id yet, so ``on_box_added`` callbacks must add it to
    ``lines`` (with the id the store gave it). With no such callback the view adds
    it itself with the next free id and origin ``added``.
    """

    _esm = Path(__file__).with_name("page_view.js")
    _css = Path(__file__).with_name("page_view.css")

    image = traitlets.Bytes(b"", help="The page image, PNG or JPEG bytes.").tag(
        sync=True
    )
    image_format = traitlets.Unicode("png", help="'png' or 'jpeg'.").tag(sync=True)
    image_width = traitlets.Int(
        0, help="Width of the boxes' pixel space, or 0 for the image's own width."
    ).tag(sync=True)
    image_height = traitlets.Int(
        0, help="Height of the boxes' pixel space, or 0 for the image's own height."
    ).tag(sync=True)
    lines = traitlets.List(
        traitlets.Dict(),
        help="Line dicts: id, bbox, text, confidence, origin, verified.",
    ).tag(sync=True)
    selected = traitlets.Int(-1, help="Id of the selected line, -1 for none.").tag(
        sync=True
    )
    zoom = traitlets.Float(1.0, help="Zoom factor, where 1.0 fits the page width.").tag(
        sync=True
    )
    mode = traitlets.Unicode(
        "select", help="'select' to edit boxes, 'draw' to draw new ones."
    ).tag(sync=True)
    height = traitlets.Unicode(
        "720px", help="CSS height of the scrolling viewport."
    ).tag(sync=True)
    confidence_thresholds = traitlets.List(
        traitlets.Float(),
        default_value=list(DEFAULT_CONFIDENCE_THRESHOLDS),
        minlen=2,
        maxlen=2,
        help="[low, high]: confidence below low is drawn as low, from high on as high.",
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._box_changed_callbacks: list[BoxChangedCallback] = []
        self._box_added_callbacks: list[BoxAddedCallback] = []
        self._box_deleted_callbacks: list[BoxDeletedCallback] = []

    # -- trait validation --------------------------------------------------------------

    @traitlets.validate("image_format")
    def _validate_image_format(self, proposal: traitlets.Bunch) -> str:
        value = str(proposal["value"]).lower()
        if value == "jpg":
            value = "jpeg"
        if value not in IMAGE_FORMATS:
            raise traitlets.TraitError(
                f"image_format {proposal['value']!r} is invalid; use 'png' or 'jpeg'"
            )
        return value

    @traitlets.validate("image_width", "image_height")
    def _validate_image_size(self, proposal: traitlets.Bunch) -> int:
        if proposal["value"] < 0:
            raise traitlets.TraitError(
                f"{proposal['trait'].name} {proposal['value']} is negative"
            )
        return proposal["value"]

    @traitlets.validate("mode")
    def _validate_mode(self, proposal: traitlets.Bunch) -> str:
        if proposal["value"] not in MODES:
            raise traitlets.TraitError(
                f"mode {proposal['value']!r} is invalid; use 'select' or 'draw'"
            )
        return proposal["value"]

    @traitlets.validate("zoom")
    def _validate_zoom(self, proposal: traitlets.Bunch) -> float:
        value = proposal["value"]
        if not math.isfinite(value) or value <= 0:
            raise traitlets.TraitError(f"zoom {value!r} must be a positive number")
        return min(max(value, MIN_ZOOM), MAX_ZOOM)

    @traitlets.validate("confidence_thresholds")
    def _validate_thresholds(self, proposal: traitlets.Bunch) -> list[float]:
        low, high = proposal["value"]
        if not 0.0 <= low <= high <= 1.0:
            raise traitlets.TraitError(
                f"confidence_thresholds {proposal['value']!r} must satisfy "
                "0 <= low <= high <= 1"
            )
        return [float(low), float(high)]

    @traitlets.validate("lines")
    def _validate_lines(self, proposal: traitlets.Bunch) -> list[dict[str, Any]]:
        lines = [_normalise_line(line) for line in proposal["value"]]
        ids = [line["id"] for line in lines]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise traitlets.TraitError(f"lines have duplicate ids {duplicates}")
        return lines

    @traitlets.observe("lines")
    def _drop_stale_selection(self, change: traitlets.Bunch) -> None:
        if self.selected != -1 and self._line_index(self.selected) is None:
            self.selected = -1

    # -- Python API --------------------------------------------------------------------

    def set_image(
        self, data: bytes, *, width: int | None = None, height: int | None = None
    ) -> None:
        """Show a PNG or JPEG page image.

        ``width`` and ``height`` set the pixel space of the boxes and default to the
        image's own size. Pass the OCR page size when ``data`` is a smaller preview.
        """
        with Image.open(io.BytesIO(data)) as opened:
            image_format = (opened.format or "").lower()
            natural_width, natural_height = opened.size
        if image_format not in IMAGE_FORMATS:
            raise ValueError(
                f"page image format {image_format or 'unknown'!r} is not supported; "
                "send PNG or JPEG bytes"
            )
        with self.hold_sync():
            self.image_format = image_format
            self.image_width = width or natural_width
            self.image_height = height or natural_height
            self.image = data

    def set_image_array(
        self,
        image: np.ndarray,
        *,
        image_format: str = "jpeg",
        quality: int = 90,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Encode an RGB or grey page image array and show it.

        JPEG is the default because scans shrink most: acta-municipal-es.pdf at 200
        dpi is 3.8 MB as PNG (compress level 1) and 0.8 MB as JPEG (quality 90).
        Born-digital pages are often smaller as PNG, which also keeps thin lines sharp.
        """
        buffer = io.BytesIO()
        picture = Image.fromarray(np.ascontiguousarray(image))
        if image_format.lower() in ("jpeg", "jpg"):
            picture.convert("RGB").save(buffer, format="JPEG", quality=quality)
        elif image_format.lower() == "png":
            picture.save(buffer, format="PNG", compress_level=1)
        else:
            raise ValueError(
                f"image_format {image_format!r} is invalid; use 'png' or 'jpeg'"
            )
        self.set_image(buffer.getvalue(), width=width, height=height)

    def scroll_to(self, line_id: int) -> None:
        """Select a line and scroll the viewport so that its box is in the middle."""
        if self._line_index(line_id) is None:
            raise ValueError(f"line {line_id} is not on this page")
        self.selected = line_id
        self.send({"event": "scroll_to", "id": line_id})

    def on_box_changed(
        self, callback: BoxChangedCallback, *, remove: bool = False
    ) -> None:
        """Register ``callback(line_id, bbox)`` for a box the user moved or resized."""
        _register(self._box_changed_callbacks, callback, remove)

    def on_box_added(self, callback: BoxAddedCallback, *, remove: bool = False) -> None:
        """Register ``callback(bbox)`` for a box the user drew in draw mode."""
        _register(self._box_added_callbacks, callback, remove)

    def on_box_deleted(
        self, callback: BoxDeletedCallback, *, remove: bool = False
    ) -> None:
        """Register ``callback(line_id)`` for a box the user deleted."""
        _register(self._box_deleted_callbacks, callback, remove)

    # -- messages from the browser -----------------------------------------------------

    def _handle_custom_msg(self, content: Any, buffers: list[bytes]) -> None:
        event = content.get("event") if isinstance(content, dict) else None
        if event == "box_changed":
            self._box_changed(content)
        elif event == "box_added":
            self._box_added(content)
        elif event == "box_deleted":
            self._box_deleted(content)
        else:
            logger.warning("page view ignored a message of unknown kind: %r", content)
        super()._handle_custom_msg(content, buffers)

    def _box_changed(self, content: dict[str, Any]) -> None:
        line_id = content.get("id")
        index = self._line_index(line_id)
        bbox = self._checked_bbox(content.get("bbox"))
        if index is None or bbox is None:
            logger.warning("page view ignored an invalid box change: %r", content)
            self._redraw()
            return
        lines = list(self.lines)
        lines[index] = {**lines[index], "bbox": bbox}
        self.lines = lines
        self._run_callbacks(self._box_changed_callbacks, "box changed", line_id, bbox)
        self._redraw()

    def _box_added(self, content: dict[str, Any]) -> None:
        bbox = self._checked_bbox(content.get("bbox"))
        if bbox is None:
            logger.warning("page view ignored an invalid new box: %r", content)
            self._redraw()
            return
        if self._box_added_callbacks:
            self._run_callbacks(self._box_added_callbacks, "box added", bbox)
        else:
            line_id = max((line["id"] for line in self.lines), default=0) + 1
            new_line = {
                "id": line_id,
                "bbox": bbox,
                "text": "",
                "confidence": 1.0,
                "origin": "added",
                "verified": False,
            }
            with self.hold_sync():
                self.lines = [*self.lines, new_line]
                self.selected = line_id
        self._redraw()

    def _box_deleted(self, content: dict[str, Any]) -> None:
        line_id = content.get("id")
        index = self._line_index(line_id)
        if index is None:
            logger.warning("page view ignored an invalid box deletion: %r", content)
            self._redraw()
            return
        with self.hold_sync():
            self.lines = [line for line in self.lines if line["id"] != line_id]
        self._run_callbacks(self._box_deleted_callbacks, "box deleted", line_id)
        self._redraw()

    def _run_callbacks(
        self, callbacks: list[Callable[..., object]], event: str, *args: Any
    ) -> None:
        # An exception in one callback must not stop the others. ipykernel would
        # only log it to the kernel's stderr, which a Voila user never sees.
        for callback in list(callbacks):
            try:
                callback(*args)
            except Exception:
                logger.exception("page view %s callback %r failed", event, callback)

    def _redraw(self) -> None:
        # The browser shows a finished drag before Python has seen it. This message
        # makes it draw ``lines`` again, so a rejected or altered change shows.
        self.send({"event": "redraw"})

    def _line_index(self, line_id: object) -> int | None:
        if not _is_int(line_id):
            return None
        for index, line in enumerate(self.lines):
            if line["id"] == line_id:
                return index
        return None

    def _checked_bbox(self, value: object) -> BBoxList | None:
        """Return ``value`` as a box clipped to the image, or None if it is invalid."""
        bbox = _parse_bbox(value)
        if bbox is None:
            return None
        x0, y0, x1, y1 = bbox
        if self.image_width > 0:
            x0, x1 = (min(max(v, 0.0), float(self.image_width)) for v in (x0, x1))
        if self.image_height > 0:
            y0, y1 = (min(max(v, 0.0), float(self.image_height)) for v in (y0, y1))
        if x1 - x0 < MIN_BOX_SIZE or y1 - y0 < MIN_BOX_SIZE:
            return None
        return [x0, y0, x1, y1]


def line_to_dict(line: Line) -> dict[str, Any]:
    """Return a stored line as the dict ``PageView.lines`` takes."""
    return {
        "id": line.id,
        "bbox": [float(v) for v in line.bbox],
        "text": line.text,
        "confidence": float(line.confidence),
        "origin": str(line.origin),
        "verified": bool(line.verified),
    }


def lines_to_dicts(lines: Iterable[Line]) -> list[dict[str, Any]]:
    """Return stored lines as the list ``PageView.lines`` takes."""
    return [line_to_dict(line) for line in lines]


def _register(
    callbacks: list[Callable[..., object]],
    callback: Callable[..., object],
    remove: bool,
) -> None:
    if remove:
        if callback in callbacks:
            callbacks.remove(callback)
    elif callback not in callbacks:
        callbacks.append(callback)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_bbox(value: object) -> BBoxList | None:
    """Return four finite numbers with x0 <= x1 and y0 <= y1, or None."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    bbox = [float(v) for v in value]
    if not all(math.isfinite(v) for v in bbox):
        return None
    if bbox[2] < bbox[0] or bbox[3] < bbox[1]:
        return None
    return bbox


def _normalise_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """Return a line dict with its fields checked and defaults filled in.

    Keys beyond the six the view draws (a store version, say) are kept.
    """
    if not isinstance(line, Mapping):
        raise traitlets.TraitError(f"line {line!r} is not a dict")
    line_id = line.get("id")
    if not _is_int(line_id):
        raise traitlets.TraitError(f"line id {line_id!r} is not an integer")
    bbox = _parse_bbox(line.get("bbox"))
    if bbox is None:
        raise traitlets.TraitError(
            f"line {line_id} has an invalid bbox {line.get('bbox')!r}; "
            "expected [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1"
        )
    confidence = line.get("confidence", 1.0)
    if not isinstance(confidence, int | float) or not 0.0 <= confidence <= 1.0:
        raise traitlets.TraitError(
            f"line {line_id} has confidence {confidence!r}; expected 0 to 1"
        )
    origin = str(line.get("origin", "ocr"))
    if origin not in LINE_ORIGINS:
        raise traitlets.TraitError(
            f"line {line_id} has origin {origin!r}; expected one of {LINE_ORIGINS}"
        )
    return {
        **line,
        "id": line_id,
        "bbox": bbox,
        "text": str(line.get("text", "")),
        "confidence": float(confidence),
        "origin": origin,
        "verified": bool(line.get("verified", False)),
    }
