"""`digitize watch`: the shared inbox as a service that never loses or doubles a scan.

A file is taken once it is complete (tracker.py). Changes are
seen through native events (watchdog, recursive) plus a full rescan every
[watch] rescan_interval, or by rescanning every [watch] poll_interval in
polling mode ([watch] polling = true, DIGITIZE_WATCH_POLLING=true), which
SMB/NFS mounts need because they deliver no events for remote writes.

State is the claimed folder plus the catalogue; there is no journal.
A claimed file moves on in this order, and a kill between any two steps is
resumed at the next start:
  1. claim: rename inbox/REL -> work/claimed/ID/REL (across file systems:
     copy to .partial, fsync, rename, unlink the inbox copy).
       kill before the rename: the file is still in the inbox, taken again.
       kill inside a cross-device copy: .partial removed at start, the inbox
       copy is taken again; kill after the copy's rename but before the
       unlink: both exist; the claimed one is processed, the inbox one
       becomes a byte-identical repeat (set aside, noted once).
  2. sha256, then the catalogue decides: a done row for this sha256 whose
     original is missing from archive/originals means our own step 4 was
     cut short: finish it. A done row otherwise: a repeat (step R).
  3. jobs.process: OCR into the archive (layout.py: the dossier's folder, else
     archive/YYYY/MM/; staged name, fsync, rename).
       kill during: staged files and no row; the file is still claimed and
       redone; the layout gives it the same name and clears the stale files.
       kill after the PDF, before the row: redone, the same name is chosen
       (the PDF records the source's sha256) and overwritten: no second PDF.
  4. catalogue row (status done, original = archive/originals/YYYY/MM/REL by
     the claim's time), one transaction, synchronous=FULL; then rename the
     claimed file to that original path.
       kill between: step 2 at the next start finds the row and the missing
       original and finishes the move; no second row (sha256 is unique).
  R. repeat: note the event (unique per claim id), then move to
     archive/duplicates/. Killed between: noted already, moved next time.
  Q. failure: write quarantine/REL.error.txt, record the failed row and the
     event (unique per claim id), then move the file beside its note.
     Killed in between: redone, the same free name is chosen, noted once.
Engine temp folders live in work/engine/, which only the watcher uses (one
watcher per home, by lock) and empties at start.

With a broker (DIGITIZE_BROKER_URL, queue.py), step 3 and the row of step 4 run on
the workers: each claimed file is sent as a task and the watcher carries on taking
files; when a task's result comes back, the watcher finishes step 4 (or Q) itself.
Killed with tasks out, it sends the still-claimed files again at its next start; a
task for a document already recorded returns that record (queue.py), so step 2's
resumption applies unchanged.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from . import config as site_config, intake, jobs, layout, programs, store
from .errors import (CatalogueError, DigitizeError, EncryptedPdfError, EngineError, InputFileError,
                     OutputError)
from .files import move_durably, sha256_of
from .logs import LOG, setup_logging
from .models import DONE, DocumentResult
from .pipelines import load_pipeline
from .status import Heartbeat
from .vntext import path_text
from .tracker import Tracker

TICK = 0.2  # seconds between looks at the files being watched
FIRST_PAUSE, LONGEST_PAUSE = 5.0, 300.0  # back-off while the machine has a problem
PROBE_EVERY = 10.0
PROBE_NAME, PROBE_BYTES = ".digitize-write-probe", 65_536
# A failure with one of these may be the machine's (disk, permissions, a program) rather than the file's.
MACHINE_EXIT_CODES = {3, 5, 7}
ENGINE_ERRORS = {4: InputFileError, 5: OutputError, 8: EncryptedPdfError}


def _claim_time(claim: str) -> datetime:
    """When a file was claimed (the claim id starts with the time in ns): what it is filed by."""
    return datetime.fromtimestamp(int(claim.split("-", 1)[0], 16) / 1e9)


class Watcher:
    def __init__(self, config: dict, once: bool = False):
        self.config = config
        self.once = once
        self.paths = site_config.resolve_paths(config)
        site_config.ensure_folders(self.paths)
        self.watch = config["watch"]
        self.polling = bool(self.watch["polling"])
        self.claimed_root = self.paths["work"] / "claimed"
        self.engine_root = self.paths["work"] / "engine"
        self.pipeline = load_pipeline(config["processing"]["pipeline"])
        programs.versions(self.pipeline["ocr"]["lang"])
        self.workers = site_config.worker_count(config)
        self.file_timeout = float(self.watch["file_timeout"])
        # No single external call may outlast the file's own limit.
        engine_config = {**config, "processing": {
            **config["processing"],
            "page_timeout": min(float(config["processing"]["page_timeout"]), self.file_timeout)}}
        self.run_settings = jobs.Run(self.pipeline, engine_config, jobs.Destination(self.paths["archive"]),
                                     self.workers, self.engine_root, on_page=lambda _source: self.poll(),
                                     file_timeout=self.file_timeout)
        self.tracker = Tracker(self.paths["inbox"], self.watch, config, self.polling)
        self.stop = False
        self.conn = None
        self.catalogue_inode: str | None = None  # store.identity: the file's inode, or the server's URL
        self.suspect_catalogue = False
        self.heartbeat = Heartbeat(self.paths["home"] / "watch.heartbeat")
        from . import queue
        self.broker = queue.broker_url()
        self.queued: dict[str, tuple[intake.Claimed, str, jobs.Intake, object]] = {}  # claimed path → task

    # -- start and stop --
    def _lock(self) -> object:
        handle = (self.paths["home"] / "watch.lock").open("a+")
        deadline = time.monotonic() + 15  # workers of a killed watcher may take a moment to go
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DigitizeError(
                        "Một dịch vụ theo dõi khác đang chạy với cùng thư mục.",
                        f"Another watcher is running on {self.paths['home']}.",
                    ) from None
                time.sleep(0.5)

    def _on_signal(self, signum: int, _frame) -> None:
        if not self.stop:
            LOG.info("signal %s: finishing pages in flight, then stopping", signal.Signals(signum).name)
        self.stop = True

    def _start_observer(self):
        if self.polling:
            return None
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        events = self.tracker.events

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                events.put(event.src_path)
                if getattr(event, "dest_path", ""):
                    events.put(event.dest_path)

        observer = Observer()
        observer.schedule(Handler(), str(self.paths["inbox"]), recursive=True)
        try:
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit
            LOG.warning("file events unavailable (%s): polling every %ss", exc, self.watch["poll_interval"])
            self.tracker.rescan_every = float(self.watch["poll_interval"])
            return None
        return observer

    def run(self) -> int:
        lock = self._lock()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        try:
            self._open_catalogue()  # a damaged catalogue stops the start with exit 10
        except sqlite3.OperationalError as exc:  # e.g. a full disk: the loop waits for it to clear
            LOG.error("cannot open the catalogue yet: %s", exc)
        shutil.rmtree(self.engine_root, ignore_errors=True)  # pages of a killed run, redone below
        self.engine_root.mkdir(parents=True, exist_ok=True)
        self.heartbeat.beat()
        self.heartbeat.start()
        observer = self._start_observer()
        LOG.info("watching %s (%s, %d workers, pid %d)", self.paths["inbox"],
                 "polling" if observer is None else "events", self.workers, os.getpid())
        try:
            self._loop()
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            self.heartbeat.halt.set()
            self.heartbeat.join(timeout=5)  # its temp file is the same as ours
            self.heartbeat.state["state"] = "stopped"
            self.heartbeat.beat()
            if self.conn is not None:
                self.conn.close()
            lock.close()
        LOG.info("stopped")
        return 0

    def _loop(self) -> None:
        pause, next_probe = 0.0, 0.0
        while not self.stop:
            # The write probe costs an fsync: every PROBE_EVERY seconds, and whenever a file fails
            # in a way the machine may be to blame for (_run_engine).
            probe = time.monotonic() >= next_probe
            next_probe = time.monotonic() + PROBE_EVERY if probe else next_probe
            fault = self.machine_fault(probe)
            if fault:
                # Not the files' fault: they stay where they are (inbox or claimed) until it clears.
                pause = min(max(2 * pause, FIRST_PAUSE), LONGEST_PAUSE)
                if self.heartbeat.state.get("problem") != fault:
                    LOG.error("paused, nothing is taken: %s (checking again every %.0f s at most)", fault,
                              LONGEST_PAUSE)
                self.heartbeat.state.update(state="blocked", problem=fault)
                self._sleep(pause)
                continue
            if pause:
                LOG.info("the problem has cleared: carrying on")
                pause = 0.0
            items = intake.claimed_items(self.claimed_root)
            self.heartbeat.state.update(state="busy" if items else "idle", in_progress=len(items), problem=None)
            if self.broker:  # files go out as tasks; the inbox is watched while they are worked on
                self._batch(self._queue_round)
                self.poll()
                if self.queued:
                    self._sleep(5 * TICK)
                    continue
            elif items:
                self._batch(lambda: self.process(items[: 4 * self.workers]))
                continue
            self.poll()
            if self.once and self.tracker.waiting() == 0 and not intake.claimed_items(self.claimed_root):
                return
            self._sleep(TICK)

    def _batch(self, step) -> None:
        try:
            step()
        except (OSError, sqlite3.Error, DigitizeError) as exc:  # e.g. the archive is full or gone
            LOG.error("batch failed, retrying in 10 s: %s", exc)
            self.suspect_catalogue = isinstance(exc, sqlite3.DatabaseError)
            self._sleep(10)

    def _queue_round(self) -> None:
        """Results in first (their files leave the claimed folder), then what is claimed and not yet sent."""
        self._collect()
        self.process([item for item in intake.claimed_items(self.claimed_root) if str(item.path) not in self.queued])

    def machine_fault(self, probe: bool = True) -> str | None:
        """What is wrong with the machine rather than with a file, or None: the catalogue
        deleted, replaced or damaged; (probe) a folder that cannot be written (disk full,
        read-only, permissions) or a program gone."""
        catalogue = self.paths["catalogue"]
        inode = store.identity(catalogue)
        if inode is None:
            return (f"tệp danh mục {catalogue} đã bị xóa: khôi phục bản sao lưu hoặc chạy 'digitize catalogue "
                    f"rebuild' / the catalogue {catalogue} was deleted: restore a backup or run "
                    "'digitize catalogue rebuild'")
        if inode != self.catalogue_inode or self.suspect_catalogue or self.conn is None:
            try:  # restored or rebuilt by the IT officer (or damaged in place): sound, or not used
                self._open_catalogue()
            except CatalogueError as exc:
                return exc.one_line()
            except sqlite3.OperationalError as exc:
                return (f"không mở được tệp danh mục ({exc}) / cannot open the catalogue ({exc}): "
                        "disk full, read-only or permissions")
        if not probe:
            return None
        for folder in (self.paths["work"], self.paths["archive"], self.paths["quarantine"]):
            try:
                probe = folder / PROBE_NAME
                with probe.open("wb") as handle:
                    handle.write(bytes(PROBE_BYTES))
                    handle.flush()
                    os.fsync(handle.fileno())
                probe.unlink()
            except OSError as exc:
                with contextlib.suppress(OSError):  # on a read-only folder even this fails
                    (folder / PROBE_NAME).unlink()
                return (f"không ghi được vào {folder} ({exc.strerror}) / cannot write to {folder} ({exc.strerror}): "
                        "disk full, read-only or permissions")
        try:
            programs.present()
        except DigitizeError as exc:
            return exc.one_line()
        return None

    def _open_catalogue(self) -> None:
        """Open the catalogue and check it (PRAGMA quick_check); remember which file it is."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        conn = store.connect(self.paths["catalogue"])
        try:
            store.check(conn, self.paths["catalogue"])
        except CatalogueError:
            conn.close()
            raise
        self.conn, self.suspect_catalogue = conn, False
        self.catalogue_inode = store.identity(self.paths["catalogue"])

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop and time.monotonic() < deadline:
            time.sleep(min(TICK, seconds))

    def poll(self) -> None:
        """Look at the inbox and claim what is complete."""
        now = time.monotonic()
        self.tracker.tick(now)
        for path in self.tracker.ready(now):
            seen = self.tracker.files[path]
            try:
                info = os.lstat(path)
                if (info.st_size, info.st_mtime_ns) != (seen.size, seen.mtime_ns):
                    continue  # written to since it was judged: judge again
                item = intake.claim(path, self.paths["inbox"], self.claimed_root)
            except FileNotFoundError:
                self.tracker.files.pop(path, None)
                continue
            except OSError as exc:
                LOG.error("cannot take %s: %s", path, exc)
                seen.stuck = True
                continue
            self.tracker.files.pop(path, None)
            LOG.info("claimed %s (%d bytes) as %s", item.rel, seen.size, item.claim)

    # -- one batch of claimed files --
    def process(self, items: list[intake.Claimed]) -> None:
        todo: dict[str, tuple[intake.Claimed, str]] = {}
        shas: set[str] = set()
        for item in items:
            if self.stop:
                return
            try:
                sha = sha256_of(item.path)
            except OSError as exc:
                self.fail(item, None, InputFileError("Không đọc được tệp.", f"Cannot read the file ({exc})."))
                continue
            if sha in shas:
                continue  # a second copy waits for the first to finish, then is a repeat
            shas.add(sha)
            if self._guarded(item, sha, self._triage, item, sha):
                todo[str(item.path)] = (item, sha)
        if todo and not self.stop:
            self._run_engine(todo)

    def _guarded(self, item: intake.Claimed, sha: str, step, *args):
        """One file's step; an unexpected error quarantines that file instead of stopping the service.

        Trouble with the folders or the catalogue themselves (OSError, sqlite3)
        is not the file's fault: it goes up, and the batch is retried later.
        """
        try:
            return step(*args)
        except (OSError, sqlite3.Error):
            raise
        except DigitizeError as exc:
            self.fail(item, sha, exc)
        except Exception as exc:  # a bug met on one file must not stop the others
            LOG.exception("unexpected error on %s", item.rel)
            self.fail(item, sha, EngineError("Lỗi không mong đợi khi xử lý tệp.",
                                             f"Unexpected error: {type(exc).__name__}: {exc}"))
        return None

    def _triage(self, item: intake.Claimed, sha: str) -> bool:
        """Whether the file goes on to jobs.process; repeats and resumed files are settled here."""
        return not self._known(item, sha)

    def _known(self, item: intake.Claimed, sha: str) -> bool:
        """Finish or set aside a file whose bytes the catalogue already has as a document."""
        rows = [row for row in store.documents_by_sha(self.conn, sha)
                if row["status"] in ("done", "skipped") and row["output"]]
        if not rows:
            return False
        original = Path(rows[0]["original"]) if rows[0]["original"] else None
        originals = self.paths["archive"] / "originals"
        if original is not None and originals in original.parents and not original.exists():
            move_durably(item.path, original)  # step 4 of a run that was killed
            intake.remove_empty_dirs(item.path.parent, self.claimed_root)
            LOG.info("resumed: original of %s filed at %s", item.rel, original)
            return True
        kept = layout.duplicate_place(self.paths["archive"], item.rel, sha)
        if store.note_intake(self.conn, item.claim, "duplicate", path_text(item.source(self.paths["inbox"])),
                             str(kept), sha, item.officer):
            LOG.info("repeat of document %s (%s): set aside in %s", rows[0]["id"], item.rel, kept)
        move_durably(item.path, kept)
        intake.remove_empty_dirs(item.path.parent, self.claimed_root)
        return True

    def _intake(self, item: intake.Claimed, sha: str) -> jobs.Intake:
        original = layout.original_place(self.paths["archive"], _claim_time(item.claim), item.rel, sha)
        return jobs.Intake(item.path, path_text(item.source(self.paths["inbox"])), item.officer, str(original))

    def _run_engine(self, todo: dict[str, tuple[intake.Claimed, str]]) -> None:
        if self.broker:
            self._enqueue(todo)
            return
        claimed = {str(item.path): (item, sha) for item, sha in todo.values()}
        results = jobs.process([self._intake(item, sha) for item, sha in todo.values()], self.run_settings, self.conn)
        try:
            for taken, result in results:
                item, sha = claimed[str(taken.path)]
                if result.status == DONE:
                    self._guarded(item, sha, self.file_done, item, taken, result)
                elif result.retry:
                    LOG.info("%s changed while it was read: reading it again", item.rel)
                elif result.exit_code in MACHINE_EXIT_CODES and self.machine_fault():
                    LOG.warning("%s not processed: the machine has a problem; the file waits", item.rel)
                    break  # the loop says what is wrong and waits for it to clear
                else:
                    self.fail(item, sha, _engine_error(result))
                self.poll()
                if self.stop:
                    break
        finally:
            results.close()  # on a stop: pages in flight finish, the rest stay claimed

    def _enqueue(self, todo: dict[str, tuple[intake.Claimed, str]]) -> None:
        """Step 3 sent to the workers, one task per claimed file; failures are recorded here (fail)."""
        from . import queue
        for item, sha in todo.values():
            taken = self._intake(item, sha)
            job = queue.job_for(item.path, self.pipeline["name"], source=taken.source, officer=taken.officer,
                                original=taken.original, record_failure=False)
            [handle] = queue.enqueue(self.broker, [job])
            self.queued[str(item.path)] = (item, sha, taken, handle)
            LOG.info("queued %s (task %s)", item.rel, handle.id)

    def _collect(self) -> None:
        """Finish step 4 (or Q) for every task whose result has come back."""
        from . import queue
        for path, (item, sha, taken, handle) in list(self.queued.items()):
            if not handle.ready():
                continue
            del self.queued[path]
            payload = handle.get(propagate=False)
            if handle.failed():  # a bug met on the worker: the file's, as _guarded says
                self.fail(item, sha, EngineError("Lỗi không mong đợi khi xử lý tệp.", f"Unexpected error: {payload!r}"))
                continue
            result = queue.result_of(payload)
            if result.status == DONE:
                self._guarded(item, sha, self.file_done, item, taken, result)
            else:
                self.fail(item, sha, _engine_error(result))

    def file_done(self, item: intake.Claimed, taken: jobs.Intake, result: DocumentResult) -> None:
        """Step 4's second half: the row is durable, the original moves to where it says, if it
        is still the file that was read (else it stays claimed and is read again)."""
        if sha256_of(item.path) != result.sha256:
            LOG.warning("%s changed after it was read: reading it again", item.rel)
            return
        move_durably(item.path, Path(taken.original))
        intake.remove_empty_dirs(item.path.parent, self.claimed_root)
        LOG.info("done %s -> %s (%d pages, %.1f s after claim)", item.rel, result.output, len(result.pages),
                 (datetime.now() - _claim_time(item.claim)).total_seconds())

    def fail(self, item: intake.Claimed, sha: str | None, error: DigitizeError) -> None:
        target = layout.quarantine_place(self.paths["quarantine"], item.rel, sha)
        source = path_text(item.source(self.paths["inbox"]))
        jobs.record_failure(self.conn, jobs.failed(source, sha, error), self.pipeline, item.officer, str(target))
        store.note_intake(self.conn, item.claim, "quarantined", source, str(target), sha, item.officer,
                          error.one_line())
        intake.quarantine(item, target, error, sha)
        intake.remove_empty_dirs(item.path.parent, self.claimed_root)
        LOG.warning("quarantined %s: %s", item.rel, error.en)


def _engine_error(result: DocumentResult) -> DigitizeError:
    """A failure comes back as 'vi / en' and an exit code; its advice follows the code."""
    vi, _, en = (result.error or "").partition(" / ")
    return ENGINE_ERRORS.get(result.exit_code, EngineError)(vi, en or vi)


def watch(config: dict, once: bool = False) -> int:
    setup_logging(site_config.resolve_paths(config)["home"])
    return Watcher(config, once).run()
