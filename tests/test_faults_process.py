"""Faults around reading and storing: a killed process, two sessions editing at
once, a full disk and interrupted uploads.

Processes are real: ``ocrkit`` and small store scripts run as child processes,
are killed with SIGKILL, or write under a file size limit. Each test checks that
the store keeps everything it held before the fault, and that the user gets a
message saying what failed and what to do.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import psutil
import pymupdf
import pytest
from PIL import Image

from ocrkit.errors import InputFileError, StoreError
from ocrkit.models import PageStatus
from ocrkit.reading import read_document
from ocrkit.sources import Source
from ocrkit.store import Store

SMALL_PAGE = (420.0, 298.0)  # A5 landscape, in points: quick to read


def squash(text: str) -> str:
    """Return text in NFC, case-folded, without spaces, for comparing OCR output."""
    return "".join(unicodedata.normalize("NFC", text).casefold().split())


def write_text_pdf(path: Path, pages: list[list[str]], fontsize: float = 20) -> Path:
    """Write a PDF of small pages with the given lines of text (Helvetica)."""
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=SMALL_PAGE[0], height=SMALL_PAGE[1])
        for number, text in enumerate(lines):
            point = (36, 70 + number * 2.5 * fontsize)
            page.insert_text(point, text, fontsize=fontsize, fontname="helv")
    doc.save(path)
    doc.close()
    return path


def held_lines(store: Store) -> dict[int, tuple[str, int]]:
    """Return the text and version of every line in the store, by line id."""
    return {line.id: (line.text, line.version) for line in store.lines()}


def leftover_files(root: Path) -> list[str]:
    """Return the temporary files anywhere under a store folder."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".tmp-*"))


def run_python(code: str, *args: str, **options: object) -> dict[str, object]:
    """Run Python code in a child process; return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        **options,  # type: ignore[arg-type]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- killed while reading --------------------------------------------------------

KILL_PAGES = 20


def page_lines(number: int) -> list[str]:
    """Return the two lines of text on a page of the 20-page document."""
    return [f"Página {number} de {KILL_PAGES}", f"Registro {number * 37} del Año"]


def count_done(database: Path) -> int:
    """Count the pages a store marks as read, over a read-only connection."""
    if not database.is_file():
        return 0
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = connection.execute(
            "SELECT COUNT(*) FROM pages WHERE status != 'pending'"
        ).fetchone()
    except sqlite3.OperationalError:  # the child has not created the tables yet
        return 0
    finally:
        connection.close()
    return int(row[0])


def page_state(store: Store, document_id: str) -> dict[int, tuple[str, str, list]]:
    """Return each page's status, update time and lines (id, text)."""
    return {
        page.index: (
            str(page.status),
            page.updated_at,
            [(line.id, line.text) for line in store.lines(document_id, page.index)],
        )
        for page in store.pages(document_id)
    }


def ocrkit_process(storage: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``ocrkit`` on a store folder, as a user would from a shell."""
    environment = {**os.environ, "OCRKIT_STORAGE": str(storage)}
    return subprocess.Popen(
        [sys.executable, "-m", "ocrkit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def test_killed_reading_resumes_where_it_stopped(tmp_path: Path) -> None:
    pdf = write_text_pdf(
        tmp_path / "registro.pdf",
        [page_lines(n) for n in range(1, KILL_PAGES + 1)],
    )
    storage = tmp_path / "storage"
    # OCR, not the text layer, which reads all 20 pages before the kill can land.
    ocr = ("ocr", "--engine", "onnx", str(pdf))

    first = ocrkit_process(storage, *ocr)
    deadline = time.monotonic() + 300
    while count_done(storage / "ocrkit.sqlite") < 3:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no page was read in 300 s"
        time.sleep(0.05)
    # Worker processes, if ocrkit started any, must not outlive it.
    helpers = psutil.Process(first.pid).children(recursive=True)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    _, alive = psutil.wait_procs(helpers, timeout=15)
    assert alive == [], [process.cmdline()[-1][:80] for process in alive]

    with Store(storage) as store:
        assert store.integrity_check() == []
        (document,) = store.documents()
        killed = page_state(store, document.id)
    done_at_kill = [i for i, (status, _, _) in killed.items() if status == "done"]
    # Pages are stored in order, each in one transaction: the read ones come first,
    # each has both its lines, and the rest are untouched.
    assert 3 <= len(done_at_kill) < KILL_PAGES
    assert done_at_kill == list(range(len(done_at_kill)))
    for index, (status, _, lines) in killed.items():
        if status == "done":
            assert len(lines) == 2, (index, lines)
        else:
            assert status == "pending"
            assert lines == []

    second = ocrkit_process(storage, *ocr)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert f"{KILL_PAGES}/{KILL_PAGES} pages read" in out

    with Store(storage) as store:
        assert store.integrity_check() == []
        assert len(store.documents()) == 1
        resumed = page_state(store, document.id)
    # Pages read before the kill were not read again: same time, same line ids.
    for index in done_at_kill:
        assert resumed[index] == killed[index]
    # Reading went on from the first unread page, in page order.
    new_times = [resumed[i][1] for i in range(len(done_at_kill), KILL_PAGES)]
    assert new_times == sorted(new_times)
    assert new_times[0] > max(killed[i][1] for i in done_at_kill)
    line_ids = [line_id for _, _, lines in resumed.values() for line_id, _ in lines]
    assert len(line_ids) == 2 * KILL_PAGES
    assert len(set(line_ids)) == len(line_ids)
    for index, (status, _, lines) in resumed.items():
        assert status == "done"
        expected = page_lines(index + 1)
        assert [squash(text) for _, text in lines] == [squash(t) for t in expected]


# -- two sessions at once --------------------------------------------------------

EDIT_SESSION = """
import json, sys, time
from ocrkit.errors import EditConflictError
from ocrkit.store import Store

from pathlib import Path

root, tag, meeting = sys.argv[1], sys.argv[2], Path(sys.argv[3])
line_ids = [int(value) for value in sys.argv[4:]]
outcomes = {}
with Store(root) as store:
    shown = {line_id: store.line(line_id) for line_id in line_ids}
    (meeting / f"{tag}.ready").touch()
    while not (meeting / "go").exists():
        time.sleep(0.0005)
    for line_id in line_ids:
        line = shown[line_id]
        try:
            store.edit_line(line_id, text=line.text + " " + tag,
                            expected_version=line.version)
            outcomes[line_id] = {"outcome": "saved"}
        except EditConflictError as exc:
            # Reload, then apply the same change to what the other session saved.
            current = store.line(line_id)
            store.edit_line(line_id, text=current.text + " " + tag,
                            expected_version=current.version)
            outcomes[line_id] = {"outcome": "conflict", "message": str(exc)}
print(json.dumps(outcomes))
"""


@pytest.fixture
def store_with_lines(tmp_path: Path) -> tuple[Path, str, list[int]]:
    """A store folder with one document and 20 lines a user drew on page 1."""
    root = tmp_path / "storage"
    pdf = write_text_pdf(tmp_path / "acta.pdf", [["Acta"]])
    with Store(root) as store:
        document = store.add_file(pdf)
        ids = [
            store.add_line(
                document.id, 0, (10, 10 + 12 * n, 200, 20 + 12 * n), f"renglón {n}"
            ).id
            for n in range(20)
        ]
    return root, document.id, ids


def start_together(
    code: str, root: Path, tags: list[str], args: list[str]
) -> list[subprocess.Popen[str]]:
    """Start one session per tag; release them all once each has opened the store.

    Each child runs ``code`` with the store folder, its tag, a meeting folder and
    ``args``. It touches ``<tag>.ready`` in the meeting folder when set up, and
    starts work when ``go`` appears there.
    """
    meeting = root.parent / "meeting"
    meeting.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), tag, str(meeting), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    deadline = time.monotonic() + 120
    while not all((meeting / f"{tag}.ready").exists() for tag in tags):
        for child in children:
            assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "sessions did not start in 120 s"
        time.sleep(0.01)
    (meeting / "go").touch()
    return children


def test_two_sessions_editing_lose_nothing(
    store_with_lines: tuple[Path, str, list[int]],
) -> None:
    root, document_id, ids = store_with_lines
    children = start_together(
        EDIT_SESSION, root, ["ANA", "LUIS"], [str(i) for i in ids]
    )
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out))

    with Store(root) as store:
        for n, line_id in enumerate(ids):
            outcomes = sorted(r[str(line_id)]["outcome"] for r in results)
            # One session saved first. The other got EditConflictError and merged.
            assert outcomes == ["conflict", "saved"], (line_id, outcomes)
            message = next(
                r[str(line_id)]["message"]
                for r in results
                if r[str(line_id)]["outcome"] == "conflict"
            )
            assert f"line {line_id} was changed by someone else" in message
            assert "reload the line and apply your edit again" in message
            line = store.line(line_id)
            assert line.text in (f"renglón {n} ANA LUIS", f"renglón {n} LUIS ANA")
            assert line.version == 3
            edits = store.history(document_id, line_id)
            assert [edit["action"] for edit in edits] == ["add", "edit", "edit"]
        assert store.integrity_check() == []


WRITE_SESSION = """
import json, sys, time
from ocrkit.store import Store

from pathlib import Path

root, tag, meeting = sys.argv[1], sys.argv[2], Path(sys.argv[3])
document_id, rounds = sys.argv[4], int(sys.argv[5])
deleted = 0
with Store(root) as store:
    (meeting / f"{tag}.ready").touch()
    while not (meeting / "go").exists():
        time.sleep(0.0005)
    for n in range(rounds):
        box = (300, 5 + n, 400, 9 + n)
        line = store.add_line(document_id, 0, box, f"{tag} {n}")
        store.edit_line(line.id, text=f"{tag} {n} editado", verified=True)
        if n % 5 == 0:
            store.delete_line(line.id)
            deleted += 1
        if n % 10 == 0:
            # Another session opens the store, as a new dashboard user does.
            Store(root).close()
        store.search(tag)
print(json.dumps({"deleted": deleted}))
"""


def test_concurrent_writes_never_hit_a_lock(
    store_with_lines: tuple[Path, str, list[int]],
) -> None:
    root, document_id, ids = store_with_lines
    rounds = 150
    children = start_together(
        WRITE_SESSION, root, ["norte", "sur"], [document_id, str(rounds)]
    )
    deleted = 0
    for child in children:
        out, err = child.communicate(timeout=300)
        assert "locked" not in err
        assert child.returncode == 0, err
        deleted += json.loads(out)["deleted"]

    with Store(root) as store:
        assert store.integrity_check() == []
        texts = [line.text for line in store.lines(document_id)]
        assert len(texts) == len(ids) + 2 * rounds - deleted
        for tag in ("norte", "sur"):
            kept = {t for t in texts if t.startswith(f"{tag} ")}
            expected = {f"{tag} {n} editado" for n in range(rounds) if n % 5}
            assert kept == expected
        assert len(store.history(document_id)) == len(ids) + 2 * (2 * rounds) + deleted


# -- full disk -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, so that writes fail with a real "No space left on device"."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` up to ``leave`` bytes; return the filler."""
    filler = folder / "filler.bin"
    with open(filler, "ab", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def empty_the_log(root: Path) -> None:
    """Fold SQLite's write-ahead log into the database and cut it to nothing.

    The log keeps its size after a checkpoint, and new writes reuse that room, so
    only an emptied log makes the next write need room on the disk.
    """
    with closing(sqlite3.connect(root / "ocrkit.sqlite")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_full_disk_keeps_store_and_says_so(small_disk: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "actas.pdf"
    pdf.write_bytes(scan_like_pdf(3))
    root = small_disk / "storage"
    with Store(root) as store:
        document = store.add_file(pdf)
        read_document(store, document.id, pages=[0])
        before = held_lines(store)
        assert len(before) == 1

        # No room for the next page's lines.
        empty_the_log(root)
        filler = fill_disk(small_disk, leave=0)
        with pytest.raises(StoreError) as error:
            read_document(store, document.id)
        assert "the disk is full" in str(error.value)
        assert str(root / "ocrkit.sqlite") in str(error.value)
        assert "free disk space" in str(error.value)
        statuses = [page.status for page in store.pages(document.id)]
        assert statuses == [PageStatus.done, PageStatus.pending, PageStatus.pending]
        assert held_lines(store) == before
        assert leftover_files(root) == []

        # An edit cannot be written either.
        line_id = next(iter(before))
        with pytest.raises(StoreError) as error:
            store.edit_line(line_id, text="x" * 2_000_000)
        assert "the disk is full" in str(error.value)
        assert str(root / "ocrkit.sqlite") in str(error.value)
        assert held_lines(store) == before
        with pytest.raises(StoreError, match="No space left on device"):
            store.add_bytes(b"%PDF-1.7\n" + bytes(1_000_000), "grande.pdf")
        assert len(store.documents()) == 1
        assert sorted(p.name for p in (root / "files").iterdir()) == [
            f"{document.sha256}.pdf"
        ]
        assert leftover_files(root) == []

    # Opening the store needs room for SQLite's shared-memory file, which the last
    # connection removes when it closes with room to spare. The message must not
    # suggest moving a sound database away.
    filler.unlink()
    Store(root).close()
    assert not (root / "ocrkit.sqlite-shm").exists()
    filler = fill_disk(small_disk, leave=0)
    with pytest.raises(StoreError) as error:
        Store(root)
    assert f"cannot open the store database {root / 'ocrkit.sqlite'}" in str(
        error.value
    )
    assert "free disk space" in str(error.value)
    assert "move it away" not in str(error.value)

    # With space again, reading finishes where it stopped.
    filler.unlink()
    with Store(root) as store:
        read_document(store, document.id)
        assert store.integrity_check() == []
        assert held_lines(store)[line_id] == before[line_id]
        assert [p.status for p in store.pages(document.id)] == [PageStatus.done] * 3
        assert len(store.lines(document.id)) == 3


def test_full_disk_on_command_line(small_disk: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "actas.pdf"
    pdf.write_bytes(scan_like_pdf(3))
    storage = small_disk / "storage"
    added = ocrkit_process(storage, "add", str(pdf))
    assert added.wait(timeout=120) == 0
    empty_the_log(storage)
    # Room to open the store (SQLite's 32 KiB shared-memory file), not to write.
    fill_disk(small_disk, leave=40 * 1024)

    reading = ocrkit_process(storage, "ocr", str(pdf))
    out, err = reading.communicate(timeout=600)

    assert reading.returncode == 4, err  # the store's exit code
    errors = [line for line in err.splitlines() if line.startswith("ocrkit: error:")]
    assert len(errors) == 1, err
    assert "the disk is full" in errors[0]
    assert str(storage / "ocrkit.sqlite") in errors[0]
    assert "free disk space" in errors[0]
    assert "Traceback" not in err


FILE_SIZE_LIMITED = """
import json, sys
from pathlib import Path
from ocrkit.errors import StoreError
from ocrkit.store import Store

root = Path(sys.argv[1])
messages = {}
with Store(root) as store:
    try:
        store.add_bytes(b"%PDF-1.7\\n" + bytes(2_000_000), "subida.pdf")
    except StoreError as exc:
        messages["upload"] = str(exc)
    messages["documents"] = len(store.documents())
print(json.dumps(messages))
"""


def limit_file_size() -> None:
    """Limit files this process writes to 512 KiB (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, 512 * 1024))


def test_file_size_limit_leaves_no_half_file(tmp_path: Path) -> None:
    """A write cut short by the system raises, names the file, and leaves nothing.

    This runs without root: ``RLIMIT_FSIZE`` makes the write fail with EFBIG where
    a full disk fails with ENOSPC, and both reach the same code.
    """
    root = tmp_path / "storage"
    Store(root).close()

    result = run_python(FILE_SIZE_LIMITED, str(root), preexec_fn=limit_file_size)

    upload_message = str(result["upload"])
    assert "subida.pdf" in upload_message
    assert "File too large" in upload_message
    assert "free disk space or choose another store folder" in upload_message
    assert result["documents"] == 0
    assert list((root / "files").iterdir()) == []
    assert leftover_files(root) == []


# -- interrupted uploads ---------------------------------------------------------


def scan_like_pdf(pages: int, grain: tuple[int, int] = (120, 160)) -> bytes:
    """Return a PDF whose pages each hold a JPEG background and a line of text.

    ``grain`` is the size in pixels (height, width) of the background's noise.
    """
    rng = np.random.default_rng(11)
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=SMALL_PAGE[0], height=SMALL_PAGE[1])
        paper = (rng.random(grain) * 40 + 215).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(paper).save(buffer, "JPEG", quality=90)
        page.insert_image(page.rect, stream=buffer.getvalue())
        page.insert_text((40, 90), f"Hoja {number}", fontsize=24)
    data = doc.tobytes()
    doc.close()
    return data


def image_bytes(fmt: str) -> bytes:
    """Return a noisy image file of some format, three frames for TIFF."""
    rng = np.random.default_rng(5)
    frames = [
        Image.fromarray(rng.integers(0, 255, (300, 400), np.uint8)) for _ in range(3)
    ]
    buffer = io.BytesIO()
    if fmt == "TIFF":
        frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    else:
        frames[0].save(buffer, fmt)
    return buffer.getvalue()


UPLOADS = {
    "escaneo.pdf": scan_like_pdf(8),
    "foto.png": image_bytes("PNG"),
    "foto.jpg": image_bytes("JPEG"),
    "hojas.tif": image_bytes("TIFF"),
}


@pytest.mark.parametrize("name", list(UPLOADS))
@pytest.mark.parametrize("share", [0.05, 0.3, 0.6, 0.9, 0.999])
def test_interrupted_upload_adds_whole_or_nothing(
    store: Store, tmp_path: Path, name: str, share: float
) -> None:
    """Truncated bytes add a document whose pages read or fail by number, or none."""
    previous = store.add_file(write_text_pdf(tmp_path / "previo.pdf", [["Previo"]]))
    before_files = sorted(p.name for p in (store.root / "files").iterdir())
    data = UPLOADS[name]
    cut = data[: int(len(data) * share)]

    try:
        document = store.add_bytes(cut, name)
    except InputFileError as exc:
        assert str(exc).startswith(f"{name}: ")
        assert "fresh copy" in str(exc) or "complete copy" in str(exc)
        assert [d.id for d in store.documents()] == [previous.id]
        assert sorted(p.name for p in (store.root / "files").iterdir()) == (
            before_files
        )
        assert leftover_files(store.root) == []
        return

    assert [d.id for d in store.documents()] == [previous.id, document.id]
    readable = 0
    with Source(store.source_path(document.id), name=name) as source:
        for index in range(source.page_count):
            try:
                image = source.render(index, 72).image
            except InputFileError as exc:
                assert str(exc).startswith(f"{name}, page {index + 1}: "), exc
                continue
            assert image.ndim == 3
            readable += 1
    # A cut keeps the start of the file: something of it was readable.
    assert readable >= 1
    assert store.integrity_check() == []
