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
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.config import RUNTIMES, env_threads
from ocrkit.errors import EngineError, MissingDependencyError
from ocrkit.layout import is_sideways
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
        self._turning = _Turning()
        self._holding = 0
        self._release_timer: threading.Timer | None = None
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
            _watch_orientation(ocr, self._turning)
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

    def _run(
        self,
        image: np.ndarray,
        *,
        use_det: bool,
        use_cls: bool,
        stop_if_sideways: bool = False,
        check_upside_down: bool = False,
    ) -> tuple[Any, bool]:
        """Call RapidOCR on an RGB image; its working memory is freed later.

        Returns RapidOCR's output and whether the lines were found upside down
        (only looked for with ``check_upside_down``). ``stop_if_sideways`` raises
        ``_Sideways`` right after detection when the lines stand upright.
        """
        with self._lock:
            ocr = self._load()
            self._turning.reset(stop_if_sideways, check_upside_down)
            for session in self._compiled:
                session.holding = self._holding > 0 or KEEP_MEMORY_S > 0
            try:
                # RapidOCR expects OpenCV's BGR channel order for arrays.
                bgr = np.ascontiguousarray(image[..., ::-1])
                output = ocr(bgr, use_det=use_det, use_cls=use_cls, use_rec=True)
                return output, self._turning.upside_down
            finally:
                self._turning.reset(False, False)
                if not self._holding:
                    self._release_later()

    def _release_later(self) -> None:
        """Free the working memory ``KEEP_MEMORY_S`` from now; call with the lock."""
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        if KEEP_MEMORY_S <= 0:
            self._release_memory()
            return
        timer = threading.Timer(KEEP_MEMORY_S, self._release_if_idle)
        timer.daemon = True
        self._release_timer = timer
        timer.start()

    def _release_if_idle(self) -> None:
        with self._lock:
            if self._holding or self._release_timer is not threading.current_thread():
                return  # a page came since, and a later timer replaced this one
            self._release_timer = None
            self._release_memory()

    def _release_memory(self) -> None:
        for session in self._compiled:
            session.compiled.release_memory()

    @contextmanager
    def holding_memory(self) -> Iterator[None]:
        """Keep the models' working memory from page to page until the block ends.

        The memory is freed ``KEEP_MEMORY_S`` after the block ends, or after a
        page read outside such a block, unless another page comes first.
        ``read_document`` holds it while it reads in this process.
        """
        with self._lock:
            self._holding += 1
        try:
            yield
        finally:
            with self._lock:
                self._holding -= 1
                if not self._holding:
                    self._release_later()

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Detect and read every text line of an RGB page image."""
        return self._recognize(image)[0]

    def recognize_upright(
        self, image: np.ndarray
    ) -> tuple[list[RecognizedLine], int, np.ndarray] | None:
        """Read a page, turned upright first when it lies sideways or upside down.

        The boxes found on the page as it is tell whether its lines stand
        upright, before any line is read. Such a page is turned clockwise by 90
        degrees and read. When the line classifier finds most lines of a page
        upside down, the lines are read turned over and placed on the page
        turned by another 180 degrees. A sideways page thus costs one more
        detection, not two more reads, and an upside-down page nothing more.
        Returns the lines, the clockwise turn (0, 90, 180 or 270) and the image
        the lines refer to, or None without the classifier (``use_cls=False``).
        """
        if not self.options["use_cls"]:
            return None
        try:
            lines, upside_down = self._recognize(
                image, stop_if_sideways=True, check_upside_down=True
            )
            return _turned_over(lines, image, 0) if upside_down else (lines, 0, image)
        except _Sideways:
            pass
        turned = np.ascontiguousarray(np.rot90(image, -1))
        lines, upside_down = self._recognize(turned, check_upside_down=True)
        if is_sideways([line.bbox for line in lines]):
            # Upright after all: the boxes that stood were not text lines.
            return self._recognize(image)[0], 0, image
        return _turned_over(lines, turned, 90) if upside_down else (lines, 90, turned)

    def _recognize(
        self,
        image: np.ndarray,
        *,
        stop_if_sideways: bool = False,
        check_upside_down: bool = False,
    ) -> tuple[list[RecognizedLine], bool]:
        """Return the lines of an RGB page image and whether they were upside down."""
        if image.size == 0 or min(image.shape[:2]) < 4:
            with self._lock:
                self._load()
            return [], False
        try:
            # rapidocr 3.10 keeps the use_* flags of the previous call, so a region
            # read (no detection) must not leave detection off for this page.
            result, upside_down = self._run(
                image,
                use_det=True,
                use_cls=self.options["use_cls"],
                stop_if_sideways=stop_if_sideways,
                check_upside_down=check_upside_down,
            )
        except (EngineError, _Sideways):
            raise
        except Exception as exc:  # the runtimes and OpenCV raise many kinds
            raise EngineError(f"the onnx engine failed on the page: {exc}") from exc
        # With nothing detected, RapidOCR returns an output object without boxes.
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or texts is None or scores is None:
            return [], upside_down
        lines = []
        for box, text, score in zip(boxes, texts, scores, strict=True):
            poly: Poly = tuple((float(x), float(y)) for x, y in box)  # type: ignore[assignment]
            confidence = min(1.0, max(0.0, float(score)))
            lines.append(
                RecognizedLine(poly=poly, text=str(text), confidence=confidence)
            )
        return lines, upside_down

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        """Read a cropped RGB image holding one line; return text and confidence."""
        if image.size == 0 or min(image.shape[:2]) < 2:
            with self._lock:
                self._load()
            return ("", 0.0)
        try:
            result = self._run(image, use_det=False, use_cls=False)[0]
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


class _Sideways(Exception):
    """Raised from RapidOCR's detection step when a page's lines stand upright."""


@dataclass
class _Turning:
    """The orientation checks the current call requests, and what they found."""

    stop_if_sideways: bool = False
    check_upside_down: bool = False
    upside_down: bool = False

    def reset(self, stop_if_sideways: bool, check_upside_down: bool) -> None:
        self.stop_if_sideways = stop_if_sideways
        self.check_upside_down = check_upside_down
        self.upside_down = False


def _watch_orientation(ocr: Any, turning: _Turning) -> None:
    """Hook RapidOCR's steps so that a call can look at the page's orientation.

    After detection, a call with ``stop_if_sideways`` stops when most boxes stand
    upright. After classification, a call with ``check_upside_down`` turns every
    line over when most were classified upside down, and classifies them again.
    This relies on rapidocr 3.10's ``detect_and_crop`` and ``cls_and_rotate``
    methods, which a test checks.
    """
    import cv2

    detect_and_crop = ocr.detect_and_crop
    cls_and_rotate = ocr.cls_and_rotate

    def detect(image: np.ndarray, op_record: dict[str, Any]) -> Any:
        crops, found = detect_and_crop(image, op_record)
        if turning.stop_if_sideways:
            boxes = [(*box.min(axis=0), *box.max(axis=0)) for box in found.boxes]
            if is_sideways(boxes):
                raise _Sideways
        return crops, found

    def classify(crops: list[np.ndarray]) -> Any:
        classified, found = cls_and_rotate(crops)
        labels = [label for label, _ in found.cls_res]
        upside_down = sum(1 for label in labels if "180" in label)
        if turning.check_upside_down and upside_down > len(labels) / 2:
            turning.upside_down = True
            crops = [cv2.rotate(crop, cv2.ROTATE_180) for crop in crops]
            classified, found = cls_and_rotate(crops)
        return classified, found

    ocr.detect_and_crop = detect
    ocr.cls_and_rotate = classify


def _turned_over(
    lines: list[RecognizedLine], image: np.ndarray, rotation: int
) -> tuple[list[RecognizedLine], int, np.ndarray]:
    """Move lines read on ``image`` onto it turned by 180 degrees, and add the turn."""
    height, width = image.shape[:2]
    over = [
        replace(line, poly=_turn_over(line.poly, width, height))
        for line in reversed(lines)
    ]
    return over, rotation + 180, np.ascontiguousarray(np.rot90(image, 2))


def _turn_over(poly: Poly, width: int, height: int) -> Poly:
    """Return a polygon on a ``width`` x ``height`` image turned by 180 degrees.

    The points keep their order from the top-left corner, as the detector gives
    them.
    """
    turned = [(width - x, height - y) for x, y in poly]
    return tuple(turned[2:] + turned[:2])  # type: ignore[return-value]


def default_threads() -> int:
    """Return ``OCRKIT_THREADS`` as a thread count, or -1 (every core) when unset."""
    return env_threads() or -1


class _OpenVinoSession:
    """One model compiled by OpenVINO, called the way rapidocr calls its sessions.

    ``release`` frees the model's working memory after every call, so that the
    detector's buffers for a large page are not held while the recognizer runs,
    unless the engine set ``holding`` for the pages it is reading.
    ``width_step`` pads each batch with zeros on the right to a multiple of that
    many pixels, as RapidOCR pads the shorter lines of a batch, so that a page's
    lines come in a few widths rather than one width each. ``streams`` compiles
    the model for that many calls at once, from as many threads, each call on its
    share of the threads.
    """

    def __init__(
        self,
        model: Any,
        properties: dict[str, str],
        *,
        release: bool = False,
        width_step: int = 1,
        streams: int = 1,
    ) -> None:
        import openvino

        if streams > 1:
            properties = {**properties, "NUM_STREAMS": str(streams)}
        self.compiled = openvino.Core().compile_model(model, "CPU", properties)
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(streams):
            self._requests.put(self.compiled.create_infer_request())
        self.streams = streams
        self.release = release
        self.holding = False
        self.width_step = width_step

    def __call__(self, batch: np.ndarray) -> np.ndarray | _TopClass:
        width = batch.shape[-1]
        padded_width = -(-width // self.width_step) * self.width_step
        if padded_width != width:
            padded = np.zeros((*batch.shape[:-1], padded_width), dtype=batch.dtype)
            padded[..., :width] = batch
            batch = padded
        request = self._requests.get()
        try:
            request.infer([batch])
            # Output tensors are OpenVINO's own memory, which release_memory frees.
            outputs = [
                np.array(request.get_output_tensor(i).data, copy=True)
                for i in range(len(self.compiled.outputs))
            ]
        finally:
            self._requests.put(request)
        if self.release and not self.holding:
            self.compiled.release_memory()
        if len(outputs) == 2:  # a recognizer from _top_class_model
            return _TopClass(
                probabilities=outputs[0][..., 0], classes=outputs[1][..., 0]
            )
        return outputs[0]


@dataclass(frozen=True)
class _TopClass:
    """The likeliest character at each step of each line, and its probability."""

    probabilities: np.ndarray  # lines x steps
    classes: np.ndarray  # lines x steps, indices into the character list


def _top_class_model(model: Any) -> Any:
    """Return the recognizer ending in its likeliest character at each step.

    The recognizer's own output is the probability of each of its 18,710
    characters at every step, 9 MB for a line 960 px wide. On one thread, that
    took 4.5 ms to copy out and 0.7 ms to search, against 17 ms to compute.
    A stable ``TopK``, which keeps the first of equal values as NumPy's
    ``argmax`` does, took 2 ms more a line. So two characters exactly as likely
    are left to the runtime, as they are between runtimes anyway.
    """
    import openvino
    import openvino.opset13 as ops

    top = ops.topk(
        model.get_results()[0].input_value(0),
        k=1,
        axis=-1,
        mode="max",
        sort="none",
        index_element_type="i32",
    )
    return openvino.Model(
        [top.output(0), top.output(1)], model.get_parameters(), "recognizer_top_class"
    )


class _DecodeTopClass:
    """RapidOCR's CTC decoder, taking ``_TopClass`` in place of every probability.

    This relies on rapidocr 3.10's ``CTCLabelDecode.decode``, which the tests
    exercise on every page.
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decoder, name)

    def __call__(
        self,
        preds: np.ndarray | _TopClass,
        return_word_box: bool = False,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(preds, _TopClass):
            return self.decoder(preds, return_word_box, **kwargs)
        return self.decoder.decode(
            preds.classes,
            preds.probabilities,
            return_word_box,
            kwargs.get("wh_ratio_list", (1.0,)),
            kwargs.get("max_wh_ratio", 1.0),
            remove_duplicate=True,
        )


class _LinesInParallel:
    """RapidOCR's recognizer, reading a page's lines in ``streams`` threads at once.

    The lines are sorted by width and dealt out in turn, so each thread gets a
    like share of the work. A line is read alone (``REC_BATCH``), so its text
    does not depend on which thread reads it. Other attributes are the
    recognizer's.
    """

    def __init__(self, recognizer: Any, streams: int) -> None:
        self.recognizer = recognizer
        self.streams = streams
        self._threads = ThreadPoolExecutor(streams, thread_name_prefix="ocrkit-rec")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recognizer, name)

    def __call__(self, args: Any) -> Any:
        from rapidocr.ch_ppocr_rec.typings import TextRecInput, TextRecOutput

        images = [args.img] if isinstance(args.img, np.ndarray) else list(args.img)
        if len(images) < 2:
            return self.recognizer(args)
        started = time.perf_counter()
        by_width = sorted(range(len(images)), key=lambda i: _aspect(images[i]))
        shares = [by_width[k :: self.streams] for k in range(self.streams)]
        shares = [share for share in shares if share]
        futures = [
            self._threads.submit(
                self.recognizer,
                TextRecInput(
                    img=[images[i] for i in share],
                    return_word_box=args.return_word_box,
                ),
            )
            for share in shares
        ]
        texts: list[Any] = [None] * len(images)
        scores: list[Any] = [None] * len(images)
        words: list[Any] = [None] * len(images)
        outputs = [future.result() for future in futures]
        for share, output in zip(shares, outputs, strict=True):
            for position, i in enumerate(share):
                texts[i] = output.txts[position]
                scores[i] = output.scores[position]
                words[i] = output.word_results[position]
        return TextRecOutput(
            imgs=images,
            txts=tuple(texts),
            scores=scores,
            word_results=tuple(words),
            elapse=time.perf_counter() - started,
            viser=outputs[0].viser,
        )


def _aspect(image: np.ndarray) -> float:
    return image.shape[1] / max(1, image.shape[0])


# Line widths the recognizer is padded to, and how many input shapes of each
# model OpenVINO keeps compiled code for. On 60 scanned pages, steps of 1, 8, 32,
# 64 and 128 px read 26.3, 28.2, 31.9, 34.3 and 32.1 pages per minute: fewer
# widths mean fewer shapes to compile, more padding means more to compute.
REC_WIDTH_STEP = 64
# Seconds the models keep their working memory (a few hundred MB on a 200 dpi A4
# page) after the last page. An idle process thus shrinks, but the
# next page does not allocate the memory again. Allocating it cost 0.09 to 0.14 s
# per A4 scan read one call a page. On 60 pages read in one call, keeping it read
# 37.1 pages per minute against 34.3, and peaked at 1.18 GB against 1.05 GB. With
# 0, every call frees it, and the detector frees its own before the recognizer
# runs.
KEEP_MEMORY_S = 10.0
SHAPE_CACHE = 64
# Lines per recognizer call. With one line a call, the recognizer gets one input
# shape per width step (about 30 in all), and the shape cache keeps them all.
# Batches of RapidOCR's default 6 add a shape for each shorter last batch. On 60
# scanned pages one line a call read 6% faster and peaked at 1.09 GB against
# 1.38 GB, with the same text. On ONNX Runtime the speed was the same either way.
REC_BATCH = 1
# The most recognizer calls that run at once. On 2 cores, two streams of one
# thread each were fed a page's lines from two threads. They read 60 scanned pages
# at 39.3 and 39.9 pages per minute in two runs, with the same lines. One call at
# a time on both threads read 36.5 and 36.7. The peak grew from 1.18 to 1.35 GB.
# NOTE: measured on 2 cores only.
MAX_REC_STREAMS = 2


def _recompile_openvino(ocr: Any, threads: int) -> list[_OpenVinoSession]:
    """Compile RapidOCR's three models again with bounded memory; return them.

    RapidOCR compiles with OpenVINO's defaults, under which the recognizer keeps
    compiled code for each line width it has seen: 1.65 GB of RSS after 25
    scanned pages. Here the recognizer gets widths in steps of ``REC_WIDTH_STEP``
    pixels, one line a call, and keeps code for at most ``SHAPE_CACHE`` shapes.
    Through ``read_document`` on 18 scanned pages, that read 34 pages per minute
    and peaked at 1.2 GB. RapidOCR's own set-up read the same pages, already
    rendered, at 37 pages per minute and peaked at 1.7 GB.

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
    det.session = _OpenVinoSession(
        _scale_detector_input_in_model(det), properties, release=True
    )
    cls.session = _OpenVinoSession(cls.session.model, properties)
    streams = min(MAX_REC_STREAMS, threads if threads > 0 else os.cpu_count() or 1)
    rec.session = _OpenVinoSession(
        _top_class_model(rec.session.model),
        properties,
        width_step=REC_WIDTH_STEP,
        streams=streams,
    )
    rec.postprocess_op = _DecodeTopClass(rec.postprocess_op)
    if streams > 1:
        ocr.text_rec = _LinesInParallel(rec, streams)
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


def _scale_detector_input_in_model(detector: Any) -> Any:
    """Return the detector's OpenVINO model, taking the resized page as it is.

    The model then scales the 8-bit pixels and lays them out channel first
    itself, on the model's threads, in place of ``cv2.dnn.blobFromImage``, which
    took 33 ms a page on one core, and the page travels as bytes rather than
    floats. ``detector.get_preprocess`` is set to give the resized image. The
    model is returned unchanged when its normalisation is not per channel.
    This relies on rapidocr 3.10's ``TextDetector.get_preprocess``, which a test
    checks.
    """
    import openvino
    from openvino.preprocess import PrePostProcessor
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    model = detector.session.model
    mean = np.asarray(detector.mean if detector.mean is not None else [0.5] * 3)
    std = np.asarray(detector.std if detector.std is not None else [0.5] * 3)
    if mean.shape != (3,) or std.shape != (3,):
        return model
    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(openvino.Type.u8).set_layout(
        openvino.Layout("NHWC")
    )
    steps.input().model().set_layout(openvino.Layout("NCHW"))
    # (pixel / 255 - mean) / std, as RapidOCR computes it.
    steps.input().preprocess().convert_element_type(openvino.Type.f32).mean(
        [float(value) * 255.0 for value in mean]
    ).scale([float(value) * 255.0 for value in std])

    class DetectorPixels(DetPreProcess):
        def __call__(self, image: np.ndarray) -> np.ndarray | None:
            resized = self.resize(image)
            if resized is None:
                return None
            return np.ascontiguousarray(resized[np.newaxis])

    def preprocess() -> DetPreProcess:
        return DetectorPixels(
            detector.limit_side_len, detector.limit_type, detector.mean, detector.std
        )

    scaled = steps.build()
    detector.get_preprocess = preprocess
    return scaled


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
