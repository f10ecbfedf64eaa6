"""Where a document's PDF and sidecar live when its link is decided after processing.

The engine files a document linked while it is processed. A link decided
later — by hand, or by a registry import that brought its dossier in —
moves the files here: a linked document into archive/YYYY/Qn/<code>/, a
document unlinked from a dossier folder into archive/unfiled/. Outputs
written outside the archive (`process --out`) stay where the user put them.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from . import layout, link, store
from .files import move_durably
from .models import LinkDecision


def filed_target(document: dict, dossier: dict | None, archive: Path) -> Path | None:
    """Where the document's PDF belongs now; None when it stays where it is."""
    current = Path(document["output"])
    if archive not in current.parents:
        return None
    if document["link_status"] == "linked" and document["dossier_code"]:
        received = dossier.get("received_date") if dossier else None
        folder = layout.quarter_folder(archive, document["dossier_code"], received)
    elif layout.is_dossier_folder(current.parent, archive):
        folder = layout.unfiled_folder(archive)  # out of the folder of a dossier it left
    else:
        return None
    if folder == current.parent:
        return None
    return layout.place(folder, current.name, document["sha256"])


def refile(conn: sqlite3.Connection, document_id: int, archive: Path) -> Path | None:
    """Move a document's PDF and sidecar to where its link says; the new PDF path, if moved.

    A crash between the move and the catalogue update is mended by the next
    call: the files are found at the target and the catalogue follows them.
    """
    document = store.get_document(conn, document_id)
    if not document or not document["output"]:
        return None
    dossier = store.get_dossier(conn, document["dossier_code"]) if document["dossier_code"] else None
    target = filed_target(document, dossier, archive)
    if target is None:
        return None
    current = Path(document["output"])
    if current.exists() and not target.exists():
        move_durably(current, target)
        sidecar = Path(document["text_path"]) if document["text_path"] else None
        if sidecar and sidecar.exists():
            move_durably(sidecar, layout.sidecar(target))
    elif not target.exists():
        return None
    store.update_document(conn, document_id, output=str(target), text_path=str(layout.sidecar(target)))
    return target


def link_waiting(conn: sqlite3.Connection, archive: Path) -> list[dict]:
    """Link (and file) the documents an import has just made linkable: their code arrived."""
    changes = link.relink(store.documents_to_relink(conn), store.list_dossiers(conn))
    done = []
    for document_id, decided in changes:
        with store.transaction(conn):
            linked = store.set_link(conn, document_id, LinkDecision.from_mapping(decided))
        if linked:
            refile(conn, document_id, archive)
            done.append({"document": document_id, "dossier": decided["dossier"], "method": decided["method"]})
    return done
