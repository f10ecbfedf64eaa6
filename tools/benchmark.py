"""`make bench`: digitize against the floor and OCRmyPDF, on the same pages, in one run.

A batch of mixed 300 dpi pages (receipts, declarations, decisions, prose
from ../shared/corpus/vi; straight, skewed, turned; PNG, JPEG, multi-page
PDF and TIFF) is timed four ways, both cores busy in each:
  floor     raw `tesseract IMG out -l vie`, once per page image, two at a time
  ocrmypdf  `ocrmypdf -l vie --rotate-pages --deskew -j 1`, two files at a time
            (on PDFs of the same pages: it takes no multi-page TIFF)
  digitize  `digitize process` with 2 workers, then with 1 worker (scaling)
Every tesseract runs with OMP_THREAD_LIMIT=1. Prints pages/min and the
ratios, the peak memory of digitize's process tree (psutil sampling), and writes
the figures as JSON under .bench/. --memory processes one 100-page 300 dpi
PDF and reports its peak memory (flat in page count). --workers also sends the
batch through a provincial centre's queue (scratch PostgreSQL and Redis, queue.py)
to one, then two `digitize worker` processes, and reports pages/min and the queue's
overhead per page against the local pool of the same size.

    .venv/bin/python -m tools.benchmark [--pages 48] [--memory] [--skip-ocrmypdf] [--workers]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pikepdf
import psutil

from tools import synth
from tools import REPO_ROOT

BENCH_DIR = REPO_ROOT / ".bench"
DPI = 300
ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}
# (suffix, pages) of the files in one round; the angles and kinds cycle independently.
FILE_PLAN = (("png", 1), ("pdf", 3), ("jpg", 1), ("tif", 2), ("pdf", 1))
ANGLES = (0.0, 0.8, -2.5, 90.0, 180.0, 4.0, -7.0, 270.0, 0.0, 12.0, 91.5, -0.4)
KINDS = ("prose", "receipt", "declaration", "decision")


def _paragraphs() -> list[list[str]]:
    """Chunks of real legal prose; the project's own sample text when the corpus is absent."""
    lines = [line for line in synth.corpus_lines() if len(line) > 40]
    if not lines:
        return [list(synth.SAMPLE_PARAGRAPHS)]
    return [lines[i:i + 8] for i in range(0, len(lines) - 8, 8)]


def _page(number: int, chunks: list[list[str]]):
    kind = KINDS[number % len(KINDS)]
    options = {"dpi": DPI}
    if kind == "prose":
        page = synth.render_prose(chunks[number % len(chunks)], **options)
    else:
        page = synth.render_page(kind, synth.make_fields(number), **options)
    damage = {"noise": 6.0, "border": "lt" if number % 3 == 0 else "", "jpeg_quality": 80 if number % 2 else None}
    return synth.scan(page, angle=ANGLES[number % len(ANGLES)], seed=number, **damage)["image"]


def make_batch(folder: Path, page_total: int) -> dict:
    """inputs/ (mixed files), floor/ (one PNG per page), pdf/ (each input as a PDF for OCRmyPDF)."""
    inputs, floor, pdfs = folder / "inputs", folder / "floor", folder / "pdf"
    for sub in (inputs, floor, pdfs):
        sub.mkdir(parents=True, exist_ok=True)
    chunks, number, index = _paragraphs(), 0, 0
    while number < page_total:
        suffix, count = FILE_PLAN[index % len(FILE_PLAN)]
        count = min(count, page_total - number)
        images = [_page(number + i, chunks) for i in range(count)]
        stem = f"scan-{index:03d}"
        synth.write_pages(inputs / f"{stem}.{suffix}", images, dpi=DPI)
        synth.write_pdf(pdfs / f"{stem}.pdf", images, dpi=DPI)
        for i, image in enumerate(images):
            synth.write_image(floor / f"{stem}-p{i + 1}.png", image, dpi=DPI)
        number += count
        index += 1
    return {"inputs": inputs, "floor": floor, "pdf": pdfs, "pages": page_total, "files": index}


class TreeMemory:
    """Peak memory of a process and all its descendants (tesseract included), sampled every 0.1 s.

    Summed RSS counts the libraries and the tesseract model every process maps
    once per process; summed PSS splits shared pages among their users, so it
    is what the tree really holds. The largest single process is kept too.
    """

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peaks = {"rss": 0, "pss": 0, "largest": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = pss = largest = 0
            try:
                for process in [self.root, *self.root.children(recursive=True)]:
                    try:
                        memory = process.memory_full_info()
                    except psutil.Error:
                        continue
                    rss, pss, largest = rss + memory.rss, pss + memory.pss, max(largest, memory.rss)
            except psutil.Error:
                break
            for key, value in (("rss", rss), ("pss", pss), ("largest", largest)):
                self.peaks[key] = max(self.peaks[key], value)
            self._stop.wait(0.1)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {key: round(value / 2**20, 1) for key, value in self.peaks.items()}


def _run_two_at_a_time(commands: list[list[str]]) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for result in pool.map(lambda c: subprocess.run(c, env=ENV, capture_output=True, text=True), commands):
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(commands[0][:2])} failed: {result.stderr[-500:]}")
    return time.perf_counter() - started


def time_floor(batch: dict, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    images = sorted(batch["floor"].glob("*.png"))
    return _run_two_at_a_time([["tesseract", str(image), str(out / image.stem), "-l", "vie"] for image in images])


def time_ocrmypdf(batch: dict, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    executable = shutil.which("ocrmypdf") or str(Path(sys.executable).with_name("ocrmypdf"))
    return _run_two_at_a_time([
        [executable, "-l", "vie", "--rotate-pages", "--deskew", "-j", "1", "--output-type", "pdf", "-q",
         str(pdf), str(out / pdf.name)]
        for pdf in sorted(batch["pdf"].glob("*.pdf"))
    ])


def time_digitize(inputs: Path, out: Path, workers: int) -> dict:
    """Wall time and peak tree RSS of `digitize process` in a fresh home."""
    home = out / "home"
    shutil.rmtree(out, ignore_errors=True)
    home.mkdir(parents=True)
    command = [sys.executable, "-m", "digitize.cli", "process", str(inputs), "--out", str(out / "pdf"),
               "--workers", str(workers), "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**ENV, "DIGITIZE_HOME": str(home)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    meter = TreeMemory(process.pid)
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    peak = meter.stop()
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    failed = [r["source"] for r in results if r["status"] != "done"]
    if process.returncode != 0 or failed:
        raise RuntimeError(f"digitize process failed (exit {process.returncode}) on {failed}: {stderr[-500:]}")
    return {"seconds": seconds, "peak_rss_mb": peak["rss"], "peak_pss_mb": peak["pss"],
            "largest_process_mb": peak["largest"], "pages": sum(len(r["pages"]) for r in results)}


def time_queue(inputs: Path, out: Path, workers: int, broker: str, database: str) -> dict:
    """Wall time of `digitize process --queue --wait` with `workers` worker processes (one
    document at a time each) already running and answering."""
    from digitize import queue
    home = out / "home"
    shutil.rmtree(out, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**ENV, "DIGITIZE_HOME": str(home), "DIGITIZE_BROKER_URL": broker, "DIGITIZE_DATABASE_URL": database}
    started_workers = [subprocess.Popen([sys.executable, "-m", "digitize.cli", "worker", "--concurrency", "1",
                                         "--name", f"bench-{n}@%h"], env=env, cwd=REPO_ROOT,
                                        stdout=(out / f"worker-{n}.log").open("w"), stderr=subprocess.STDOUT,
                                        start_new_session=True) for n in range(workers)]
    try:
        deadline = time.monotonic() + 120
        while len(queue.queue_status(broker)["workers"]) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start: see {out}")
            time.sleep(0.5)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "digitize.cli", "process", str(inputs), "--out", str(out / "pdf"),
                               "--queue", "--wait", "--json"], env=env, capture_output=True, text=True, cwd=REPO_ROOT)
        seconds = time.perf_counter() - started
    finally:
        for worker in started_workers:
            os.killpg(worker.pid, 15)
        for worker in started_workers:
            worker.wait(120)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [r["source"] for r in results if r["status"] != "done"]
    if done.returncode != 0 or failed:
        raise RuntimeError(f"digitize process --queue failed (exit {done.returncode}) on {failed}: {done.stderr[-500:]}")
    return {"seconds": seconds, "pages": sum(len(r["pages"]) for r in results)}


def bench_queue(figures: dict) -> dict:
    """The batch through the queue to 1 and 2 workers; overhead per page against the local pool."""
    from tools import servers
    batch = BENCH_DIR / f"batch-{figures['pages']}" / "inputs"
    scratch = BENCH_DIR / "queue-servers"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    found: dict = {}
    try:
        with servers.postgres(scratch / "postgres") as admin, servers.redis(scratch / "redis") as broker:
            for workers in (1, 2):
                print(f"digitize process --queue, {workers} worker process(es) ...", flush=True)
                database = servers.create_database(admin, f"bench_{workers}")
                measured = time_queue(batch, BENCH_DIR / "runs-queue" / f"workers-{workers}", workers, broker, database)
                if measured["pages"] != figures["pages"]:
                    raise RuntimeError(f"the queue reported {measured['pages']} pages, expected {figures['pages']}")
                local = figures[f"digitize_{workers}"]["seconds"]
                found[f"workers_{workers}"] = {
                    "seconds": round(measured["seconds"], 2),
                    "pages_per_min": _per_minute(figures["pages"], measured["seconds"]),
                    "overhead_s_per_page": round((measured["seconds"] - local) / figures["pages"], 3)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    found["two_vs_one"] = round(found["workers_2"]["pages_per_min"] / found["workers_1"]["pages_per_min"], 3)
    return found


def _per_minute(pages: int, seconds: float) -> float:
    return round(60.0 * pages / seconds, 1)


def bench_throughput(page_total: int, skip_ocrmypdf: bool) -> dict:
    folder = BENCH_DIR / f"batch-{page_total}"
    if not (folder / "inputs").is_dir() or len(list((folder / "floor").glob("*.png"))) != page_total:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"Rendering {page_total} pages at {DPI} dpi into {folder} ...", flush=True)
        make_batch(folder, page_total)
    batch = {"inputs": folder / "inputs", "floor": folder / "floor", "pdf": folder / "pdf", "pages": page_total}
    runs = folder / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    figures: dict = {"pages": page_total, "files": len(list(batch["inputs"].iterdir())), "dpi": DPI,
                     "cpu_count": os.cpu_count(), "when": datetime.now().isoformat(timespec="seconds")}
    print("floor: tesseract once per page, two at a time ...", flush=True)
    figures["floor"] = {"seconds": round(time_floor(batch, runs / "floor"), 2)}
    if not skip_ocrmypdf:
        print("ocrmypdf: two files at a time, -j 1 each ...", flush=True)
        figures["ocrmypdf"] = {"seconds": round(time_ocrmypdf(batch, runs / "ocrmypdf"), 2)}
    for workers in (2, 1):
        print(f"digitize process, {workers} worker(s) ...", flush=True)
        measured = time_digitize(batch["inputs"], runs / f"digitize-{workers}", workers)
        if measured["pages"] != page_total:
            raise RuntimeError(f"digitize reported {measured['pages']} pages, expected {page_total}")
        figures[f"digitize_{workers}"] = {"seconds": round(measured["seconds"], 2),
                                          "peak_pss_mb": measured["peak_pss_mb"],
                                          "peak_pss_mb_per_worker": round(measured["peak_pss_mb"] / workers, 1),
                                          "largest_process_mb": measured["largest_process_mb"]}
    for name in ("floor", "ocrmypdf", "digitize_2", "digitize_1"):
        if name in figures:
            figures[name]["pages_per_min"] = _per_minute(page_total, figures[name]["seconds"])
    rate = {name: figures[name]["pages_per_min"] for name in ("floor", "ocrmypdf", "digitize_2", "digitize_1")
            if name in figures}
    figures["ratios"] = {
        "digitize_vs_floor": round(rate["digitize_2"] / rate["floor"], 3),
        "digitize_vs_ocrmypdf": round(rate["digitize_2"] / rate["ocrmypdf"], 3) if "ocrmypdf" in rate else None,
        "two_workers_vs_one": round(rate["digitize_2"] / rate["digitize_1"], 3),
    }
    return figures


def write_long_pdf(path: Path, page_total: int, distinct: int = 8) -> None:
    """A page_total-page 300 dpi scan PDF, each page its own JPEG stream (a few distinct pages, repeated)."""
    chunks = _paragraphs()
    scans = []
    for number in range(distinct):
        jpeg = path.with_name(f"page-{number}.jpg")
        image = _page(number, chunks)
        synth.write_image(jpeg, image, dpi=DPI)
        scans.append((jpeg.read_bytes(), image.width, image.height, image.mode))
        jpeg.unlink()
    with pikepdf.new() as pdf:
        for number in range(page_total):
            data, width, height, mode = scans[number % distinct]
            stream = pikepdf.Stream(pdf, data, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                                    Width=width, Height=height, BitsPerComponent=8, Filter=pikepdf.Name.DCTDecode,
                                    ColorSpace=pikepdf.Name.DeviceRGB if mode == "RGB" else pikepdf.Name.DeviceGray)
            w_pt, h_pt = width * 72 / DPI, height * 72 / DPI
            pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
                Type=pikepdf.Name.Page, MediaBox=[0, 0, w_pt, h_pt],
                Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Scan=stream)),
                Contents=pdf.make_stream(f"q {w_pt:.3f} 0 0 {h_pt:.3f} 0 0 cm /Scan Do Q".encode()),
            )))
        pdf.save(path)


def bench_memory(page_total: int) -> dict:
    folder = BENCH_DIR / f"memory-{page_total}"
    source = folder / "input" / f"long-{page_total}p.pdf"
    if not source.is_file():
        source.parent.mkdir(parents=True, exist_ok=True)
        print(f"Writing a {page_total}-page {DPI} dpi PDF ...", flush=True)
        write_long_pdf(source, page_total)
    print(f"digitize process on the {page_total}-page PDF, 2 workers ...", flush=True)
    measured = time_digitize(source.parent, folder / "run", 2)
    return {"pages": page_total, "seconds": round(measured["seconds"], 2),
            "pages_per_min": _per_minute(page_total, measured["seconds"]),
            "peak_rss_mb": measured["peak_rss_mb"], "peak_pss_mb": measured["peak_pss_mb"],
            "peak_pss_mb_per_worker": round(measured["peak_pss_mb"] / 2, 1),
            "largest_process_mb": measured["largest_process_mb"]}


def _print(figures: dict) -> None:
    if "floor" in figures:
        print(f"\n{figures['pages']} pages in {figures['files']} files, {figures['dpi']} dpi, "
              f"{figures['cpu_count']} cores")
        print(f"{'':24}{'seconds':>10}{'pages/min':>12}{'peak PSS MB':>14}{'largest MB':>12}")
        for name, label in (("floor", "floor (raw tesseract)"), ("ocrmypdf", "ocrmypdf"),
                            ("digitize_2", "digitize, 2 workers"), ("digitize_1", "digitize, 1 worker")):
            if name in figures:
                row = figures[name]
                print(f"{label:24}{row['seconds']:>10.1f}{row['pages_per_min']:>12.1f}"
                      f"{row.get('peak_pss_mb', ''):>14}{row.get('largest_process_mb', ''):>12}")
        ratios = figures["ratios"]
        print(f"digitize / floor     {ratios['digitize_vs_floor']:.3f}   (target >= 0.85)")
        if ratios["digitize_vs_ocrmypdf"] is not None:
            print(f"digitize / ocrmypdf  {ratios['digitize_vs_ocrmypdf']:.3f}   (target >= 1.7)")
        print(f"2 workers / 1 worker {ratios['two_workers_vs_one']:.3f}   (target >= 1.8)")
    if "queue" in figures:
        queued = figures["queue"]
        for workers in (1, 2):
            row = queued[f"workers_{workers}"]
            print(f"queue, {workers} worker(s)     {row['seconds']:>10.1f}{row['pages_per_min']:>12.1f}"
                  f"   overhead {row['overhead_s_per_page']:+.3f} s/page against the local pool of {workers}")
        print(f"queue, 2 workers / 1 {queued['two_vs_one']:.3f}   (expect about 2)")
    if "memory" in figures:
        memory = figures["memory"]
        print(f"\n{memory['pages']}-page PDF: {memory['seconds']:.1f} s, {memory['pages_per_min']} pages/min; "
              f"whole tree peak PSS {memory['peak_pss_mb']} MB ({memory['peak_pss_mb_per_worker']} MB per worker; "
              f"target <= 500), summed RSS {memory['peak_rss_mb']} MB, largest process {memory['largest_process_mb']} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=48, help="pages in the mixed batch (>= 40 for the targets)")
    parser.add_argument("--memory", action="store_true", help="also process one long PDF and report peak RSS")
    parser.add_argument("--memory-only", action="store_true", help="only the long-PDF memory check")
    parser.add_argument("--memory-pages", type=int, default=100)
    parser.add_argument("--skip-ocrmypdf", action="store_true")
    parser.add_argument("--workers", action="store_true",
                        help="also through the queue (PostgreSQL and Redis) to 1 and 2 worker processes")
    args = parser.parse_args(argv)
    figures: dict = {}
    if not args.memory_only:
        figures.update(bench_throughput(args.pages, args.skip_ocrmypdf))
        if args.workers:
            figures["queue"] = bench_queue(figures)
    if args.memory or args.memory_only:
        figures["memory"] = bench_memory(args.memory_pages)
    _print(figures)
    BENCH_DIR.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for path in (BENCH_DIR / f"bench-{stamp}.json", BENCH_DIR / "latest.json"):
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures: {BENCH_DIR / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
