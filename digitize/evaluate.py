"""Accuracy on a fresh held-out set: `python -m digitize.evaluate [--pages N] [--out DIR] [--baseline tesseract]`.

Renders pages with digitize.synth (prose from ../shared/corpus/vi when present), damages them per
group, runs the real `digitize process --json` over them, and reports per group: word recall
(multiset, NFC, diacritics exact), CER, skew error and orientation accuracy. Figures go to
<out>/eval.json as well. Nothing here is timed: throughput is the benchmark's job.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from digitize import config, synth

CORPUS_DIR = config.PROJECT_ROOT.parent / "shared" / "corpus" / "vi"
KINDS = ("prose", "receipt", "prose", "declaration", "prose", "decision")
DEFAULT_DPI = 300
# name -> how its pages are scanned. Real scans are never exactly straight, so the damage
# groups also carry a small skew (up to 3°, either sign).
GROUPS = {
    "straight": {"skew": (0.0, 0.0)},
    "skew 0.5-5°": {"skew": (0.5, 5.0)},
    "skew 5-15°": {"skew": (5.0, 15.0)},
    "skew 15-40°": {"skew": (15.0, 40.0)},
    "turned 90/180/270": {"skew": (0.0, 2.0), "turn": True},
    "noise": {"skew": (0.0, 3.0), "damage": {"noise": 12.0, "speckle": 0.002}},
    "blur": {"skew": (0.0, 3.0), "damage": {"blur": 1.3}},
    "jpeg": {"skew": (0.0, 3.0), "damage": {"jpeg_quality": 30}, "suffix": ".jpg"},
    "dark border": {"skew": (0.0, 3.0), "border": True, "damage": {"illumination": 0.2}},
    "no dpi": {"skew": (0.0, 3.0), "with_dpi": False},
    "200 dpi": {"skew": (0.0, 3.0), "dpi": 200},
}


def corpus_paragraphs(folder: Path = CORPUS_DIR) -> tuple[list[str], str]:
    """Paragraphs (one a line) from the shared corpus, else the project's own sample text."""
    files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    lines = [synth.nfc(line.strip()) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if len(line.split()) >= 4]
    if lines:
        return lines, str(folder)
    return list(synth.SAMPLE_PARAGRAPHS), "project sample text (corpus not found at %s)" % folder


def word_recall_counts(truth_words: list[str], found_text: str) -> tuple[int, int]:
    """(truth words found, truth words), counted as multisets after NFC; diacritics must match."""
    truth = Counter(synth.nfc(w) for w in truth_words)
    found = Counter(synth.nfc(found_text).split())
    return sum((truth & found).values()), sum(truth.values())


def cer_counts(truth_text: str, found_text: str) -> tuple[int, int]:
    """(edit distance, truth length) of the whitespace-normalised NFC texts."""
    truth = " ".join(synth.nfc(truth_text).split())
    found = " ".join(synth.nfc(found_text).split())
    return Levenshtein.distance(truth, found), len(truth)


def build_set(out: Path, pages: int, seed: int, paragraphs: list[str]) -> list[dict]:
    """Render and write one file per page; returns the truth rows (without images)."""
    scans = out / "scans"
    scans.mkdir(parents=True)
    rng = random.Random(seed)
    per_group = max(1, round(pages / len(GROUPS)))
    rows = []
    for g, (group, spec) in enumerate(GROUPS.items()):
        for i in range(per_group):
            kind = KINDS[(g + i) % len(KINDS)]
            dpi = spec.get("dpi", DEFAULT_DPI)
            low, high = spec["skew"]
            angle = rng.uniform(low, high) * rng.choice((-1, 1))
            if spec.get("turn"):
                angle += (90, 180, 270)[i % 3]
            damage = dict(spec.get("damage", {}))
            if spec.get("border"):
                damage["border"] = "".join(rng.sample("ltrb", rng.randint(1, 4)))
            if kind == "prose":
                start = rng.randrange(len(paragraphs))
                page = synth.render_prose(paragraphs[start:start + 15] or paragraphs, dpi=dpi,
                                          paper=rng.choice(("A4", "A4", "A5")))
            else:
                page = synth.render_page(kind, synth.make_fields(rng.randrange(10**6)), dpi=dpi)
            page = synth.scan(page, angle, seed=rng.randrange(10**6), **damage)
            name = f"{g:02d}-{i:02d}-{kind}{spec.get('suffix', '.png')}"
            synth.write_image(scans / name, page["image"], dpi if spec.get("with_dpi", True) else None, quality=90)
            rows.append({"file": name, "group": group, "kind": kind, "dpi": dpi, "paper": page["paper"],
                         "angle": page["angle"], "orientation": page["orientation"], "skew": page["skew"],
                         "words": page["words"], "text": page["text"]})
    return rows


def digitize_command() -> list[str]:
    script = Path(sys.executable).parent / "digitize"
    return [str(script)] if script.exists() else [sys.executable, "-m", "digitize.cli"]


def run_pipeline(out: Path, timeout: float) -> dict[str, dict]:
    """`digitize process scans --out output --json` in a private DIGITIZE_HOME; results by file name."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "DIGITIZE_HOME": str(out / "home")}
    command = digitize_command() + ["process", str(out / "scans"), "--out", str(out / "output"), "--json"]
    with open(out / "process.stderr", "w", encoding="utf-8") as errors:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=errors, env=env, timeout=timeout,
                              text=True, encoding="utf-8")
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            results[Path(record["source"]).name] = record
    return results


def tesseract_texts(out: Path, names: list[str], timeout: float) -> dict[str, str]:
    """Raw `tesseract IMG - -l vie` per page, two at a time, one thread each."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(name: str) -> str:
        done = subprocess.run(["tesseract", str(out / "scans" / name), "-", "-l", "vie"], capture_output=True,
                              env=env, timeout=timeout, text=True, encoding="utf-8")
        return done.stdout

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        return dict(zip(names, pool.map(one, names)))


def score(rows: list[dict], results: dict[str, dict], baseline: dict[str, str] | None) -> None:
    """Fill each truth row with what the pipeline (and the baseline) found."""
    for row in rows:
        record = results.get(row["file"], {"status": "missing", "pages": [], "error": "no JSON line"})
        text, page = "", {}
        if record.get("status") == "done" and record.get("pages"):
            text = Path(record["text_path"]).read_text(encoding="utf-8")
            page = record["pages"][0]
        row["status"], row["error"] = record.get("status"), record.get("error")
        row["found_words"], row["total_words"] = word_recall_counts(row["words"], text)
        row["edits"], row["chars"] = cer_counts(row["text"], text)
        row["found_orientation"], row["found_skew"] = page.get("orientation"), page.get("skew")
        row["skew_error"] = abs(page["skew"] - row["skew"]) if page else None
        if baseline is not None:
            row["baseline_found"] = word_recall_counts(row["words"], baseline.get(row["file"], ""))[0]


def summarise(rows: list[dict], with_baseline: bool) -> dict:
    errors_ = [r["skew_error"] for r in rows if r["skew_error"] is not None]
    words = sum(r["total_words"] for r in rows)
    summary = {
        "pages": len(rows),
        "failed": sum(r["status"] != "done" for r in rows),
        "word_recall": sum(r["found_words"] for r in rows) / words if words else None,
        "cer": sum(r["edits"] for r in rows) / max(1, sum(r["chars"] for r in rows)),
        "skew_mae": sum(errors_) / len(errors_) if errors_ else None,
        "skew_max": max(errors_) if errors_ else None,
        "skew_within_0_1": sum(e <= 0.1 for e in errors_) / len(rows) if rows else None,
        "orientation_accuracy": sum(r["found_orientation"] == r["orientation"] for r in rows) / len(rows)
        if rows else None,
    }
    if with_baseline:
        summary["baseline_word_recall"] = sum(r["baseline_found"] for r in rows) / words if words else None
    return summary


def table(groups: dict[str, dict], total: dict, with_baseline: bool) -> str:
    head = ["group", "pages", "failed", "recall", "CER", "skew MAE°", "max°", "≤0.1°", "orient"]
    if with_baseline:
        head.append("tesseract")

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    lines = []
    for name, s in [*groups.items(), ("TOTAL", total)]:
        cells = [name, str(s["pages"]), str(s["failed"]), fmt(s["word_recall"], ".4f"), fmt(s["cer"], ".4f"),
                 fmt(s["skew_mae"], ".3f"), fmt(s["skew_max"], ".2f"), fmt(s["skew_within_0_1"], ".0%"),
                 fmt(s["orientation_accuracy"], ".0%")]
        if with_baseline:
            cells.append(fmt(s["baseline_word_recall"], ".4f"))
        lines.append(cells)
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    render = [" ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
              for row in [head, *lines]]
    render.insert(1, "-" * len(render[0]))
    render.insert(len(render) - 1, "-" * len(render[0]))
    return "\n".join(render)


def evaluate(out: Path, pages: int = 55, seed: int = 20241203, baseline: str | None = None,
             timeout_per_page: float = 120.0) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    paragraphs, source = corpus_paragraphs()
    print(f"Văn bản / text: {source}", file=sys.stderr)
    rows = build_set(out, pages, seed, paragraphs)
    print(f"Đã tạo / rendered {len(rows)} trang/pages in {out / 'scans'}; đang xử lý / processing…", file=sys.stderr)
    results = run_pipeline(out, timeout_per_page * len(rows))
    texts = tesseract_texts(out, [r["file"] for r in rows], timeout_per_page) if baseline else None
    score(rows, results, texts)
    with_baseline = texts is not None
    groups = {name: summarise([r for r in rows if r["group"] == name], with_baseline) for name in GROUPS}
    report = {"text_source": source, "seed": seed, "groups": groups, "total": summarise(rows, with_baseline),
              "pages": [{k: v for k, v in r.items() if k not in ("words", "text")} for r in rows]}
    (out / "eval.json").write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(table(groups, report["total"], with_baseline))
    print(f"Chi tiết / details: {out / 'eval.json'}", file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digitize.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=55, help="pages in total, spread over the groups")
    parser.add_argument("--out", type=Path, default=config.PROJECT_ROOT / ".eval")
    parser.add_argument("--seed", type=int, default=20241203)
    parser.add_argument("--baseline", choices=("tesseract",), help="also score raw tesseract on the same images")
    args = parser.parse_args(argv)
    report = evaluate(args.out, args.pages, args.seed, args.baseline)
    return 0 if report["total"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
