"""Line tables: DataFrame, CSV, Parquet and JSON Lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FakeEngine, make_text_pdf

from ocrkit.errors import OcrkitError
from ocrkit.export import (
    COLUMNS,
    export_bytes,
    export_lines,
    frame_from_rows,
    lines_frame,
    read_lines,
)
from ocrkit.reading import read_document
from ocrkit.store import Store

SPANISH = ["Dirección", "Año", "Pingüino", "¿Qué?", "¡Hola!", "Ñandú «Peña»"]


@pytest.fixture
def filled(store: Store, tmp_path: Path, fake_engine: FakeEngine) -> Store:
    pdf = make_text_pdf(tmp_path / "acta.pdf", [SPANISH, ["segunda página"]])
    document = store.add_file(pdf)
    read_document(store, document.id, engine="fake")
    for line, text in zip(store.lines(document.id, 0), SPANISH, strict=True):
        store.edit_line(line.id, text=text)
    return store


def test_frame_has_columns_and_types(filled: Store) -> None:
    frame = lines_frame(filled)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(SPANISH) + 1
    assert frame["page"].tolist() == [1] * len(SPANISH) + [2]
    assert frame["line"].tolist()[: len(SPANISH)] == list(range(1, len(SPANISH) + 1))
    assert frame["text"].tolist()[: len(SPANISH)] == SPANISH
    assert frame["verified"].dtype == bool
    assert frame["confidence"].between(0, 1).all()
    assert (frame["x1"] > frame["x0"]).all()
    assert (frame["y1"] <= 842).all()  # points on an A4 page
    assert set(frame["origin"]) == {"edited", "ocr"}
    assert frame["file"].unique().tolist() == ["acta.pdf"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_round_trip_through_pandas(filled: Store, tmp_path: Path, fmt: str) -> None:
    frame = lines_frame(filled)
    path = export_lines(frame, tmp_path / f"lines.{fmt}", fmt)
    back = read_lines(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=fmt != "csv")
    assert back["text"].tolist() == frame["text"].tolist()


def test_csv_with_bom_keeps_accents_for_spreadsheets(filled: Store, tmp_path: Path):
    path = export_lines(lines_frame(filled), tmp_path / "lines.csv", "csv", bom=True)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert "¿Qué?".encode() in data
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["text"] for row in rows][: len(SPANISH)] == SPANISH


def test_csv_without_bom_is_plain_utf8(filled: Store, tmp_path: Path) -> None:
    path = export_lines(lines_frame(filled), tmp_path / "lines.csv", "csv")
    assert path.read_bytes().startswith(b"document,")


def test_control_characters_and_numpy_numbers_export(tmp_path: Path) -> None:
    texts = ["tab\there", "vt\x0bff\x0c", "stx\x02", "nul\x00end", "new\nline"]
    rows = [
        {
            "document": "d",
            "file": "f.pdf",
            "page": np.int64(1),
            "line": np.int64(n + 1),
            "x0": np.float32(1.5),
            "y0": np.float32(2),
            "x1": np.float64(3),
            "y1": 4,
            "text": text,
            "confidence": np.float32(0.25),
            "origin": "ocr",
            "verified": np.bool_(False),
            "line_id": np.int64(n),
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for n, text in enumerate(texts)
    ]
    frame = frame_from_rows(rows)
    csv_back = read_lines(export_lines(frame, tmp_path / "l.csv", "csv"))
    assert len(csv_back) == len(texts)
    assert csv_back["text"].tolist() == [
        "tab\there",
        "vtff",
        "stx",
        "nulend",
        "new\nline",
    ]
    assert csv_back["confidence"].tolist() == [0.25] * len(texts)

    parquet_back = read_lines(export_lines(frame, tmp_path / "l.parquet", "parquet"))
    assert parquet_back["text"].tolist() == texts

    path = export_lines(frame, tmp_path / "l.jsonl", "jsonl")
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [record["text"] for record in records] == texts
    assert records[0]["x0"] == 1.5
    assert records[0]["page"] == 1
    assert isinstance(records[0]["line"], int)


def test_export_bytes_matches_file(filled: Store, tmp_path: Path) -> None:
    frame = lines_frame(filled)
    data = export_bytes(frame, "csv", bom=True)
    assert data == export_lines(frame, tmp_path / "x.csv", "csv", bom=True).read_bytes()


def test_unknown_format_is_rejected(filled: Store, tmp_path: Path) -> None:
    with pytest.raises(OcrkitError, match="unknown export format 'xlsx'"):
        export_lines(lines_frame(filled), tmp_path / "x.xlsx", "xlsx")


def test_empty_store_exports_header_only(store: Store, tmp_path: Path) -> None:
    path = export_lines(lines_frame(store), tmp_path / "empty.csv", "csv")
    assert path.read_text("utf-8").strip() == ",".join(COLUMNS)


def test_frame_of_one_page(filled: Store) -> None:
    frame = lines_frame(filled, "acta.pdf", page=2)
    assert frame["page"].tolist() == [2]
    assert frame["text"].tolist() == ["line 1"]


def test_spreadsheet_csv_defuses_formulas(tmp_path: Path) -> None:
    texts = ["=1+1", "+34 91 123 45 67", "@SUMA(A1)", "-5 grados", "Año = 1987"]
    rows = [
        {
            "document": "d",
            "file": "=cmd.pdf",
            "page": 1,
            "line": n + 1,
            "x0": 0,
            "y0": 0,
            "x1": 1,
            "y1": 1,
            "text": text,
            "confidence": 1.0,
            "origin": "ocr",
            "verified": False,
            "line_id": n,
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for n, text in enumerate(texts)
    ]
    frame = frame_from_rows(rows)
    excel = read_lines(export_lines(frame, tmp_path / "excel.csv", "csv", bom=True))
    assert excel["text"].tolist() == [
        "'=1+1",
        "'+34 91 123 45 67",
        "'@SUMA(A1)",
        "'-5 grados",
        "Año = 1987",
    ]
    assert excel["file"].unique().tolist() == ["'=cmd.pdf"]
    plain = read_lines(export_lines(frame, tmp_path / "plain.csv", "csv"))
    assert plain["text"].tolist() == texts
