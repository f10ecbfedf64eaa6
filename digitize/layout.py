"""The archive layout: every folder and file name digitize writes, with one collision rule.

Under the state folders (see `digitize paths`):
    archive/YYYY/Qn/<dossier code>/NAME.pdf + NAME.txt   linked, by the dossier's received date
    archive/YYYY/MM/NAME.pdf + NAME.txt                  not (yet) linked, by the time it was taken
    archive/unfiled/NAME.pdf + NAME.txt                  unlinked by hand out of a dossier's folder
    archive/originals/YYYY/MM/<path below the inbox>     originals once their outputs are durable
    archive/duplicates/<path below the inbox>            byte-identical repeats, set aside
    quarantine/<path below the inbox> + NAME.error.txt   files that could not be processed
    work/claimed/<claim id>/<path below the inbox>       claimed by the watcher, in progress
    work/engine/                                         page images of documents in flight
    work/thumbs/<doc id>-<page>-<size>-<mtime>.png       the web page's thumbnails (a cache)
    work/uploads/                                        registry exports uploaded on the web page, while imported
A scan of several dossiers gives NAME.pdf, NAME-part2.pdf, ... (each filed by its own dossier).

One collision rule for every place: a name that holds another source's file (or a folder)
is never reused, and the same source always maps to the same name: NAME, else
NAME-<sha256[:8]>, else NAME-<sha256>. So a document redone after a crash replaces its
own half-finished output instead of adding a second one, and two scans both called
scan_0001 never replace each other. A folder on the way that is a file is passed by
the same rule (`scans` the file and `scans/a.jpg` do not block each other).

Every name is Windows-safe and at most NAME_BYTES of UTF-8, so the longest suffix digitize
adds (".error.txt", temporary names are bounded in files.py) still fits a 255-byte limit.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path, PurePath

from .assemble import pdf_sha256
from .codes import code_date
from .files import cut_utf8, sha256_of
from .vntext import nfc, path_text

NAME_BYTES = 200
NAME_CHARS = 120  # Windows' 260-character paths: a share's prefix plus our folders need the rest
ORIGINALS, DUPLICATES, UNFILED = "originals", "duplicates", "unfiled"
NOTE_SUFFIX = ".error.txt"

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_name(name: str, tail: str = "") -> str:
    """A file or folder name any file system takes, Windows shares included: NFC, no
    reserved characters or device names, no trailing dot or space, and short enough
    (NAME_CHARS characters, NAME_BYTES bytes) with `tail` added before the suffix."""
    name = _UNSAFE.sub("_", nfc(path_text(name))).strip().rstrip(". ") or "_"
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > 8:
        stem, suffix = name, ""
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    ending = f"{tail}.{suffix}" if suffix else tail
    room_chars = max(NAME_CHARS - len(ending), 1)
    room_bytes = max(NAME_BYTES - len(ending.encode("utf-8")), 1)
    stem = cut_utf8(stem[:room_chars], room_bytes).rstrip(". ") or "_"
    return stem + ending


def belongs_to(path: Path, sha256: str) -> bool:
    """Whether `path` is ours for that source: our PDF of it (the sha256 it records), or a copy of it."""
    return path.is_file() and (pdf_sha256(path) == sha256 or sha256_of(path) == sha256)


def _free_folder(folder: Path) -> Path:
    """`folder`, or, where a component of it is a file, that component with a suffix."""
    free = Path(folder.anchor)
    for part in folder.parts[1:] if folder.is_absolute() else folder.parts:
        candidate = free / part
        number = 1
        while candidate.exists() and not candidate.is_dir():
            number += 1
            candidate = free / safe_name(part, f" ({number})")
        free = candidate
    return free


def place(folder: Path, name: str, sha256: str | None, taken: set[Path] | None = None) -> Path:
    """Where the file of source `sha256` called `name` goes in `folder`: the collision rule.

    taken: names already given out in this run (two sources of one batch).
    Without a sha256 (a file that could not be read), names go NAME, NAME (2), ...
    """
    folder = _free_folder(folder)
    taken = taken if taken is not None else set()
    if sha256:
        tails = ("", f"-{sha256[:8]}", f"-{sha256}")
    else:
        tails = ("", *(f" ({n})" for n in range(2, 10_000)))
    for tail in tails:
        target = folder / safe_name(name, tail)
        if target in taken or target.is_dir() or target.is_symlink():
            continue
        if not target.exists() or (sha256 and belongs_to(target, sha256)):
            taken.add(target)
            return target
    raise FileExistsError(f"no free name for {name!r} in {folder}")


def sidecar(pdf: Path) -> Path:
    return pdf.with_suffix(".txt")


def note_beside(target: Path) -> Path:
    """The officer's note beside a quarantined file."""
    return target.with_name(target.name + NOTE_SUFFIX)


def part_name(name: str, number: int) -> str:
    """The PDF name of part `number` (0-based) of a scan called `name`."""
    stem = PurePath(name).stem
    return f"{stem}.pdf" if number == 0 else f"{stem}-part{number + 1}.pdf"


def quarter_folder(archive: Path, dossier: str, received: str | date | None) -> Path:
    """archive/YYYY/Qn/<dossier code>/ by the dossier's received date (else the date in its
    code; else archive/undated/<code>/)."""
    when = received if isinstance(received, date) else (
        date.fromisoformat(received[:10]) if received else code_date(dossier))
    base = archive / f"{when.year:04d}" / f"Q{(when.month - 1) // 3 + 1}" if when else archive / "undated"
    return base / safe_name(dossier)


def month_folder(archive: Path, when: datetime) -> Path:
    """archive/YYYY/MM/: documents not linked (yet), by the time the file was taken."""
    return archive / f"{when:%Y}" / f"{when:%m}"


def unfiled_folder(archive: Path) -> Path:
    return archive / UNFILED


def is_dossier_folder(folder: Path, archive: Path) -> bool:
    """Whether `folder` is a dossier's folder of the archive (archive/YYYY/Qn/<code>/)."""
    return archive in folder.parents and re.fullmatch(r"Q[1-4]|undated", folder.parent.name or "") is not None


def _kept_below(root: Path, rel: PurePath) -> Path:
    """root/<rel's folders>: each folder name made safe, as it was below the inbox."""
    return root.joinpath(*(safe_name(part) for part in rel.parent.parts))


def original_place(archive: Path, taken_at: datetime, rel: PurePath, sha256: str) -> Path:
    """archive/originals/YYYY/MM/<path below the inbox>, by the time the file was taken."""
    return place(_kept_below(month_folder(archive / ORIGINALS, taken_at), rel), rel.name, sha256)


def duplicate_place(archive: Path, rel: PurePath, sha256: str) -> Path:
    return place(_kept_below(archive / DUPLICATES, rel), rel.name, sha256)


def quarantine_place(quarantine: Path, rel: PurePath, sha256: str | None) -> Path:
    """quarantine/<path below the inbox>; its note goes beside it (note_beside)."""
    return place(_kept_below(quarantine, rel), rel.name, sha256)


def thumbnail_path(work: Path, document_id: int, page: int, pdf_size: int, pdf_mtime_ns: int) -> Path:
    """A page's cached thumbnail; a new PDF (size or time) gets a new name."""
    return work / "thumbs" / f"{document_id}-{page}-{pdf_size}-{pdf_mtime_ns}.png"


def old_thumbnails(work: Path, document_id: int, page: int) -> list[Path]:
    return list((work / "thumbs").glob(f"{document_id}-{page}-*.png"))


def uploads_folder(work: Path) -> Path:
    return work / "uploads"
