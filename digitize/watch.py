"""`digitize watch`: the shared inbox as a service that never loses or doubles a scan.

A file is taken once it is complete: size and mtime unchanged for
[watch] stable_seconds and it opens cleanly as its type. A file that does not
open is taken (to be quarantined) only after [watch] broken_after seconds
unchanged, since a slow writer may pause in the middle of a PDF. Changes are
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
  3. OCR into archive/YYYY/MM/NAME.pdf + .txt (temp name, fsync, rename).
       kill during: a temp file and no row; the file is still claimed and
       redone; filing_target gives it the same name and clears the temps.
       kill after the PDF, before the row: redone, the same name is chosen
       (the PDF records the source's sha256) and overwritten: no second PDF.
  4. catalogue row (status done, original = archive/originals/...), one
     transaction, synchronous=FULL; then rename the claimed file to that
     original path.
       kill between: step 2 at the next start finds the row and the missing
       original and finishes the move; no second row (sha256 is unique).
  R. repeat: note the event (unique per claim id), then move to
     archive/duplicates/. Killed between: noted already, moved next time.
  Q. failure: write quarantine/REL.error.txt, record the failed row and the
     event (unique per claim id), then move the file beside its note.
     Killed in between: redone, the same free name is chosen, noted once.
Engine temp folders live in work/engine/, which only the watcher uses (one
watcher per home, by lock) and empties at start.
"""
from __future__ import annotations

import fcntl
import json
import logging
import logging.handlers
import os
import queue
import shutil
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import config as site_config, engine, intake, pages, store
from .files import PARTIAL, move_durably, sha256_of, write_atomic, write_text_atomic
from .errors import (AlreadyHasTextError, DigitizeError, EncryptedPdfError, EngineError, InputFileError,
                     OutputError)
from .privacy import mask_ids
from .vntext import nfc
from .pipelines import load_pipeline

LOG = logging.getLogger("digitize.watch")
TICK = 0.2  # seconds between looks at the files being watched
HEARTBEAT_SECONDS = 2.0
LOG_BYTES, LOG_BACKUPS = 5_000_000, 5
ENGINE_ERRORS = {4: InputFileError, 5: OutputError, 8: EncryptedPdfError}


# --- logging ---------------------------------------------------------------

class MaskingFormatter(logging.Formatter):
    """Masks the whole formatted line, tracebacks included, so no path or message leaks a CCCD."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_ids(super().format(record))


def setup_logging(home: Path) -> None:
    """A rotating log file under home/logs, and stderr (journald under systemd)."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    formatter = MaskingFormatter("%(asctime)s %(levelname)s %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(
        home / "logs" / "watch.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    console = logging.StreamHandler()
    LOG.handlers.clear()
    for handler in (file_handler, console):
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    logging.getLogger("watchdog").setLevel(logging.ERROR)  # its shutdown chatter is not news


# --- seeing files become complete ----------------------------------------

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
        """Files unchanged long enough: stable_seconds if they open, broken_after if not."""
        found = []
        for path, seen in self.files.items():
            age = now - seen.since
            if seen.stuck or age < self.stable:
                continue
            if seen.opens is None:
                seen.opens = opens_cleanly(path, self.config)
            if seen.opens or age >= self.broken_after:
                found.append(path)
        return found

    def waiting(self) -> int:
        return sum(1 for seen in self.files.values() if not seen.stuck)


def opens_cleanly(path: Path, config: dict) -> bool:
    """The file opens and decodes as its type (a scan still being written does not)."""
    try:
        pages.inspect_complete(path, config)
    except AlreadyHasTextError:
        return True
    except (DigitizeError, OSError):
        return False
    return True


# --- the service ------------------------------------------------------------

class Heartbeat(threading.Thread):
    """home/watch.heartbeat: pid, time, state, written every few seconds."""

    def __init__(self, path: Path):
        super().__init__(daemon=True, name="heartbeat")
        self.path = path
        self.state = {"pid": os.getpid(), "started": _now(), "state": "starting", "in_progress": 0}
        self.halt = threading.Event()

    def beat(self) -> None:
        payload = {**self.state, "time": _now(), "epoch": time.time()}
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        os.replace(temp, self.path)

    def run(self) -> None:
        while not self.halt.wait(HEARTBEAT_SECONDS):
            try:
                self.beat()
            except OSError as exc:
                LOG.warning("heartbeat not written: %s", exc)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _claim_age(claim: str) -> float:
    return time.time() - int(claim.split("-", 1)[0], 16) / 1e9


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
        self.workers = site_config.worker_count(config)
        self.file_timeout = float(self.watch["file_timeout"])
        # No single external call may outlast the file's own limit.
        self.engine_config = {**config, "processing": {
            **config["processing"],
            "page_timeout": min(float(config["processing"]["page_timeout"]), self.file_timeout)}}
        self.tracker = Tracker(self.paths["inbox"], self.watch, config, self.polling)
        self.stop = False
        self.conn = None
        self.heartbeat = Heartbeat(self.paths["home"] / "watch.heartbeat")

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
        self.conn = store.connect(self.paths["catalogue"])
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
            self.conn.close()
            lock.close()
        LOG.info("stopped")
        return 0

    def _loop(self) -> None:
        while not self.stop:
            items = intake.claimed_items(self.claimed_root)
            self.heartbeat.state.update(state="busy" if items else "idle", in_progress=len(items))
            if items:
                try:
                    self.process(items[: 4 * self.workers])
                except (OSError, sqlite3.Error, DigitizeError) as exc:  # e.g. the archive is full or gone
                    LOG.error("batch failed, retrying in 10 s: %s", exc)
                    self._sleep(10)
                continue
            self.poll()
            if self.once and self.tracker.waiting() == 0 and not intake.claimed_items(self.claimed_root):
                return
            self._sleep(TICK)

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
        """Whether the file goes to OCR; repeats, resumed files, text PDFs and bad files are settled here."""
        if self._known(item, sha):
            return False
        try:
            pages.inspect(item.path, self.config)
        except AlreadyHasTextError as exc:
            self.file_as_is(item, sha, exc)
            return False
        except OSError as exc:
            self.fail(item, sha, InputFileError("Không đọc được tệp.", f"Cannot read the file ({exc})."))
            return False
        return True

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
        kept = intake.duplicate_target(item, self.paths["archive"])
        if store.note_intake(self.conn, item.claim, "duplicate", str(item.source(self.paths["inbox"])),
                             str(kept), sha, item.officer):
            LOG.info("repeat of document %s (%s): set aside in %s", rows[0]["id"], item.rel, kept)
        move_durably(item.path, kept)
        intake.remove_empty_dirs(item.path.parent, self.claimed_root)
        return True

    def _run_engine(self, todo: dict[str, tuple[intake.Claimed, str]]) -> None:
        def target_for(source: Path, out_dir: Path, taken: set) -> Path:
            return intake.filing_target(source, todo[str(source)][1], out_dir, taken)

        results = engine.run(
            [item.path for item, _ in todo.values()], self.paths["archive"], self.pipeline,
            self.engine_config, self.workers, self.engine_root, target_for=target_for,
            on_page=lambda _source: self.poll(), file_timeout=self.file_timeout,
            registry=store.list_dossiers(self.conn), filing_root=self.paths["archive"],
        )
        try:
            for result in results:
                item, sha = todo[result["source"]]
                if result["status"] == "done":
                    self._guarded(item, sha, self.file_done, item, sha, result)
                else:
                    self.fail(item, sha, _engine_error(result))
                self.poll()
                if self.stop:
                    break
        finally:
            results.close()  # on a stop: pages in flight finish, the rest stay claimed

    def file_done(self, item: intake.Claimed, sha: str, result: dict) -> None:
        original = intake.original_target(item, sha, self.paths["archive"])
        result = {**result, "sha256": sha, "source": str(item.source(self.paths["inbox"]))}
        store.save_result(self.conn, result, self.pipeline, officer=item.officer, original=str(original))
        move_durably(item.path, original)
        intake.remove_empty_dirs(item.path.parent, self.claimed_root)
        LOG.info("done %s -> %s (%d pages, %.1f s after claim)", item.rel, result["output"],
                 len(result["pages"]), _claim_age(item.claim))

    def file_as_is(self, item: intake.Claimed, sha: str, reason: AlreadyHasTextError) -> None:
        """A PDF that already has text is filed as it came, with its own text as the sidecar."""
        target = intake.filing_target(item.path, sha, self.paths["archive"], set())
        write_atomic(target, lambda temp: shutil.copyfile(item.path, temp))
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(item.path), "-"], capture_output=True,
                              timeout=float(self.engine_config["processing"]["page_timeout"]), check=False)
        text_path = target.with_suffix(".txt")
        write_text_atomic(text_path, nfc(text.stdout.decode("utf-8", "replace")))
        self.file_done(item, sha, {"status": "skipped", "output": str(target), "text_path": str(text_path),
                                   "error": reason.one_line(), "pages": []})

    def fail(self, item: intake.Claimed, sha: str | None, error: DigitizeError) -> None:
        target = intake.quarantine_target(item, self.paths["quarantine"])
        source = str(item.source(self.paths["inbox"]))
        if sha:
            store.save_result(self.conn, {"sha256": sha, "source": source, "output": None, "text_path": None,
                                          "status": "failed", "error": error.one_line(), "pages": []},
                              self.pipeline, officer=item.officer, original=str(target))
        store.note_intake(self.conn, item.claim, "quarantined", source, str(target), sha, item.officer,
                          error.one_line())
        intake.quarantine(item, target, error, sha)
        intake.remove_empty_dirs(item.path.parent, self.claimed_root)
        LOG.warning("quarantined %s: %s", item.rel, error.en)


def _engine_error(result: dict) -> DigitizeError:
    """The engine reports a failure as 'vi / en' and an exit code; its advice follows the code."""
    vi, _, en = (result["error"] or "").partition(" / ")
    return ENGINE_ERRORS.get(result["exit_code"], EngineError)(vi, en or vi)


def watch(config: dict, once: bool = False) -> int:
    setup_logging(site_config.resolve_paths(config)["home"])
    return Watcher(config, once).run()


# --- digitize status ---------------------------------------------------------

def status(config: dict) -> dict:
    """What the officers and the IT officer want to know at a glance."""
    paths = site_config.resolve_paths(config)
    waiting = sum(1 for _ in intake.walk_inbox(paths["inbox"])) if paths["inbox"].is_dir() else 0
    claimed = paths["work"] / "claimed"
    in_progress = sum(1 for _, _, files in os.walk(claimed) for name in files
                      if not name.endswith(PARTIAL))
    failed = sum(1 for _, _, files in os.walk(paths["quarantine"]) for name in files
                 if not name.endswith(".error.txt") and not name.startswith("."))
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = {"done_today": 0, "failed_today": 0, "duplicates_today": 0, "in_review": 0, "last_error": None}
    if paths["catalogue"].exists():
        conn = store.connect(paths["catalogue"])
        try:
            counts = store.watch_counts(conn, midnight.astimezone(timezone.utc).isoformat(timespec="seconds"))
        finally:
            conn.close()
    return {"service": _service(paths["home"]), "waiting": waiting, "in_progress": in_progress,
            "failed": failed, **counts}


def _service(home: Path) -> dict:
    try:
        beat = json.loads((home / "watch.heartbeat").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"running": False, "pid": None, "heartbeat": None, "age_seconds": None, "state": None}
    age = round(time.time() - float(beat.get("epoch", 0)), 1)
    try:
        os.kill(int(beat["pid"]), 0)
        alive = True
    except (OSError, ValueError, KeyError):
        alive = False
    running = alive and beat.get("state") != "stopped" and age < 5 * HEARTBEAT_SECONDS
    return {"running": running, "pid": beat.get("pid"), "heartbeat": beat.get("time"),
            "age_seconds": age, "state": beat.get("state")}


def format_status(report: dict) -> str:
    service = report["service"]
    if service["running"]:
        line = (f"đang chạy / running (pid {service['pid']}, nhịp tim {service['age_seconds']:.0f} s trước "
                f"/ heartbeat {service['age_seconds']:.0f} s ago, {service['state']})")
    elif service["heartbeat"]:
        line = f"KHÔNG chạy / NOT running (nhịp tim cuối / last heartbeat {service['heartbeat']})"
    else:
        line = "chưa từng chạy / never started"
    last = report["last_error"]
    rows = [
        ("Dịch vụ / Service", line),
        ("Đang chờ / Waiting", report["waiting"]),
        ("Đang xử lý / In progress", report["in_progress"]),
        ("Xong hôm nay / Done today", report["done_today"]),
        ("Lỗi, trong thư mục cách ly / Failed, in quarantine",
         f"{report['failed']} (hôm nay / today: {report['failed_today']})"),
        ("Cần xem lại / In review", report["in_review"]),
        ("Tệp trùng hôm nay / Repeats today", report["duplicates_today"]),
        ("Lỗi gần nhất / Last error",
         f"{last['created_at']} {last['source']}: {last['error']}" if last else "-"),
    ]
    width = max(len(label) for label, _ in rows)
    return mask_ids("\n".join(f"{label:<{width}}  {value}" for label, value in rows))
