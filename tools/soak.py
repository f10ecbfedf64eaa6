"""Reliability soak of `digitize watch` (make soak; python -m tools.soak [--files 100 --burst 200]).

Real watcher processes on a throw-away home, tiny real pages (a few lines of
Vietnamese rendered with Liberation Serif 2 at 200 dpi), and these checks:
  kill     N files dropped while the watcher is SIGKILLed at random moments and
           restarted: each processed exactly once, no original lost, no second
           output or catalogue row.
  slow     a file written over 30 s in small chunks is never taken early
           (runs during the burst).
  burst    M files at once: all processed; RSS of the process tree sampled.
  repeats  the same file twice at once, a copy of a done file, a done file
           rewritten in place: processed once, each repeat noted once.
  latency  complete -> PDF ready, against stability delay + processing time.
Prints the figures as JSON and exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from PIL import Image, ImageDraw, ImageFont

from digitize.assemble import pdf_sha256
from digitize.files import sha256_of

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
WORDS = ("hồ sơ", "tiếp nhận", "Ủy ban nhân dân", "xã", "đăng ký", "khai sinh", "chứng thực", "bản sao",
         "công dân", "ngày", "tháng", "năm", "giấy tờ", "hộ tịch", "kết quả", "thủ tục")
STABLE = 2.0


def page_image(seed: int) -> Image.Image:
    """A small 200 dpi page of three lines; the first line makes every seed's bytes unique."""
    rng = random.Random(seed)
    font = ImageFont.truetype(FONT, 36)
    image = Image.new("L", (1000, 260), 255)
    draw = ImageDraw.Draw(image)
    lines = [f"Hồ sơ số {seed:06d}"] + [" ".join(rng.choice(WORDS) for _ in range(5)) for _ in range(2)]
    for row, line in enumerate(lines):
        draw.text((40, 25 + row * 75), line, font=font, fill=0)
    return image


def page_bytes(seed: int, kind: str = "jpg") -> bytes:
    """The page as JPEG, PNG or a one-page image PDF."""
    path = Path(tempfile.mkstemp(suffix="." + kind)[1])
    try:
        image = page_image(seed)
        if kind == "pdf":
            image.save(path, "PDF", resolution=200.0)
        else:
            image.save(path, dpi=(200, 200), **({"quality": 85} if kind == "jpg" else {}))
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def drop(path: Path, data: bytes) -> Path:
    """Write a file into the inbox as a scanner would (in place, then closed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def watcher_env(home: Path, polling: bool = False, **watch) -> dict:
    env = {**os.environ, "DIGITIZE_HOME": str(home), "DIGITIZE_WATCH_POLLING": "true" if polling else "false",
           "DIGITIZE_PROCESSING_WORKERS": "2", "DIGITIZE_WATCH_STABLE_SECONDS": str(STABLE)}
    env.update({f"DIGITIZE_WATCH_{key.upper()}": str(value) for key, value in watch.items()})
    return env


def start_watcher(env: dict, once: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-m", "digitize.cli", "watch"] + (["--once"] if once else [])
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_until(check, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return bool(check())


def catalogue(home: Path, query: str, *params) -> list[tuple]:
    path = home / "catalogue.sqlite"
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(query, params).fetchall()
    except sqlite3.OperationalError:  # a table not created yet
        return []
    finally:
        conn.close()


def done_shas(home: Path) -> list[str]:
    return [row[0] for row in catalogue(home, "SELECT sha256 FROM documents WHERE status='done'")]


def repeats(home: Path) -> int:
    return len(catalogue(home, "SELECT id FROM intake_events WHERE kind='duplicate'"))


def files_below(folder: Path, hidden: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and (hidden or not p.name.startswith(".")))


def outputs(home: Path) -> list[Path]:
    archive = home / "archive"
    return [p for p in files_below(archive) if p.suffix == ".pdf"
            and not {"originals", "duplicates"} & set(p.relative_to(archive).parts)]


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


def stop(process: subprocess.Popen, timeout: float = 60) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


# --- the checks ------------------------------------------------------------

def check_kill(home: Path, files: int, seed: int) -> dict:
    rng = random.Random(seed)
    env = watcher_env(home)
    inbox = home / "inbox"
    expected: set[str] = set()
    officers = ("can-bo-an", "Cán bộ Bình", "may-quet-2")

    def dropper() -> None:
        for number in range(files):
            kind = ("jpg", "png", "pdf")[number % 3]
            data = page_bytes(seed * 100_000 + number, kind)
            expected.add(hashlib.sha256(data).hexdigest())
            drop(inbox / officers[number % 3] / f"scan {number:04d}.{kind}", data)
            time.sleep(rng.uniform(0.0, 0.15))

    thread = threading.Thread(target=dropper)
    thread.start()
    kills = 0
    started = time.monotonic()
    while thread.is_alive() or kills < 8:
        process = start_watcher(env)
        time.sleep(rng.uniform(0.5, 5.0))
        process.kill()  # SIGKILL the watcher itself; its workers die with it (PDEATHSIG)
        process.wait()
        kills += 1
    thread.join()
    final = start_watcher(env, once=True)
    final_rc = final.wait(600)
    seconds = time.monotonic() - started
    shas = done_shas(home)
    pdf_shas = [pdf_sha256(path) for path in outputs(home)]
    originals = [sha256_of(path) for path in files_below(home / "archive" / "originals")]
    leftovers = files_below(inbox) + files_below(home / "work" / "claimed", hidden=True)
    temp_files = [p for p in files_below(home / "archive", hidden=True) if p.name.startswith(".")]
    result = {
        "files": files, "kills": kills, "seconds": round(seconds, 1), "final_exit": final_rc,
        "done_rows": len(shas), "distinct_done": len(set(shas)), "outputs": len(pdf_shas),
        "originals": len(originals), "leftovers": len(leftovers), "temp_files": len(temp_files),
        "quarantined": len(files_below(home / "quarantine")), "repeats_noted": repeats(home),
    }
    result["ok"] = (final_rc == 0 and set(shas) == expected and len(shas) == files
                    and sorted(pdf_shas) == sorted(expected) and sorted(originals) == sorted(expected)
                    and not leftovers and not temp_files and result["quarantined"] == 0)
    return result


def check_burst_and_slow(home: Path, files: int, seed: int) -> dict:
    env = watcher_env(home)
    staging = home / "staging"
    for number in range(files):
        drop(staging / "burst" / f"b{number:04d}.jpg", page_bytes(seed * 100_000 + 50_000 + number))
    slow_data = page_bytes(seed * 100_000 + 99_999, "pdf")
    process = start_watcher(env)
    time.sleep(2)
    samples: list[tuple[float, int]] = []
    slow = {"taken_early": False}

    def slow_writer() -> None:
        target = home / "inbox" / "slow" / "slow scan.pdf"
        target.parent.mkdir(parents=True, exist_ok=True)
        chunk = max(1, len(slow_data) // 100)
        with target.open("wb") as handle:
            for offset in range(0, len(slow_data), chunk):
                handle.write(slow_data[offset: offset + chunk])
                handle.flush()
                time.sleep(0.3)
                if not target.exists():
                    slow["taken_early"] = True
        slow["completed"] = time.time()

    writer = threading.Thread(target=slow_writer)
    started = time.monotonic()
    writer.start()
    (home / "inbox" / "burst").mkdir(parents=True)
    for path in files_below(staging / "burst"):  # same file system: each appears complete at once
        os.rename(path, home / "inbox" / "burst" / path.name)
    expected = files + 1

    def sample() -> bool:
        samples.append((time.monotonic() - started, tree_rss(process.pid)))
        return len(done_shas(home)) >= expected

    finished = wait_until(sample, timeout=900, step=0.5)
    seconds = time.monotonic() - started
    writer.join()
    rc = stop(process)
    slow_sha = hashlib.sha256(slow_data).hexdigest()
    third = max(1, len(samples) // 3)
    first, last = samples[:third], samples[-third:]
    result = {
        "files": files, "all_done": finished, "seconds": round(seconds, 1),
        "pages_per_second": round(expected / seconds, 2), "stop_exit": rc,
        "rss_peak_mb_first_third": round(max(r for _, r in first) / 2**20, 1),
        "rss_peak_mb_last_third": round(max(r for _, r in last) / 2**20, 1),
        "rss_peak_mb": round(max(r for _, r in samples) / 2**20, 1),
        "slow_taken_early": slow["taken_early"], "slow_processed_whole": slow_sha in done_shas(home),
    }
    result["ok"] = (finished and rc == 0 and not slow["taken_early"] and result["slow_processed_whole"]
                    and result["rss_peak_mb_last_third"] <= 1.25 * result["rss_peak_mb_first_third"])
    return result


def check_repeats(home: Path, seed: int) -> dict:
    env = watcher_env(home)
    inbox = home / "inbox"
    process = start_watcher(env)
    data = page_bytes(seed * 100_000 + 70_000)
    drop(inbox / "a" / "same.jpg", data)
    drop(inbox / "b" / "same copy.jpg", data)  # the same file twice at once
    sha = hashlib.sha256(data).hexdigest()
    wait_until(lambda: sha in done_shas(home) and repeats(home) >= 1, timeout=60)
    drop(inbox / "a" / "same.jpg", data)  # the scanner rewrites it in place
    wait_until(lambda: repeats(home) >= 2, timeout=60)
    old = page_bytes(seed * 100_000 + 50_000)  # a file of the burst, dropped again
    drop(inbox / "c" / "again.jpg", old)
    wait_until(lambda: repeats(home) >= 3, timeout=60)
    time.sleep(2 * STABLE)  # nothing more may happen
    rc = stop(process)
    rows = catalogue(home, "SELECT COUNT(*) FROM documents WHERE sha256=?", sha)[0][0]
    noted = repeats(home)
    result = {"rows_for_repeated_file": rows, "repeats_noted": noted,
              "set_aside": len(files_below(home / "archive" / "duplicates")), "stop_exit": rc}
    result["ok"] = rows == 1 and noted == 3 and result["set_aside"] == 3 and rc == 0
    return result


def check_latency(home: Path, count: int, seed: int) -> dict:
    env = watcher_env(home)
    process = start_watcher(env)
    time.sleep(2)
    latencies, overheads = [], []
    log = home / "logs" / "watch.log"
    for number in range(count):
        name = f"lat{number:03d}"
        drop(home / "inbox" / f"{name}.jpg", page_bytes(seed * 100_000 + 80_000 + number))
        complete = time.time()
        pdfs = lambda: [p for p in outputs(home) if p.stem == name]  # noqa: E731
        wait_until(lambda: bool(pdfs()), timeout=60, step=0.02)
        latency = time.time() - complete
        pattern = re.compile(rf"done {name}\.jpg .*?([0-9.]+) s after claim")
        wait_until(lambda: pattern.search(log.read_text(encoding="utf-8")), timeout=10, step=0.05)
        match = pattern.search(log.read_text(encoding="utf-8"))
        processing = float(match.group(1)) if match else float("nan")
        latencies.append(latency)
        overheads.append(latency - STABLE - processing)
        time.sleep(0.5)
    rc = stop(process)
    result = {"files": count, "stable_seconds": STABLE,
              "latency_median_s": round(statistics.median(latencies), 2),
              "latency_max_s": round(max(latencies), 2),
              "overhead_median_s": round(statistics.median(overheads), 2),
              "overhead_max_s": round(max(overheads), 2), "stop_exit": rc}
    result["ok"] = result["overhead_max_s"] <= 1.0 and rc == 0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100, help="files dropped during the kills")
    parser.add_argument("--burst", type=int, default=200, help="files dropped at once")
    parser.add_argument("--latency", type=int, default=10, help="single files timed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: a temp folder)")
    args = parser.parse_args(argv)
    root = Path(args.keep or tempfile.mkdtemp(prefix="digitize-soak-"))
    figures = {}
    for name, check in (
        ("kill", lambda: check_kill(root / "kill", args.files, args.seed)),
        ("burst_and_slow", lambda: check_burst_and_slow(root / "burst", args.burst, args.seed)),
        ("repeats", lambda: check_repeats(root / "burst", args.seed)),
        ("latency", lambda: check_latency(root / "latency", args.latency, args.seed)),
    ):
        figures[name] = check()
        print(json.dumps({name: figures[name]}, ensure_ascii=False), flush=True)
    ok = all(figure["ok"] for figure in figures.values())
    print(json.dumps({"ok": ok, "home": str(root)}))
    if not args.keep and ok:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
