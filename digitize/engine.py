"""The page engine under jobs.process (and so under `process`, the watcher and reprocessing).

Every page of every selected document goes through one pool of worker
processes (one page a task, OMP_THREAD_LIMIT=1 in each), so both cores stay
busy whether the batch is one long PDF or many one-page scans. A bounded
number of tasks is in flight, so memory stays flat in batch size. A
document is handed on as soon as its last page is back; its page images
live in its work folder until the caller asks for the next document.
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
import numpy as np
import psutil

from . import assemble, barcodes, clean, ocr, orient, pages, programs, sheet
from .files import sha256_of
from .errors import DigitizeError, EngineError, InputFileError
from .models import PageReading
from .orient import PageAngle


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
    reading: PageReading
    barcodes: list[dict]
    image: assemble.AssembledPage  # files in the document's work folder
    grey_by: str | None = None  # why a grey page is grey: "scanner" or "pipeline"; None for colour


@dataclass(frozen=True)
class Scanned:
    """One input file out of the engine: its pages in order, the error that stopped it, or
    (info.keep_as_is: a signed PDF, or one with a real text layer) nothing to OCR.

    The page images exist until the caller asks the engine for the next document."""

    source: Path
    sha256: str | None
    pages: tuple[PageResult, ...] = ()
    error: DigitizeError | None = None
    info: pages.ScanInfo | None = None


@dataclass(frozen=True)
class Settings:
    """What stays the same for every document of one run."""

    pipeline: dict
    workers: int
    page_timeout: float
    file_timeout: float | None = None
    on_page: Callable[[str], None] | None = None


@dataclass
class Job:
    """One input document on its way through the pool."""

    source: Path
    sha256: str
    info: pages.ScanInfo
    work_dir: Path
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
    programs.limit_threads()
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole terminal process group: the owner decides when
    # to stop, a worker finishes its page.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_gone, args=(owner_pid,), daemon=True).start()


# The readings of a page, in the order they are tried. "clean" is the OCR copy (upright, coloured
# ink dropped, background flattened, capped resolution); the others are tried only when it reads
# poorly: "scan" is the file's own pixels as `tesseract -l vie` alone sees them (the floor the
# pipeline must never fall under), "binarised" a local threshold of the clean copy, "full
# resolution" the clean copy without the resolution cap.
READINGS = ("clean", "scan", "binarised", "full resolution")
# A reading is poor below either figure: an empty or near-empty page, or tesseract unsure of it.
POOR_WORDS = 12
POOR_CONFIDENCE = 72.0


@dataclass
class _Reading:
    name: str
    page: ocr.OcrPage
    archive: np.ndarray  # the image the text layer of this reading sits on
    dpi: float
    upright: bool  # False: the scan as it came, orientation and skew not applied


def _poor(page: ocr.OcrPage) -> bool:
    return page.words < POOR_WORDS or page.confidence < POOR_CONFIDENCE


def process_page(task: PageTask) -> PageResult:
    """Load, flatten a photo, orient, deskew, clean and OCR one page; write its JPEG and text page
    to work_dir. One tesseract call on a page that reads well; more only for one that does not,
    and the reading tesseract is surest of wins."""
    pipeline = task.pipeline
    dpi = task.info.dpis[task.index]
    loaded = image = pages.load_page(task.info, task.index, task.timeout)
    found = None if task.info.dpi_known[task.index] else sheet.find_sheet(image)
    if found is not None:
        image = sheet.flatten_photo(image, found)
        dpi = sheet.sheet_dpi(image)
    grey = clean.to_grey(image)
    angle = orient.find_page_angle(grey, dpi) if pipeline["orient"]["enabled"] else PageAngle(0, 0.0, 0.0)
    skew = angle.skew if pipeline["deskew"]["enabled"] and abs(angle.skew) <= pipeline["deskew"]["max_angle"] else 0.0
    turn = angle.orientation + skew
    if turn:
        # Corners added by the turn take the paper's colour: white on grey paper is what makes
        # tesseract's global threshold blacken the sheet.
        image = orient.rotate(image, -turn, fill=clean.paper_colour(image))
        grey = clean.to_grey(image)
    keep_colour = pipeline["output"]["keep_color"]
    archive = clean.archive_image(image, keep_colour)
    source = clean.ink_grey(image) if image.ndim == 3 else grey
    cleaned = clean.ocr_image(source, pipeline["clean"]["denoise"], pipeline["clean"]["remove_border"], dpi)
    ocr_grey, ocr_dpi = clean.at_most(cleaned, dpi, pipeline["ocr"]["max_dpi"])
    base = Path(task.work_dir) / f"page-{task.index + 1:05d}"
    lang, psm = pipeline["ocr"]["lang"], pipeline["ocr"]["psm"]

    def read(name: str, pixels: np.ndarray, at_dpi: float) -> ocr.OcrPage:
        return ocr.recognise(pixels, at_dpi, base.with_name(f"{base.name}-{READINGS.index(name)}"), lang, psm,
                             task.timeout)

    best = _Reading("clean", read("clean", ocr_grey, ocr_dpi), archive, dpi, True)
    if _poor(best.page):
        others = {
            "scan": lambda: (clean.to_grey(loaded), task.info.dpis[task.index]),
            "binarised": lambda: (clean.binarised(ocr_grey, ocr_dpi), ocr_dpi),
            "full resolution": lambda: (cleaned, dpi) if dpi > ocr_dpi else None,
        }
        for name, make in others.items():
            made = make()
            if made is None:
                continue
            page = read(name, *made)
            if page.better_than(best.page):
                Path(best.page.text_pdf).unlink(missing_ok=True)
                upright = name != "scan"
                best = _Reading(name, page, archive if upright else clean.archive_image(loaded, keep_colour),
                                dpi if upright else task.info.dpis[task.index], upright)
            else:
                Path(page.text_pdf).unlink(missing_ok=True)
            if not _poor(best.page):
                break
    warnings = []
    if best.page.words == 0:
        warnings.append(f"Không đọc được chữ nào trên trang {task.index + 1} / "
                        f"no text was read on page {task.index + 1}")
    elif _poor(best.page):
        warnings.append(f"Trang {task.index + 1} đọc kém ({best.page.words} từ, độ tin cậy "
                        f"{best.page.confidence:.0f}) / page {task.index + 1} read poorly ({best.page.words} "
                        f"words, confidence {best.page.confidence:.0f})")
    archive = best.archive
    colour = archive.ndim == 3
    encoded_ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(archive, cv2.COLOR_RGB2BGR) if colour else archive,
        # 4:2:0 chroma: colour costs ~6% over grey at the same quality, 4:4:4 ~35% (tools/colour_cost.py).
        [cv2.IMWRITE_JPEG_QUALITY, int(pipeline["output"]["jpeg_quality"]),
         cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420],
    )
    if not encoded_ok:
        raise EngineError("Không mã hóa được ảnh trang.", "Could not encode the page image.")
    image_path = base.with_suffix(".jpg")
    image_path.write_bytes(jpeg.tobytes())
    # Codes are read on the upright page: zxing copes with any angle, but not with every skew.
    codes = barcodes.decode_barcodes(grey)
    return PageResult(
        index=task.index,
        reading=PageReading(angle.orientation if best.upright else 0, round(skew, 3) if best.upright else 0.0,
                            best.page.confidence, best.page.text, best.name, tuple(warnings),
                            found is not None and best.upright),
        barcodes=codes,
        image=assemble.AssembledPage(
            str(image_path), archive.shape[1], archive.shape[0], best.dpi, colour, best.page.text_pdf,
        ),
        grey_by=None if colour else "scanner" if image.ndim == 2 else "pipeline",
    )


def run(sources: Iterable[Path], pipeline: dict, config: dict, workers: int, work_root: Path,
        force: bool = False, on_page: Callable[[str], None] | None = None,
        file_timeout: float | None = None) -> Iterator[Scanned]:
    """OCR documents; yield each as it finishes (those that fail before OCR first).

    on_page(source) is called as each page comes back (progress bars).
    file_timeout: no page of a document starts later than this many seconds after
    its first page did (a page in flight is bounded by page_timeout), so one huge
    or pathological file cannot hold the pool for long.
    force: OCR a PDF that already has a text layer (a signed PDF is never OCR'd: it comes back as is).
    """
    settings = Settings(pipeline, workers, float(config["processing"]["page_timeout"]), file_timeout, on_page)
    jobs: list[Job] = []
    try:
        for source in sources:
            source = source.absolute()
            sha256 = None
            try:
                pages.check_regular(source)  # a pipe or /dev/zero would hang the hash below
                sha256 = sha256_of(source)
                info = pages.inspect(source, config, force=force)
            except DigitizeError as exc:
                yield Scanned(source, sha256, error=exc)
                continue
            except OSError as exc:
                yield Scanned(source, sha256,
                              error=InputFileError("Không đọc được tệp.", f"Cannot read the file ({exc})."))
                continue
            if info.keep_as_is:
                yield Scanned(source, sha256, info=info)
                continue
            work_dir = Path(tempfile.mkdtemp(prefix=f"{sha256[:12]}-", dir=work_root))
            jobs.append(Job(source, sha256, info, work_dir))
    except BaseException:  # stopped (SIGINT, SIGTERM, close()) before the pool started
        for job in jobs:
            shutil.rmtree(job.work_dir, ignore_errors=True)
        raise
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


def _run_pages(jobs: list[Job], settings: Settings) -> Iterator[Scanned]:
    workers, on_page = settings.workers, settings.on_page
    pending = _tasks(jobs, settings.pipeline, settings.page_timeout)
    retry: deque[tuple[Job, PageTask]] = deque()
    in_flight: dict[Future, tuple[Job, PageTask, bool]] = {}
    remaining = {id(job): job.info.page_count for job in jobs}
    pool = _new_pool(workers)

    def page_done(job: Job) -> Iterator[Scanned]:
        remaining[id(job)] -= 1
        if remaining[id(job)] == 0:
            yield from _complete(job)

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


def _complete(job: Job) -> Iterator[Scanned]:
    """Hand the finished document on; its work folder goes once the caller is done with it."""
    try:
        if job.error is None:
            yield Scanned(job.source, job.sha256, tuple(job.results[i] for i in range(job.info.page_count)),
                          info=job.info)
        else:
            yield Scanned(job.source, job.sha256, error=job.error, info=job.info)
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
