"""The default engine on its two runtimes, OpenVINO and ONNX Runtime."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jiwer
import numpy as np
import pytest

from ocrkit.engines import onnx
from ocrkit.engines.onnx import OnnxEngine, _OpenVinoSession
from ocrkit.errors import EngineError, MissingDependencyError
from ocrkit.sources import Source


@pytest.fixture(scope="module")
def acta(corpus: Path) -> np.ndarray:
    with Source(corpus / "acta-municipal-es.pdf") as source:
        return source.render(0).image


@pytest.fixture(scope="module")
def openvino_engine() -> OnnxEngine:
    return OnnxEngine(runtime="openvino")


def page_text(engine: OnnxEngine, image: np.ndarray) -> str:
    return "\n".join(line.text for line in engine.recognize(image))


def test_openvino_is_the_default_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCRKIT_RUNTIME", raising=False)
    engine = OnnxEngine()
    assert engine.options["runtime"] == "openvino"
    assert "openvino" in engine.model


def test_runtime_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRKIT_RUNTIME", "onnxruntime")
    assert OnnxEngine().options["runtime"] == "onnxruntime"
    assert OnnxEngine(runtime="openvino").options["runtime"] == "openvino"


def test_invalid_runtime_names_choices() -> None:
    with pytest.raises(EngineError, match="openvino, onnxruntime"):
        OnnxEngine(runtime="cuda")


def test_runtimes_read_same_spanish_text(
    openvino_engine: OnnxEngine, acta: np.ndarray
) -> None:
    on_openvino = page_text(openvino_engine, acta)
    on_onnxruntime = page_text(OnnxEngine(runtime="onnxruntime"), acta)
    assert "Peña" in on_openvino
    assert "¿" in on_openvino
    # The runtimes round floating point differently; a character may differ.
    assert jiwer.cer(on_onnxruntime, on_openvino) < 0.005


def test_openvino_memory_is_bounded(
    openvino_engine: OnnxEngine, acta: np.ndarray
) -> None:
    openvino_engine.recognize(acta)
    ocr = openvino_engine._load()
    sessions = [ocr.text_det.session, ocr.text_cls.session, ocr.text_rec.session]
    assert all(isinstance(session, _OpenVinoSession) for session in sessions)
    assert [session.release for session in sessions] == [True, False, False]
    assert sessions[2].width_step > 1
    # One line a call keeps the recognizer to one input shape per width step.
    assert ocr.text_rec.rec_batch_num == 1


def test_two_streams_read_same_lines(acta: np.ndarray) -> None:
    # Lines read on two streams at once keep the order, boxes, text and
    # confidence they get when read one after another.
    together = OnnxEngine(runtime="openvino", threads=2)
    alone = OnnxEngine(runtime="openvino", threads=1)
    read_together = together.recognize(acta)
    read_alone = alone.recognize(acta)
    rec = together._load().text_rec
    assert isinstance(rec, onnx._LinesInParallel)
    assert rec.session.streams == 2
    assert rec.session.compiled.get_property("NUM_STREAMS") == 2
    assert alone._load().text_rec.session.streams == 1
    assert len(read_together) == len(read_alone) > 10
    for mine, theirs in zip(read_together, read_alone, strict=True):
        assert mine.text == theirs.text
        assert mine.poly == theirs.poly
        assert abs(mine.confidence - theirs.confidence) < 1e-3
    # A single region still goes straight to the recognizer.
    crop = acta[: acta.shape[0] // 4]
    assert together.recognize_region(crop)[0] == alone.recognize_region(crop)[0]


def test_top_class_reads_as_every_probability(
    openvino_engine: OnnxEngine, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The recognizer hands out only the likeliest character of each step. The
    # text and confidences must be those decoded from all the probabilities.
    with Source(corpus / "8071_093.3B.tif") as source:
        page = source.render(0).image
    lines = openvino_engine.recognize(page)
    rec = openvino_engine._load()._load_rec_model()
    assert isinstance(rec.postprocess_op, onnx._DecodeTopClass)
    assert len(rec.session.compiled.outputs) == 2
    monkeypatch.setattr(onnx, "_top_class_model", lambda model: model)
    monkeypatch.setattr(onnx, "_DecodeTopClass", lambda decoder: decoder)
    every = OnnxEngine(runtime="openvino")
    assert len(every._load()._load_rec_model().session.compiled.outputs) == 1
    expected = every.recognize(page)
    assert len(lines) == len(expected) > 100
    for mine, theirs in zip(lines, expected, strict=True):
        assert mine.text == theirs.text
        assert mine.confidence == pytest.approx(theirs.confidence, abs=1e-5)


def test_openvino_threads_are_not_pinned(
    openvino_engine: OnnxEngine, acta: np.ndarray
) -> None:
    # Pinned, two single-thread worker processes both ran on the first core.
    openvino_engine.recognize(acta)
    for session in openvino_engine._compiled:
        assert session.compiled.get_property("ENABLE_CPU_PINNING") is False


def test_detector_input_scaled_in_model(
    openvino_engine: OnnxEngine, acta: np.ndarray
) -> None:
    import openvino
    import rapidocr
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    from ocrkit.engines.onnx import DET_MODEL

    detector = openvino_engine._load()._load_det_model()
    ours = detector.get_preprocess()
    theirs = DetPreProcess(
        detector.limit_side_len, detector.limit_type, detector.mean, detector.std
    )
    assert type(ours).__name__ == "DetectorPixels"
    bgr = np.ascontiguousarray(acta[..., ::-1])
    pixels = ours(bgr)
    blob = theirs(bgr)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (1, *blob.shape[2:], 3)
    # The model as RapidOCR runs it, given RapidOCR's own input, at the same
    # precision, must find the same text.
    plain = Path(rapidocr.__file__).parent / "models" / DET_MODEL
    reference = openvino.Core().compile_model(str(plain), "CPU")
    expected = reference([blob])[0]
    got = detector.session(pixels)
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 1e-3
    assert np.mean((got > 0.3) == (expected > 0.3)) > 0.999


@pytest.fixture(scope="module")
def phototest(corpus: Path) -> np.ndarray:
    with Source(corpus / "phototest.tif") as source:
        return source.render(0).image


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_turned_page_is_read_upright(
    openvino_engine: OnnxEngine, phototest: np.ndarray, turn: int
) -> None:
    upright = openvino_engine.recognize(phototest)
    # Turned back by ``turn`` degrees clockwise, the scan is upright again.
    scanned = np.ascontiguousarray(np.rot90(phototest, turn // 90))
    found = openvino_engine.recognize_upright(scanned)
    assert found is not None
    lines, rotation, image = found
    assert rotation == turn
    assert np.array_equal(image, phototest)
    expected = "\n".join(line.text for line in upright)
    assert jiwer.cer(expected, "\n".join(line.text for line in lines)) < 0.01
    # The boxes land where the upright page's boxes are.
    by_text = {line.text: line.bbox for line in upright}
    for line in lines:
        if line.text in by_text:
            assert np.abs(np.subtract(line.bbox, by_text[line.text])).max() < 4
            assert line.poly[0][0] < line.poly[1][0]  # first point top-left


def test_sideways_page_costs_one_more_detection(
    openvino_engine: OnnxEngine, phototest: np.ndarray
) -> None:
    openvino_engine.recognize(phototest)
    calls = {"det": 0, "rec": 0}
    ocr = openvino_engine._load()
    sessions = {"det": ocr.text_det.session, "rec": ocr.text_rec.session}
    classes = {name: type(session) for name, session in sessions.items()}

    def counting(name: str) -> type:
        class Counting(classes[name]):  # type: ignore[misc, name-defined]
            def __call__(self, batch: np.ndarray) -> np.ndarray:
                calls[name] += 1
                return super().__call__(batch)

        return Counting

    for name, session in sessions.items():
        session.__class__ = counting(name)
    try:
        openvino_engine.recognize_upright(phototest)
        upright = dict(calls)
        calls.update(det=0, rec=0)
        # This page needs the 270 degree turn: by 90 degrees, then over.
        openvino_engine.recognize_upright(np.ascontiguousarray(np.rot90(phototest, -1)))
    finally:
        for name, session in sessions.items():
            session.__class__ = classes[name]
    assert upright["det"] == 1
    assert calls["det"] == 2
    # Each line is read once, as on the upright page.
    assert abs(calls["rec"] - upright["rec"]) <= 2


def test_upright_without_classifier_is_none(
    phototest: np.ndarray,
) -> None:
    assert OnnxEngine(use_cls=False).recognize_upright(phototest) is None


class CountingReleases:
    """A compiled model that counts how often its working memory is freed."""

    def __init__(self, compiled: object) -> None:
        self.compiled = compiled
        self.releases = 0

    def release_memory(self) -> None:
        self.releases += 1
        self.compiled.release_memory()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.compiled, name)


@contextmanager
def counting_releases(engine: OnnxEngine) -> Iterator[list[CountingReleases]]:
    """Count each compiled model's releases of its working memory in the block."""
    sessions = engine._compiled
    counters = [CountingReleases(session.compiled) for session in sessions]
    for session, counter in zip(sessions, counters, strict=True):
        session.compiled = counter
    try:
        yield counters
    finally:
        for session, counter in zip(sessions, counters, strict=True):
            session.compiled = counter.compiled


def test_holding_memory_frees_it_once_at_the_end(
    openvino_engine: OnnxEngine, phototest: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx, "KEEP_MEMORY_S", 0.0)
    openvino_engine.recognize(phototest)
    with counting_releases(openvino_engine) as counters:
        with openvino_engine.holding_memory():
            openvino_engine.recognize(phototest)
            openvino_engine.recognize(phototest)
            inside = [counter.releases for counter in counters]
        after = [counter.releases for counter in counters]
        openvino_engine.recognize(phototest)
        outside = [counter.releases for counter in counters]
    assert inside == [0, 0, 0]
    assert after == [1, 1, 1]
    # Outside the block the detector frees its memory after detecting, and every
    # model after the page.
    assert [o - a for o, a in zip(outside, after, strict=True)] == [2, 1, 1]


def test_memory_is_freed_once_pages_stop_coming(
    openvino_engine: OnnxEngine, phototest: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx, "KEEP_MEMORY_S", 1.0)
    openvino_engine.recognize(phototest)
    with counting_releases(openvino_engine) as counters:
        for _ in range(3):
            openvino_engine.recognize(phototest)
            time.sleep(0.3)
        # Pages came within the second: nothing was freed between them.
        between = [counter.releases for counter in counters]
        time.sleep(1.5)
        idle = [counter.releases for counter in counters]
        with openvino_engine.holding_memory():
            openvino_engine.recognize(phototest)
            time.sleep(1.5)
            inside_block = [counter.releases for counter in counters]
        time.sleep(1.5)
        after = [counter.releases for counter in counters]
    assert between == [0, 0, 0]
    assert idle == [1, 1, 1]
    assert inside_block == idle
    assert after == [2, 2, 2]


def test_threads_share_one_engine(openvino_engine: OnnxEngine, corpus: Path) -> None:
    with Source(corpus / "phototest.tif") as source:
        image = source.render(0).image
    expected = page_text(openvino_engine, image)
    x0, y0, x1, y1 = (int(v) for v in openvino_engine.recognize(image)[0].bbox)
    first_line = image[y0 : y1 + 1, x0 : x1 + 1]
    pages: list[str] = []
    regions: list[str] = []

    def read() -> None:
        pages.append(page_text(openvino_engine, image))
        regions.append(openvino_engine.recognize_region(first_line)[0])

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pages == [expected] * 3
    assert regions == [expected.splitlines()[0]] * 3


def test_missing_runtime_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = OnnxEngine(runtime="openvino")
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "openvino" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependencyError, match="pip install openvino"):
        engine.recognize(np.zeros((8, 8, 3), dtype=np.uint8))
