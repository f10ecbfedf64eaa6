"""One path from engine to catalogue: `process`, the watcher and `reprocess` all come through here.

For each input file: the engine's pages → split into dossiers and link each part
(link.analyse_document) → decide every target (layout: one collision rule) → write
each part's PDF and sidecar under staging names, fsynced, then rename them all over
any previous output (a rename needs no free space, so a full disk leaves the previous
version whole) → record the result in the catalogue in one transaction
(store.record_result). Only then is the result handed back, so a caller may move the
original away: nothing is lost if the process dies at any step.

A document seen before (the same bytes) is a new version of itself: its parts keep
their places while their link is unchanged, and a part whose link moved it is
written at its new place and the old copy removed.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import __version__, assemble, barcodes, check, engine, layout, link, programs, store
from .errors import DigitizeError, InputFileError, OutputError
from .files import fsync_dir, remove_stale_temps, sha256_of, temp_prefix, write_atomic, write_text_atomic
from .models import DONE, FAILED, DocumentResult, LinkDecision, PageReading, Part, SignOutcome
from .vntext import nfc


# Codes on a PDF kept as it came are read from pages rendered at this resolution (no OCR).
BARCODE_DPI = 150
SEVERAL_DOSSIERS = ("nhiều hồ sơ trong một tệp giữ nguyên / several dossiers in one file kept as it came")


@dataclass(frozen=True)
class Intake:
    """One file to process and what is known of it before it is read."""

    path: Path  # the file to read now
    source: str  # recorded as the document's source (for the watcher: where it was dropped)
    officer: str | None = None
    original: str | None = None  # where the original is kept once done (None: where it is now)


@dataclass(frozen=True)
class Destination:
    """Where outputs go: the archive's layout (filed), or flat into a folder of the user's (--out)."""

    root: Path
    filed: bool = True


@dataclass(frozen=True)
class Run:
    """What stays the same for every document of one run."""

    pipeline: dict
    config: dict
    destination: Destination
    workers: int
    work_root: Path
    force: bool = False
    on_page: Callable[[str], None] | None = None
    file_timeout: float | None = None
    also: Callable[[Intake, DocumentResult], Callable[[sqlite3.Connection], None] | None] | None = None
    # Held from choosing a file's names to their rename into place, keyed by its name: machines
    # sharing one archive (queue.py) take turns there, so two scans called alike never pick one name.
    placing: Callable[[str], AbstractContextManager] = lambda _name: nullcontext()


def failed(source: str, sha256: str | None, error: DigitizeError) -> DocumentResult:
    """The result of a file that could not be processed."""
    return DocumentResult(source, sha256, FAILED, error=error.one_line(), exit_code=error.exit_code)


def process(intakes: Iterable[Intake], run: Run,
            conn: sqlite3.Connection) -> Iterator[tuple[Intake, DocumentResult]]:
    """Process each file; yield it with its result once its outputs and catalogue rows are durable.

    Failures are yielded unrecorded: where a failed file is kept (quarantine, or where
    it is) is the caller's to say, through record_failure."""
    by_path = {str(intake.path.absolute()): intake for intake in intakes}
    registry = store.list_dossiers(conn)
    taken: set[Path] = set()
    scanned_documents = engine.run([Path(p) for p in by_path], run.pipeline, run.config, run.workers, run.work_root,
                                   force=run.force, on_page=run.on_page, file_timeout=run.file_timeout)
    try:
        for scanned in scanned_documents:
            intake = by_path[str(scanned.source)]
            if scanned.error is not None:
                yield intake, failed(intake.source, scanned.sha256, scanned.error)
                continue
            try:
                if sha256_of(intake.path) != scanned.sha256:
                    yield intake, changed_while_read(intake.source, scanned.sha256)
                    continue
                if scanned.pages:
                    result = _finish(scanned, intake, run, conn, registry, taken)
                else:
                    result = _keep_as_is(scanned, intake, run, conn, registry, taken)
            except OSError as exc:
                yield intake, failed(intake.source, scanned.sha256,
                                     InputFileError("Không đọc được tệp.", f"Cannot read the file ({exc})."))
                continue
            except DigitizeError as exc:
                yield intake, failed(intake.source, scanned.sha256, exc)
                continue
            also = run.also(intake, result) if run.also else None
            store.record_result(conn, result, run.pipeline, intake.officer, intake.original, also)
            yield intake, result
    finally:
        scanned_documents.close()  # on an early stop: pages in flight finish, the pool goes


def changed_while_read(source: str, sha256: str | None) -> DocumentResult:
    """The file was written to while it was read (a writer that paused): nothing is written or
    recorded; it is to be read again."""
    error = InputFileError("Tệp thay đổi trong khi đang xử lý; sẽ đọc lại.",
                           "The file changed while it was being processed; it is read again.",
                           "Chạy lại lệnh khi máy quét đã ghi xong tệp.", "Run the command again once the file is complete.")
    return DocumentResult(source, sha256, FAILED, error=error.one_line(), exit_code=error.exit_code, retry=True)


def record_failure(conn: sqlite3.Connection, result: DocumentResult, pipeline: dict, officer: str | None,
                   kept_at: str | None) -> None:
    """A failed file's row (never over a good one): where it is kept and why it failed."""
    if result.sha256:
        store.record_result(conn, result, pipeline, officer, kept_at)


def _finish(scanned: engine.Scanned, intake: Intake, run: Run, conn: sqlite3.Connection,
            registry: list[dict], taken: set[Path]) -> DocumentResult:
    readings = tuple(page.reading for page in scanned.pages)
    analysis = link.analyse_document([r.text for r in readings], [p.barcodes for p in scanned.pages],
                                     Path(intake.source).name, registry)
    previous = {row["part"]: row for row in store.documents_by_sha(conn, scanned.sha256)}
    received = {dossier["code"]: dossier.get("received_date") for dossier in registry}
    parts = []
    with run.placing(Path(intake.source).name):
        for number, found in enumerate(analysis["parts"]):
            decided = LinkDecision.from_mapping(found["link"])
            target = _target(run.destination, Path(intake.source).name, number, scanned.sha256, decided,
                             received, previous.get(number), taken)
            chosen = scanned.pages[found["first_page"] - 1:found["last_page"]]
            warnings = tuple(warning for page_no, page in enumerate(chosen, start=found["first_page"])
                             for warning in check.page_warnings(page_no, page.image.dpi, page.image.colour,
                                                                page.grey_by))
            parts.append(Part(number, found["first_page"], found["last_page"], str(target),
                              str(layout.sidecar(target)), decided, found["fields"], warnings))
        result = DocumentResult(intake.source, scanned.sha256, DONE, readings, tuple(parts))
        signatures = _write(result, scanned, run, intake.officer)
    result = replace(result, parts=tuple(replace(part, signature=signatures.get(part.number)) for part in parts))
    for part in parts:
        _remove_moved(previous.get(part.number), part, run.destination)
    return result


def _target(destination: Destination, name: str, number: int, sha256: str, decided: LinkDecision,
            received: dict[str, str | None], previous: dict | None, taken: set[Path]) -> Path:
    """Where part `number` of the scan `name` goes (see layout for the rule)."""
    root = destination.root
    if destination.filed and previous and previous["output"] and root in Path(previous["output"]).parents:
        # A new version replaces the old one in place, unless a new automatic link moves it
        # (a manual decision stands, and so does the place it gave the file).
        linked_to = decided.dossier if decided.status == "linked" else None
        if previous["link_method"] == "manual" or previous["dossier_code"] == linked_to:
            return Path(previous["output"])
    file_name = layout.part_name(name, number)
    if not destination.filed:
        folder = root
    elif decided.status == "linked" and decided.dossier:
        folder = layout.quarter_folder(root, decided.dossier, received.get(decided.dossier))
    else:
        folder = layout.month_folder(root, datetime.now())
    return layout.place(folder, file_name, sha256, taken)


def _remove_moved(previous: dict | None, part: Part, destination: Destination) -> None:
    """A part whose link moved it elsewhere in the archive leaves no copy at its old place.
    Outside the archive (--out) nothing is removed: those files are the user's."""
    if not destination.filed or not previous or not previous["output"] or previous["output"] == part.output:
        return
    old = Path(previous["output"])
    if destination.root in old.parents and layout.belongs_to(old, previous["sha256"]):
        old.unlink(missing_ok=True)
        layout.sidecar(old).unlink(missing_ok=True)


def xmp_fields(result: DocumentResult, part: Part, pipeline: dict, officer: str | None,
               digitised_at: datetime) -> dict[str, str | None]:
    """What the PDF's metadata says of itself (XMP under digitize's namespace, and DocInfo):
    what an archive keeps of a digitised copy (README, "Metadata of each copy"), and enough
    for `digitize catalogue rebuild` to put its row back."""
    fields = part.fields
    return {
        "title": Path(result.source).name,
        "source": result.source,
        "sha256": result.sha256,
        "part": str(part.number),
        "officer": officer,  # the digitising officer (the inbox subfolder)
        "digitisedAt": digitised_at.astimezone(assemble.VIETNAM).isoformat(timespec="seconds"),
        "pageCount": str(part.last_page - part.first_page + 1),
        "firstPage": str(part.first_page),
        "pipeline": pipeline["name"],
        "pipelineVersion": pipeline["hash"],
        "software": f"digitize {__version__}",
        "ocrLanguage": pipeline["ocr"]["lang"],
        "formatWarnings": "; ".join(warning["message"] for warning in part.warnings) or None,
        "dossierCode": part.dossier,
        "linkStatus": part.link.status,
        "documentName": fields.get("title"),
        "documentKind": fields.get("kind"),
        "procedureCode": fields.get("procedure_code"),
        "procedureName": fields.get("procedure_name"),
        "applicant": fields.get("applicant"),
        "ownerId": fields.get("cccd"),
        "numberSymbol": fields.get("number"),
        "issueDate": fields.get("issue_date"),
    }


def document_text(readings: Iterable[PageReading]) -> str:
    """The sidecar: pages in order, separated by form feeds as pdftotext does."""
    return nfc("\n\f".join(reading.text for reading in readings) + "\n")


def _signer(config: dict) -> Callable[[Path, str | None], SignOutcome] | None:
    """sign_copy(path, officer) with the [signing] settings when copies are signed as they are made."""
    if not config.get("signing", {}).get("enabled"):
        return None
    from . import sign  # pyHanko loads only where copies are signed
    try:
        settings = sign.settings_from(config)
    except DigitizeError as exc:  # a bad [signing] section leaves copies unsigned, never fails a scan
        reason = exc.one_line()
        return lambda path, _officer: SignOutcome(str(path), "pending", reason=reason)
    return lambda path, officer: sign.sign_copy(path, settings, officer)


def _write(result: DocumentResult, scanned: engine.Scanned, run: Run, officer: str | None) -> dict:
    """Every part's PDF and sidecar staged and fsynced first, then all renamed into place; each
    part's signing outcome by number (empty when signing is off).

    A staged PDF is signed before the rename (sign after OCR and assembly: the signature
    covers the final bytes). A signing failure leaves that copy unsigned, waiting with the
    reason; it never fails the document."""
    sign_copy = _signer(run.config)
    signatures = {}
    now = datetime.now(assemble.VIETNAM)
    staged: list[tuple[Path, Path]] = []
    try:
        for part in result.parts:
            for final in (Path(part.output), Path(part.text_path)):
                remove_stale_temps(final)  # of an earlier attempt at this document, killed midway
        for part in result.parts:
            pdf, text = Path(part.output), Path(part.text_path)
            chosen = scanned.pages[part.first_page - 1:part.last_page]
            staged_pdf, staged_text = _staging_name(pdf), _staging_name(text)
            staged += [(staged_pdf, pdf), (staged_text, text)]
            assemble.assemble_pdf([page.image for page in chosen], staged_pdf,
                                  xmp_fields(result, part, run.pipeline, officer, now))
            write_text_atomic(staged_text, document_text(page.reading for page in chosen))
            if sign_copy is not None:
                signatures[part.number] = replace(sign_copy(staged_pdf, officer), path=str(pdf))
        for staged_file, final in staged:
            os.replace(staged_file, final)
        for folder in {final.parent for _, final in staged}:
            fsync_dir(folder)
    except BaseException as exc:  # a full disk, or Ctrl-C / SIGTERM midway: no staged file stays behind
        for staged_file, _ in staged:
            staged_file.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError("Không ghi được tệp PDF kết quả.", f"Could not write the output PDF ({exc}).") from exc
        raise
    return signatures


def _staging_name(final: Path) -> Path:
    """A fresh hidden name beside `final` (unique even where long names share their first bytes)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(final), suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(name)


def _keep_as_is(scanned: engine.Scanned, intake: Intake, run: Run, conn: sqlite3.Connection,
                registry: list[dict], taken: set[Path]) -> DocumentResult:
    """A signed PDF, or one with a real text layer, filed byte for byte as it came (never
    rewritten: that would break a signature), linked and counted from its own text and codes.

    It stays one document: a file holding several dossiers goes to review instead of being
    split (splitting would rewrite it)."""
    info = scanned.info
    timeout = float(run.config["processing"]["page_timeout"])
    texts = [nfc(text) for text in programs.pdftotext(scanned.source, timeout).split("\f")]
    texts = (texts + [""] * info.page_count)[:info.page_count]
    codes = [barcodes.decode_barcodes(np.asarray(
        programs.render_pdf_page(info.path, index, BARCODE_DPI, timeout).convert("L"))) for index in range(info.page_count)]
    analysis = link.analyse_document(texts, codes, Path(intake.source).name, registry)
    decided = LinkDecision.from_mapping(analysis["link"])
    if len(analysis["parts"]) > 1:
        decided = LinkDecision("review", candidates=tuple(c for part in analysis["parts"]
                                                          for c in part["link"]["candidates"]),
                               reason=SEVERAL_DOSSIERS)
    fields = {**analysis["fields"], "signatures": list(info.signatures)} if info.signatures else analysis["fields"]
    previous = {row["part"]: row for row in store.documents_by_sha(conn, scanned.sha256)}
    received = {dossier["code"]: dossier.get("received_date") for dossier in registry}
    with run.placing(Path(intake.source).name):
        target = _target(run.destination, Path(intake.source).name, 0, scanned.sha256, decided, received,
                         previous.get(0), taken)
        part = Part(0, 1, info.page_count, str(target), str(layout.sidecar(target)), decided, fields)
        try:
            remove_stale_temps(target)
            write_atomic(target, lambda temp: shutil.copyfile(scanned.source, temp))
            write_text_atomic(layout.sidecar(target), "\n\f".join(texts) + "\n")
        except OSError as exc:
            raise OutputError("Không ghi được tệp vào kho lưu trữ.", f"Could not write to the archive ({exc}).") from exc
    _remove_moved(previous.get(0), part, run.destination)
    readings = tuple(PageReading(0, 0.0, None, text) for text in texts)
    return DocumentResult(intake.source, scanned.sha256, DONE, readings, (part,), kept_as_is=True)
