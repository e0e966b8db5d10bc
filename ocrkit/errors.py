"""Exceptions raised by ocrkit, each with a message that states what to do next."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Exit codes of the ``ocrkit`` command line."""

    ok = 0
    usage = 1
    input_file = 2
    engine = 3
    store = 4


class OcrkitError(Exception):
    """Base class of every error ocrkit raises on purpose."""

    exit_code = ExitCode.usage


class InputFileError(OcrkitError):
    """A file is not a readable PDF or image, or one of its pages cannot be used."""

    exit_code = ExitCode.input_file

    def __init__(
        self, path: str | Path, problem: str, *, page: int | None = None, fix: str = ""
    ) -> None:
        self.path = str(path)
        self.page = page
        # What is wrong and what to do, for messages that name the file already.
        self.detail = f"{problem}. {fix}" if fix else problem
        where = f"{self.path}, page {page}" if page is not None else self.path
        super().__init__(f"{where}: {self.detail}")


class EncryptedPdfError(InputFileError):
    """A PDF needs a password that was not given or was wrong."""


class EngineError(OcrkitError):
    """An OCR engine could not be loaded or failed on a page."""

    exit_code = ExitCode.engine


class MissingDependencyError(EngineError):
    """An optional package that an engine needs is not installed."""


class StoreError(OcrkitError):
    """The store cannot be opened, or a request names something it does not hold."""

    exit_code = ExitCode.store


class NotFoundError(StoreError):
    """A document, page or line id is not in the store."""

    exit_code = ExitCode.usage


class EditConflictError(StoreError):
    """A line changed in the store after the caller read it."""

    def __init__(self, line_id: int, expected: int, current: int) -> None:
        self.line_id = line_id
        self.expected_version = expected
        self.current_version = current
        super().__init__(
            f"line {line_id} was changed by someone else (version {current}, "
            f"you edited version {expected}); reload the line and apply your edit again"
        )
