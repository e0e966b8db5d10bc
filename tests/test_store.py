"""The store: adding files, saving pages, editing lines, undo and redo."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import FakeEngine, make_text_pdf

from ocrkit.errors import (
    EditConflictError,
    EncryptedPdfError,
    InputFileError,
    NotFoundError,
    StoreError,
)
from ocrkit.models import LineOrigin, PageStatus
from ocrkit.reading import read_document
from ocrkit.store import SCHEMA_VERSION, Store


def snapshot(store: Store) -> tuple[object, ...]:
    """Return what a failed step must leave unchanged."""
    files = sorted(p.name for p in (store.root / "files").iterdir())
    lines = [(line.id, line.text, line.bbox) for line in store.lines()]
    return (store.stats(), files, lines, len(store.history()))


def test_new_store_has_schema_and_wal(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_same_file_twice_is_one_document(store: Store, corpus: Path, tmp_path: Path):
    first = store.add_file(corpus / "francais.pdf")
    copy = tmp_path / "renamed copy.pdf"
    shutil.copy(corpus / "francais.pdf", copy)
    second = store.add_file(copy)
    assert second.id == first.id
    assert len(store.documents()) == 1
    assert len(list((store.root / "files").iterdir())) == 1


def test_original_is_kept_by_hash(store: Store, corpus: Path) -> None:
    document = store.add_file(corpus / "francais.pdf")
    kept = store.source_path(document.id)
    assert kept.read_bytes() == (corpus / "francais.pdf").read_bytes()
    assert kept.name.startswith(document.sha256)
    assert document.filename == "francais.pdf"


def test_upload_name_never_chooses_a_path(store: Store, corpus: Path) -> None:
    data = (corpus / "francais.pdf").read_bytes()
    document = store.add_bytes(data, "../../evil/x.pdf")
    assert document.filename == "x.pdf"
    assert store.source_path(document.id).parent == store.root / "files"
    assert not (store.root.parent / "evil").exists()


def test_document_lookup_by_name_and_prefix(store: Store, corpus: Path) -> None:
    document = store.add_file(corpus / "francais.pdf")
    assert store.document("francais.pdf").id == document.id
    assert store.document(document.id[:6]).id == document.id
    with pytest.raises(NotFoundError, match="ocrkit ls"):
        store.document("missing.pdf")


@pytest.mark.parametrize(
    ("name", "data", "error", "message"),
    [
        ("empty.pdf", b"", InputFileError, "empty.pdf: the file is empty"),
        ("notes.pdf", b"just some text", InputFileError, "notes.pdf: not a PDF"),
        ("cut.pdf", b"%PDF-1.4\n%%EOF", InputFileError, "cut.pdf: damaged"),
    ],
)
def test_bad_file_leaves_store_as_it_was(
    store: Store,
    corpus: Path,
    name: str,
    data: bytes,
    error: type[Exception],
    message: str,
) -> None:
    store.add_file(corpus / "francais.pdf")
    before = snapshot(store)
    with pytest.raises(error, match=message):
        store.add_bytes(data, name)
    assert snapshot(store) == before


def test_encrypted_pdf_needs_password(store: Store, corpus: Path) -> None:
    path = corpus / "libreoffice-writer-password.pdf"
    before = snapshot(store)
    with pytest.raises(EncryptedPdfError, match="password"):
        store.add_file(path)
    assert snapshot(store) == before
    document = store.add_file(path, password="openpassword")
    unlocked = store.source_path(document.id)
    assert unlocked.name.endswith(".unlocked.pdf")
    assert (store.root / "files" / f"{document.sha256}.pdf").is_file()


def test_read_stores_lines_in_order(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    pdf = make_text_pdf(tmp_path / "two.pdf", [["one", "two", "three"], ["four"]])
    document = store.add_file(pdf)
    events = []
    report = read_document(store, document.id, engine="fake", progress=events.append)
    assert [event.done for event in events] == [1, 2]
    assert not report.failures
    lines = store.lines(document.id, 0)
    assert [line.text for line in lines] == ["line 1", "line 2", "line 3"]
    assert [line.order for line in lines] == [0, 1, 2]
    assert all(line.origin == LineOrigin.ocr for line in lines)
    page = store.page(document.id, 0)
    assert page.status == PageStatus.done
    assert page.engine == "fake"
    assert page.line_count == 3


def test_blank_page_is_no_text(store: Store, tmp_path: Path, fake_engine: FakeEngine):
    pdf = make_text_pdf(tmp_path / "blank.pdf", [["text"], []])
    document = store.add_file(pdf)
    read_document(store, document.id, engine="fake")
    statuses = [page.status for page in store.pages(document.id)]
    assert statuses == [PageStatus.done, PageStatus.no_text]


def test_failure_on_page_7_keeps_pages_1_to_6(store: Store, tmp_path: Path) -> None:
    from ocrkit.engines import register_engine

    engine = FakeEngine(fail_on_call=7)
    register_engine("fails-on-7", lambda **options: engine)
    pages = [[f"page {n}"] for n in range(1, 11)]
    document = store.add_file(make_text_pdf(tmp_path / "ten.pdf", pages))
    report = read_document(store, document.id, engine="fails-on-7")
    assert report.failures == {6: "EngineError"}
    statuses = [page.status for page in store.pages(document.id)]
    assert statuses[:6] == [PageStatus.done] * 6
    assert statuses[6] == PageStatus.failed
    assert statuses[7:] == [PageStatus.done] * 3
    assert "fail on call 7" in store.page(document.id, 6).error
    assert len(store.lines(document.id)) == 9
    assert store.pending_pages(document.id) == [6]


def test_edit_undo_redo(store: Store, tmp_path: Path, fake_engine: FakeEngine) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno", "dos"]]))
    read_document(store, document.id, engine="fake")
    line = store.lines(document.id)[0]
    edited = store.edit_line(line.id, text="Año ¿Qué? ¡Sí!")
    assert edited.text == "Año ¿Qué? ¡Sí!"
    assert edited.origin == LineOrigin.edited
    assert edited.version == line.version + 1
    moved = store.edit_line(line.id, bbox=(1, 2, 30, 40))
    assert moved.bbox == (1, 2, 30, 40)
    store.edit_line(line.id, verified=True)
    assert store.line(line.id).verified

    assert store.undo(document.id)["action"] == "verify"
    assert not store.line(line.id).verified
    store.undo(document.id)
    assert store.line(line.id).bbox == line.bbox
    store.undo(document.id)
    restored = store.line(line.id)
    assert restored.text == line.text
    assert restored.origin == LineOrigin.ocr
    assert store.undo(document.id) is None

    store.redo(document.id)
    assert store.line(line.id).text == "Año ¿Qué? ¡Sí!"
    store.redo(document.id)
    assert store.line(line.id).bbox == (1, 2, 30, 40)
    history = store.history(document.id)
    assert [edit["action"] for edit in history] == ["edit", "edit", "verify"]
    assert history[0]["old"]["text"] == line.text
    assert history[0]["new"]["text"] == "Año ¿Qué? ¡Sí!"


def test_new_edit_drops_redo(store: Store, tmp_path: Path, fake_engine: FakeEngine):
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno"]]))
    read_document(store, document.id, engine="fake")
    line = store.lines(document.id)[0]
    store.edit_line(line.id, text="first")
    store.undo(document.id)
    store.edit_line(line.id, text="second")
    assert store.redo(document.id) is None
    assert store.line(line.id).text == "second"


def test_add_and_delete_lines_undo(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno", "dos"]]))
    read_document(store, document.id, engine="fake")
    added = store.add_line(document.id, 0, (10, 5, 200, 20), "título")
    assert added.origin == LineOrigin.added
    assert added.order == 0  # it sits above the other lines
    first = store.lines(document.id)[1]
    store.delete_line(first.id)
    assert [line.text for line in store.lines(document.id)] == ["título", "line 2"]
    store.undo(document.id)
    assert len(store.lines(document.id)) == 3
    store.undo(document.id)
    assert [line.text for line in store.lines(document.id)] == ["line 1", "line 2"]


def test_rerun_keeps_edited_and_verified_lines(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    pages = [["uno", "dos", "tres", "cuatro"]]
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", pages))
    read_document(store, document.id, engine="fake")
    first, second, third, fourth = store.lines(document.id)
    store.edit_line(first.id, text="Señalización")
    store.edit_line(second.id, verified=True)
    store.delete_line(third.id)
    store.add_line(document.id, 0, (300, 700, 500, 720), "nota añadida")

    read_document(store, document.id, pages=[0], engine="fake")
    lines = store.lines(document.id)
    texts = [line.text for line in lines]
    assert texts == ["Señalización", "line 2", "line 4", "nota añadida"]
    assert store.line(first.id).text == "Señalización"
    assert store.line(second.id).verified
    assert store.is_deleted(third.id)
    assert fourth.id not in {line.id for line in lines}  # replaced by a fresh read
    assert store.integrity_check() == []


def test_conflicting_edit_is_reported(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno"]]))
    read_document(store, document.id, engine="fake")
    line = store.lines(document.id)[0]
    with Store(store.root) as other_session:
        other_session.edit_line(line.id, text="theirs", expected_version=line.version)
    with pytest.raises(EditConflictError, match="changed by someone else"):
        store.edit_line(line.id, text="mine", expected_version=line.version)
    assert store.line(line.id).text == "theirs"
    current = store.line(line.id)
    store.edit_line(line.id, text="mine", expected_version=current.version)
    assert store.line(line.id).text == "mine"


def test_edit_rejects_bad_box(store: Store, tmp_path: Path, fake_engine: FakeEngine):
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno"]]))
    read_document(store, document.id, engine="fake")
    line = store.lines(document.id)[0]
    with pytest.raises(ValueError, match="x1 < x0"):
        store.edit_line(line.id, bbox=(50, 0, 10, 10))
    assert store.line(line.id).bbox == line.bbox
    assert store.history(document.id) == []


def test_search_folds_case_and_accents_kept(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno", "dos"]]))
    read_document(store, document.id, engine="fake")
    line = store.lines(document.id)[1]
    store.edit_line(line.id, text="ÁLVAREZ y Peña")
    assert [found.id for found in store.search("álvarez")] == [line.id]
    assert [found.id for found in store.search("peña")] == [line.id]
    assert [found.id for found in store.search("alvarez")] == [line.id]
    assert [found.id for found in store.search("PENA")] == [line.id]
    assert store.search("50%") == []
    assert store.search("") == []


def test_delete_document_removes_everything(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno"]]))
    read_document(store, document.id, engine="fake")
    store.delete_document(document.id)
    assert store.documents() == []
    assert store.lines() == []
    assert list((store.root / "files").iterdir()) == []


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "s").close()
    db = sqlite3.connect(tmp_path / "s" / "ocrkit.sqlite")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this ocrkit"):
        Store(tmp_path / "s")


def test_corrupt_database_gives_clear_error(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "ocrkit.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the store database"):
        Store(tmp_path / "s")


def test_confidence_alone_is_stored_not_logged(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["uno"]]))
    read_document(store, document.id, engine="fake")
    line = store.lines(document.id)[0]
    updated = store.edit_line(line.id, text=line.text, confidence=0.42)
    assert updated.confidence == 0.42
    assert updated.text == line.text
    assert store.history(document.id) == []


def test_damaged_upload_message_hides_store_path(store: Store) -> None:
    with pytest.raises(InputFileError) as raised:
        store.add_bytes(b"%PDF-1.4\n%%EOF", "acta rota.pdf")
    assert str(raised.value).startswith("acta rota.pdf: damaged")
    assert str(store.root) not in str(raised.value)


def test_delete_renumbers_the_page(
    store: Store, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    document = store.add_file(make_text_pdf(tmp_path / "a.pdf", [["a", "b", "c"]]))
    read_document(store, document.id, engine="fake")
    first, second, third = store.lines(document.id)
    store.delete_line(second.id)
    assert [line.order for line in store.lines(document.id)] == [0, 1]
    store.undo(document.id)
    assert [line.id for line in store.lines(document.id)] == [
        first.id,
        second.id,
        third.id,
    ]
