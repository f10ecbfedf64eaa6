"""Durable file writes: a reader never sees half a file, a crash never leaves one.

Write under a temporary name beside the target, fsync it, rename it over the
target, fsync the folder.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

# Files and folders digitize creates get the process umask's permissions; cli sets the umask
# from [paths] umask (default 0027: the service's user and group only — PDFs and the catalogue
# hold CCCDs and addresses). mkstemp makes 0600 files, so durable writes apply the umask themselves.
_umask = 0o027


def apply_umask(mask: int) -> None:
    """Set the process umask for everything digitize creates from now on."""
    global _umask
    _umask = mask
    os.umask(mask)


def file_mode() -> int:
    return 0o666 & ~_umask
# Suffix of a copy in progress across file systems (move_durably).
PARTIAL = ".partial"
# Temporary names carry at most this much of the target's name, so a target name of up to
# 255 bytes still has a temporary name that fits a file system's 255-byte limit.
TEMP_NAME_BYTES = 100


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that is at most max_bytes in UTF-8 (never half a character)."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def temp_prefix(target: Path) -> str:
    """How temporary files for `target` start: hidden, beside it, bounded in length."""
    return f".{cut_utf8(target.name, TEMP_NAME_BYTES)}."


def remove_stale_temps(target: Path) -> None:
    """Temporary files of an earlier write of `target` killed midway."""
    if target.parent.is_dir():
        for stale in target.parent.glob(f"{glob.escape(temp_prefix(target))}*.tmp"):
            stale.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Call write(temp_path), fsync the temp file, then rename it over `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        write(temp)
        os.chmod(temp, file_mode())
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text_atomic(target: Path, text: str) -> None:
    write_atomic(target, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(target: Path, data: bytes) -> None:
    write_atomic(target, lambda temp: temp.write_bytes(data))


def move_durably(source: Path, target: Path) -> None:
    """Move a file so that after a crash it is in exactly one of the two places.

    Same file system: one rename, then both folders fsynced. Across file systems
    (an inbox on a mounted share, an archive on another disk): copy to a hidden
    .partial name beside the target, fsync, rename, fsync the folder, and only
    then unlink the source; a crash before the unlink leaves the file in both
    places, and the next claim of the source is then a byte-identical repeat.
    """
    if target.exists():
        if target.is_file() and sha256_of(target) == sha256_of(source):
            source.unlink()  # the same bytes are kept there already (a step redone after a crash)
            fsync_dir(source.parent)
            return
        raise FileExistsError(errno.EEXIST, "target exists", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = target.with_name(f".{cut_utf8(target.name, TEMP_NAME_BYTES)}{PARTIAL}")
        shutil.copy2(source, partial)
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.rename(partial, target)
        fsync_dir(target.parent)
        source.unlink()
    else:
        fsync_dir(target.parent)
    fsync_dir(source.parent)
