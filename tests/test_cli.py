"""The ``ocrkit`` command line, run as users run it: in a subprocess."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pymupdf
import pytest


def ocrkit(*args: str, storage: Path, env: dict[str, str] | None = None):
    """Run ``ocrkit`` with a store folder and return the finished process."""
    environment = {**os.environ, "OCRKIT_STORAGE": str(storage), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ocrkit", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


@pytest.fixture(scope="module")
def read_store(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    """A store where the Spanish council record was read by the real engine."""
    storage = tmp_path_factory.mktemp("cli") / "storage"
    done = ocrkit("ocr", str(corpus / "acta-municipal-es.pdf"), storage=storage)
    assert done.returncode == 0, done.stderr
    return storage


def test_ocr_reads_and_reports(read_store: Path) -> None:
    listing = ocrkit("ls", storage=read_store)
    assert listing.returncode == 0
    row = listing.stdout.splitlines()[1].split()
    assert row[1:4] == ["1", "1", "0"]  # pages, read, failed
    assert int(row[4]) >= 12  # lines
    assert row[5] == "acta-municipal-es.pdf"


def test_ocr_again_skips_read_pages(read_store: Path, corpus: Path) -> None:
    again = ocrkit("ocr", str(corpus / "acta-municipal-es.pdf"), storage=read_store)
    assert again.returncode == 0
    assert "1/1 pages read" in again.stdout


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_formats(read_store: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"lines.{fmt}"
    done = ocrkit("export", "--format", fmt, "-o", str(target), storage=read_store)
    assert done.returncode == 0, done.stderr
    from ocrkit.export import read_lines

    frame = read_lines(target)
    assert len(frame) >= 12
    assert frame["page"].eq(1).all()
    text = " ".join(frame["text"])
    for word in ("Martín", "señalización", "¿Cuántos", "Ibáñez", "Añil"):
        assert word in text


def test_export_csv_bom_for_excel(read_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "excel.csv"
    done = ocrkit(
        "export",
        "acta-municipal-es.pdf",
        "--bom",
        "-o",
        str(target),
        storage=read_store,
    )
    assert done.returncode == 0
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(target, encoding="utf-8-sig")
    assert frame["file"].eq("acta-municipal-es.pdf").all()


def test_storage_option_beats_environment(tmp_path: Path, corpus: Path) -> None:
    chosen = tmp_path / "chosen"
    done = ocrkit(
        "--storage",
        str(chosen),
        "add",
        str(corpus / "francais.pdf"),
        storage=tmp_path / "env",
    )
    assert done.returncode == 0
    assert (chosen / "ocrkit.sqlite").is_file()
    assert not (tmp_path / "env").exists()
    assert "   1 page   francais.pdf" in done.stdout


def test_storage_option_after_the_command(tmp_path: Path, corpus: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    added = ocrkit(
        "add", str(corpus / "francais.pdf"), "--storage", str(first), storage=second
    )
    assert added.returncode == 0, added.stderr
    # Given on both sides of the command's name, the later one is used.
    listed = ocrkit(
        "--storage", str(second), "ls", "--storage", str(first), storage=second
    )
    assert listed.returncode == 0, listed.stderr
    assert "francais.pdf" in listed.stdout
    assert not second.exists()


def test_reading_commands_need_a_store(tmp_path: Path) -> None:
    typo = tmp_path / "storgae"
    for command in (["ls"], ["rm", "acta"], ["export", "-o", str(tmp_path / "a.csv")]):
        done = ocrkit(*command, "--storage", str(typo), storage=tmp_path / "env")
        assert done.returncode == 1, done.stderr
        assert f"no store in {typo}; check --storage" in done.stderr
    assert not typo.exists()
    assert not (tmp_path / "env").exists()


def test_rm_removes_named_documents(tmp_path: Path, corpus: Path) -> None:
    storage = tmp_path / "store"
    files = [str(corpus / "francais.pdf"), str(corpus / "multipage.pdf")]
    assert ocrkit("add", *files, storage=storage).returncode == 0
    stored = sorted((storage / "files").iterdir())
    assert len(stored) == 2

    # A name that matches nothing removes nothing.
    wrong = ocrkit("rm", "francais.pdf", "nada.pdf", storage=storage)
    assert wrong.returncode == 1
    assert "no document 'nada.pdf'" in wrong.stderr
    assert "francais.pdf" in ocrkit("ls", storage=storage).stdout

    done = ocrkit("rm", "francais.pdf", storage=storage)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed ")
    assert done.stdout.rstrip().endswith("  francais.pdf")
    listing = ocrkit("ls", storage=storage).stdout
    assert "francais.pdf" not in listing
    assert "multipage.pdf" in listing
    assert len(list((storage / "files").iterdir())) == 1


def test_add_counts_pages_in_plural(tmp_path: Path, corpus: Path) -> None:
    done = ocrkit("add", str(corpus / "multipage.pdf"), storage=tmp_path / "store")
    assert done.returncode == 0
    assert "   6 pages  multipage.pdf\n" in done.stdout


def test_add_says_when_already_stored(tmp_path: Path, corpus: Path) -> None:
    copy = tmp_path / "copia.pdf"
    copy.write_bytes((corpus / "francais.pdf").read_bytes())
    files = [str(corpus / "francais.pdf"), str(copy)]
    done = ocrkit("add", *files, storage=tmp_path / "store")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.endswith("   1 page   francais.pdf")
    assert second.endswith("   1 page   francais.pdf  (already stored)")
    assert first.split()[0] == second.split()[0]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["frob"], 1, "invalid choice"),
        (["ocr"], 1, "name files to read"),
        (["export", "nope", "-o", "x.csv"], 1, "no store in"),
        (["add", "{corpus}/invalid.pdf"], 2, "invalid.pdf: damaged or truncated PDF"),
        (["add", "{corpus}/libreoffice-writer-password.pdf"], 2, "needs a password"),
        (["add", "{corpus}/does-not-exist.pdf"], 2, "cannot be read"),
    ],
)
def test_errors_are_one_line_with_exit_code(
    tmp_path: Path, corpus: Path, args: list[str], code: int, message: str
) -> None:
    args = [arg.format(corpus=corpus) for arg in args]
    done = ocrkit(*args, storage=tmp_path / "storage")
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_engine_failure_exits_3(tmp_path: Path, corpus: Path) -> None:
    done = ocrkit(
        "ocr",
        "--engine",
        "no-such-engine",
        str(corpus / "francais.pdf"),
        storage=tmp_path / "storage",
    )
    assert done.returncode == 3
    assert "unknown engine 'no-such-engine'" in done.stderr
    assert "Traceback" not in done.stderr


def test_password_on_command_line(tmp_path: Path, corpus: Path) -> None:
    path = corpus / "libreoffice-writer-password.pdf"
    done = ocrkit(
        "ocr", "--password", "openpassword", str(path), storage=tmp_path / "s"
    )
    assert done.returncode == 0, done.stderr
    assert "1/1 pages read" in done.stdout


def test_bad_file_does_not_stop_the_batch(tmp_path: Path, corpus: Path) -> None:
    done = ocrkit(
        "ocr",
        str(corpus / "invalid.pdf"),
        str(corpus / "phototest.tif"),
        storage=tmp_path / "s",
    )
    assert done.returncode == 2
    assert "invalid.pdf: damaged" in done.stderr
    assert "1/1 pages read" in done.stdout
    assert "phototest.tif" in done.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["ocr", "--dpi", "-5", "x.pdf"], {}, "must be greater than zero"),
        (["ls"], {"OCRKIT_DPI": "-3"}, "OCRKIT_DPI='-3' must be greater than zero"),
        (["ls"], {"OCRKIT_MAX_PIXELS": "abc"}, "is not a number"),
        (["ls"], {"OCRKIT_RUNTIME": "cuda"}, "give one of: openvino, onnxruntime"),
        (["ls"], {"OCRKIT_THREADS": "two"}, "OCRKIT_THREADS='two' is not a number"),
    ],
)
def test_bad_settings_are_usage_errors(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = ocrkit(*args, storage=tmp_path / "s", env=env)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_export_format_follows_suffix(read_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "lines.parquet"
    done = ocrkit("export", "-o", str(target), storage=read_store)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(target)) >= 12


def test_export_unknown_suffix_needs_format(read_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "lines.xlsx"
    done = ocrkit("export", "-o", str(target), storage=read_store)
    assert done.returncode == 1
    assert "cannot tell the table format of lines.xlsx" in done.stderr
    assert not target.exists()

    done = ocrkit("export", "--format", "csv", "-o", str(target), storage=read_store)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(target)) >= 12


def test_export_into_missing_folder_fails(read_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "lines.csv"
    done = ocrkit("export", "-o", str(target), storage=read_store)
    assert done.returncode == 1
    assert "does not exist" in done.stderr
    assert not target.parent.exists()


def test_more_workers_than_cores_warns(tmp_path: Path, corpus: Path) -> None:
    workers = (os.cpu_count() or 1) + 1
    path = corpus / "multicolumn.pdf"
    done = ocrkit(
        "ocr",
        "--engine",
        "text",
        "--workers",
        str(workers),
        str(path),
        storage=tmp_path / "s",
    )
    assert done.returncode == 0, done.stderr
    assert f"--workers {workers} is more than the" in done.stderr
    assert "3/3 pages read" in done.stdout


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_invalid_workers_store_nothing(
    tmp_path: Path, corpus: Path, workers: str
) -> None:
    storage = tmp_path / "s"
    done = ocrkit(
        "ocr", "--workers", workers, str(corpus / "phototest.tif"), storage=storage
    )
    assert done.returncode == 1
    assert "--workers" in done.stderr
    assert not storage.exists()


def test_interrupted_ocr_stops_whole_and_resumes(tmp_path: Path, corpus: Path) -> None:
    pdf = tmp_path / "actas.pdf"
    with (
        pymupdf.open() as joined,
        pymupdf.open(corpus / "acta-municipal-es.pdf") as acta,
    ):
        for _ in range(10):
            joined.insert_pdf(acta)
        joined.save(pdf)
    storage = tmp_path / "storage"
    environment = {**os.environ, "OCRKIT_STORAGE": str(storage)}
    # A shell starts background jobs with Ctrl-C ignored, and a Python started
    # that way ignores it too, so the command is run with it restored.
    command = [
        sys.executable,
        "-c",
        "import runpy, signal, sys; "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'ocrkit'; "
        "runpy.run_module('ocrkit', run_name='__main__')",
        "ocr",
        "--engine",
        "onnx",
        str(pdf),
    ]
    # Ctrl-C reaches the whole process group: ocrkit and its render process.
    process = subprocess.Popen(
        command,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and done_pages(storage) < 2:
        time.sleep(0.2)
    assert process.poll() is None, "the command ended before it was interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, errors = process.communicate(timeout=60)

    assert process.returncode == 130, errors
    assert "interrupted; pages read so far are stored" in errors
    assert "the same command reads the rest" in errors
    assert "Traceback" not in errors
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of the group is left
    read = done_pages(storage)
    assert 2 <= read < 10
    again = ocrkit("ocr", "--engine", "onnx", str(pdf), storage=storage)
    assert again.returncode == 0, again.stderr
    assert done_pages(storage) == 10


def done_pages(storage: Path) -> int:
    """Count the pages stored as read, from outside the running command."""
    database = storage / "ocrkit.sqlite"
    if not database.is_file():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return db.execute(
                "SELECT COUNT(*) FROM pages WHERE status = 'done'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not created yet
        return 0
