"""Durable file writes: a reader never sees half a file, a crash never leaves one.

Write under a temporary name beside the target, fsync it, rename it over the
target, fsync the folder.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

# Outputs land in shared folders: readable by the officers' accounts, not only ours.
OUTPUT_MODE = 0o644


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
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        write(temp)
        os.chmod(temp, OUTPUT_MODE)
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
