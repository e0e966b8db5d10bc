"""The default engine: PP-OCRv6 ONNX models from the ``rapidocr`` wheel.

The detector, the recognizer and the 0/180 degree line classifier ship inside the
``rapidocr`` 3.10 wheel, so nothing is downloaded. The recognizer's character list
covers Latin-1 and Latin Extended (accents, ñ, ¿) but not "¡" (U+00A1).

The models run on OpenVINO when it is installed and on ONNX Runtime otherwise. On
the same pages and the same two cores, OpenVINO read them 1.4 to 1.6 times as fast,
with the same text (see ``bench/``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.config import RUNTIMES, env_threads
from ocrkit.errors import EngineError, MissingDependencyError
from ocrkit.models import Poly, RecognizedLine

log = logging.getLogger(__name__)

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"


class OnnxEngine:
    """PP-OCRv6 small detector and recognizer run by RapidOCR.

    Args:
        max_side_len: longest side, in pixels, of the image given to the detector;
            larger pages are scaled down for detection only.
        use_cls: classify each line as upright or upside down before reading it.
        threads: ONNX Runtime threads per model; -1 uses every core. None takes
            the ``OCRKIT_THREADS`` environment variable, which ``read_document``
            sets in its worker processes, or every core when it is unset.
        text_score: lines the recognizer scores below this are dropped (0 to 1).
        runtime: ``"openvino"`` or ``"onnxruntime"``; None takes
            ``OCRKIT_RUNTIME``, or OpenVINO when it is installed.
    """

    name = "onnx"

    def __init__(
        self,
        *,
        max_side_len: int = 2000,
        use_cls: bool = True,
        threads: int | None = None,
        text_score: float = 0.5,
        runtime: str | None = None,
    ) -> None:
        runtime = runtime or default_runtime()
        if runtime not in RUNTIMES:
            raise EngineError(
                f"invalid runtime {runtime!r} for the onnx engine; "
                f"give one of: {', '.join(RUNTIMES)}"
            )
        self.options: dict[str, Any] = {
            "runtime": runtime,
            "max_side_len": max_side_len,
            "use_cls": use_cls,
            "threads": default_threads() if threads is None else threads,
            "text_score": text_score,
        }
        self._ocr: Any = None
        self._compiled: list[_OpenVinoSession] = []
        # RapidOCR keeps per-call flags on itself, and an OpenVINO session runs one
        # call at a time, so calls from several threads take turns.
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        """Model names, and the rapidocr and runtime versions that ran them."""
        runtime = self.options["runtime"]
        return (
            f"{DET_MODEL} + {REC_MODEL} "
            f"(rapidocr {_version('rapidocr')}, {runtime} {_version(runtime)})"
        )

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
        runtime = self.options["runtime"]
        if importlib.util.find_spec(runtime) is None:
            raise MissingDependencyError(
                f"the onnx engine's runtime {runtime} is missing; install it "
                f"with: pip install {runtime}, or set OCRKIT_RUNTIME to the other "
                "runtime"
            )
        models = Path(rapidocr.__file__).parent / "models"
        paths = {name: models / name for name in (DET_MODEL, REC_MODEL, CLS_MODEL)}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise EngineError(
                f"model files missing from the rapidocr package: {', '.join(missing)}; "
                "reinstall it with: pip install --force-reinstall 'rapidocr==3.10.0'"
            )
        try:
            ocr = RapidOCR(params=self.rapidocr_params(models))
            _prepare_detector_input_in_opencv(ocr)
            if runtime == "openvino":
                self._compiled = _recompile_openvino(ocr, self.options["threads"])
        except Exception as exc:  # rapidocr raises bare Exceptions of many kinds
            raise EngineError(
                f"the onnx engine failed to load its models: {exc}"
            ) from exc
        self._ocr = ocr
        return ocr

    def rapidocr_params(self, models: Path) -> dict[str, Any]:
        """Return the ``RapidOCR(params=...)`` settings this engine runs with.

        ``models`` is the folder holding the three model files.
        """
        from rapidocr import EngineType

        threads = self.options["threads"]
        runtime = EngineType(self.options["runtime"])
        return {
            "Global.log_level": "error",
            "Global.text_score": self.options["text_score"],
            "Global.max_side_len": self.options["max_side_len"],
            "Global.use_cls": self.options["use_cls"],
            "Det.model_path": str(models / DET_MODEL),
            "Rec.model_path": str(models / REC_MODEL),
            "Cls.model_path": str(models / CLS_MODEL),
            "Det.engine_type": runtime,
            "Rec.engine_type": runtime,
            "Cls.engine_type": runtime,
            "Rec.rec_batch_num": REC_BATCH,
            "EngineConfig.openvino.inference_num_threads": threads,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1 if threads > 0 else -1,
        }

    def _run(self, image: np.ndarray, *, use_det: bool, use_cls: bool) -> Any:
        """Call RapidOCR on an RGB image, then free the models' working memory."""
        with self._lock:
            ocr = self._load()
            try:
                # RapidOCR expects OpenCV's BGR channel order for arrays.
                bgr = np.ascontiguousarray(image[..., ::-1])
                return ocr(bgr, use_det=use_det, use_cls=use_cls, use_rec=True)
            finally:
                for session in self._compiled:
                    session.compiled.release_memory()

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Detect and read every text line of an RGB page image."""
        if image.size == 0 or min(image.shape[:2]) < 4:
            with self._lock:
                self._load()
            return []
        try:
            # rapidocr 3.10 keeps the use_* flags of the previous call, so a region
            # read (no detection) must not leave detection off for this page.
            result = self._run(image, use_det=True, use_cls=self.options["use_cls"])
        except EngineError:
            raise
        except Exception as exc:  # the runtimes and OpenCV raise many kinds
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
        if image.size == 0 or min(image.shape[:2]) < 2:
            with self._lock:
                self._load()
            return ("", 0.0)
        try:
            result = self._run(image, use_det=False, use_cls=False)
        except EngineError:
            raise
        except Exception as exc:  # the runtimes and OpenCV raise many kinds
            raise EngineError(f"the onnx engine failed on the region: {exc}") from exc
        texts = getattr(result, "txts", None)
        if not texts:
            return ("", 0.0)
        text = " ".join(str(t) for t in texts).strip()
        scores = [float(s) for s in result.scores]
        return (text, min(1.0, max(0.0, sum(scores) / len(scores))))


def default_threads() -> int:
    """Return ``OCRKIT_THREADS`` as a thread count, or -1 (every core) when unset."""
    return env_threads() or -1


class _OpenVinoSession:
    """One model compiled by OpenVINO, called the way rapidocr calls its sessions.

    ``release`` frees the model's working memory after every call, so that the
    detector's buffers for a large page are not held while the recognizer runs.
    ``width_step`` pads each batch with zeros on the right to a multiple of that
    many pixels, as RapidOCR pads the shorter lines of a batch, so that a page's
    lines come in a few widths rather than one width each.
    """

    def __init__(
        self,
        model: Any,
        properties: dict[str, str],
        *,
        release: bool = False,
        width_step: int = 1,
    ) -> None:
        import openvino

        self.compiled = openvino.Core().compile_model(model, "CPU", properties)
        self.request = self.compiled.create_infer_request()
        self.release = release
        self.width_step = width_step

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        width = batch.shape[-1]
        padded_width = -(-width // self.width_step) * self.width_step
        if padded_width != width:
            padded = np.zeros((*batch.shape[:-1], padded_width), dtype=batch.dtype)
            padded[..., :width] = batch
            batch = padded
        self.request.infer([batch])
        # The output tensor is OpenVINO's own memory, which release_memory frees.
        output = np.array(self.request.get_output_tensor().data, copy=True)
        if self.release:
            self.compiled.release_memory()
        return output


# Line widths the recognizer is padded to, and how many input shapes of each
# model OpenVINO keeps compiled code for.
REC_WIDTH_STEP = 64
SHAPE_CACHE = 64
# Lines per recognizer call. With one line a call, the recognizer gets one input
# shape per width step (about 30 in all), and the shape cache keeps them all.
# Batches of RapidOCR's default 6 add a shape for each shorter last batch. On 60
# scanned pages one line a call read 6% faster and peaked at 1.09 GB against
# 1.38 GB, with the same text. On ONNX Runtime the speed was the same either way.
REC_BATCH = 1


def _recompile_openvino(ocr: Any, threads: int) -> list[_OpenVinoSession]:
    """Compile RapidOCR's three models again with bounded memory; return them.

    RapidOCR compiles with OpenVINO's defaults, under which the recognizer keeps
    compiled code for each line width it has seen: 1.65 GB of RSS after 25
    scanned pages. Here the recognizer gets widths in steps of ``REC_WIDTH_STEP``
    pixels, one line a call, and keeps code for at most ``SHAPE_CACHE`` shapes.
    Through ``read_document`` on 18 scanned pages, that read 34 pages per minute
    and peaked at 1.1 GB. RapidOCR's own set-up read the same pages, already
    rendered, at 38 pages per minute and peaked at 1.7 GB.

    This relies on rapidocr 3.10's ``text_det``/``text_cls``/``text_rec`` objects
    with a ``session`` that contains the OpenVINO ``model``, which tests check.
    """
    # OpenVINO pins its threads to cores by default. Two processes of one thread
    # each were then both pinned to the first core and read at half the rate.
    properties = {
        "CPU_RUNTIME_CACHE_CAPACITY": str(SHAPE_CACHE),
        "ENABLE_CPU_PINNING": "NO",
    }
    if threads > 0:
        properties["INFERENCE_NUM_THREADS"] = str(threads)
    det, cls, rec = (
        ocr._load_det_model(),
        ocr._load_cls_model(),
        ocr._load_rec_model(),
    )
    # Only the detector releases its memory after each call: the recognizer and
    # the classifier run on batches of lines, a few dozen times a page.
    det.session = _OpenVinoSession(det.session.model, properties, release=True)
    cls.session = _OpenVinoSession(cls.session.model, properties)
    rec.session = _OpenVinoSession(
        rec.session.model, properties, width_step=REC_WIDTH_STEP
    )
    return [det.session, cls.session, rec.session]


def _prepare_detector_input_in_opencv(ocr: Any) -> None:
    """Have RapidOCR's detector scale and lay out its input with OpenCV.

    RapidOCR resizes the page and normalises it in float64 NumPy steps: 0.13 s a
    page on 200 dpi scans. ``cv2.dnn.blobFromImage`` gives the same array in one
    pass, and with the same resize took under a third of that time. This relies on
    rapidocr 3.10's ``TextDetector.get_preprocess``, which a test checks.
    """
    import cv2

    detector = ocr._load_det_model()
    mean = np.asarray(detector.mean if detector.mean is not None else [0.5] * 3)
    std = np.asarray(detector.std if detector.std is not None else [0.5] * 3)
    if mean.shape != (3,) or std.shape != (3,) or not np.all(std == std[0]):
        return  # blobFromImage takes one scale for all channels

    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    class DetectorInput(DetPreProcess):
        def __call__(self, image: np.ndarray) -> np.ndarray | None:
            resized = self.resize(image)
            if resized is None:
                return None
            # (pixel / 255 - mean) / std, in channel-first order.
            return cv2.dnn.blobFromImage(
                resized,
                scalefactor=1.0 / (255.0 * float(std[0])),
                mean=tuple(float(value) * 255.0 for value in mean),
            )

    def preprocess() -> DetPreProcess:
        return DetectorInput(
            detector.limit_side_len, detector.limit_type, detector.mean, detector.std
        )

    detector.get_preprocess = preprocess


def default_runtime() -> str:
    """Return ``OCRKIT_RUNTIME``, or OpenVINO when installed, else ONNX Runtime."""
    raw = os.environ.get("OCRKIT_RUNTIME", "").strip().lower()
    if raw:
        return raw
    if importlib.util.find_spec("openvino") is not None:
        return "openvino"
    return "onnxruntime"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
