"""Work spread over machines: Celery with a Redis broker, when DIGITIZE_BROKER_URL=redis://… is set.

A task is the one path from engine to catalogue (jobs.process) for one document, run by
`digitize worker` on any machine that mounts the shared inbox, archive and quarantine
(same paths everywhere) and reaches the catalogue (PostgreSQL) and the broker; pages are
read in the worker's local scratch folder.

Delivery is at least once (late acknowledgement: a message leaves the queue only when its
task has finished; a worker killed mid-task leaves it to come back to another worker).
The effect is exactly once:
  - a document is keyed by its bytes' sha256 and the pipeline's hash: a task that finds
    that document done by that pipeline, its PDF in place, returns the recorded result
    and writes nothing (a redelivery after the commit, or the same file queued twice);
  - while a task works on a document it holds that document's lease in Redis (renewed
    as pages come back); a second delivery meanwhile waits and tries again later, so two
    machines never work one document at once; a killed worker's lease runs out;
  - outputs are written under staging names and renamed, the rows in one transaction
    (jobs.py), so a kill at any step leaves either nothing or the whole result.
A machine fault (disk full, share gone, catalogue unreachable, a program missing) retries
with exponential backoff; a bad file is recorded as failed, as `digitize process` does.
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from . import config as site_config, errors, jobs, programs, store
from .files import sha256_of
from .models import DONE, NO_LINK, DocumentResult, LinkDecision, PageReading, Part
from .pipelines import load_pipeline

BROKER_VARIABLE = "DIGITIZE_BROKER_URL"
QUEUE = "digitize"
TASK = "digitize.process_document"
# Seconds a delivered message may stay unacknowledged before the broker hands it out again
# (a worker that died holding it); longer than any one document takes.
VISIBILITY_VARIABLE = "DIGITIZE_TASK_VISIBILITY"
DEFAULT_VISIBILITY = 3600
# A document's lease outlasts the slowest page (renewed on every page), so only a dead worker's runs out.
LEASE_MARGIN = 60
PLACING_SECONDS = 600
# The machine's fault, not the file's: a program missing, the archive unwritable, the catalogue gone.
MACHINE_EXIT_CODES = {errors.MISSING_DEPENDENCY, errors.OUTPUT_FILE, errors.CATALOGUE}
LONGEST_BACKOFF = 600
DONE_KEY = "digitize:done:{minute}"  # tasks finished in that minute (digitize status)


class MachineFault(Exception):
    """Not the document's fault: the task is tried again later."""


class BrokerError(errors.ConfigError):
    """No broker, or not a Redis URL: exit 9, as other settings."""


def broker_url() -> str | None:
    return site_config.url_from_environment(BROKER_VARIABLE, ("redis", "rediss"), "redis://host:6379/0")


def required_broker() -> str:
    url = broker_url()
    if url is None:
        raise BrokerError(f"Chưa đặt {BROKER_VARIABLE}: không có hàng đợi để gửi việc.",
                          f"{BROKER_VARIABLE} is not set: there is no queue to send work to.",
                          f"Đặt {BROKER_VARIABLE}=redis://máy:6379/0 hoặc bỏ --queue.",
                          f"Set {BROKER_VARIABLE}=redis://host:6379/0 or leave out --queue.")
    return url


def visibility() -> int:
    return int(os.environ.get(VISIBILITY_VARIABLE) or DEFAULT_VISIBILITY)


@lru_cache(maxsize=None)
def app(url: str):
    """The Celery application on broker `url` (also the result store, for --wait and status)."""
    from celery import Celery
    celery = Celery("digitize", broker=url, backend=url)
    celery.conf.update(
        task_acks_late=True,  # acknowledged once finished: a killed worker's task comes back
        task_reject_on_worker_lost=True,  # a pool process killed mid-task: back to the queue at once
        worker_prefetch_multiplier=1,  # a worker holds only what it is working on
        task_default_queue=QUEUE,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_expires=7 * 24 * 3600,
        broker_transport_options={"visibility_timeout": visibility()},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    celery.task(bind=True, name=TASK, max_retries=None)(_process_document_task)
    return celery


def redis_client(url: str):
    import redis
    return redis.Redis.from_url(url)


# --- sending work ---
def job_for(path: Path, pipeline: str, out: Path | None = None, force: bool = False,
            source: str | None = None, officer: str | None = None, original: str | None = None,
            record_failure: bool = True) -> dict:
    """A task's arguments: plain JSON, every path absolute (the same on every machine).
    record_failure=False: the sender records a failed file itself (the watcher: where it quarantines it)."""
    path = path.absolute()
    return {"path": str(path), "source": source or str(path), "officer": officer,
            "original": original or str(path), "pipeline": pipeline, "out": str(out.absolute()) if out else None,
            "force": force, "record_failure": record_failure}


def result_of(payload: dict) -> DocumentResult:
    """A task's JSON back as the DocumentResult the sender's own code takes (pages without
    their text, which stays in the catalogue and the sidecar)."""
    parts = tuple(Part(part["part"], part.get("first_page", 1), part.get("last_page", 1), part["output"],
                       part.get("text_path"), LinkDecision.from_mapping(part["link"]) if part.get("link") else NO_LINK,
                       part.get("fields") or {}) for part in payload.get("parts") or ())
    pages = tuple(PageReading(page["orientation"], page["skew"], page["confidence"], "")
                  for page in payload.get("pages") or ())
    return DocumentResult(payload["source"], payload.get("sha256"), payload["status"], pages, parts,
                          error=payload.get("error"), exit_code=payload.get("exit_code") or 0,
                          kept_as_is=bool(payload.get("kept_as_is")))


def reprocess_jobs(key: str, documents: list[dict], pipelines_by_id: dict[int, str]) -> list[dict]:
    """`reprocess --queue`: one task per document of run `key`; a task marks its run item done in
    the transaction that records its result, and skips an item already done (a redelivery)."""
    return [{**job_for(Path(document.get("original") or document["source"]), pipelines_by_id[document["id"]],
                       source=document["source"], officer=document["officer"], original=document["original"]),
             "run_key": key, "document_id": document["id"],
             "was": {column: document[column] for column in ("dossier_code", "link_status", "link_method")}}
            for document in documents]


def enqueue(url: str, jobs_to_send: list[dict]) -> list[Any]:
    """Send one task per document; their AsyncResults, in order."""
    task = app(url).signature(TASK)
    return [task.apply_async(args=(job,)) for job in jobs_to_send]


def wait(handles: list[Any], sources: list[str]) -> Iterator[dict]:
    """Each task's result, in the order sent; a task that raised (a bug) as a failed result."""
    for handle, source in zip(handles, sources):
        payload = handle.get(timeout=None, interval=0.5, propagate=False)
        if handle.failed():
            error = errors.EngineError("Lỗi không mong đợi trên máy xử lý.", f"Unexpected error on the worker: {payload!r}")
            payload = {"source": source, "sha256": None, "status": "failed", "output": None,
                       "error": error.one_line(), "exit_code": error.exit_code}
        yield payload


# --- doing work (in `digitize worker`) ---
def _process_document_task(task, job: dict) -> dict:
    try:
        return process_document(job, redis_client(task.app.conf.broker_url))
    except DocumentBusy:
        raise task.retry(countdown=_countdown(30))
    except (MachineFault, OSError, sqlite3.OperationalError) as exc:
        raise task.retry(exc=MachineFault(str(exc)), countdown=_countdown(5 * 2 ** task.request.retries))


def _countdown(seconds: float) -> float:
    """A retry's wait: at most LONGEST_BACKOFF, and under half the visibility timeout (a message
    waiting in a worker longer than that would be handed out again meanwhile)."""
    return min(seconds, LONGEST_BACKOFF, visibility() / 2)


class DocumentBusy(Exception):
    """Another worker holds this document's lease."""


@contextmanager
def _placing(client, name: str) -> Iterator[None]:
    """Choosing names and writing files into place (a long book's PDF is assembled meanwhile),
    one machine at a time per file name (folded to lower case: SMB compares names without case).
    A dead holder's lock runs out after PLACING_SECONDS; one still busy then keeps its files."""
    lock = client.lock(f"digitize:placing:{name.lower()}", timeout=PLACING_SECONDS)
    if not lock.acquire(blocking_timeout=PLACING_SECONDS):
        raise MachineFault(f"the name {name} stayed locked for {PLACING_SECONDS} s")
    try:
        yield
    finally:
        _release(lock)


def _release(lock) -> None:
    from redis.exceptions import LockError
    try:
        lock.release()
    except LockError:  # it ran out meanwhile: nothing of ours left to release
        pass


def _recorded(conn, sha256: str, pipeline: dict) -> dict | None:
    """The result of a document already done by this pipeline, its PDFs in place; else None."""
    rows = [row for row in store.documents_by_sha(conn, sha256) if row["status"] == DONE]
    if not rows or any(row["pipeline_hash"] != pipeline["hash"] or not row["output"]
                       or not Path(row["output"]).exists() for row in rows):
        return None
    first = rows[0]
    return {"source": first["source"], "sha256": sha256, "status": DONE, "output": first["output"],
            "text_path": first["text_path"], "pages": [], "error": None, "exit_code": 0,
            "dossier": first["dossier_code"], "already_done": True,
            "parts": [{"part": row["part"], "output": row["output"], "dossier": row["dossier_code"]} for row in rows]}


def scratch_root() -> Path:
    """This machine's local scratch space for pages being read (DIGITIZE_SCRATCH, else the temp folder)."""
    root = Path(os.environ.get("DIGITIZE_SCRATCH") or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def process_document(job: dict, client) -> dict:
    """One document through jobs.process, at most once in effect (see the module's docstring)."""
    config = site_config.load_config()
    paths = site_config.resolve_paths(config)
    pipeline = load_pipeline(job["pipeline"])
    path = Path(job["path"])
    try:
        sha256 = sha256_of(path)
    except FileNotFoundError:
        sha256 = None  # jobs.process says so, as a failed file
    lease = client.lock(f"digitize:lease:{sha256 or job['source']}",
                        timeout=float(config["processing"]["page_timeout"]) + LEASE_MARGIN)
    if not lease.acquire(blocking=False):
        raise DocumentBusy(job["source"])
    conn = scratch = None
    key, document_id = job.get("run_key"), job.get("document_id")
    try:
        conn = store.connect(paths["catalogue"])
        if key is not None:
            item = next((i for i in store.run_items(conn, key) if i["document_id"] == document_id), None)
            if item is None or item["status"] == "done":
                return {"source": job["source"], "sha256": sha256, "status": DONE, "already_done": True,
                        "document_id": document_id, "exit_code": 0, "error": None}
        elif sha256 and not job["force"] and (recorded := _recorded(conn, sha256, pipeline)):
            return recorded
        destination = jobs.Destination(Path(job["out"]), filed=False) if job["out"] \
            else jobs.Destination(paths["archive"])
        destination.root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="digitize-task-", dir=scratch_root()))
        run = jobs.Run(pipeline, config, destination, 1, scratch, force=job["force"],
                       on_page=lambda _source: _renew(lease),
                       placing=lambda name: _placing(client, name), also=_mark_item(job))
        intake = jobs.Intake(path, job["source"], job["officer"], job["original"])
        for _, result in jobs.process([intake], run, conn):
            if result.status != DONE:
                if result.retry or result.exit_code in MACHINE_EXIT_CODES:
                    raise MachineFault(result.error)
                if job.get("record_failure", True):
                    jobs.record_failure(conn, result, pipeline, job["officer"], result.source)
                if key is not None:
                    with store.transaction(conn):
                        store.finish_item(conn, key, document_id, "failed", result.error)
            finished = DONE_KEY.format(minute=int(time.time() // 60))
            client.incr(finished)
            client.expire(finished, 3600)
            return result.to_json()
        raise MachineFault(f"no result for {job['source']}")
    finally:
        _release(lease)
        if conn is not None:
            conn.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _renew(lease) -> None:
    """The lease's time starts again (a page came back); one that ran out is taken again if free."""
    from redis.exceptions import LockError
    try:
        lease.reacquire()
    except LockError:
        lease.acquire(blocking=False)


def _mark_item(job: dict):
    """For a reprocess run's task: its item marked done with the result, in one transaction."""
    if job.get("run_key") is None:
        return None

    from .reprocess import link_changed

    def also(_intake: jobs.Intake, result) -> Any:
        changed = link_changed(job["was"], result.link)
        return lambda conn: store.finish_item(conn, job["run_key"], job["document_id"], "done", link_changed=changed)
    return also


def run_worker(url: str, concurrency: int, name: str | None = None) -> int:
    """`digitize worker`: `concurrency` documents at once (one per core), each task reading its
    pages in a process of its own (engine.py: a page that crashes takes only that process),
    tesseract single-threaded. Tasks run in threads of this process, since Celery's own pool
    processes are daemons, which may not start the page processes; the OCR is in those."""
    programs.limit_threads()
    celery = app(url)
    node = name or f"digitize-{os.getpid()}@{socket.gethostname()}"
    celery.worker_main(["worker", "--loglevel=INFO", "--pool=threads", f"--concurrency={concurrency}",
                        "--prefetch-multiplier=1", "-Q", QUEUE, "-n", node, "--without-gossip", "--without-mingle"])
    return errors.OK


# --- digitize status ---
def queue_status(url: str) -> dict:
    """Queue length, workers answering, tasks finished per minute over the last ten minutes."""
    client = redis_client(url)
    waiting = int(client.llen(QUEUE))
    now = int(time.time() // 60)
    recent = [int(value or 0) for value in client.mget([DONE_KEY.format(minute=m) for m in range(now - 9, now + 1)])]
    replies = app(url).control.ping(timeout=1.0) or []
    return {"broker": store.shown_url(url), "queued": waiting, "workers": sorted(name for reply in replies for name in reply),
            "tasks_per_minute": round(sum(recent) / 10, 1)}
