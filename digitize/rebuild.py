"""`digitize catalogue rebuild`: the catalogue put back from the archive, after it was lost or damaged.

Every PDF digitize writes carries its own row in its metadata (source, sha256, part,
pages, pipeline, officer, fields: jobs.xmp_fields), its text beside it (NAME.txt,
pages separated by form feeds) and its place says its link (a dossier's folder
archive/YYYY/Qn/<code>/ means linked to that code). A PDF filed as it came has no
metadata of ours: its sha256 is its own, its fields are read again from its text.
Originals are found by their sha256 under archive/originals/. The registry is not
in the archive: import the one-stop software's export again afterwards (that also
links what waits for it). A damaged catalogue is kept aside, never deleted.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

from . import layout, link, store
from .assemble import read_metadata
from .files import sha256_of
from .models import DONE, LinkDecision, DocumentResult, PageReading, Part

REBUILT = "rebuilt"  # the link method of a link read back from the archive's folders


def _set_aside(catalogue: Path) -> Path | None:
    """Move a damaged or stale catalogue (and its WAL files) aside; where it went."""
    if not catalogue.exists():
        return None
    aside = catalogue.with_name(f"{catalogue.name}.damaged-{datetime.now():%Y%m%d-%H%M%S}")
    for suffix in ("", "-wal", "-shm"):
        companion = catalogue.with_name(catalogue.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    return aside


def _archived_pdfs(archive: Path) -> list[Path]:
    skipped = {layout.ORIGINALS, layout.DUPLICATES}
    return sorted(pdf for pdf in archive.rglob("*.pdf")
                  if not skipped & set(pdf.relative_to(archive).parts) and not pdf.name.startswith("."))


def _decision(pdf: Path, archive: Path, recorded: str | None) -> LinkDecision:
    """A PDF in a dossier's folder is linked to it; elsewhere it waits (as it did, or unlinked)."""
    if layout.is_dossier_folder(pdf.parent, archive):
        return LinkDecision("linked", REBUILT, 1.0, pdf.parent.name)
    return LinkDecision("review" if recorded == "review" else "none", REBUILT)


def _texts(pdf: Path, pages: int) -> list[str]:
    sidecar = layout.sidecar(pdf)
    texts = sidecar.read_text(encoding="utf-8").split("\f") if sidecar.exists() else []
    texts = [text.strip("\n") for text in texts]
    return (texts + [""] * pages)[:pages] if pages else texts or [""]


def rebuild(archive: Path, catalogue: Path) -> dict:
    """A new catalogue from `archive`; counts of what was found and where the old one went."""
    aside = _set_aside(catalogue)
    conn = store.connect(catalogue)
    originals = {sha256_of(path): path for path in (archive / layout.ORIGINALS).rglob("*") if path.is_file()}
    documents: dict[str, list[tuple[Part, list[str], dict]]] = defaultdict(list)
    for pdf in _archived_pdfs(archive):
        meta = read_metadata(pdf)
        if meta:
            texts = _texts(pdf, int(meta.get("pageCount", "0") or 0))
            fields = {"kind": meta.get("documentKind"), "procedure_code": meta.get("procedureCode"),
                      "procedure_name": meta.get("procedureName"), "applicant": meta.get("applicant"),
                      "cccd": meta.get("ownerId"), "number": meta.get("numberSymbol"),
                      "issue_date": meta.get("issueDate")}
            sha, number, first = meta["sha256"], int(meta.get("part", "0")), int(meta.get("firstPage", "1"))
        else:  # filed as it came: its fields are read again from its own text
            texts = _texts(pdf, 0)
            fields = link.analyse_document(texts, [[] for _ in texts], pdf.name, [])["fields"]
            sha, number, first = sha256_of(pdf), 0, 1
        decided = _decision(pdf, archive, meta.get("linkStatus"))
        part = Part(number, first, first + len(texts) - 1, str(pdf), str(layout.sidecar(pdf)), decided,
                    {key: value for key, value in fields.items() if value})
        documents[sha].append((part, texts, meta))
    for sha, found in documents.items():
        found.sort(key=lambda entry: entry[0].first_page)
        meta = found[0][2]
        readings = tuple(PageReading(0, 0.0, None, text) for _, texts, _ in found for text in texts)
        result = DocumentResult(meta.get("source") or found[0][0].output, sha, DONE, readings,
                                tuple(part for part, _, _ in found), kept_as_is=not meta)
        pipeline = {"name": meta.get("pipeline", "as-is"), "hash": meta.get("pipelineVersion", "")}
        original = originals.get(sha)
        store.record_result(conn, result, pipeline, meta.get("officer"), str(original) if original else None)
    conn.close()
    return {"documents": len(documents), "files": sum(len(found) for found in documents.values()),
            "originals": sum(1 for sha in documents if sha in originals),
            "set_aside": str(aside) if aside else None}
