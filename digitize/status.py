"""`digitize status`: the watcher's heartbeat, and what is waiting, in progress, done and failed.

The watcher writes home/watch.heartbeat (pid, time, state) every HEARTBEAT_SECONDS;
the service counts as running while that is fresh and the process is alive.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from . import config as site_config, intake, store
from .errors import CatalogueError
from .files import PARTIAL
from .logs import LOG
from .privacy import shown

HEARTBEAT_SECONDS = 2.0


class Heartbeat(threading.Thread):
    """home/watch.heartbeat: pid, time, state, written every few seconds."""

    def __init__(self, path: Path):
        super().__init__(daemon=True, name="heartbeat")
        self.path = path
        self.state = {"pid": os.getpid(), "started": _now(), "state": "starting", "in_progress": 0}
        self.halt = threading.Event()

    def beat(self) -> None:
        """Write the heartbeat; never raises: a heartbeat that cannot be written goes stale,
        which `status` reports."""
        payload = json.dumps({**self.state, "time": _now(), "epoch": time.time()}, ensure_ascii=False).encode()
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            temp.write_bytes(payload)
            os.replace(temp, self.path)
        except OSError:
            # A full disk has no room for a second file; the heartbeat's own block is reused,
            # so `status` can still say what is wrong.
            temp.unlink(missing_ok=True)
            try:
                with self.path.open("r+b" if self.path.exists() else "wb", buffering=0) as handle:
                    handle.write(payload)
                    handle.truncate()
            except OSError as exc:
                LOG.warning("heartbeat not written: %s", exc)

    def run(self) -> None:
        while not self.halt.wait(HEARTBEAT_SECONDS):
            self.beat()


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


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
    counts = {"done_today": 0, "failed_today": 0, "duplicates_today": 0, "in_review": 0, "last_error": None,
              "unsigned": 0, "last_unsigned": None}
    catalogue = None  # a problem with the catalogue itself: the rest is still reported
    try:
        if store.exists(paths["catalogue"]):
            conn = store.connect(paths["catalogue"])
            try:
                counts = store.watch_counts(conn, midnight.astimezone(timezone.utc).isoformat(timespec="seconds"))
            finally:
                conn.close()
        else:
            catalogue = "chưa có tệp danh mục / no catalogue yet"
    except (CatalogueError, sqlite3.DatabaseError) as exc:
        catalogue = (exc if isinstance(exc, CatalogueError) else store.damaged(paths["catalogue"], exc)).one_line()
    return {"service": service(paths["home"]), "catalogue_problem": catalogue, "waiting": waiting,
            "in_progress": in_progress, "failed": failed, **counts, "catalogue": store.location(paths["catalogue"]),
            "queue": queue_state()}


def queue_state() -> dict | None:
    """With a broker configured (queue.py): documents queued, workers answering, tasks per minute."""
    from . import queue
    url = queue.broker_url()
    if url is None:
        return None
    try:
        return queue.queue_status(url)
    except Exception as exc:  # the broker unreachable: said, not raised (status must always answer)
        return {"broker": store.shown_url(url), "problem": f"{type(exc).__name__}: {exc}"}


def service(home: Path) -> dict:
    try:
        beat = json.loads((home / "watch.heartbeat").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"running": False, "pid": None, "heartbeat": None, "age_seconds": None, "state": None,
                "problem": None}
    age = round(time.time() - float(beat.get("epoch", 0)), 1)
    try:
        os.kill(int(beat["pid"]), 0)
        alive = True
    except (OSError, ValueError, KeyError):
        alive = False
    running = alive and beat.get("state") != "stopped" and age < 5 * HEARTBEAT_SECONDS
    return {"running": running, "pid": beat.get("pid"), "heartbeat": beat.get("time"),
            "age_seconds": age, "state": beat.get("state"), "problem": beat.get("problem")}


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
        ("Sự cố máy / Machine problem", service["problem"] or "-"),
        ("Danh mục / Catalogue", report["catalogue_problem"] or "tốt / sound"),
        ("Đang chờ / Waiting", report["waiting"]),
        ("Đang xử lý / In progress", report["in_progress"]),
        ("Xong hôm nay / Done today", report["done_today"]),
        ("Lỗi, trong thư mục cách ly / Failed, in quarantine",
         f"{report['failed']} (hôm nay / today: {report['failed_today']})"),
        ("Cần xem lại / In review", report["in_review"]),
        ("Tệp trùng hôm nay / Repeats today", report["duplicates_today"]),
        ("Chờ ký số / Waiting for a signature",
         f"{report['unsigned']}" + (f" ({report['last_unsigned']['reason']})" if report["last_unsigned"] else "")),
        ("Lỗi gần nhất / Last error",
         f"{last['created_at']} {last['source']}: {last['error']}" if last else "-"),
    ]
    rows.insert(2, ("Nơi lưu danh mục / Catalogue at", report["catalogue"]))
    queued = report["queue"]
    if queued and "problem" in queued:
        rows.append(("Hàng đợi / Queue", f"{queued['broker']}: KHÔNG kết nối được / UNREACHABLE ({queued['problem']})"))
    elif queued:
        rows += [("Hàng đợi / Queue", f"{queued['broker']}: {queued['queued']} đang chờ / queued"),
                 ("Máy xử lý còn sống / Workers alive", f"{len(queued['workers'])} " + ", ".join(queued["workers"])),
                 ("Việc mỗi phút / Tasks per minute", f"{queued['tasks_per_minute']} (10 phút qua / last 10 min)")]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {shown(value)}" for label, value in rows)
