"""Manual decisions on the catalogue, one code path for the command line and the web page.

Linking or unlinking a document by hand and importing a registry export each
write the catalogue, move the files the decision moves (filing.refile) and
leave one audit entry saying who did it and when. `actor` is the web user's
name, or "cli:<os user>" for the commands.
"""
from __future__ import annotations

import getpass
import sqlite3
from pathlib import Path

from . import codes, errors, filing, registry, store
from .models import LinkDecision


class DecisionError(errors.DigitizeError):
    exit_code = errors.BAD_ARGS


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def dossier_code(text: str) -> str:
    """A well-formed dossier code from what a person typed (OCR-tolerant normalisation)."""
    code = codes.normalise_code(text.strip())
    if not codes.is_well_formed(code):
        raise DecisionError(f"Mã hồ sơ sai dạng: {text}", f"Malformed dossier code: {text}",
                            "Viết mã dạng 000.00.06.H56-231027-0361.", "Write it like 000.00.06.H56-231027-0361.")
    return code


def document(conn: sqlite3.Connection, document_id: int) -> dict:
    found = store.get_document(conn, document_id)
    if found is None:
        raise DecisionError(f"Không có tài liệu số {document_id}.", f"No document {document_id}.",
                            "Xem số tài liệu bằng 'digitize review'.", "See document numbers with 'digitize review'.")
    return found


def link_by_hand(conn: sqlite3.Connection, document_id: int, typed_code: str, archive: Path, actor: str) -> str:
    """Link a document to a registered dossier (never overwritten by automatic runs); the code."""
    found = document(conn, document_id)
    code = dossier_code(typed_code)
    if store.get_dossier(conn, code) is None:
        raise DecisionError(f"Hồ sơ {code} chưa có trong sổ.", f"Dossier {code} is not in the registry.",
                            "Nhập danh sách hồ sơ trước: digitize registry import FILE.",
                            "Import the dossier list first: digitize registry import FILE.")
    with store.transaction(conn):
        store.set_link(conn, found["id"], LinkDecision("linked", "manual", 1.0, code,
                                                       tuple(found["candidates"] or ())), manual=True)
        store.add_audit(conn, actor, "link", found["id"], code,
                        {"previous": found["dossier_code"], "previous_status": found["link_status"]})
    filing.refile(conn, found["id"], archive)
    return code


def unlink_by_hand(conn: sqlite3.Connection, document_id: int, archive: Path, actor: str) -> None:
    found = document(conn, document_id)
    with store.transaction(conn):
        store.set_link(conn, found["id"], LinkDecision("none", "manual", candidates=tuple(found["candidates"] or ())),
                       manual=True)
        store.add_audit(conn, actor, "unlink", found["id"], found["dossier_code"],
                        {"previous_status": found["link_status"]})
    filing.refile(conn, found["id"], archive)


def import_registry(conn: sqlite3.Connection, path: Path, config: dict, archive: Path, actor: str,
                    shown_name: str | None = None) -> dict:
    """Read an export, upsert its rows, link the documents waiting for them; the per-row report."""
    result = registry.read_registry(path, config)
    counts = store.upsert_dossiers(conn, result["rows"])
    relinked = filing.link_waiting(conn, archive)
    # Every data line is one of added, updated, unchanged or rejected: lines is their sum.
    report = {"file": shown_name or str(path), "encoding": result["encoding"], "lines": result["lines"],
              "added": counts["added"], "updated": counts["updated"], "unchanged": counts["unchanged"],
              "rejected": result["rejected"], "duplicates": result["duplicates"], "notes": result["notes"],
              "relinked": relinked}
    store.add_audit(conn, actor, "registry_import", detail={
        "file": report["file"], "added": counts["added"], "updated": counts["updated"],
        "unchanged": counts["unchanged"], "rejected": len(result["rejected"]), "relinked": len(relinked)})
    return report
