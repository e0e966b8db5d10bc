"""The workbench's widget logic, driven from Python with the fake engine.

Browser events are simulated the way the browser sends them: trait changes for
selections and typed text, custom messages for page view box events and the
download button. Reading runs in a thread of the test process (the fake engine is
registered only here), and each test waits for it to finish.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import FakeEngine, make_text_pdf
from ipywidgets.widgets.widget import _instances  # every open widget, by comm id

from ocrkit.config import load_settings
from ocrkit.engines import register_engine
from ocrkit.models import Line, Page, PageStatus, RecognizedLine, bbox_to_poly
from ocrkit.store import Store
from ocrkit.widgets import documents as documents_module
from ocrkit.widgets import feedback as feedback_module
from ocrkit.widgets.download import DownloadButton
from ocrkit.widgets.feedback import Feedback
from ocrkit.widgets.line_list import SORT_CONFIDENCE, filter_lines
from ocrkit.widgets.workbench import Workbench, default_storage

SPANISH_PAGES = [
    ["Archivo Municipal de San Martín", "¿Cuántos volúmenes faltan?", "señalización"],
    ["Segunda página", "Año 1987", "¡Sí, señor!"],
]


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return make_text_pdf(tmp_path / "acta.pdf", SPANISH_PAGES)


def build(store: Store, **kwargs: Any) -> Workbench:
    """Return a workbench reading in this process with the fake engine at 72 dpi."""
    kwargs.setdefault("save_delay", 0)
    kwargs.setdefault("settings", replace(load_settings(), dpi=72))
    workbench = Workbench(store, read_in_subprocess=False, **kwargs)
    workbench.documents.engine.value = "fake"
    return workbench


@pytest.fixture
def bench(store: Store, fake_engine: FakeEngine) -> Iterator[Workbench]:
    workbench = build(store)
    yield workbench
    workbench.close()


def add_and_read(workbench: Workbench, pdf: Path) -> str:
    """Upload a PDF, wait for its pages to be read, return its document id."""
    added = workbench.documents.add_files([(pdf.name, pdf.read_bytes())])
    assert len(added) == 1
    assert workbench.documents.reader.wait(timeout=60)
    return added[0].id


def message(workbench: Workbench) -> tuple[str, str]:
    assert workbench.feedback.last is not None
    return workbench.feedback.last


def box_event(workbench: Workbench, content: dict[str, Any]) -> None:
    workbench.page_view._handle_custom_msg(content, [])


# -- upload and reading ---------------------------------------------------------


def test_upload_reads_and_shows_page(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    store = bench.store
    assert [p.status for p in store.pages(document_id)] == ["done", "done"]
    assert bench.document is not None
    assert bench.document.id == document_id
    assert bench.page_index == 0
    stored = store.lines(document_id, 0)
    assert len(stored) == 3
    assert [line["id"] for line in bench.page_view.lines] == [x.id for x in stored]
    assert bench.line_list.table.row_ids() == [x.id for x in stored]
    assert bench.page_view.image[:3] == b"\xff\xd8\xff"
    page = store.page(document_id, 0)
    assert bench.page_view.image_width == page.width_px
    assert bench.page_view.image_height == page.height_px
    kind, text = message(bench)
    assert kind == "success"
    assert "read 2 pages" in text
    row = bench.documents.table.rows[0]
    assert row["name"] == "acta.pdf"
    assert row["status"]["state"] == "done"
    assert row["status"]["label"] == "2/2 read"


def test_upload_value_is_added_and_cleared(bench: Workbench, pdf: Path) -> None:
    upload = bench.documents.upload
    upload.set_state(
        {
            "value": [
                {
                    "name": "acta.pdf",
                    "type": "application/pdf",
                    "size": pdf.stat().st_size,
                    "content": memoryview(pdf.read_bytes()),
                    "last_modified": 0,
                }
            ]
        }
    )
    assert bench.documents.reader.wait(timeout=60)
    assert [d.filename for d in bench.store.documents()] == ["acta.pdf"]
    assert upload.value == ()


def test_several_files_in_one_upload(
    bench: Workbench, pdf: Path, tmp_path: Path
) -> None:
    other = make_text_pdf(tmp_path / "otro.pdf", [["Otra acta"]])
    added = bench.documents.add_files(
        [(pdf.name, pdf.read_bytes()), (other.name, other.read_bytes())]
    )
    assert bench.documents.reader.wait(timeout=60)
    assert [d.filename for d in added] == ["acta.pdf", "otro.pdf"]
    assert len(bench.documents.table.rows) == 2
    assert all(row["status"]["state"] == "done" for row in bench.documents.table.rows)


def test_upload_over_limit_shows_message(store: Store, fake_engine: FakeEngine) -> None:
    settings = replace(load_settings(), upload_limit_mb=1, dpi=72)
    workbench = build(store, settings=settings)
    big = b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10)
    added = workbench.documents.add_files([("grande.pdf", big)])
    assert added == []
    assert store.documents() == []
    kind, text = message(workbench)
    assert kind == "error"
    assert "grande.pdf (1.0 MB)" in text
    assert "over the upload limit of 1 MB" in text
    workbench.close()


def test_browser_rejection_joins_summary(bench: Workbench, pdf: Path) -> None:
    limit = bench.documents.limit_bytes
    bench.documents.guard._handle_custom_msg(
        {
            "event": "selected",
            "files": [
                {"name": "enorme.pdf", "size": limit + 1},
                {"name": "acta.pdf", "size": pdf.stat().st_size},
            ],
        },
        [],
    )
    kind, text = message(bench)
    assert kind == "error"
    assert "enorme.pdf" in text
    add_and_read_files = bench.documents.add_files([(pdf.name, pdf.read_bytes())])
    assert len(add_and_read_files) == 1
    kind, text = message(bench)
    assert kind == "error"
    assert "Added acta.pdf" in text
    assert "enorme.pdf" in text
    assert bench.documents.reader.wait(timeout=60)


def test_upload_that_never_arrives_is_reported(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents_module, "ARRIVAL_GRACE_S", 0.2)
    monkeypatch.setattr(documents_module, "ARRIVAL_S_PER_MB", 0.0)
    bench.documents.guard._handle_custom_msg(
        {"event": "selected", "files": [{"name": "perdido.pdf", "size": 5000}]}, []
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if bench.feedback.last and "did not arrive" in bench.feedback.last[1]:
            break
        time.sleep(0.1)
    kind, text = message(bench)
    assert kind == "error"
    assert "perdido.pdf" in text
    assert "did not arrive" in text


def test_encrypted_pdf_asks_password(bench: Workbench, corpus: Path) -> None:
    locked = corpus / "libreoffice-writer-password.pdf"
    assert bench.documents.add_files([(locked.name, locked.read_bytes())]) == []
    assert bench.documents.password_box.layout.display == "flex"
    assert locked.name in bench.documents.password_note.value
    bench.documents.password.value = "wrong"
    assert bench.documents.try_password() is None
    assert "wrong" in bench.documents.password_note.value
    assert bench.store.documents() == []
    bench.documents.password.value = "openpassword"
    bench.documents.unlock.click()
    assert bench.documents.reader.wait(timeout=60)
    assert [d.filename for d in bench.store.documents()] == [locked.name]
    assert bench.documents.password_box.layout.display == "none"
    assert bench.documents.password.value == ""


def test_password_enter_key_submits(bench: Workbench, corpus: Path) -> None:
    locked = corpus / "libreoffice-writer-password.pdf"
    bench.documents.add_files([(locked.name, locked.read_bytes())])
    bench.documents.password.value = "openpassword"
    bench.documents.password._handle_custom_msg({"event": "submit"}, [])
    assert bench.documents.reader.wait(timeout=60)
    assert len(bench.store.documents()) == 1


def test_damaged_file_shows_message(bench: Workbench, corpus: Path) -> None:
    damaged = corpus / "invalid.pdf"
    assert bench.documents.add_files([(damaged.name, damaged.read_bytes())]) == []
    kind, text = message(bench)
    assert kind == "error"
    assert "invalid.pdf was not added: damaged or truncated PDF" in text
    # Named in front and in MuPDF's reason, not a third time as the error's prefix.
    assert text.count("invalid.pdf") == 2
    assert bench.store.documents() == []


def test_same_file_again_is_not_reported_added(bench: Workbench, pdf: Path) -> None:
    first = add_and_read(bench, pdf)
    again = bench.documents.add_files([("copia.pdf", pdf.read_bytes())])
    assert [document.id for document in again] == [first]
    kind, text = message(bench)
    assert kind == "info"
    assert text == "copia.pdf is already in the store as acta.pdf."
    assert bench.document is not None
    assert bench.document.id == first


def test_unloadable_page_shows_blank_sheet(
    bench: Workbench, pdf: Path, tmp_path: Path
) -> None:
    first = add_and_read(bench, pdf)
    second = add_and_read(bench, make_text_pdf(tmp_path / "otro.pdf", [["Otra"]]))
    bench.open_document(first)
    first_image = bench.page_view.image
    # The second document's file is damaged after reading.
    source = bench.store.source_path(second)
    source.chmod(0o644)
    source.write_bytes(b"%PDF-1.7\nbroken")
    bench.images.forget(second)

    bench.open_document(second)
    assert bench.page_view.image != first_image
    assert bench.page_view.image[:4] == b"\x89PNG"  # the blank sheet
    lines = bench.store.lines(second, 0)
    assert [line["id"] for line in bench.page_view.lines] == [x.id for x in lines]
    kind, text = message(bench)
    assert kind == "error"
    assert "otro.pdf" in text
    assert str(bench.store.root) not in text


def test_engine_choice_lists_registered(bench: Workbench) -> None:
    options = list(bench.documents.engine.options)
    assert "fake" in options
    assert "onnx" in options
    assert documents_module.default_engine(["onnx", "text"]) == "onnx"
    assert documents_module.default_engine(["auto", "onnx"]) == "auto"


def test_read_again_keeps_edited_line(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    first = bench.page_lines[0]
    bench.select_line(first.id)
    bench.editor.text.value = "Archivo corregido"
    bench.documents.read(document_id, again=True)
    assert bench.documents.reader.wait(timeout=60)
    texts = [line.text for line in bench.store.lines(document_id, 0)]
    assert "Archivo corregido" in texts
    assert [line["text"] for line in bench.page_view.lines] == texts


def test_late_keystrokes_stay_on_their_line(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    first, second = bench.page_lines[0], bench.page_lines[1]
    bench.select_line(second.id)
    typed_into = bench.editor.text
    bench.select_line(first.id)
    # Text typed into the second line reaches the kernel after the first line
    # was selected, as fast typing followed by a click does.
    typed_into.value = second.text + " ÑOÑO"
    bench.editor.flush()
    assert bench.store.line(second.id).text == second.text + " ÑOÑO"
    assert bench.store.line(first.id).text == first.text
    assert bench.editor.text.value == first.text
    assert document_id == first.document_id


# -- selection and navigation ----------------------------------------------------


def test_selection_follows_page_and_list(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    first, second = bench.page_lines[0], bench.page_lines[1]
    bench.page_view.selected = first.id
    assert bench.line_list.table.selected == first.id
    assert bench.editor.line is not None
    assert bench.editor.line.id == first.id
    assert bench.editor.text.value == first.text
    bench.line_list.table.selected = second.id
    assert bench.page_view.selected == second.id
    assert bench.editor.text.value == second.text
    bench.page_view.selected = -1
    assert bench.line_list.table.selected == -1
    assert bench.editor.line is None
    assert bench.editor.text.disabled


def test_page_buttons_and_number(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    assert bench.prev_button.disabled
    bench.next_button.click()
    assert bench.page_index == 1
    assert bench.page_number.value == 2
    assert bench.next_button.disabled
    assert [x["text"] for x in bench.page_view.lines] == [
        line.text for line in bench.store.lines(document_id, 1)
    ]
    bench.page_number.value = 1
    assert bench.page_index == 0
    assert "3 lines" in bench.page_info.value


def test_document_scope_turns_page(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    bench.line_list.scope.value = "document"
    assert len(bench.line_list.table.rows) == 6
    assert [c["key"] for c in bench.line_list.table.columns][:2] == ["number", "page"]
    target = bench.store.lines(document_id, 1)[2]
    bench.line_list.table.selected = target.id
    assert bench.page_index == 1
    assert bench.page_view.selected == target.id
    assert bench.editor.text.value == target.text


def test_search_opens_line(bench: Workbench, pdf: Path, tmp_path: Path) -> None:
    add_and_read(bench, pdf)
    other = make_text_pdf(tmp_path / "otro.pdf", [["Otra acta"]])
    bench.documents.add_files([(other.name, other.read_bytes())])
    assert bench.documents.reader.wait(timeout=60)
    acta = next(d for d in bench.store.documents() if d.filename == "acta.pdf")
    line = bench.store.lines(acta.id, 1)[1]
    bench.store.edit_line(line.id, text="Año 1987 ¿Cuántos?")
    found = bench.search.search("cuántos")
    assert [x.id for x in found] == [line.id]
    assert bench.search.table.rows[0]["file"] == "acta.pdf"
    bench.search.table.selected = line.id
    assert bench.document is not None
    assert bench.document.id == acta.id
    assert bench.page_index == 1
    assert bench.page_view.selected == line.id


# -- editing ---------------------------------------------------------------------


def test_text_edit_is_stored(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[1]
    bench.select_line(line.id)
    bench.editor.text.value = "¿Cuántos volúmenes faltan tras la mudanza?"
    stored = bench.store.line(line.id)
    assert stored.text == "¿Cuántos volúmenes faltan tras la mudanza?"
    assert stored.origin == "edited"
    shown = next(x for x in bench.page_view.lines if x["id"] == line.id)
    assert shown["text"] == stored.text
    row = next(r for r in bench.line_list.table.rows if r["id"] == line.id)
    assert row["text"] == stored.text


def test_typing_saved_after_pause(
    store: Store, fake_engine: FakeEngine, pdf: Path
) -> None:
    workbench = build(store, save_delay=0.3)
    add_and_read(workbench, pdf)
    line = workbench.page_lines[0]
    workbench.select_line(line.id)
    workbench.editor.text.value = "Texto pegado"
    assert workbench.editor.has_pending()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and store.line(line.id).text != "Texto pegado":
        time.sleep(0.05)
    assert store.line(line.id).text == "Texto pegado"
    assert not workbench.editor.has_pending()
    assert "Saved" in workbench.editor.status.value
    workbench.close()


def test_pending_text_saved_on_select(
    store: Store, fake_engine: FakeEngine, pdf: Path
) -> None:
    workbench = build(store, save_delay=30)
    add_and_read(workbench, pdf)
    first, second = workbench.page_lines[0], workbench.page_lines[1]
    workbench.select_line(first.id)
    workbench.editor.text.value = "señalización"
    workbench.line_list.table.selected = second.id
    assert store.line(first.id).text == "señalización"
    assert workbench.editor.text.value == second.text
    workbench.close()


def test_enter_saves_at_once(store: Store, fake_engine: FakeEngine, pdf: Path) -> None:
    workbench = build(store, save_delay=30)
    add_and_read(workbench, pdf)
    line = workbench.page_lines[0]
    workbench.select_line(line.id)
    workbench.editor.text.value = "Archivo Municipal"
    assert store.line(line.id).text != "Archivo Municipal"
    workbench.editor.text._handle_custom_msg({"event": "submit"}, [])
    assert store.line(line.id).text == "Archivo Municipal"
    workbench.close()


def test_edit_conflict_reloads_line(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[0]
    bench.select_line(line.id)
    other_session = Store(bench.store.root)
    other_session.edit_line(line.id, text="Cambiado en otra sesión")
    bench.editor.text.value = "Mi cambio"
    assert bench.store.line(line.id).text == "Cambiado en otra sesión"
    kind, text = message(bench)
    assert kind == "warning"
    assert "changed in another session" in text
    shown = next(x for x in bench.page_view.lines if x["id"] == line.id)
    assert shown["text"] == "Cambiado en otra sesión"
    assert bench.editor.text.value == "Cambiado en otra sesión"
    other_session.close()


def test_verified_button_and_key(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[0]
    bench.line_list.table._handle_custom_msg(
        {"event": "key", "key": "v", "id": line.id}, []
    )
    assert bench.store.line(line.id).verified
    assert bench.editor.verified.value
    shown = next(x for x in bench.page_view.lines if x["id"] == line.id)
    assert shown["verified"] is True
    bench.editor.verified.value = False
    assert not bench.store.line(line.id).verified


def test_moved_box_is_stored(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[2]
    box_event(
        bench, {"event": "box_changed", "id": line.id, "bbox": [100, 50, 400, 90]}
    )
    stored = bench.store.line(line.id)
    assert stored.bbox == (100.0, 50.0, 400.0, 90.0)
    assert stored.origin == "edited"
    assert stored.order == 0
    shown = next(x for x in bench.page_view.lines if x["id"] == line.id)
    assert shown["bbox"] == [100.0, 50.0, 400.0, 90.0]
    assert bench.page_view.selected == line.id
    assert bench.line_list.table.row_ids()[0] == line.id


def test_read_again_stores_engine_text(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[0]
    bench.select_line(line.id)
    bench.editor.read_again.click()
    stored = bench.store.line(line.id)
    assert stored.text == "region"
    assert stored.confidence == pytest.approx(0.8)
    assert bench.editor.text.value == "region"


def test_drawn_box_added_with_text(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    before = {line.id for line in bench.store.lines(document_id, 0)}
    box_event(bench, {"event": "box_added", "bbox": [50, 600, 400, 640]})
    lines = bench.store.lines(document_id, 0)
    (added,) = [line for line in lines if line.id not in before]
    assert added.text == "region"
    assert added.origin == "added"
    assert added.bbox == (50.0, 600.0, 400.0, 640.0)
    assert bench.page_view.selected == added.id
    assert bench.editor.text.value == "region"
    assert added.id in {x["id"] for x in bench.page_view.lines}


def test_delete_and_undo_redo(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[1]
    box_event(bench, {"event": "box_deleted", "id": line.id})
    assert bench.store.is_deleted(line.id)
    assert line.id not in bench.line_list.table.row_ids()
    bench.editor.undo.click()
    assert not bench.store.is_deleted(line.id)
    assert line.id in {x["id"] for x in bench.page_view.lines}
    assert bench.page_view.selected == line.id
    bench.editor.redo.click()
    assert bench.store.is_deleted(line.id)
    assert line.id not in {x["id"] for x in bench.page_view.lines}


def test_undo_text_edit_refreshes_views(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[0]
    bench.select_line(line.id)
    bench.editor.text.value = "Texto nuevo"
    bench.step_page(1)
    bench.undo()
    assert bench.page_index == 0
    assert bench.store.line(line.id).text == line.text
    assert bench.editor.text.value == line.text
    shown = next(x for x in bench.page_view.lines if x["id"] == line.id)
    assert shown["text"] == line.text
    bench.redo()
    assert bench.editor.text.value == "Texto nuevo"
    bench.undo()
    bench.undo()
    kind, text = message(bench)
    assert text == "Nothing to undo in this document."


# -- review ----------------------------------------------------------------------


def set_confidences(store: Store, lines: list[Line], values: list[float]) -> None:
    # The store changes a confidence only together with the text.
    for line, value in zip(lines, values, strict=True):
        store.edit_line(line.id, text=f"{line.text} ({value})", confidence=value)


def test_confidence_filter_and_sort(bench: Workbench, pdf: Path) -> None:
    document_id = add_and_read(bench, pdf)
    lines = bench.store.lines(document_id, 0)
    set_confidences(bench.store, lines, [0.9, 0.3, 0.6])
    bench.store.edit_line(lines[0].id, verified=True)
    bench.reload()
    bench.line_list.max_confidence.value = 0.6
    assert bench.line_list.table.row_ids() == [lines[1].id, lines[2].id]
    assert "2 of 3 lines" in bench.line_list.count.value
    bench.line_list.max_confidence.value = 1.0
    bench.line_list.sort.value = SORT_CONFIDENCE
    assert bench.line_list.table.row_ids() == [lines[1].id, lines[2].id, lines[0].id]
    bench.line_list.unverified_only.value = True
    assert bench.line_list.table.row_ids() == [lines[1].id, lines[2].id]


def test_filter_lines_keeps_order_ties() -> None:
    def line(line_id: int, page: int, order: int, confidence: float) -> Line:
        return Line(
            id=line_id,
            document_id="d",
            page_index=page,
            order=order,
            poly=((0, 0), (1, 0), (1, 1), (0, 1)),
            bbox=(0, 0, 1, 1),
            text="",
            confidence=confidence,
            origin="ocr",  # type: ignore[arg-type]
        )

    lines = [line(1, 1, 0, 0.5), line(2, 0, 1, 0.5), line(3, 0, 0, 0.9)]
    assert [x.id for x in filter_lines(lines)] == [3, 2, 1]
    assert [x.id for x in filter_lines(lines, sort=SORT_CONFIDENCE)] == [2, 1, 3]
    assert [x.id for x in filter_lines(lines, max_confidence=0.5)] == [2, 1]


def fill_page(store: Store, document_id: str, count: int) -> None:
    """Store ``count`` lines on page 1, as an engine would, 2.7 px apart at 72 dpi."""
    page = store.page(document_id, 0)
    done = replace(
        page,
        width_px=round(page.width_pt),
        height_px=round(page.height_pt),
        dpi=72.0,
        status=PageStatus.done,
        engine="fake",
    )
    lines = [
        RecognizedLine(
            bbox_to_poly((40, 10 + 2.7 * i, 300, 12 + 2.7 * i)), f"renglón {i}", 0.9
        )
        for i in range(count)
    ]
    store.save_page(done, lines)


def test_300_lines_use_one_table(
    store: Store, fake_engine: FakeEngine, tmp_path: Path
) -> None:
    small = make_text_pdf(tmp_path / "corto.pdf", [["uno", "dos"]])
    large = make_text_pdf(tmp_path / "largo.pdf", [["página larga"]])
    workbench = build(store)
    add_and_read(workbench, small)
    document = store.add_file(large)
    fill_page(store, document.id, 300)
    widget_count = len(_instances)
    workbench.open_document(document.id)
    assert len(workbench.page_lines) == 300
    assert len(workbench.line_list.table.rows) == 300
    assert len(workbench.page_view.lines) == 300
    # Opening a page of 300 lines adds no widget per line.
    assert len(_instances) - widget_count < 10
    workbench.close()


# -- export ----------------------------------------------------------------------


def test_export_csv_keeps_accents(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    line = bench.page_lines[0]
    bench.select_line(line.id)
    bench.editor.text.value = "Archivo Municipal de San Martín, ¿Cuántos? señalización"
    built = bench.export.build()
    assert built is not None
    filename, mime, data = built
    assert filename == "acta-lines.csv"
    assert mime.startswith("text/csv")
    assert data.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert "Archivo Municipal de San Martín, ¿Cuántos? señalización" in set(frame.text)
    assert len(frame) == 6
    bench.export.bom.value = False
    _, _, plain = bench.export.build() or ("", "", b"")
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert "Martín".encode() in plain


def test_export_parquet_and_jsonl_all(
    bench: Workbench, pdf: Path, tmp_path: Path
) -> None:
    add_and_read(bench, pdf)
    other = make_text_pdf(tmp_path / "otro.pdf", [["Otra acta"]])
    bench.documents.add_files([(other.name, other.read_bytes())])
    assert bench.documents.reader.wait(timeout=60)
    bench.export.scope.value = "all"
    bench.export.format.value = "parquet"
    assert bench.export.bom.disabled
    filename, _, data = bench.export.build() or ("", "", b"")
    assert filename == "ocrkit-lines.parquet"
    frame = pd.read_parquet(io.BytesIO(data))
    assert sorted(set(frame.file)) == ["acta.pdf", "otro.pdf"]
    bench.export.format.value = "jsonl"
    filename, _, data = bench.export.build() or ("", "", b"")
    rows = [json.loads(x) for x in data.decode("utf-8").splitlines()]
    assert filename == "ocrkit-lines.jsonl"
    assert len(rows) == 7
    assert {row["file"] for row in rows} == {"acta.pdf", "otro.pdf"}


def test_download_button_sends_bytes() -> None:
    sent: list[tuple[Any, Any]] = []
    button = DownloadButton(builder=lambda: ("líneas.csv", "text/csv", b"a,b\n"))
    button.send = lambda content, buffers=None: sent.append((content, buffers))  # type: ignore[method-assign]
    button._handle_custom_msg({"event": "request"}, [])
    assert sent == [
        (
            {"event": "file", "filename": "líneas.csv", "mime": "text/csv"},
            [b"a,b\n"],
        )
    ]
    assert button.busy is False


# -- errors, log and storage -----------------------------------------------------


def test_callback_error_shown_and_logged() -> None:
    feedback = Feedback()

    @feedback.guard("Doing a thing")
    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    assert broken() is None
    assert feedback.last is not None
    assert feedback.last[0] == "error"
    assert "Doing a thing failed: ZeroDivisionError" in feedback.last[1]
    logged = "".join(o["text"] for o in feedback.output.outputs)
    assert "Traceback" in logged
    feedback.close()


def test_error_stays_below_next_success(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(feedback_module.time, "monotonic", lambda: clock[0])
    feedback = Feedback()
    try:
        feedback.show("roto.pdf was not added: damaged PDF", "error")
        clock[0] += 5
        feedback.show("Read acta.pdf: 2 pages", "success")
        assert feedback.last == ("success", "Read acta.pdf: 2 pages")
        assert "Read acta.pdf" in feedback.message.value
        assert "roto.pdf was not added" in feedback.message.value

        clock[0] += feedback_module.ERROR_KEPT_S
        feedback.show("Read otro.pdf: 1 page", "success")
        assert "roto.pdf" not in feedback.message.value
    finally:
        feedback.close()


def test_failing_engine_region_still_adds(
    bench: Workbench, pdf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    document_id = add_and_read(bench, pdf)

    class BrokenRegions(FakeEngine):
        def recognize_region(self, image: Any) -> tuple[str, float]:
            from ocrkit.errors import EngineError

            raise EngineError("the region engine failed")

    broken = BrokenRegions()
    register_engine("fake", lambda **options: broken)
    from ocrkit import reading

    reading._ENGINES.pop(("fake", "[]"), None)
    with caplog.at_level(logging.WARNING):
        box_event(bench, {"event": "box_added", "bbox": [50, 600, 400, 640]})
    added = [x for x in bench.store.lines(document_id, 0) if x.origin == "added"]
    assert len(added) == 1
    assert added[0].text == ""
    kind, text = message(bench)
    assert kind == "warning"
    assert "Reading it failed (the region engine failed)" in text
    assert "the region engine failed" in caplog.text


def test_default_storage_from_notebooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "storage").mkdir()
    monkeypatch.delenv("OCRKIT_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path / "notebooks")
    assert default_storage() == tmp_path / "storage"
    monkeypatch.chdir(tmp_path)
    assert default_storage() == tmp_path / "storage"
    monkeypatch.setenv("OCRKIT_STORAGE", str(tmp_path / "elsewhere"))
    assert default_storage() == tmp_path / "elsewhere"


def test_log_panel_receives_records(bench: Workbench, pdf: Path) -> None:
    add_and_read(bench, pdf)
    logged = "".join(o["text"] for o in bench.feedback.output.outputs)
    assert "added" in logged
    assert "acta.pdf" in logged


def test_region_read_keeps_page_detection(corpus: Path) -> None:
    # "Read again" and a drawn box read a crop with the same engine instance the
    # workbench may later read whole pages with.
    from ocrkit.engines import get_engine
    from ocrkit.sources import Source

    with Source(corpus / "acta-municipal-es.pdf") as source:
        image = source.render(0, 100).image
    engine = get_engine("onnx")
    before = engine.recognize(image)
    text, _ = engine.recognize_region(image[80:110, 70:330])
    after = engine.recognize(image)
    assert len(before) >= 10
    assert "Archivo" in text
    assert len(after) == len(before)


def test_reader_stop_after_current_page(
    store: Store, fake_engine: FakeEngine, tmp_path: Path
) -> None:
    from ocrkit.widgets.reader import Reader, ReadJob

    pdf = make_text_pdf(tmp_path / "tres.pdf", [["uno"], ["dos"], ["tres"]])
    document = store.add_file(pdf)
    finished: list[BaseException | None] = []

    def stop_after_first(job: ReadJob, progress: Any) -> None:
        if progress is not None and progress.done == 1:
            reader.cancel(job.document_id)

    reader = Reader(
        store,
        in_subprocess=False,
        on_progress=stop_after_first,
        on_finished=lambda job, report, error: finished.append(error),
    )
    reader.submit(ReadJob(document.id, "fake", 72.0))
    assert reader.wait(timeout=60)
    assert [p.status for p in store.pages(document.id)] == ["done", "done", "pending"]
    assert reader.states[document.id].state == "cancelled"
    assert type(finished[0]).__name__ == "ReadCancelled"
    reader.close()


def test_reader_stops_idle_worker(store: Store) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from ocrkit.widgets.reader import Reader

    reader = Reader(store, in_subprocess=True)
    reader.idle_seconds = 0.1
    worker = reader._executor()
    assert isinstance(worker, ProcessPoolExecutor)
    reader._schedule_idle_stop()
    deadline = time.monotonic() + 10
    while reader._pages is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader._pages is None
    assert reader._executor() is not worker
    reader.close()


def test_failure_reasons_group_pages() -> None:
    def failed(number: int, reason: str) -> Page:
        error = f"actas.pdf, page {number}: {reason}"
        return Page("d", number - 1, 595, 842, status=PageStatus.failed, error=error)

    pages = [
        failed(3, "its content stream is missing"),
        failed(4, "its content stream is missing"),
        failed(6, "the page is damaged (MuPDF: truncated image)"),
    ]
    assert documents_module.failure_reasons("actas.pdf", pages) == (
        "pages 3, 4: its content stream is missing; "
        "page 6: the page is damaged (MuPDF: truncated image)"
    )


def test_status_bar_fills_when_every_page_failed() -> None:
    pages = [
        Page("d", index, 595, 842, status=PageStatus.failed, error="damaged")
        for index in range(6)
    ]
    cell = documents_module.status_cell(pages, None)
    assert cell["label"] == "6 failed"
    assert cell["state"] == "failed"
    assert cell["done"] == cell["total"] == 6
    pages[0] = replace(pages[0], status=PageStatus.done)
    pages[1] = replace(pages[1], status=PageStatus.pending)
    cell = documents_module.status_cell(pages, None)
    assert cell["label"] == "4 failed"
    assert (cell["done"], cell["total"]) == (5, 6)
