"""Which files in the inbox are complete: unchanged long enough and opening cleanly as their type.

A file is ready once its size and modification time have not changed for
[watch] stable_seconds, no process on this machine holds it open for writing,
and it opens and decodes as its type; a file that does not open (a PDF cut
short) is ready — to be quarantined — only after [watch] broken_after seconds
unchanged, since a slow writer may pause mid-file. A writer that pauses between
the pages of a multi-page TIFF keeps the file open, so it is not taken after
page 1; a writer on another machine (SMB) is not seen as open here, and its
pauses are what stable_seconds is for.
"""
from __future__ import annotations

import os
import queue
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from . import intake, pages
from .errors import DigitizeError


@dataclass
class Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time this size and mtime were first seen
    opens: bool | None = None  # None: not tried yet at this size and mtime
    stuck: bool = False  # could not be claimed at this size and mtime


class Tracker:
    """Files below the inbox and how long each has been unchanged."""

    def __init__(self, inbox: Path, watch: dict, config: dict, polling: bool):
        self.inbox = inbox
        self.config = config
        self.stable = float(watch["stable_seconds"])
        self.broken_after = max(float(watch["broken_after"]), self.stable)
        self.rescan_every = float(watch["poll_interval"] if polling else watch["rescan_interval"])
        self.files: dict[Path, Seen] = {}
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.next_rescan = 0.0

    def tick(self, now: float) -> None:
        if now >= self.next_rescan:
            for path in intake.walk_inbox(self.inbox):
                self.observe(path, now)
            self.next_rescan = now + self.rescan_every
        while True:
            try:
                raw = self.events.get_nowait()
            except queue.Empty:
                break
            path = Path(raw)
            if path == self.inbox or self.inbox not in path.parents:
                continue
            if path.is_dir() and not path.is_symlink():
                if not intake.is_junk(path.relative_to(self.inbox)):
                    for found in intake.walk_inbox(path):
                        self.observe(found, now)
            elif not intake.is_junk(path.relative_to(self.inbox)):
                self.observe(path, now)
        for path in list(self.files):
            self.observe(path, now)

    def observe(self, path: Path, now: float) -> None:
        try:
            info = os.lstat(path)
        except OSError:
            self.files.pop(path, None)
            return
        if not stat.S_ISREG(info.st_mode):  # links, pipes, sockets are never taken
            self.files.pop(path, None)
            return
        seen = self.files.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != (info.st_size, info.st_mtime_ns):
            self.files[path] = Seen(info.st_size, info.st_mtime_ns, now)

    def ready(self, now: float) -> list[Path]:
        """Files unchanged long enough: stable_seconds if they open, broken_after if not,
        and in either case not held open for writing (which starts the wait again)."""
        candidates = [path for path, seen in self.files.items() if not seen.stuck and now - seen.since >= self.stable]
        held = open_for_writing(candidates) if candidates else set()
        found = []
        for path in candidates:
            seen = self.files[path]
            if path in held:
                seen.since, seen.opens = now, None
                continue
            if seen.opens is None:
                seen.opens = opens_cleanly(path, self.config)
            if seen.opens or now - seen.since >= self.broken_after:
                found.append(path)
        return found

    def waiting(self) -> int:
        return sum(1 for seen in self.files.values() if not seen.stuck)


def open_for_writing(paths: list[Path]) -> set[Path]:
    """Which of `paths` a process on this machine holds open for writing (Linux /proc;
    an empty set where /proc cannot be read)."""
    wanted = {os.path.realpath(path): path for path in paths}
    held = set()
    for fd_folder in Path("/proc").glob("[0-9]*/fd"):
        try:
            descriptors = os.listdir(fd_folder)
        except OSError:  # the process ended, or is not ours to look at
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(fd_folder / descriptor)
                if target not in wanted:
                    continue
                info = (fd_folder.parent / "fdinfo" / descriptor).read_text()
            except OSError:
                continue
            flags = re.search(r"^flags:\s*([0-7]+)", info, re.M)
            if flags and int(flags.group(1), 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                held.add(wanted[target])
    return held


def opens_cleanly(path: Path, config: dict) -> bool:
    """The file opens and decodes as its type (a scan still being written does not)."""
    try:
        pages.inspect_complete(path, config)
    except (DigitizeError, OSError):
        return False
    return True
