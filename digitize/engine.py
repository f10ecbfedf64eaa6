"""The page engine shared by `digitize process`, the watcher and reprocessing.

Every page of every selected document goes through one pool of worker
processes (one page a task, OMP_THREAD_LIMIT=1 in each), so both cores stay
busy whether the batch is one long PDF or many one-page scans. A bounded
number of tasks is in flight, so memory stays flat in batch size. A
document is assembled as soon as its last page is back.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import psutil

from . import assemble, barcodes, clean, link, ocr, orient, pages
from .files import fsync_dir, sha256_of, write_text_atomic
from .errors import AlreadyHasTextError, DigitizeError, EngineError, OutputError
from .orient import PageAngle
from .vntext import nfc


@dataclass(frozen=True)
class PageTask:
    info: pages.ScanInfo
    index: int
    pipeline: dict
    work_dir: str
    timeout: float


@dataclass(frozen=True)
class PageResult:
    index: int
    orientation: int
    skew: float
    confidence: float
    text: str
    barcodes: list[dict]
    image: assemble.AssembledPage


@dataclass(frozen=True)
class Settings:
    """What stays the same for every document of one run."""

    pipeline: dict
    workers: int
    page_timeout: float
    registry: tuple[dict, ...] = ()  # dossiers a document may be linked to
    filing_root: Path | None = None  # linked documents go to filing_root/YYYY/Qn/<code>/
    file_timeout: float | None = None
    on_page: Callable[[str], None] | None = None


@dataclass
class Job:
    """One input document on its way through the pool."""

    source: Path
    sha256: str
    target: Path
    info: pages.ScanInfo | None = None
    work_dir: Path | None = None
    results: dict[int, PageResult] = field(default_factory=dict)
    error: DigitizeError | None = None
    started: float | None = None  # monotonic time its first page went to a worker


# Workers are forked from a clean server process, never from the caller: a
# fork of a process with threads (the watcher's, OpenCV's own pool) can
# inherit a held lock and hang in the child.
POOL_CONTEXT = multiprocessing.get_context("forkserver")
POOL_CONTEXT.set_forkserver_preload(["digitize.engine"])


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=POOL_CONTEXT, initializer=_init_worker,
                               initargs=(os.getpid(),))


def _exit_when_gone(owner_pid: int) -> None:
    """A worker outlives a SIGKILLed owner otherwise: its parent is the fork server, which
    itself waits for the workers. Orphans would hold the watcher's lock and temp dirs."""
    while True:
        time.sleep(1.0)
        try:
            gone = psutil.Process(owner_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            gone = True
        if gone:
            os._exit(1)


def _init_worker(owner_pid: int) -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole terminal process group: the owner decides when
    # to stop, a worker finishes its page.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_gone, args=(owner_pid,), daemon=True).start()


def process_page(task: PageTask) -> PageResult:
    """Load, orient, deskew, clean and OCR one page; write its JPEG and text page to work_dir."""
    pipeline = task.pipeline
    dpi = task.info.dpis[task.index]
    image = pages.load_page(task.info, task.index, task.timeout)
    grey = clean.to_grey(image)
    angle = orient.find_page_angle(grey, dpi) if pipeline["orient"]["enabled"] else PageAngle(0, 0.0, 0.0)
    skew = angle.skew if pipeline["deskew"]["enabled"] and abs(angle.skew) <= pipeline["deskew"]["max_angle"] else 0.0
    turn = angle.orientation + skew
    if turn:
        image = orient.rotate(image, -turn, fill=255)
        grey = clean.to_grey(image)
    archive = clean.archive_image(image, pipeline["output"]["keep_color"])
    base = Path(task.work_dir) / f"page-{task.index + 1:05d}"
    ocr_grey, ocr_dpi = clean.at_most(
        clean.ocr_image(grey, pipeline["clean"]["denoise"], pipeline["clean"]["remove_border"]),
        dpi, pipeline["ocr"]["max_dpi"],
    )
    text_page = ocr.recognise(ocr_grey, ocr_dpi, base, pipeline["ocr"]["lang"], pipeline["ocr"]["psm"],
                              task.timeout)
    colour = archive.ndim == 3
    encoded_ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(archive, cv2.COLOR_RGB2BGR) if colour else archive,
        [cv2.IMWRITE_JPEG_QUALITY, int(pipeline["output"]["jpeg_quality"])],
    )
    if not encoded_ok:
        raise EngineError("Không mã hóa được ảnh trang.", "Could not encode the page image.")
    image_path = base.with_suffix(".jpg")
    image_path.write_bytes(jpeg.tobytes())
    return PageResult(
        index=task.index,
        orientation=angle.orientation,
        skew=round(skew, 3),
        confidence=text_page.confidence,
        text=text_page.text,
        # Codes are read on the upright page: zxing copes with any angle, but not with every skew.
        barcodes=barcodes.decode_barcodes(grey),
        image=assemble.AssembledPage(
            str(image_path), archive.shape[1], archive.shape[0], dpi, colour, text_page.text_pdf,
        ),
    )


def document_text(results: list[PageResult]) -> str:
    """The sidecar: pages in order, separated by form feeds as pdftotext does."""
    return nfc("\n\f".join(result.text for result in results) + "\n")


def _part_target(job: Job, number: int, dossier: str | None, settings: Settings) -> Path:
    """Where part `number` of a document goes: its own name beside the first part, or,
    once linked and when filing is on, the dossier's folder in the archive."""
    target = job.target if number == 0 else job.target.with_name(f"{job.target.stem}-part{number + 1}.pdf")
    if dossier and settings.filing_root is not None:
        received = next((d.get("received_date") for d in settings.registry if d["code"] == dossier), None)
        target = assemble.own_name(link.filing_path(settings.filing_root, dossier, received, target.name),
                                   job.sha256)
    return target


def _metadata(job: Job, part: dict, settings: Settings) -> dict[str, str | None]:
    fields = part["fields"]
    return {
        "title": job.source.name,
        "source": str(job.source),
        "sha256": job.sha256,
        "pageCount": str(part["last_page"] - part["first_page"] + 1),
        "firstPage": str(part["first_page"]),
        "pipeline": settings.pipeline["name"],
        "pipelineVersion": settings.pipeline["hash"],
        "ocrLanguage": settings.pipeline["ocr"]["lang"],
        "dossierCode": part["dossier"],
        "linkStatus": part["link"]["status"],
        "documentKind": fields.get("kind"),
        "procedureCode": fields.get("procedure_code"),
        "procedureName": fields.get("procedure_name"),
        "applicant": fields.get("applicant"),
        "ownerId": fields.get("cccd"),
        "numberSymbol": fields.get("number"),
        "issueDate": fields.get("issue_date"),
    }


def _finish(job: Job, settings: Settings) -> dict:
    """Split into dossiers, link each, write every part's PDF and sidecar, then rename them all."""
    ordered = [job.results[i] for i in range(job.info.page_count)]
    analysis = link.analyse_document([r.text for r in ordered], [r.barcodes for r in ordered],
                                     job.source.name, list(settings.registry))
    # Everything is written and fsynced under staging names first; only then
    # renamed over any previous output (a rename needs no free space), so a
    # full disk leaves the previous PDF and sidecar whole (reprocess).
    staged: list[tuple[Path, Path]] = []
    parts = []
    try:
        for number, part in enumerate(analysis["parts"]):
            chosen = ordered[part["first_page"] - 1:part["last_page"]]
            target = _part_target(job, number, part["dossier"], settings)
            text_path = target.with_suffix(".txt")
            target.parent.mkdir(parents=True, exist_ok=True)
            staged_pdf = target.with_name(f".{target.name}.new")
            staged_text = text_path.with_name(f".{text_path.name}.new")
            staged += [(staged_pdf, target), (staged_text, text_path)]
            assemble.assemble_pdf([r.image for r in chosen], staged_pdf, _metadata(job, part, settings))
            write_text_atomic(staged_text, document_text(chosen))
            parts.append({
                "part": number, "first_page": part["first_page"], "last_page": part["last_page"],
                "output": str(target), "text_path": str(text_path), "dossier": part["dossier"],
                "link": part["link"], "fields": part["fields"], "kind": part["fields"].get("kind"),
            })
        for staged_file, final in staged:
            os.replace(staged_file, final)
        for folder in {final.parent for _, final in staged}:
            fsync_dir(folder)
    except OSError as exc:
        for staged_file, _ in staged:
            staged_file.unlink(missing_ok=True)
        raise OutputError(
            "Không ghi được tệp PDF kết quả.", f"Could not write the output PDF ({exc})."
        ) from exc
    first = parts[0]
    return {
        "output": first["output"],
        "text_path": first["text_path"],
        "pages": [
            {"orientation": r.orientation, "skew": r.skew, "confidence": r.confidence, "text": r.text}
            for r in ordered
        ],
        "dossier": first["dossier"],
        "link": first["link"],
        "fields": first["fields"],
        "parts": parts,
    }


def _result(job: Job, status: str, **extra) -> dict:
    error = job.error
    return {
        "source": str(job.source),
        "sha256": job.sha256,
        "status": status,
        "output": None,
        "text_path": None,
        "pages": [],
        "error": error.one_line() if error else None,
        "exit_code": error.exit_code if error else 0,
        "dossier": None,
        "link": None,
        "fields": {},
        "parts": [],
        **extra,
    }


def output_target(source: Path, out_dir: Path, taken: set[Path]) -> Path:
    """`<stem>.pdf` in out_dir; two inputs with one stem keep their extension apart."""
    target = out_dir / f"{source.stem}.pdf"
    if target in taken or target.resolve() == source.resolve():
        target = out_dir / f"{source.stem}.{source.suffix.lstrip('.') or 'scan'}.pdf"
    taken.add(target)
    return target


def run(sources: Iterable[Path], out_dir: Path, pipeline: dict, config: dict, workers: int,
        work_root: Path, force: bool = False,
        target_for: Callable[[Path, Path, set], Path] = output_target,
        on_page: Callable[[str], None] | None = None,
        file_timeout: float | None = None, registry: Iterable[dict] = (),
        filing_root: Path | None = None) -> Iterator[dict]:
    """Process documents; yield one result dict per document as each finishes.

    Results for documents that fail before OCR (bad input) come first.
    on_page(source) is called as each page comes back (progress bars).
    file_timeout: no page of a document starts later than this many seconds after
    its first page did (a page in flight is bounded by page_timeout), so one huge
    or pathological file cannot hold the pool for long.
    registry: the dossiers to link to; filing_root: where linked documents are
    filed by year, quarter and dossier code (None: they stay at their target).
    A scan of several dossiers gives one result with a part per dossier.
    """
    settings = Settings(pipeline, workers, float(config["processing"]["page_timeout"]), tuple(registry),
                        filing_root, file_timeout, on_page)
    taken: set[Path] = set()
    jobs: list[Job] = []
    for source in sources:
        source = source.absolute()
        job = Job(source, "", out_dir)
        try:
            job.sha256 = sha256_of(source)
            job.info = pages.inspect(source, config, force=force)
        except AlreadyHasTextError as exc:
            job.error = exc
            yield _result(job, "skipped")
            continue
        except DigitizeError as exc:
            job.error = exc
            yield _result(job, "failed")
            continue
        except OSError as exc:
            job.error = pages.InputFileError("Không đọc được tệp.", f"Cannot read the file ({exc}).")
            yield _result(job, "failed")
            continue
        job.target = target_for(source, out_dir, taken)
        job.work_dir = Path(tempfile.mkdtemp(prefix=f"{job.sha256[:12]}-", dir=work_root))
        jobs.append(job)
    if jobs:
        yield from _run_pages(jobs, settings)


def _tasks(jobs: list[Job], pipeline: dict, timeout: float) -> Iterator[tuple[Job, PageTask]]:
    for job in jobs:
        for index in range(job.info.page_count):
            yield job, PageTask(job.info, index, pipeline, str(job.work_dir), timeout)


def _over_time(job: Job, file_timeout: float | None) -> bool:
    """Whether the job has failed, marking it failed once it has run past file_timeout."""
    if job.error is None and file_timeout and job.started is not None \
            and time.monotonic() - job.started > file_timeout:
        job.error = EngineError(
            f"Xử lý tệp quá thời gian cho phép ({file_timeout:.0f} giây).",
            f"Processing the file took longer than the limit ({file_timeout:.0f} s).",
        )
    return job.error is not None


def _run_pages(jobs: list[Job], settings: Settings) -> Iterator[dict]:
    workers, on_page = settings.workers, settings.on_page
    pending = _tasks(jobs, settings.pipeline, settings.page_timeout)
    retry: deque[tuple[Job, PageTask]] = deque()
    in_flight: dict[Future, tuple[Job, PageTask, bool]] = {}
    remaining = {id(job): job.info.page_count for job in jobs}
    pool = _new_pool(workers)

    def page_done(job: Job) -> Iterator[dict]:
        remaining[id(job)] -= 1
        if remaining[id(job)] == 0:
            yield _complete(job, settings)

    try:
        while True:
            # After a worker died, pages are retried one at a time, so the
            # page that kills its worker is the only one that fails.
            careful = bool(retry) or any(retried for _, _, retried in in_flight.values())
            while len(in_flight) < (1 if careful else 2 * workers):
                retried = bool(retry)
                job, task = retry.popleft() if retry else next(pending, (None, None))
                if job is None:
                    break
                if _over_time(job, settings.file_timeout):
                    yield from page_done(job)
                    continue
                if job.started is None:
                    job.started = time.monotonic()
                in_flight[pool.submit(process_page, task)] = (job, task, retried)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                if future not in in_flight:
                    continue
                job, task, retried = in_flight.pop(future)
                try:
                    job.results[task.index] = future.result()
                    if on_page:
                        on_page(str(job.source))
                except BrokenProcessPool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _new_pool(workers)
                    if retried:
                        job.error = EngineError(
                            f"Tiến trình xử lý trang {task.index + 1} bị dừng đột ngột.",
                            f"The worker processing page {task.index + 1} died.",
                        )
                        yield from page_done(job)
                    else:
                        retry.append((job, task))
                    retry.extend((j, t) for j, t, _ in in_flight.values())
                    in_flight.clear()
                    continue
                except DigitizeError as exc:
                    job.error = exc
                except Exception as exc:  # a bug on one page must not stop the batch
                    job.error = EngineError(
                        f"Lỗi khi xử lý trang {task.index + 1}.",
                        f"Error processing page {task.index + 1}: {type(exc).__name__}: {exc}",
                    )
                yield from page_done(job)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for job in jobs:
            if job.work_dir:
                shutil.rmtree(job.work_dir, ignore_errors=True)


def _complete(job: Job, settings: Settings) -> dict:
    try:
        if job.error is None:
            return _result(job, "done", **_finish(job, settings))
    except DigitizeError as exc:
        job.error = exc
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
    return _result(job, "failed")
