"""The store: documents, pages, lines and the edit log in SQLite, files beside it.

Layout of a store folder::

    ocrkit.sqlite          documents, pages, lines, edits (WAL mode)
    files/<sha256>.<ext>   each original file, named by the hash of its bytes

Page images are not kept: a page is rendered from its file when it is shown.

All access to storage goes through ``Store``, so another backend (PostgreSQL) can
replace this module. One ``Store`` may be shared by the threads of a process; every
method takes a lock. Several processes may open the same folder: SQLite serialises
their writes, and ``edit_line`` detects edits that cross.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ocrkit.errors import (
    EditConflictError,
    InputFileError,
    NotFoundError,
    StoreError,
)
from ocrkit.layout import reading_order
from ocrkit.models import (
    BBox,
    Document,
    Line,
    LineOrigin,
    Page,
    PageStatus,
    Poly,
    RecognizedLine,
    bbox_to_poly,
    check_bbox,
    utc_now,
)
from ocrkit.sources import SUFFIXES, Source, sniff_kind

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DATABASE_NAME = "ocrkit.sqlite"

# Each entry upgrades the schema from the version before it to its own number.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        filename TEXT NOT NULL,
        kind TEXT NOT NULL,
        page_count INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        file TEXT NOT NULL,
        unlocked_file TEXT,
        added_at TEXT NOT NULL
    );
    CREATE TABLE pages (
        document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        page_index INTEGER NOT NULL,
        width_pt REAL NOT NULL,
        height_pt REAL NOT NULL,
        width_px INTEGER NOT NULL DEFAULT 0,
        height_px INTEGER NOT NULL DEFAULT 0,
        dpi REAL NOT NULL DEFAULT 0,
        rotation INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending',
        error TEXT NOT NULL DEFAULT '',
        engine TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        image TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (document_id, page_index)
    );
    CREATE TABLE lines (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        document_id TEXT NOT NULL,
        page_index INTEGER NOT NULL,
        reading_order INTEGER NOT NULL,
        poly TEXT NOT NULL,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        text TEXT NOT NULL,
        confidence REAL NOT NULL,
        origin TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL,
        FOREIGN KEY (document_id, page_index)
            REFERENCES pages(document_id, page_index) ON DELETE CASCADE
    );
    CREATE INDEX lines_by_page ON lines(document_id, page_index, reading_order);
    CREATE TABLE edits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        line_id INTEGER NOT NULL,
        document_id TEXT NOT NULL,
        page_index INTEGER NOT NULL,
        action TEXT NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'done'
    );
    CREATE INDEX edits_by_document ON edits(document_id, id);
    """,
    # Pages no longer name a cached image.
    2: "ALTER TABLE pages DROP COLUMN image",
}

_LINE_COLUMNS = (
    "l.id, l.document_id, l.page_index, l.reading_order, l.poly, l.x0, l.y0, l.x1, "
    "l.y1, l.text, l.confidence, l.origin, l.verified, l.updated_at, p.dpi, l.version"
)


class Store:
    """Documents, pages, lines and edits kept in a folder.

    Args:
        root: the store's folder; created if missing.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            (self.root / "files").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store folder {self.root} ({exc.strerror}); "
                "choose another with --storage or OCRKIT_STORAGE"
            ) from exc
        self.path = self.root / DATABASE_NAME
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from exc

    # -- set-up ---------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store {self.path} has schema version {version}, newer than "
                    f"this ocrkit ({SCHEMA_VERSION}); upgrade ocrkit"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={target}")
                log.info("store %s migrated to schema version %d", self.root, target)
        if version < 2:
            # Images that schema version 1 cached for pages read by OCR.
            shutil.rmtree(self.root / "pages", ignore_errors=True)

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction, rolled back on any error.

        SQLite errors (disk full, a lock held past the 30 s timeout) are raised as
        ``StoreError``; the store keeps what it held before the transaction.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._database_error(exc) from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._database_error(exc) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite may have rolled back already (after SQLITE_FULL, for example).
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _open_error(self, exc: sqlite3.DatabaseError) -> StoreError:
        """Build the ``StoreError`` for a database that cannot be opened."""
        code = getattr(exc, "sqlite_errorname", "")
        if code in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            fix = "move it away to start an empty store, or restore it from a backup"
        else:
            # A full disk fails as SQLITE_IOERR_SHMSIZE when SQLite cannot create
            # its shared-memory file: the database itself is sound.
            free_mb = shutil.disk_usage(self.root).free / 2**20
            fix = (
                f"its disk has {free_mb:.1f} MB free; free disk space or check the "
                "disk, then try again (the database was not changed)"
            )
        return StoreError(f"cannot open the store database {self.path} ({exc}); {fix}")

    def _database_error(self, exc: sqlite3.Error) -> StoreError:
        """Build a ``StoreError`` that explains why SQLite failed and what to do."""
        code = getattr(exc, "sqlite_errorname", "")
        if code == "SQLITE_FULL":
            problem = "the disk is full"
            fix = "free disk space and try again; what the store held is kept"
        elif code.startswith("SQLITE_BUSY"):
            problem = "another process kept it locked for more than 30 s"
            fix = "try again when that process has finished"
        elif code.startswith("SQLITE_READONLY"):
            problem = "it is read-only"
            fix = "make the store folder writable or choose another store folder"
        else:
            problem = f"{exc} ({code or type(exc).__name__})"
            fix = "check the disk, then try again"
        return StoreError(f"the store database {self.path} failed: {problem}; {fix}")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise self._database_error(exc) from exc

    # -- documents --------------------------------------------------------------

    def add_file(
        self,
        path: str | Path,
        *,
        password: str | None = None,
        filename: str | None = None,
    ) -> Document:
        """Add a PDF or image file and return its document.

        A file already in the store (same bytes) returns the existing document.
        ``filename`` is the name shown to people; it never chooses a path on disk.
        The file is hashed and copied in chunks, never read whole into memory.
        """
        path = Path(path)
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                head = handle.read(1024)
                digest.update(head)
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc.strerror})") from exc
        kind = sniff_kind(head, path)
        return self._add(
            digest.hexdigest(),
            kind,
            lambda target: _copy_atomic(path, target),
            filename or path.name,
            password=password,
            label=str(path),
        )

    def add_bytes(
        self,
        data: bytes,
        filename: str,
        *,
        password: str | None = None,
    ) -> Document:
        """Add a file from its bytes, as an upload delivers it."""
        kind = sniff_kind(data, filename)
        return self._add(
            hashlib.sha256(data).hexdigest(),
            kind,
            lambda target: _write_atomic(target, data),
            filename,
            password=password,
            label=filename,
        )

    def _add(
        self,
        sha256: str,
        kind: str,
        write: Callable[[Path], None],
        filename: str,
        *,
        password: str | None,
        label: str,
    ) -> Document:
        """Store a file's copy and its document and pages, or nothing on error."""
        existing = self._query("SELECT * FROM documents WHERE sha256 = ?", (sha256,))
        if existing:
            return _document(existing[0])
        display_name = _display_name(filename)
        stored = self.root / "files" / f"{sha256}{SUFFIXES[kind]}"
        unlocked: Path | None = None
        try:
            write(stored)
        except StoreError as exc:
            raise StoreError(f"cannot store {label}: {exc}") from exc
        try:
            with Source(stored, password=password, name=label) as source:
                if source.kind == "pdf" and password is not None:
                    unlocked = stored.with_suffix(".unlocked.pdf")
                    _save_unlocked(source, unlocked)
                sizes = [source.page_size_pt(i) for i in range(source.page_count)]
            document = Document(
                id=sha256[:12],
                sha256=sha256,
                filename=display_name,
                kind=kind,
                page_count=len(sizes),
                size_bytes=stored.stat().st_size,
            )
            now = utc_now()
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO documents (id, sha256, filename, kind, page_count, "
                    "size_bytes, file, unlocked_file, added_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        document.id,
                        sha256,
                        display_name,
                        kind,
                        document.page_count,
                        document.size_bytes,
                        stored.name,
                        unlocked.name if unlocked else None,
                        document.added_at,
                    ),
                )
                db.executemany(
                    "INSERT INTO pages (document_id, page_index, width_pt, height_pt, "
                    "updated_at) VALUES (?,?,?,?,?)",
                    [(document.id, i, w, h, now) for i, (w, h) in enumerate(sizes)],
                )
        except BaseException:
            # Nothing of a failed add stays behind: no file, no row.
            _remove_quietly(stored)
            if unlocked is not None:
                _remove_quietly(unlocked)
            raise
        log.info("added %s as document %s (%d pages)", label, document.id, len(sizes))
        return document

    def documents(self) -> list[Document]:
        """Return every document, oldest first."""
        rows = self._query("SELECT * FROM documents ORDER BY added_at, id")
        return [_document(row) for row in rows]

    def document(self, ref: str) -> Document:
        """Return a document by id, id prefix, SHA-256 or file name."""
        rows = self._query(
            "SELECT * FROM documents WHERE id = ? OR sha256 = ? OR filename = ? "
            "OR id LIKE ? ORDER BY added_at",
            (ref, ref, ref, f"{ref}%" if len(ref) >= 4 else ref),
        )
        if not rows:
            raise NotFoundError(
                f"no document {ref!r} in the store {self.root}; "
                "`ocrkit ls` lists the documents"
            )
        if len(rows) > 1 and not any(row["id"] == ref for row in rows):
            names = ", ".join(f"{row['id']} ({row['filename']})" for row in rows)
            raise NotFoundError(f"{ref!r} matches several documents: {names}")
        return _document(rows[0])

    def source_path(self, document_id: str) -> Path:
        """Return the stored file to render a document from (decrypted if needed)."""
        rows = self._query(
            "SELECT file, unlocked_file FROM documents WHERE id = ?", (document_id,)
        )
        if not rows:
            raise NotFoundError(f"no document {document_id!r} in the store {self.root}")
        name = rows[0]["unlocked_file"] or rows[0]["file"]
        return self.root / "files" / name

    def delete_document(self, document_id: str) -> None:
        """Remove a document, its pages, lines, edits and files."""
        document = self.document(document_id)
        with self._transaction() as db:
            db.execute("DELETE FROM edits WHERE document_id = ?", (document.id,))
            db.execute("DELETE FROM lines WHERE document_id = ?", (document.id,))
            db.execute("DELETE FROM pages WHERE document_id = ?", (document.id,))
            row = db.execute(
                "SELECT file, unlocked_file FROM documents WHERE id = ?", (document.id,)
            ).fetchone()
            db.execute("DELETE FROM documents WHERE id = ?", (document.id,))
        for name in (row["file"], row["unlocked_file"]):
            if name:
                _remove_quietly(self.root / "files" / name)

    # -- pages ------------------------------------------------------------------

    def pages(self, document_id: str) -> list[Page]:
        """Return a document's pages in order."""
        rows = self._query(
            "SELECT p.*, (SELECT COUNT(*) FROM lines l WHERE l.document_id = "
            "p.document_id AND l.page_index = p.page_index AND l.deleted = 0) AS n "
            "FROM pages p WHERE p.document_id = ? ORDER BY p.page_index",
            (document_id,),
        )
        return [_page(row) for row in rows]

    def page(self, document_id: str, page_index: int) -> Page:
        """Return one page."""
        rows = self._query(
            "SELECT p.*, (SELECT COUNT(*) FROM lines l WHERE l.document_id = "
            "p.document_id AND l.page_index = p.page_index AND l.deleted = 0) AS n "
            "FROM pages p WHERE p.document_id = ? AND p.page_index = ?",
            (document_id, page_index),
        )
        if rows:
            return _page(rows[0])
        raise NotFoundError(f"document {document_id} has no page {page_index + 1}")

    def save_page(
        self,
        page: Page,
        lines: Sequence[RecognizedLine],
    ) -> Page:
        """Store what an engine read on a page, in one transaction.

        Lines a user edited, added, deleted or verified are kept as they are, and a
        new line that overlaps one of them is left out. All other lines of the page
        are replaced. Lines from a PDF's text layer (engine ``text``) keep the order
        the engine gives; OCR lines are put in reading order by column detection.
        """
        now = utc_now()
        with self._transaction() as db:
            kept = db.execute(
                "SELECT x0, y0, x1, y1 FROM lines WHERE document_id = ? AND "
                "page_index = ? AND (origin IN ('edited', 'added') OR verified = 1 "
                "OR deleted = 1)",
                (page.document_id, page.index),
            ).fetchall()
            kept_boxes = [tuple(row) for row in kept]
            db.execute(
                "DELETE FROM lines WHERE document_id = ? AND page_index = ? AND "
                "origin NOT IN ('edited', 'added') AND verified = 0 AND deleted = 0",
                (page.document_id, page.index),
            )
            fresh = [
                line
                for line in lines
                if not any(_overlap(line.bbox, box) > 0.5 for box in kept_boxes)
            ]
            origin = LineOrigin.text_layer if page.engine == "text" else LineOrigin.ocr
            db.executemany(
                "INSERT INTO lines (document_id, page_index, reading_order, poly, x0, "
                "y0, x1, y1, text, confidence, origin, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        page.document_id,
                        page.index,
                        position,
                        json.dumps(line.poly),
                        *check_bbox(line.bbox),
                        _clean_text(line.text),
                        float(line.confidence),
                        str(origin),
                        now,
                    )
                    for position, line in enumerate(fresh)
                ],
            )
            status = page.status
            if status == PageStatus.done and not fresh and not kept_boxes:
                status = PageStatus.no_text
            db.execute(
                "UPDATE pages SET width_pt=?, height_pt=?, width_px=?, height_px=?, "
                "dpi=?, rotation=?, status=?, error=?, engine=?, model=?, "
                "updated_at=? WHERE document_id=? AND page_index=?",
                (
                    page.width_pt,
                    page.height_pt,
                    page.width_px,
                    page.height_px,
                    page.dpi,
                    page.rotation,
                    str(status),
                    page.error,
                    page.engine,
                    page.model,
                    now,
                    page.document_id,
                    page.index,
                ),
            )
            self._renumber(db, page.document_id, page.index)
        return self.page(page.document_id, page.index)

    def mark_page_failed(self, document_id: str, page_index: int, reason: str) -> None:
        """Record that a page could not be read, keeping any lines it has."""
        with self._transaction() as db:
            db.execute(
                "UPDATE pages SET status='failed', error=?, updated_at=? "
                "WHERE document_id=? AND page_index=?",
                (reason, utc_now(), document_id, page_index),
            )

    def pending_pages(
        self, document_id: str, *, retry_failed: bool = True
    ) -> list[int]:
        """Return the indices of pages not yet read."""
        failed = "failed" if retry_failed else "pending"
        rows = self._query(
            "SELECT page_index FROM pages WHERE document_id = ? AND status IN "
            "('pending', ?) ORDER BY page_index",
            (document_id, failed),
        )
        return [int(row["page_index"]) for row in rows]

    # -- lines ------------------------------------------------------------------

    def lines(
        self,
        document_id: str | None = None,
        page_index: int | None = None,
        *,
        include_deleted: bool = False,
    ) -> list[Line]:
        """Return lines in reading order: of a page, a document, or the whole store."""
        where = []
        params: list[Any] = []
        if document_id is not None:
            where.append("l.document_id = ?")
            params.append(document_id)
        if page_index is not None:
            where.append("l.page_index = ?")
            params.append(page_index)
        if not include_deleted:
            where.append("l.deleted = 0")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            f"SELECT {_LINE_COLUMNS} FROM lines l JOIN pages p ON "
            "p.document_id = l.document_id AND p.page_index = l.page_index "
            f"{clause} ORDER BY l.document_id, l.page_index, l.reading_order, l.id",
            params,
        )
        return [_line(row) for row in rows]

    def line(self, line_id: int) -> Line:
        """Return one line by id, deleted or not."""
        rows = self._query(
            f"SELECT {_LINE_COLUMNS} FROM lines l JOIN pages p ON "
            "p.document_id = l.document_id AND p.page_index = l.page_index "
            "WHERE l.id = ?",
            (line_id,),
        )
        if not rows:
            raise NotFoundError(f"no line {line_id} in the store {self.root}")
        return _line(rows[0])

    def is_deleted(self, line_id: int) -> bool:
        """Return whether a line is deleted (deleted lines can be restored by undo)."""
        rows = self._query("SELECT deleted FROM lines WHERE id = ?", (line_id,))
        if not rows:
            raise NotFoundError(f"no line {line_id} in the store {self.root}")
        return bool(rows[0]["deleted"])

    def edit_line(
        self,
        line_id: int,
        *,
        text: str | None = None,
        bbox: BBox | None = None,
        verified: bool | None = None,
        confidence: float | None = None,
        expected_version: int | None = None,
    ) -> Line:
        """Change a line's text, box or verified flag, and log the change.

        Pass ``expected_version`` (the ``Line.version`` the caller showed) to get
        ``EditConflictError`` when another session changed the line meanwhile.
        A changed text or box makes an OCR line ``edited``.
        """
        changes: dict[str, Any] = {}
        if text is not None:
            changes["text"] = _clean_text(text)
        if bbox is not None:
            x0, y0, x1, y1 = check_bbox(bbox)
            changes.update(x0=x0, y0=y0, x1=x1, y1=y1)
            changes["poly"] = json.dumps(bbox_to_poly((x0, y0, x1, y1)))
        if verified is not None:
            changes["verified"] = int(verified)
        with self._transaction() as db:
            row = self._line_row(db, line_id)
            if expected_version is not None and row["version"] != expected_version:
                raise EditConflictError(line_id, expected_version, row["version"])
            changes = {k: v for k, v in changes.items() if row[k] != v}
            reshaped = any(key in changes for key in ("text", "x0", "y0", "x1", "y1"))
            if reshaped and row["origin"] in ("ocr", "text_layer"):
                changes["origin"] = str(LineOrigin.edited)
            extra = {}
            if confidence is not None:
                extra["confidence"] = min(1.0, max(0.0, float(confidence)))
            if not changes:
                # A new confidence alone (a region read again to the same text) is
                # stored, but it is no edit of the user's to log or undo.
                if extra and extra["confidence"] != row["confidence"]:
                    self._apply(db, line_id, extra, bump=True)
                return self.line(line_id)
            action = "verify" if set(changes) == {"verified"} else "edit"
            self._apply(db, line_id, {**changes, **extra}, bump=True)
            self._log(db, row, action, changes)
            if "y0" in changes or "x0" in changes:
                self._renumber(db, row["document_id"], row["page_index"])
        return self.line(line_id)

    def add_line(
        self,
        document_id: str,
        page_index: int,
        bbox: BBox,
        text: str = "",
        *,
        confidence: float = 1.0,
    ) -> Line:
        """Add a line a user drew on a page, and log it."""
        box = check_bbox(bbox)
        self.page(document_id, page_index)
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO lines (document_id, page_index, reading_order, poly, x0, "
                "y0, x1, y1, text, confidence, origin, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    document_id,
                    page_index,
                    _APPENDED,
                    json.dumps(bbox_to_poly(box)),
                    *box,
                    _clean_text(text),
                    min(1.0, max(0.0, float(confidence))),
                    str(LineOrigin.added),
                    utc_now(),
                ),
            )
            line_id = int(cursor.lastrowid or 0)
            row = self._line_row(db, line_id)
            self._log(db, row, "add", {"deleted": 0}, old={"deleted": 1})
            self._renumber(db, document_id, page_index)
        return self.line(line_id)

    def delete_line(self, line_id: int, *, expected_version: int | None = None) -> None:
        """Delete a line; undo restores it."""
        with self._transaction() as db:
            row = self._line_row(db, line_id)
            if expected_version is not None and row["version"] != expected_version:
                raise EditConflictError(line_id, expected_version, row["version"])
            if row["deleted"]:
                return
            self._apply(db, line_id, {"deleted": 1}, bump=True)
            self._log(db, row, "delete", {"deleted": 1})
            self._renumber(db, row["document_id"], row["page_index"])

    def undo(self, document_id: str | None = None) -> dict[str, Any] | None:
        """Undo the latest edit (of one document, or of any); return it or None."""
        return self._step("done", "undone", document_id, newest_first=True)

    def redo(self, document_id: str | None = None) -> dict[str, Any] | None:
        """Redo the edit undone last; return it or None."""
        return self._step("undone", "done", document_id, newest_first=False)

    def history(
        self, document_id: str | None = None, line_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the edit log, oldest first, with old and new values decoded."""
        where, params = ["1=1"], []
        if document_id is not None:
            where.append("document_id = ?")
            params.append(document_id)
        if line_id is not None:
            where.append("line_id = ?")
            params.append(line_id)
        rows = self._query(
            f"SELECT * FROM edits WHERE {' AND '.join(where)} ORDER BY id", params
        )
        return [_edit(row) for row in rows]

    def search(self, text: str, *, limit: int = 200) -> list[Line]:
        """Return lines of every document whose text contains ``text``.

        Case and accents are ignored, so "pena" finds "Peña" and "ALVAREZ" finds
        "Álvarez".
        """
        needle = _fold(text)
        if not needle:
            return []
        rows = self._query("SELECT id, text FROM lines WHERE deleted = 0 ORDER BY id")
        ids = [row["id"] for row in rows if needle in _fold(row["text"])]
        found = [self.line(line_id) for line_id in ids[: limit * 4]]
        found.sort(key=lambda line: (line.document_id, line.page_index, line.order))
        return found[:limit]

    def integrity_check(self) -> list[str]:
        """Return the problems SQLite and the store's own checks find; empty if none."""
        problems = [str(row[0]) for row in self._query("PRAGMA integrity_check")]
        problems = [p for p in problems if p != "ok"]
        problems += [
            f"foreign key: {tuple(row)}"
            for row in self._query("PRAGMA foreign_key_check")
        ]
        duplicates = self._query(
            "SELECT document_id, page_index, reading_order, COUNT(*) AS n FROM lines "
            "WHERE deleted = 0 GROUP BY document_id, page_index, reading_order "
            "HAVING n > 1"
        )
        problems += [
            f"document {row['document_id']} page {row['page_index'] + 1} has "
            f"{row['n']} lines at reading order {row['reading_order']}"
            for row in duplicates
        ]
        for document in self.documents():
            path = self.source_path(document.id)
            if not path.is_file():
                problems.append(f"document {document.id}: file {path.name} is missing")
        return problems

    def stats(self) -> dict[str, int]:
        """Return counts of documents, pages (by status) and lines."""
        counts = {
            "documents": self._query("SELECT COUNT(*) FROM documents")[0][0],
            "pages": self._query("SELECT COUNT(*) FROM pages")[0][0],
            "lines": self._query("SELECT COUNT(*) FROM lines WHERE deleted = 0")[0][0],
        }
        for row in self._query("SELECT status, COUNT(*) FROM pages GROUP BY status"):
            counts[f"pages_{row[0]}"] = row[1]
        return counts

    # -- internals --------------------------------------------------------------

    def _line_row(self, db: sqlite3.Connection, line_id: int) -> sqlite3.Row:
        row = db.execute("SELECT * FROM lines WHERE id = ?", (line_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no line {line_id} in the store {self.root}")
        return row

    def _apply(
        self,
        db: sqlite3.Connection,
        line_id: int,
        values: dict[str, Any],
        *,
        bump: bool,
    ) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        version = ", version = version + 1" if bump else ""
        db.execute(
            f"UPDATE lines SET {assignments}, updated_at = ?{version} WHERE id = ?",
            (*values.values(), utc_now(), line_id),
        )

    def _log(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        action: str,
        new: dict[str, Any],
        *,
        old: dict[str, Any] | None = None,
    ) -> None:
        before = old if old is not None else {key: row[key] for key in new}
        # A new edit makes the undone ones unreachable, as in any editor.
        db.execute(
            "UPDATE edits SET state = 'dropped' WHERE state = 'undone' "
            "AND document_id = ?",
            (row["document_id"],),
        )
        db.execute(
            "INSERT INTO edits (line_id, document_id, page_index, action, old, new, "
            "at) VALUES (?,?,?,?,?,?,?)",
            (
                row["id"],
                row["document_id"],
                row["page_index"],
                action,
                json.dumps(before, ensure_ascii=False),
                json.dumps(new, ensure_ascii=False),
                utc_now(),
            ),
        )

    def _step(
        self, state: str, to_state: str, document_id: str | None, *, newest_first: bool
    ) -> dict[str, Any] | None:
        # Undo takes the newest edit still done. Undo runs newest first, so the
        # edit undone last, which redo takes, is the oldest one still undone.
        order = "DESC" if newest_first else "ASC"
        scope = "AND document_id = ?" if document_id else ""
        params: tuple[Any, ...] = (state, document_id) if document_id else (state,)
        with self._transaction() as db:
            while True:
                edit = db.execute(
                    f"SELECT * FROM edits WHERE state = ? {scope} ORDER BY id {order} "
                    "LIMIT 1",
                    params,
                ).fetchone()
                if edit is None:
                    return None
                exists = db.execute(
                    "SELECT 1 FROM lines WHERE id = ?", (edit["line_id"],)
                ).fetchone()
                if exists:
                    break
                db.execute(
                    "UPDATE edits SET state = 'dropped' WHERE id = ?", (edit["id"],)
                )
            values = json.loads(edit["old"] if newest_first else edit["new"])
            self._apply(db, edit["line_id"], values, bump=True)
            db.execute(
                "UPDATE edits SET state = ? WHERE id = ?", (to_state, edit["id"])
            )
            self._renumber(db, edit["document_id"], edit["page_index"])
        return _edit(edit)

    def _renumber(
        self, db: sqlite3.Connection, document_id: str, page_index: int
    ) -> None:
        """Number a page's lines 0, 1, 2... in reading order.

        Text-layer pages keep their stored order, with lines a user drew placed
        last. Other pages are ordered by column detection. Deleted lines keep
        their old number, so undoing a delete puts the line back where it was.
        """
        engine = db.execute(
            "SELECT engine FROM pages WHERE document_id = ? AND page_index = ?",
            (document_id, page_index),
        ).fetchone()
        rows = db.execute(
            "SELECT id, poly, x0, y0, x1, y1 FROM lines WHERE document_id = ? AND "
            "page_index = ? AND deleted = 0 ORDER BY reading_order, id",
            (document_id, page_index),
        ).fetchall()
        if engine is not None and engine["engine"] == "text":
            order = list(range(len(rows)))
        else:
            rows = sorted(rows, key=lambda row: row["id"])
            boxes = [(row["x0"], row["y0"], row["x1"], row["y1"]) for row in rows]
            polys = [_poly(row["poly"]) for row in rows]
            order = reading_order(boxes, polys)
        db.executemany(
            "UPDATE lines SET reading_order = ? WHERE id = ?",
            [(position, rows[i]["id"]) for position, i in enumerate(order)],
        )


# Reading order given to a line a user adds, so that pages kept in the engine's
# order list it last until the page is renumbered.
_APPENDED = 1 << 30


def _poly(stored: str) -> Poly:
    """Return a polygon stored as JSON."""
    points = tuple(tuple(point) for point in json.loads(stored))
    return points  # type: ignore[return-value]


def open_store(root: str | Path | None = None) -> Store:
    """Open the store in ``root``, or in ``OCRKIT_STORAGE``, or in ``./storage``."""
    if root is None:
        from ocrkit.config import load_settings

        root = load_settings().storage
    return Store(root)


# -- helpers --------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Write bytes through a temporary file and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        _remove_quietly(Path(tmp))
        raise StoreError(
            f"cannot write {path} ({exc.strerror}); free disk space or choose "
            "another store folder"
        ) from exc


def _copy_atomic(source: Path, path: Path) -> None:
    """Copy a file through a temporary file and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        _remove_quietly(Path(tmp))
        raise StoreError(
            f"cannot copy {source.name} into the store ({exc.strerror}); free disk "
            "space or choose another store folder"
        ) from exc


def _remove_quietly(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


def _save_unlocked(source: Source, target: Path) -> None:
    """Save a decrypted copy of an encrypted PDF, so later reads need no password."""
    import pymupdf

    doc = source._doc
    assert doc is not None
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_NONE, garbage=0)
    _write_atomic(target, data)


def _display_name(filename: str) -> str:
    """Return the last part of an uploaded name, without any folders."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name or "unnamed"


def _fold(text: str) -> str:
    """Return text without case and accents, for searching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _clean_text(text: str) -> str:
    """Remove NUL, which SQLite's text functions and many tools cut strings at."""
    return str(text).replace("\x00", "")


def _overlap(a: BBox, b: Iterable[float]) -> float:
    """Return the intersection area over the smaller box's area."""
    bx0, by0, bx1, by1 = b
    width = min(a[2], bx1) - max(a[0], bx0)
    height = min(a[3], by1) - max(a[1], by0)
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (bx1 - bx0) * (by1 - by0))
    return width * height / smaller if smaller > 0 else 0.0


def _document(row: sqlite3.Row) -> Document:
    return Document(
        id=row["id"],
        sha256=row["sha256"],
        filename=row["filename"],
        kind=row["kind"],
        page_count=row["page_count"],
        size_bytes=row["size_bytes"],
        added_at=row["added_at"],
    )


def _page(row: sqlite3.Row) -> Page:
    return Page(
        document_id=row["document_id"],
        index=row["page_index"],
        width_pt=row["width_pt"],
        height_pt=row["height_pt"],
        width_px=row["width_px"],
        height_px=row["height_px"],
        dpi=row["dpi"],
        rotation=row["rotation"],
        status=PageStatus(row["status"]),
        error=row["error"],
        engine=row["engine"],
        model=row["model"],
        line_count=row["n"],
        updated_at=row["updated_at"],
    )


def _line(row: sqlite3.Row) -> Line:
    poly = _poly(row["poly"])
    return Line(
        id=row["id"],
        document_id=row["document_id"],
        page_index=row["page_index"],
        order=row["reading_order"],
        poly=poly,
        bbox=(row["x0"], row["y0"], row["x1"], row["y1"]),
        text=row["text"],
        confidence=row["confidence"],
        origin=LineOrigin(row["origin"]),
        verified=bool(row["verified"]),
        updated_at=row["updated_at"],
        dpi=row["dpi"] or 72.0,
        version=row["version"],
    )


def _edit(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "line_id": row["line_id"],
        "document_id": row["document_id"],
        "page_index": row["page_index"],
        "action": row["action"],
        "old": json.loads(row["old"]),
        "new": json.loads(row["new"]),
        "at": row["at"],
        "state": row["state"],
    }
