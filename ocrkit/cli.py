"""The ``ocrkit`` command line.

Exit codes: 0 done, 1 usage error, 2 bad input file, 3 engine failure, 4 store
error. Expected errors print one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Literal

from ocrkit import __version__
from ocrkit.config import load_settings
from ocrkit.engines import engine_names
from ocrkit.errors import (
    EngineError,
    ExitCode,
    InputFileError,
    NotFoundError,
    OcrkitError,
)
from ocrkit.export import FORMATS, export_lines, lines_frame
from ocrkit.models import Document
from ocrkit.reading import ReadProgress, page_pool, read_document
from ocrkit.store import DATABASE_NAME, Store

log = logging.getLogger("ocrkit")


class _Parser(argparse.ArgumentParser):
    """An argument parser that exits with ocrkit's usage code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.usage), f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    """Parse a count of 1 or more, so that a bad one fails before the store opens."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid number {text!r}; give a whole number of 1 or more"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _add_common_options(
    parser: argparse.ArgumentParser, *, storage: Any, verbose: Any
) -> None:
    """Add ``--storage`` and ``--verbose`` with the given defaults."""
    parser.add_argument(
        "--storage",
        type=Path,
        default=storage,
        help="store folder (default: $OCRKIT_STORAGE or ./storage)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=verbose,
        help="log every step on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every ``ocrkit`` command."""
    settings = load_settings()
    parser = _Parser(
        prog="ocrkit",
        description="Read the text lines of PDFs and scans, store them, export them.",
    )
    parser.add_argument("--version", action="version", version=f"ocrkit {__version__}")
    _add_common_options(parser, storage=settings.storage, verbose=False)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    add = commands.add_parser("add", help="add PDF or image files to the store")
    add.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add.add_argument("--password", help="password of encrypted PDFs")

    ocr = commands.add_parser(
        "ocr", help="add files if needed, then read every page not yet read"
    )
    ocr.add_argument("files", nargs="*", type=Path, metavar="FILE")
    ocr.add_argument("--password", help="password of encrypted PDFs")
    ocr.add_argument(
        "--dpi",
        type=_positive_number,
        default=settings.dpi,
        help="PDF render resolution in dots per inch (default: %(default)g)",
    )
    ocr.add_argument(
        "--engine",
        default=settings.engine,
        metavar="{auto,onnx,paddle,text}",
        help="auto reads each PDF page from its text layer when it contains real text "
        "and runs OCR (onnx) elsewhere; onnx and paddle always run OCR; text only "
        "takes the text layer (default: %(default)s)",
    )
    ocr.add_argument(
        "--all", action="store_true", help="read every pending page of the store"
    )
    ocr.add_argument(
        "--again",
        action="store_true",
        help="read pages already read again; edited and verified lines are kept",
    )
    ocr.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="pages read in parallel, each in its own process (default: one per 2 "
        "cores for documents of 8 pages or more read by OCR, else 1)",
    )

    commands.add_parser("ls", help="list documents with their pages and lines")

    remove = commands.add_parser(
        "rm", help="remove documents with their pages, lines, edits and files"
    )
    remove.add_argument(
        "documents", nargs="+", metavar="DOCUMENT", help="id or file name"
    )

    models = commands.add_parser("models", help="local models of the paddle engine")
    model_commands = models.add_subparsers(
        dest="models_command", required=True, parser_class=_Parser
    )
    model_import = model_commands.add_parser(
        "import",
        help="make a PaddleOCR 2.x inference model folder loadable by the paddle "
        "engine, and record it by name",
    )
    model_import.add_argument(
        "folder", type=Path, metavar="DIR", help="folder with inference.pdmodel"
    )
    model_import.add_argument(
        "--dict",
        type=Path,
        metavar="FILE",
        help="the recognizer's character dictionary, one character a line; "
        "detection models have none",
    )
    model_import.add_argument(
        "--name", help="name to record (default: the folder name without _infer)"
    )
    model_import.add_argument(
        "--kind",
        choices=["det", "rec", "cls"],
        help="detector, recognizer or 0/180 degree line classifier "
        "(default: rec with --dict, else det)",
    )
    model_commands.add_parser("list", help="list the imported models")

    export = commands.add_parser("export", help="write the line table of documents")
    export.add_argument(
        "documents",
        nargs="*",
        metavar="DOCUMENT",
        help="id or file name (default: all)",
    )
    export.add_argument(
        "--format",
        choices=FORMATS,
        help="table format (default: from the file name's suffix, .csv, .parquet "
        "or .jsonl; csv for a name without a suffix)",
    )
    export.add_argument("-o", "--output", type=Path, required=True, metavar="PATH")
    export.add_argument(
        "--bom",
        action="store_true",
        help=(
            "write a CSV for spreadsheets: a byte order mark, so Excel shows accents "
            "right, and cells starting with = + - @ kept from running as formulas"
        ),
    )
    for name, help_text in (
        ("serve", "start JupyterLab with the notebooks and the workbench dashboard"),
        ("dashboard", "start the workbench alone, as a Voila dashboard"),
    ):
        server = commands.add_parser(name, help=help_text)
        server.add_argument(
            "--port",
            type=int,
            default=settings.port,
            help="TCP port (default: $OCRKIT_PORT or %(default)s)",
        )
        server.add_argument(
            "--ip",
            default=settings.ip,
            help="address to listen on; 0.0.0.0 in a container "
            "(default: $OCRKIT_IP or %(default)s)",
        )
        server.add_argument(
            "--notebooks",
            type=Path,
            default=None,
            metavar="DIR",
            help="folder of the notebooks, with workbench.ipynb "
            "(default: the repository's notebooks folder)",
        )
    # Every command takes the common options too, so that they may also come after
    # its name; given there, they win over those given before it.
    for command in [*commands.choices.values(), *model_commands.choices.values()]:
        _add_common_options(
            command, storage=argparse.SUPPRESS, verbose=argparse.SUPPRESS
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    try:
        parser = build_parser()
    except OcrkitError as exc:  # an invalid OCRKIT_* environment variable
        print(f"ocrkit: error: {exc}", file=sys.stderr)
        return int(ExitCode.usage)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if (
        args.command in _EXISTING_STORE_COMMANDS
        and not (args.storage / DATABASE_NAME).is_file()
    ):
        print(
            f"ocrkit: error: no store in {args.storage}; check --storage or "
            "OCRKIT_STORAGE, or add files with `ocrkit add FILE`",
            file=sys.stderr,
        )
        return int(ExitCode.usage)
    try:
        with Store(args.storage) as store:
            return int(_COMMANDS[args.command](store, args))
    except OcrkitError as exc:
        print(f"ocrkit: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        if args.command == "ocr":
            print(
                "ocrkit: interrupted; pages read so far are stored, and the same "
                "command reads the rest",
                file=sys.stderr,
            )
        else:
            print("ocrkit: interrupted", file=sys.stderr)
        return 130


def _add_files(
    store: Store, files: Sequence[Path], password: str | None
) -> tuple[list[Document], ExitCode]:
    """Add each file; a bad file is reported and the others are still added."""
    documents = []
    worst = ExitCode.ok
    stored = {document.id for document in store.documents()}
    for path in files:
        try:
            document = store.add_file(path, password=password)
        except InputFileError as exc:
            print(f"ocrkit: error: {exc}", file=sys.stderr)
            worst = ExitCode.input_file
            continue
        documents.append(document)
        noun = "page " if document.page_count == 1 else "pages"
        # The same bytes under any name are one document.
        known = "  (already stored)" if document.id in stored else ""
        stored.add(document.id)
        print(
            f"{document.id}  {document.page_count:>4} {noun}  {document.filename}"
            f"{known}"
        )
    return documents, worst


def _cmd_add(store: Store, args: argparse.Namespace) -> ExitCode:
    return _add_files(store, args.files, args.password)[1]


def _cmd_ocr(store: Store, args: argparse.Namespace) -> ExitCode:
    from tqdm import tqdm

    if not args.files and not args.all:
        raise OcrkitError("name files to read, or give --all to read every document")
    cores = os.cpu_count() or 1
    if args.workers is not None and args.workers > cores:
        # Each worker loads its own models: past one per core, memory grows and
        # the pages come no faster (4 workers on 2 cores were slower than one process).
        print(
            f"ocrkit: warning: --workers {args.workers} is more than the {cores} "
            "cores here; reading will need more memory and will not be faster",
            file=sys.stderr,
        )
    if args.engine not in engine_names():
        known = ", ".join(engine_names())
        raise EngineError(f"unknown engine {args.engine!r}; choose one of: {known}")
    documents, worst = _add_files(store, args.files, args.password)
    if args.all:
        documents = store.documents()
    settings = load_settings()
    executor: Executor | Literal["auto"] | None = "auto"
    if args.workers == 1:
        executor = None
    elif args.workers is not None:
        executor = page_pool(args.workers)
    try:
        for document in documents:
            pages = range(document.page_count) if args.again else None
            total = (
                document.page_count
                if args.again
                else len(store.pending_pages(document.id))
            )
            with tqdm(
                total=total,
                desc=document.filename[:30],
                unit="page",
                file=sys.stderr,
                disable=None,
            ) as bar:

                def advance(event: ReadProgress, bar: tqdm = bar) -> None:
                    bar.update(1)

                report = read_document(
                    store,
                    document.id,
                    pages=pages,
                    dpi=args.dpi,
                    max_pixels=settings.max_pixels,
                    engine=args.engine,
                    executor=executor,
                    progress=advance,
                )
            for page in report.pages:
                if page.error:
                    # Errors from the file name the file and page already.
                    where = f"{document.filename}, page {page.number}: "
                    message = page.error.removeprefix(where)
                    print(f"ocrkit: error: {where}{message}", file=sys.stderr)
            if report.engine_failed:
                worst = ExitCode.engine
            elif "StoreError" in report.failures.values():
                worst = ExitCode.store
            elif report.failures and worst in (ExitCode.ok, ExitCode.input_file):
                worst = ExitCode.input_file
            stored = store.pages(document.id)
            done = sum(1 for p in stored if p.status in ("done", "no_text"))
            failed = sum(1 for p in stored if p.status == "failed")
            lines = sum(p.line_count for p in stored)
            failed_note = f", {failed} failed" if failed else ""
            print(
                f"{document.id}  {done}/{document.page_count} pages read"
                f"{failed_note}  {lines} lines  {document.filename}"
            )
    finally:
        if isinstance(executor, Executor):
            executor.shutdown()
    return worst


def _cmd_ls(store: Store, args: argparse.Namespace) -> ExitCode:
    documents = store.documents()
    if not documents:
        print(f"no documents in {store.root}; add some with `ocrkit add FILE`")
        return ExitCode.ok
    header = ("document", "pages", "read", "failed", "lines")
    print("{:<12}  {:>5}  {:>5}  {:>6}  {:>6}  file".format(*header))
    for document in documents:
        pages = store.pages(document.id)
        read = sum(1 for p in pages if p.status in ("done", "no_text"))
        failed = sum(1 for p in pages if p.status == "failed")
        lines = sum(p.line_count for p in pages)
        print(
            f"{document.id:<12}  {len(pages):>5}  {read:>5}  {failed:>6}  {lines:>6}  "
            f"{document.filename}"
        )
    return ExitCode.ok


def _cmd_rm(store: Store, args: argparse.Namespace) -> ExitCode:
    # Every name is looked up first, so that a wrong one removes nothing.
    documents = {}
    for ref in args.documents:
        document = store.document(ref)
        documents[document.id] = document
    for document in documents.values():
        store.delete_document(document.id)
        print(f"removed {document.id}  {document.filename}")
    return ExitCode.ok


def _cmd_export(store: Store, args: argparse.Namespace) -> ExitCode:
    try:
        frame = lines_frame(store, args.documents or None)
    except NotFoundError as exc:
        raise OcrkitError(str(exc)) from exc
    if args.output.is_dir():
        raise OcrkitError(f"{args.output} is a folder; give a file name with -o")
    if not args.output.parent.is_dir():
        raise OcrkitError(
            f"the folder {args.output.parent} does not exist; create it first"
        )
    suffix = args.output.suffix.lower()
    fmt = args.format or _SUFFIX_FORMATS.get(suffix, "" if suffix else "csv")
    if not fmt:
        raise OcrkitError(
            f"cannot tell the table format of {args.output.name} from its suffix; "
            "name it .csv, .parquet or .jsonl, or give --format"
        )
    export_lines(frame, args.output, fmt, bom=args.bom)
    print(f"{len(frame)} lines written to {args.output}", file=sys.stderr)
    return ExitCode.ok


def _cmd_serve(store: Store, args: argparse.Namespace) -> ExitCode:
    from ocrkit.serve import NOTEBOOK_DIR, start_server

    # The store opened fine, and the server opens it again in its own process.
    store.close()
    kind = "lab" if args.command == "serve" else "dashboard"
    start_server(
        kind,
        storage=store.root,
        port=args.port,
        ip=args.ip,
        token=load_settings().token,
        notebook_dir=args.notebooks or NOTEBOOK_DIR,
    )


def _cmd_models(store: Store, args: argparse.Namespace) -> ExitCode:
    from ocrkit.engines import paddle_models

    if args.models_command == "import":
        model = paddle_models.import_model(
            args.folder, dict_path=args.dict, name=args.name, kind=args.kind
        )
        option = {
            "det": "text_detection_model_dir",
            "rec": "text_recognition_model_dir",
            "cls": "textline_orientation_model_dir",
        }[model.kind]
        print(f"{model.name}  {model.kind}  {model.path}")
        print(f"use it with the paddle engine option {option}={model.name}")
        return ExitCode.ok
    models = paddle_models.list_models()
    if not models:
        print(f"no models imported in {paddle_models.models_root()}")
        return ExitCode.ok
    for model in models:
        size = f"{model.characters} characters" if model.kind == "rec" else ""
        print(f"{model.name:<24}  {model.kind}  {model.path}  {size}".rstrip())
    return ExitCode.ok


_COMMANDS = {
    "add": _cmd_add,
    "ocr": _cmd_ocr,
    "ls": _cmd_ls,
    "rm": _cmd_rm,
    "export": _cmd_export,
    "models": _cmd_models,
    "serve": _cmd_serve,
    "dashboard": _cmd_serve,
}


# Commands that only read or change a store's documents, so they reject a missing
# store instead of creating an empty one.
_EXISTING_STORE_COMMANDS = frozenset({"ls", "rm", "export"})

_SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}


def _positive_number(text: str) -> float:
    """Parse a command-line number that must be greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def run() -> None:
    """Entry point of the ``ocrkit`` script."""
    sys.exit(main())
