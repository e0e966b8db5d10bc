"""The default engine: PP-OCRv6 models on ONNX Runtime, from the ``rapidocr`` wheel.

The detector, the recognizer and the 0/180 degree line classifier ship inside the
``rapidocr`` 3.10 wheel, so nothing is downloaded. The recognizer's character list
covers Latin-1 and Latin Extended (accents, ñ, ¿) but not "¡" (U+00A1).
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.errors import EngineError, MissingDependencyError
from ocrkit.models import Poly, RecognizedLine

log = logging.getLogger(__name__)

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"


class OnnxEngine:
    """PP-OCRv6 small detector and recognizer run by RapidOCR on ONNX Runtime.

    Args:
        max_side_len: longest side, in pixels, of the image given to the detector;
            larger pages are scaled down for detection only.
        use_cls: classify each line as upright or upside down before reading it.
        threads: ONNX Runtime threads per model; -1 uses every core. None takes
            the ``OCRKIT_THREADS`` environment variable, which ``read_document``
            sets in its worker processes, or every core when it is unset.
        text_score: lines the recognizer scores below this are dropped (0 to 1).
    """

    name = "onnx"

    def __init__(
        self,
        *,
        max_side_len: int = 2000,
        use_cls: bool = True,
        threads: int | None = None,
        text_score: float = 0.5,
    ) -> None:
        self.options: dict[str, Any] = {
            "max_side_len": max_side_len,
            "use_cls": use_cls,
            "threads": default_threads() if threads is None else threads,
            "text_score": text_score,
        }
        self._ocr: Any = None

    @property
    def model(self) -> str:
        """Model names and the rapidocr version that ran them."""
        return f"{DET_MODEL} + {REC_MODEL} (rapidocr {_version('rapidocr')})"

    def _load(self) -> Any:
        if self._ocr is not None:
            return self._ocr
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise MissingDependencyError(
                "the onnx engine needs the rapidocr and onnxruntime packages; "
                "install them with: pip install 'rapidocr==3.10.0' onnxruntime"
            ) from exc
        models = Path(rapidocr.__file__).parent / "models"
        paths = {name: models / name for name in (DET_MODEL, REC_MODEL, CLS_MODEL)}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise EngineError(
                f"model files missing from the rapidocr package: {', '.join(missing)}; "
                "reinstall it with: pip install --force-reinstall 'rapidocr==3.10.0'"
            )
        try:
            self._ocr = RapidOCR(params=self.rapidocr_params(models))
        except Exception as exc:  # rapidocr raises bare Exceptions of many kinds
            raise EngineError(
                f"the onnx engine failed to load its models: {exc}"
            ) from exc
        return self._ocr

    def rapidocr_params(self, models: Path) -> dict[str, Any]:
        """Return the ``RapidOCR(params=...)`` settings this engine runs with.

        ``models`` is the folder holding the three model files.
        """
        threads = self.options["threads"]
        return {
            "Global.log_level": "error",
            "Global.text_score": self.options["text_score"],
            "Global.max_side_len": self.options["max_side_len"],
            "Global.use_cls": self.options["use_cls"],
            "Det.model_path": str(models / DET_MODEL),
            "Rec.model_path": str(models / REC_MODEL),
            "Cls.model_path": str(models / CLS_MODEL),
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1 if threads > 0 else -1,
        }

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Detect and read every text line of an RGB page image."""
        ocr = self._load()
        if image.size == 0 or min(image.shape[:2]) < 4:
            return []
        try:
            # RapidOCR expects OpenCV's BGR channel order for arrays.
            # rapidocr 3.10 keeps the use_* flags of the previous call, so a region
            # read (no detection) must not leave detection off for this page.
            result = ocr(
                np.ascontiguousarray(image[..., ::-1]),
                use_det=True,
                use_cls=self.options["use_cls"],
                use_rec=True,
            )
        except Exception as exc:  # onnxruntime and OpenCV raise many kinds
            raise EngineError(f"the onnx engine failed on the page: {exc}") from exc
        # With nothing detected, RapidOCR returns an output object without boxes.
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or texts is None or scores is None:
            return []
        lines = []
        for box, text, score in zip(boxes, texts, scores, strict=True):
            poly: Poly = tuple((float(x), float(y)) for x, y in box)  # type: ignore[assignment]
            confidence = min(1.0, max(0.0, float(score)))
            lines.append(
                RecognizedLine(poly=poly, text=str(text), confidence=confidence)
            )
        return lines

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        """Read a cropped RGB image holding one line; return text and confidence."""
        ocr = self._load()
        if image.size == 0 or min(image.shape[:2]) < 2:
            return ("", 0.0)
        try:
            result = ocr(
                np.ascontiguousarray(image[..., ::-1]),
                use_det=False,
                use_cls=False,
                use_rec=True,
            )
        except Exception as exc:  # onnxruntime and OpenCV raise many kinds
            raise EngineError(f"the onnx engine failed on the region: {exc}") from exc
        texts = getattr(result, "txts", None)
        if not texts:
            return ("", 0.0)
        text = " ".join(str(t) for t in texts).strip()
        scores = [float(s) for s in result.scores]
        return (text, min(1.0, max(0.0, sum(scores) / len(scores))))


def default_threads() -> int:
    """Return ``OCRKIT_THREADS`` as a thread count, or -1 (every core) when unset."""
    raw = os.environ.get("OCRKIT_THREADS", "").strip()
    if not raw:
        return -1
    try:
        return max(1, int(raw))
    except ValueError:
        log.warning("OCRKIT_THREADS=%r is not a whole number; using every core", raw)
        return -1


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
