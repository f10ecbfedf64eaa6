"""The page engine shared by `digitize process`, the watcher and reprocessing.

Every page of every selected document goes through one pool of worker
processes (one page a task, OMP_THREAD_LIMIT=1 in each), so both cores stay
busy whether the batch is one long PDF or many one-page scans. A bounded
number of tasks is in flight, so memory stays flat in batch size. A
document is assembled as soon as its last page is back.
"""
from __future__ import annotations

import hashlib
import ctypes
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2

from . import assemble, clean, ocr, orient, pages
from .errors import AlreadyHasTextError, DigitizeError, EngineError, OutputError
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
    orientation: int
    skew: float
    confidence: float
    text: str
    image: assemble.AssembledPage


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


PR_SET_PDEATHSIG = 1


def _init_worker() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole terminal process group: the parent decides when
    # to stop, a worker finishes its page. A worker dies with its parent (a
    # SIGKILLed watcher must not leave orphans holding its lock and temp dirs).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


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
    text_page = ocr.recognise(
        clean.ocr_image(grey, pipeline["clean"]["denoise"], pipeline["clean"]["remove_border"]),
        dpi, base, pipeline["ocr"]["lang"], pipeline["ocr"]["psm"], task.timeout,
    )
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
        image=assemble.AssembledPage(
            str(image_path), archive.shape[1], archive.shape[0], dpi, colour, text_page.text_pdf,
        ),
    )


def document_text(results: list[PageResult]) -> str:
    """The sidecar: pages in order, separated by form feeds as pdftotext does."""
    return ocr.nfc("\n\f".join(result.text for result in results) + "\n")


def _finish(job: Job, pipeline: dict) -> dict:
    ordered = [job.results[i] for i in range(job.info.page_count)]
    text_path = job.target.with_suffix(".txt")
    metadata = {
        "title": job.source.name,
        "source": str(job.source),
        "sha256": job.sha256,
        "pageCount": str(job.info.page_count),
        "pipeline": pipeline["name"],
        "pipelineVersion": pipeline["hash"],
        "ocrLanguage": pipeline["ocr"]["lang"],
    }
    # Both files are written and fsynced under staging names first; only then
    # are they renamed over the previous output (a rename needs no free space),
    # so a full disk leaves the previous PDF and sidecar whole (reprocess).
    staged_pdf = job.target.with_name(f".{job.target.name}.new")
    staged_text = text_path.with_name(f".{text_path.name}.new")
    try:
        assemble.assemble_pdf([r.image for r in ordered], staged_pdf, metadata)
        assemble.write_text_atomic(staged_text, document_text(ordered))
        os.replace(staged_text, text_path)
        os.replace(staged_pdf, job.target)
        assemble.fsync_dir(job.target.parent)
    except OSError as exc:
        staged_pdf.unlink(missing_ok=True)
        staged_text.unlink(missing_ok=True)
        raise OutputError(
            "Không ghi được tệp PDF kết quả.", f"Could not write the output PDF ({exc})."
        ) from exc
    return {
        "output": str(job.target),
        "text_path": str(text_path),
        "pages": [
            {"orientation": r.orientation, "skew": r.skew, "confidence": r.confidence, "text": r.text}
            for r in ordered
        ],
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
        file_timeout: float | None = None) -> Iterator[dict]:
    """Process documents; yield one result dict per document as each finishes.

    Results for documents that fail before OCR (bad input) come first.
    on_page(source) is called as each page comes back (progress bars).
    file_timeout: no page of a document starts later than this many seconds after
    its first page did (a page in flight is bounded by page_timeout), so one huge
    or pathological file cannot hold the pool for long.
    """
    timeout = float(config["processing"]["page_timeout"])
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
        yield from _run_pages(jobs, pipeline, workers, timeout, on_page, file_timeout)


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


def _run_pages(jobs: list[Job], pipeline: dict, workers: int, timeout: float,
               on_page: Callable[[str], None] | None = None,
               file_timeout: float | None = None) -> Iterator[dict]:
    pending = _tasks(jobs, pipeline, timeout)
    retry: deque[tuple[Job, PageTask]] = deque()
    in_flight: dict[Future, tuple[Job, PageTask, bool]] = {}
    remaining = {id(job): job.info.page_count for job in jobs}
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker)

    def page_done(job: Job) -> Iterator[dict]:
        remaining[id(job)] -= 1
        if remaining[id(job)] == 0:
            yield _complete(job, pipeline)

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
                if _over_time(job, file_timeout):
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
                    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker)
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


def _complete(job: Job, pipeline: dict) -> dict:
    try:
        if job.error is None:
            return _result(job, "done", **_finish(job, pipeline))
    except DigitizeError as exc:
        job.error = exc
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
    return _result(job, "failed")
