"""Where a page's time goes: `python -m tools.stages [--pages 12] [--out DIR]`.

Renders light pages (receipts and declarations of 20-30 lines, 300 dpi JPEG, a small skew and
sensor noise, prose from ../shared/corpus/vi where it is used), then runs the real page function
(`digitize.engine.process_page`, intake pipeline) on each in this process, one at a time, with
every stage function it calls wrapped in a timer. Prints milliseconds per page for each stage,
tesseract's share and the calls per page. Stages are found by name on the modules the engine
calls, so the same run profiles an older engine for a before/after figure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"

from digitize import config, engine, pipelines  # noqa: E402
from tools import synth  # noqa: E402

# (module attribute path, stage name): whatever of these exists is timed.
STAGES = (
    ("pages.load_page", "load"),
    ("sheet.find_sheet", "photo check"),
    ("sheet.flatten_photo", "photo flatten"),
    ("orient.find_page_angle", "orient"),
    ("orient.rotate", "rotate"),
    ("clean.paper_colour", "paper colour"),
    ("clean.archive_image", "archive copy"),
    ("clean.ink_grey", "ink drop"),
    ("clean.ocr_image", "ocr copy"),
    ("clean.at_most", "dpi cap"),
    ("clean.binarised", "binarise"),
    ("ocr.recognise", "tesseract + tsv"),
    ("barcodes.decode_barcodes", "barcodes"),
    ("cv2.imencode", "jpeg encode"),
)


def light_pages(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        fields = synth.make_fields(rng.randrange(10**6))
        page = synth.render_page(("receipt", "declaration")[i % 2], fields, dpi=300)
        page = synth.scan(page, rng.uniform(0.5, 3.0) * rng.choice((-1, 1)), seed=i, noise=3.0)
        paths.append(synth.write_image(folder / f"light-{i:02d}.jpg", page["image"], 300, quality=85))
    return paths


def profile(paths: list[Path]) -> dict:
    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    originals = []
    for dotted, stage in STAGES:
        module_name, name = dotted.split(".")
        module = getattr(engine, module_name, None)
        if module is None or not hasattr(module, name):
            continue
        original = getattr(module, name)

        def timed(*args, _original=original, _stage=stage, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_stage] += time.perf_counter() - start
                calls[_stage] += 1

        originals.append((module, name, original))
        setattr(module, name, timed)
    settings = config.load_config()
    pipeline = pipelines.load_pipeline("intake")
    readings: dict[str, int] = defaultdict(int)
    wall = 0.0
    try:
        with tempfile.TemporaryDirectory() as work:
            for path in paths:
                info = engine.pages.inspect(path, settings)
                start = time.perf_counter()
                result = engine.process_page(engine.PageTask(info, 0, pipeline, work, 300.0))
                wall += time.perf_counter() - start
                readings[getattr(result.reading, "reading", "clean")] += 1
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    pages = len(paths)
    stages = {stage: round(seconds * 1000 / pages, 1) for stage, seconds in totals.items()}
    timed_total = sum(totals.values())
    return {"pages": pages, "ms_per_page": stages, "wall_ms_per_page": round(wall * 1000 / pages, 1),
            "untimed_ms_per_page": round((wall - timed_total) * 1000 / pages, 1),
            "outside_tesseract_ms_per_page": round((wall - totals["tesseract + tsv"]) * 1000 / pages, 1),
            "tesseract_calls_per_page": round(calls["tesseract + tsv"] / pages, 2), "readings": dict(readings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stages", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = profile(light_pages(Path(folder), args.pages, args.seed))
    for stage, ms in sorted(report["ms_per_page"].items(), key=lambda item: -item[1]):
        print(f"{stage:18} {ms:8.1f} ms/page")
    for key in ("wall_ms_per_page", "outside_tesseract_ms_per_page", "untimed_ms_per_page",
                "tesseract_calls_per_page", "readings"):
        print(f"{key:30} {report[key]}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
