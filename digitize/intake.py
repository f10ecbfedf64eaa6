"""The watched folder's file moves, as plain functions: what is junk, claiming,
what is claimed, and setting a failed file aside with its note. Where each file
goes is layout.py's; a claimed file is work/claimed/<claim id>/<path below the
inbox> (the claim id orders claims and names the event). The first folder below
the inbox names the officer or scanner.
"""
from __future__ import annotations

import os
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Iterator

from . import layout
from .files import PARTIAL, move_durably, write_text_atomic
from .errors import DigitizeError
from .vntext import path_text

# Compared lower-case, against every part of the path below the inbox.
JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "@eadir", "$recycle.bin", "#recycle",
              "system volume information"}
JUNK_SUFFIXES = (".tmp", ".part", ".crdownload")
_claims = count()


def is_junk(rel: Path) -> bool:
    """Files the watcher never takes: system litter, hidden files, downloads in progress."""
    for part in rel.parts:
        if part.startswith((".", "~$")) or part.lower() in JUNK_NAMES:
            return True
    return rel.name.lower().endswith(JUNK_SUFFIXES)


def officer_of(rel: Path) -> str | None:
    """The first folder below the inbox names the officer or scanner (NFC: macOS writes NFD)."""
    return unicodedata.normalize("NFC", path_text(rel.parts[0])) if len(rel.parts) > 1 else None


def walk_inbox(inbox: Path) -> Iterator[Path]:
    """Every regular, non-junk file below the inbox (junk folders are not entered, links not followed)."""
    for root, dirs, files in os.walk(inbox):
        here = Path(root)
        rel_root = here.relative_to(inbox)
        dirs[:] = [d for d in dirs if not is_junk(rel_root / d)]
        for name in files:
            path = here / name
            if not is_junk(rel_root / name) and path.is_file() and not path.is_symlink():
                yield path


@dataclass(frozen=True)
class Claimed:
    path: Path  # work/claimed/<claim>/<rel>
    claim: str
    rel: Path  # where it was below the inbox

    @property
    def officer(self) -> str | None:
        return officer_of(self.rel)

    def source(self, inbox: Path) -> Path:
        return inbox / self.rel


def new_claim_id() -> str:
    """Sorts by claim time; unique within the process and across restarts."""
    return f"{time.time_ns():016x}-{os.getpid()}-{next(_claims)}"


def claim(path: Path, inbox: Path, claimed_root: Path) -> Claimed:
    """Take a file out of the inbox by an atomic move into the claimed area."""
    rel = path.relative_to(inbox)
    claim_id = new_claim_id()
    target = claimed_root / claim_id / rel
    move_durably(path, target)
    return Claimed(target, claim_id, rel)


def claimed_items(claimed_root: Path) -> list[Claimed]:
    """What is claimed and not yet finished, oldest claim first.

    Leftovers of a crash are tidied on the way: half-copied .partial files
    (their source is still in the inbox) and claim folders left empty.
    """
    items = []
    if not claimed_root.is_dir():
        return items
    for claim_dir in sorted(claimed_root.iterdir()):
        found = []
        for root, _, files in os.walk(claim_dir):
            for name in files:
                path = Path(root) / name
                if name.endswith(PARTIAL):
                    path.unlink(missing_ok=True)
                else:
                    found.append(Claimed(path, claim_dir.name, path.relative_to(claim_dir)))
        if found:
            items.extend(found)
        else:
            remove_empty_dirs(claim_dir, claimed_root)
    return items


def remove_empty_dirs(folder: Path, stop: Path) -> None:
    """Remove `folder` and its parents up to (not including) `stop` while they are empty."""
    for root, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            try:
                os.rmdir(Path(root) / name)
            except OSError:
                pass
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def error_text(rel: Path, error: DigitizeError, sha256: str | None, when: datetime) -> str:
    """The NAME.error.txt an officer reads beside a quarantined file."""
    stamp = when.strftime("%d/%m/%Y %H:%M:%S")
    rel = path_text(rel)
    return (
        f"Tệp: {rel}\n"
        f"Thời gian: {stamp}\n"
        f"Lỗi: {error.vi}\n"
        f"Cách xử lý: {error.advice_vi}\n"
        f"\n"
        f"File: {rel}\n"
        f"Time: {when.isoformat(timespec='seconds')}\n"
        f"Error: {error.en}\n"
        f"What to do: {error.advice_en}\n"
        + (f"\nsha256: {sha256}\n" if sha256 else "")
    )


def quarantine(item: Claimed, target: Path, error: DigitizeError, sha256: str | None) -> Path:
    """Write NAME.error.txt, then move the file beside it; the error file path."""
    note = layout.note_beside(target)
    write_text_atomic(note, error_text(item.rel, error, sha256, datetime.now().astimezone()))
    move_durably(item.path, target)
    return note
