"""Accuracy on a fresh held-out set: `python -m tools.evaluate [--pages N] [--hard-pages N]
[--split heldout|tune] [--out DIR] [--baseline tesseract] [--baseline ocrmypdf]`.

Renders pages with tools.synth (prose from ../shared/corpus/vi when present), damages them per
group, runs the real `digitize process --json` over them, and reports per group: word recall
(multiset, NFC, diacritics exact), CER, skew error, orientation accuracy, pages left empty, and
beside each the recall of raw `tesseract -l vie` and of OCRmyPDF on the same files, with the
pages where digitize read more than 0.01 less than raw tesseract. The groups of tools.paper
(tinted paper at large angles, photocopies, seals and signatures, phone photos, bold serif
headers, 150 dpi JPEG) come from the split asked for: "heldout" (the default, the figures to
report) or "tune" (what thresholds are adjusted on); the table's split column says which.

Then (unless --no-links) linking: a fresh registry CSV and documents with known dossiers (receipts
with and without readable QR/barcodes, skewed and turned, declarations with a stamped code or only
the applicant's fields, scans named after the code, multi-dossier feeds, another office's codes,
pages of no dossier) go through the real `digitize registry import` and `digitize process`; every
dossier of every document is scored linked right, linked wrong or left to review, giving precision
and recall. Then (unless --no-layouts) the same per vendor layout (tools.layouts), with precision and
recall per layout and per split: the layouts the rules were developed on, and those held out.
Figures go to <out>/eval.json as well. Nothing here is timed: throughput is the benchmark's job.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zxingcpp
from rapidfuzz.distance import Levenshtein

from digitize import config
from tools import REPO_ROOT, layouts, paper, synth
from digitize.vntext import nfc

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


def corpus_paragraphs(folder: Path = synth.CORPUS_DIR) -> tuple[list[str], str]:
    """Paragraphs (one a line) from the shared corpus, else the project's own sample text."""
    lines = [line for line in synth.corpus_lines(folder=folder) if len(line.split()) >= 4]
    if lines:
        return lines, str(folder)
    return list(synth.SAMPLE_PARAGRAPHS), "project sample text (corpus not found at %s)" % folder


def word_recall_counts(truth_words: list[str], found_text: str) -> tuple[int, int]:
    """(truth words found, truth words), counted as multisets after NFC; diacritics must match."""
    truth = Counter(nfc(w) for w in truth_words)
    found = Counter(nfc(found_text).split())
    return sum((truth & found).values()), sum(truth.values())


def cer_counts(truth_text: str, found_text: str) -> tuple[int, int]:
    """(edit distance, truth length) of the whitespace-normalised NFC texts."""
    truth = " ".join(nfc(truth_text).split())
    found = " ".join(nfc(found_text).split())
    return Levenshtein.distance(truth, found), len(truth)


def build_set(out: Path, pages: int, seed: int, paragraphs: list[str], hard_pages: int = 0,
              split: str = "heldout") -> list[dict]:
    """Render and write one file per page; returns the truth rows (without images).

    `pages` spread over GROUPS (split "base": the seed given), then `hard_pages` per group of
    tools.paper on its `split` ("tune" while adjusting rules, "heldout" for the figures)."""
    scans = out / "scans"
    scans.mkdir(parents=True)
    rng = random.Random(seed)
    per_group = max(1, round(pages / len(GROUPS))) if pages else 0
    rows = []
    for g, group in enumerate(paper.GROUPS):
        for i in range(hard_pages):
            page, dpi, suffix = paper.make_page(group, split, i, paragraphs)
            name = f"{split}-{g:02d}-{i:02d}-{page['kind']}{suffix}"
            synth.write_image(scans / name, page["image"], dpi, quality=92)
            rows.append({"file": name, "group": group, "split": split, "kind": page["kind"], "dpi": dpi,
                         "paper": page["paper"], "angle": page["angle"], "orientation": page["orientation"],
                         "skew": page["skew"], "words": page["words"], "text": page["text"]})
    for g, (group, spec) in enumerate(GROUPS.items() if per_group else ()):
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
            rows.append({"file": name, "group": group, "split": "base", "kind": kind, "dpi": dpi,
                         "paper": page["paper"],
                         "angle": page["angle"], "orientation": page["orientation"], "skew": page["skew"],
                         "words": page["words"], "text": page["text"]})
    return rows


def digitize_command() -> list[str]:
    script = Path(sys.executable).parent / "digitize"
    return [str(script)] if script.exists() else [sys.executable, "-m", "digitize.cli"]


def private_env(out: Path) -> dict[str, str]:
    """The environment of every `digitize` run of one evaluation: its own DIGITIZE_HOME under `out`."""
    return {**os.environ, "OMP_THREAD_LIMIT": "1", "DIGITIZE_HOME": str(out / "home")}


def run_pipeline(out: Path, timeout: float) -> dict[str, dict]:
    """`digitize process scans --out output --json` in a private DIGITIZE_HOME; results by file name."""
    env = private_env(out)
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


def ocrmypdf_texts(out: Path, rows: list[dict], timeout: float) -> dict[str, str]:
    """OCRmyPDF (`--rotate-pages --deskew`, vie) per page, two at a time; its sidecar text.

    It refuses images without a resolution: those get `--image-dpi` from the paper size, as an
    operator would have to give it. A page it fails on reads as empty."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    folder = out / "ocrmypdf"
    folder.mkdir(exist_ok=True)

    def one(row: dict) -> str:
        source = out / "scans" / row["file"]
        sidecar = folder / (row["file"] + ".txt")
        command = [sys.executable, "-m", "ocrmypdf", "-q", "-l", "vie", "--rotate-pages", "--deskew", "--jobs", "1",
                   "--output-type", "pdf", "--sidecar", str(sidecar), str(source), str(folder / (row["file"] + ".pdf"))]
        if row["dpi"] is None:
            from PIL import Image
            with Image.open(source) as image:
                dpi = round(max(image.size) / synth.PAPER_MM["A4"][1] * 25.4)
            command[3:3] = ["--image-dpi", str(dpi)]
        subprocess.run(command, capture_output=True, env=env, timeout=timeout)
        return sidecar.read_text(encoding="utf-8") if sidecar.exists() else ""

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        return dict(zip([r["file"] for r in rows], pool.map(one, rows)))


def score(rows: list[dict], results: dict[str, dict], baselines: dict[str, dict[str, str]]) -> None:
    """Fill each truth row with what the pipeline (and each baseline) found."""
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
        row["reading"], row["warnings"] = page.get("reading"), page.get("warnings")
        # A phone photo has no skew truth: its sheet is flattened, not turned.
        row["skew_error"] = abs(page["skew"] - row["skew"]) if page and row["skew"] is not None else None
        for name, texts in baselines.items():
            row[f"{name}_found"] = word_recall_counts(row["words"], texts.get(row["file"], ""))[0]


def summarise(rows: list[dict], baselines: tuple[str, ...]) -> dict:
    errors_ = [r["skew_error"] for r in rows if r["skew_error"] is not None]
    with_orientation = [r for r in rows if r["angle"] is not None]
    words = sum(r["total_words"] for r in rows)
    summary = {
        "split": "/".join(sorted({r["split"] for r in rows})),
        "pages": len(rows),
        "failed": sum(r["status"] != "done" for r in rows),
        "word_recall": sum(r["found_words"] for r in rows) / words if words else None,
        "cer": sum(r["edits"] for r in rows) / max(1, sum(r["chars"] for r in rows)),
        "skew_mae": sum(errors_) / len(errors_) if errors_ else None,
        "skew_max": max(errors_) if errors_ else None,
        "skew_within_0_1": sum(e <= 0.1 for e in errors_) / len(errors_) if errors_ else None,
        "orientation_accuracy": sum(r["found_orientation"] == r["orientation"] for r in with_orientation)
        / len(with_orientation) if with_orientation else None,
        "empty": sum(r["found_words"] == 0 and r["total_words"] > 0 for r in rows),
    }
    for name in baselines:
        summary[f"{name}_word_recall"] = sum(r[f"{name}_found"] for r in rows) / words if words else None
    if "tesseract" in baselines:
        # The floor: pages where the pipeline read more than a point less than raw tesseract.
        summary["below_tesseract"] = sum(
            r["found_words"] / max(1, r["total_words"]) < r["tesseract_found"] / max(1, r["total_words"]) - 0.01
            for r in rows)
    return summary


def _aligned(head: list[str], lines: list[list[str]]) -> list[str]:
    """Rows in columns: names left, figures right, rules under the header and above the total."""
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    render = [" ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
              for row in [head, *lines]]
    render.insert(1, "-" * len(render[0]))
    render.insert(len(render) - 1, "-" * len(render[0]))
    return render


def table(groups: dict[str, dict], total: dict, baselines: tuple[str, ...]) -> str:
    head = ["group", "split", "pages", "failed", "empty", "recall", "CER", "skew MAE°", "max°", "≤0.1°", "orient"]
    head += list(baselines)
    if "tesseract" in baselines:
        head.append("<tess-0.01")

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    lines = []
    for name, s in [*groups.items(), ("TOTAL", total)]:
        cells = [name, s["split"], str(s["pages"]), str(s["failed"]), str(s["empty"]), fmt(s["word_recall"], ".4f"),
                 fmt(s["cer"], ".4f"), fmt(s["skew_mae"], ".3f"), fmt(s["skew_max"], ".2f"),
                 fmt(s["skew_within_0_1"], ".0%"), fmt(s["orientation_accuracy"], ".0%")]
        cells += [fmt(s[f"{name_}_word_recall"], ".4f") for name_ in baselines]
        if "tesseract" in baselines:
            cells.append(str(s["below_tesseract"]))
        lines.append(cells)
    return "\n".join(_aligned(head, lines))


def evaluate(out: Path, pages: int = 55, seed: int = 20241203, baselines: tuple[str, ...] = (),
             timeout_per_page: float = 120.0, hard_pages: int = 0, split: str = "heldout") -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    paragraphs, source = corpus_paragraphs()
    print(f"Văn bản / text: {source}", file=sys.stderr)
    rows = build_set(out, pages, seed, paragraphs, hard_pages, split)
    print(f"Đã tạo / rendered {len(rows)} trang/pages in {out / 'scans'}; đang xử lý / processing…", file=sys.stderr)
    results = run_pipeline(out, timeout_per_page * len(rows))
    texts = {}
    if "tesseract" in baselines:
        texts["tesseract"] = tesseract_texts(out, [r["file"] for r in rows], timeout_per_page)
    if "ocrmypdf" in baselines:
        texts["ocrmypdf"] = ocrmypdf_texts(out, rows, timeout_per_page)
    score(rows, results, texts)
    names = [g for g in (*paper.GROUPS, *GROUPS) if any(r["group"] == g for r in rows)]
    groups = {name: summarise([r for r in rows if r["group"] == name], baselines) for name in names}
    report = {"text_source": source, "seed": seed, "split": split, "groups": groups,
              "total": summarise(rows, baselines),
              "pages": [{k: v for k, v in r.items() if k not in ("words", "text")} for r in rows]}
    write_report(out, report)
    print(table(groups, report["total"], baselines))
    return report


def write_report(out: Path, report: dict) -> None:
    (out / "eval.json").write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"Chi tiết / details: {out / 'eval.json'}", file=sys.stderr)


# ---------------------------------------------------------------- linking

# Category -> whether its documents belong to a registry dossier (the rest must never link).
LINK_CATEGORIES = {
    "receipt QR straight": True,
    "receipt QR skewed": True,
    "receipt QR turned": True,
    "receipt QR/barcode cut off": True,
    "declaration code stamped": True,
    "declaration fields only": True,
    "named after the code": True,
    "multi-dossier feed": True,
    "another office's code": False,
    "no code": False,
}
LINK_DPI = 200
REGISTRY_SIZE = 60
# An office next door: its codes differ from ours in one character of the agency part.
OTHER_AGENCY = "000.00.07.H56"


def _registry(rng: random.Random, size: int, agency: str) -> list[dict]:
    """`size` dossiers with distinct codes and citizen IDs, as the one-stop software lists them."""
    dossiers, codes, ids = [], set(), set()
    while len(dossiers) < size:
        fields = synth.make_fields(rng.randrange(10**9), agency_code=agency)
        if fields["dossier_code"] in codes or fields["cccd"] in ids:
            continue
        codes.add(fields["dossier_code"])
        ids.add(fields["cccd"])
        status = rng.choice((2, 4, 5, 9, 10, 10))
        fields["status"] = status
        fields["finished"] = fields["due"] if status in (9, 10) else None
        dossiers.append(fields)
    return dossiers


def _stranger(rng: random.Random, registry: list[dict], **options) -> dict:
    """Fields of someone with no dossier in the registry (another CCCD, code not in it)."""
    codes, ids = {d["dossier_code"] for d in registry}, {d["cccd"] for d in registry}
    while True:
        fields = synth.make_fields(rng.randrange(10**9), **options)
        if fields["dossier_code"] not in codes and fields["cccd"] not in ids:
            return fields


def _neighbour_code_fields(rng: random.Random, registry: list[dict], variant: int, agency: str) -> dict:
    """A well-formed code one character away from a registry dossier's, not in the registry:
    0 another office's dossier, 1 a dossier of ours received the same day but not imported yet,
    2 the same applicant's newer dossier for the same procedure, not imported yet."""
    codes = {d["dossier_code"] for d in registry}
    while True:
        near = rng.choice(registry)
        received = near["received"]
        if variant == 0:
            fields = _stranger(rng, registry, agency_code=OTHER_AGENCY, received=received,
                               sequence=near["sequence"])
        else:
            sequence = near["sequence"] + rng.choice((1, 2, 3, 10, 20, -10))
            fields = _stranger(rng, registry, agency_code=agency, received=received,
                               sequence=min(max(sequence, 1), 9999))
            if variant == 2:
                fields = {**near, "dossier_code": fields["dossier_code"], "sequence": fields["sequence"]}
        if fields["dossier_code"] not in codes and Levenshtein.distance(fields["dossier_code"],
                                                                        near["dossier_code"]) <= 2:
            return fields


def _blank_symbols(page: dict, whole: bool) -> dict:
    """The receipt with its QR code and barcode gone (`whole`: never printed, or torn off) or
    cut through (the page slid on the glass, a fold): the code survives only as text."""
    image = page["image"].copy()
    for symbol in zxingcpp.read_barcodes(image):
        corners = [symbol.position.top_left, symbol.position.top_right, symbol.position.bottom_left,
                   symbol.position.bottom_right]
        left, right = min(c.x for c in corners) - 8, max(c.x for c in corners) + 8
        top, bottom = min(c.y for c in corners) - 8, max(c.y for c in corners) + 8
        if not whole:
            left = left + (right - left) * 2 // 5
        image.paste(255, (left, top, right, bottom))
    return {**page, "image": image}


def _officer_name(code: str, style: int) -> str:
    """File names officers type: the code as is, or with underscores and a prefix."""
    agency, day, number = code.rsplit("-", 2)
    return (code, f"HS {agency}_{day}_{number}", f"{code} ket qua")[style % 3]


def _link_documents(category: str, count: int, rng: random.Random, take, registry: list[dict],
                    agency: str) -> list[dict]:
    """`count` documents of one category: {"name", "pages": [scanned pages], "segments":
    [{"first_page", "last_page", "code"}]} (code None: belongs to no registry dossier)."""

    def scanned(page, angle=None, **damage):
        angle = rng.uniform(-2.0, 2.0) if angle is None else angle
        return synth.scan(page, angle, seed=rng.randrange(10**6), noise=rng.uniform(1.0, 4.0), **damage)

    def skew(low, high):
        return rng.uniform(low, high) * rng.choice((-1, 1))

    documents = []
    for i in range(count):
        suffix = (".jpg", ".pdf", ".png", ".tif")[i % 4]
        name = "-".join(re.findall(r"[a-z0-9]+", category.lower())) + f"-{i:02d}"
        code = None
        if category == "receipt QR straight":
            fields = take()
            pages = [scanned(synth.render_receipt(fields, dpi=LINK_DPI), 0.0)]
        elif category == "receipt QR skewed":
            fields = take()
            pages = [scanned(synth.render_receipt(fields, dpi=LINK_DPI), skew(3.0, 12.0))]
        elif category == "receipt QR turned":
            fields = take()
            pages = [scanned(synth.render_receipt(fields, dpi=LINK_DPI), (90, 180, 270)[i % 3] + skew(0, 2))]
        elif category == "receipt QR/barcode cut off":
            fields = take()
            page = _blank_symbols(synth.render_receipt(fields, dpi=LINK_DPI), whole=i % 2 == 0)
            pages = [scanned(page, skew(0, 6) + (180 if i % 4 == 3 else 0))]
        elif category == "declaration code stamped":
            fields = take()
            pages = [scanned(synth.render_declaration(fields, dpi=LINK_DPI, stamp_code=True),
                             skew(0, 5) + (90, 0, 270, 0)[i % 4])]
        elif category == "declaration fields only":
            fields = take()
            parts = 1 + i % 2
            pages = [scanned(synth.render_declaration(fields, dpi=LINK_DPI, part=k, parts=parts), skew(0, 4))
                     for k in range(1, parts + 1)]
        elif category == "named after the code":
            fields = take()
            # Pages that carry no code of their own: a result without it, a declaration's last page.
            page = (synth.render_decision(fields, dpi=LINK_DPI, cite_code=False) if i % 2 == 0
                    else synth.render_declaration(fields, dpi=LINK_DPI, part=2, parts=2))
            pages = [scanned(page, skew(0, 3))]
            name = _officer_name(fields["dossier_code"], i)
        elif category == "multi-dossier feed":
            pages, segments = [], []
            for _ in range(2 + i % 2):
                fields = take()
                group = [synth.render_receipt(fields, dpi=LINK_DPI), synth.render_declaration(fields, dpi=LINK_DPI)]
                if rng.random() < 0.4:
                    group.append(synth.render_decision(fields, dpi=LINK_DPI))
                segments.append({"first_page": len(pages) + 1, "last_page": len(pages) + len(group),
                                 "code": fields["dossier_code"]})
                pages += [scanned(page) for page in group]
            suffix = (".pdf", ".tif")[i % 2]
            documents.append({"name": name + suffix, "pages": pages, "segments": segments})
            continue
        elif category == "another office's code":
            fields = _neighbour_code_fields(rng, registry, i % 3, agency)
            page = synth.render_receipt(fields, dpi=LINK_DPI)
            if i % 2:
                page = _blank_symbols(page, whole=True)
            pages = [scanned(page, skew(0, 5))]
        else:  # no code
            fields = _stranger(rng, registry)
            page = (synth.render_prose(dpi=LINK_DPI, number=f"Số: {rng.randrange(1, 99)}/TB-UBND"),
                    synth.render_declaration(fields, dpi=LINK_DPI),
                    synth.render_decision(fields, dpi=LINK_DPI, cite_code=False))[i % 3]
            pages = [scanned(page, skew(0, 4) + (180 if i % 4 == 3 else 0))]
        if LINK_CATEGORIES[category]:
            code = fields["dossier_code"]
        documents.append({"name": name + suffix, "pages": pages,
                          "segments": [{"first_page": 1, "last_page": len(pages), "code": code}]})
    return documents


def build_link_set(out: Path, documents: int, seed: int, agency: str, headers: dict[str, str]) -> list[dict]:
    """Write out/registry.csv and out/scans/*; returns the truth: one row per document."""
    rng = random.Random(seed)
    per, extra = divmod(max(documents, len(LINK_CATEGORIES)), len(LINK_CATEGORIES))
    counts = {category: per + (k < extra) for k, category in enumerate(LINK_CATEGORIES)}
    # Feeds hold 2-3 dossiers each; a quarter of the registry has no scan at all.
    needed = sum(counts.values()) + 2 * counts["multi-dossier feed"]
    registry = _registry(rng, max(REGISTRY_SIZE, round(needed * 1.3)), agency)
    synth.write_registry(out / "registry.csv", registry, headers)
    pool = list(registry)
    rng.shuffle(pool)
    scans = out / "scans"
    scans.mkdir(parents=True)
    rows = []
    for category, count in counts.items():
        for document in _link_documents(category, count, rng, pool.pop, registry, agency):
            images = [page["image"] for page in document["pages"]]
            synth.write_pages(scans / document["name"], images, LINK_DPI, quality=85)
            rows.append({"file": document["name"], "category": category, "pages": len(images),
                         "segments": document["segments"]})
    return rows


def _page_dossiers(record: dict, pages: int) -> list[str | None]:
    """The dossier each page of a processed document was linked to (None: review, none or failed)."""
    linked: list[str | None] = [None] * pages
    for part in record.get("parts") or ():
        if (part.get("link") or {}).get("status") == "linked":
            for number in range(part["first_page"], min(part["last_page"], pages) + 1):
                linked[number - 1] = part["dossier"]
    return linked


def score_links(rows: list[dict], results: dict[str, dict]) -> list[dict]:
    """One outcome per dossier of every document: "right" (all its pages linked to it), "wrong" (a
    page linked to another dossier, or any link for a document of no dossier) or "review"."""
    outcomes = []
    for row in rows:
        record = results.get(row["file"], {"status": "missing", "error": "no JSON line"})
        linked = _page_dossiers(record, row["pages"]) if record.get("status") == "done" else [None] * row["pages"]
        for segment in row["segments"]:
            got = linked[segment["first_page"] - 1:segment["last_page"]]
            if any(code is not None and code != segment["code"] for code in got):
                outcome = "wrong"
            elif segment["code"] is not None and all(code == segment["code"] for code in got):
                outcome = "right"
            else:
                outcome = "review"
            parts = [{"pages": f"{p['first_page']}-{p['last_page']}", "kind": p.get("kind"),
                      "dossier": p.get("dossier"), "status": p["link"]["status"], "method": p["link"]["method"],
                      "reason": p["link"].get("reason"), "candidates": p["link"]["candidates"][:3]}
                     for p in record.get("parts") or ()
                     if p["first_page"] <= segment["last_page"] and p["last_page"] >= segment["first_page"]]
            outcomes.append({"file": row["file"], "category": row["category"], **segment, "outcome": outcome,
                             "status": record.get("status"), "error": record.get("error"), "parts": parts})
    return outcomes


def summarise_links(outcomes: list[dict]) -> dict:
    right = sum(o["outcome"] == "right" for o in outcomes)
    wrong = sum(o["outcome"] == "wrong" for o in outcomes)
    should = sum(o["code"] is not None for o in outcomes)
    return {"documents": len({o["file"] for o in outcomes}), "dossiers": len(outcomes), "should_link": should,
            "right": right, "wrong": wrong, "review": len(outcomes) - right - wrong,
            "failed": sum(o["status"] != "done" for o in outcomes),
            "precision": right / (right + wrong) if right + wrong else None,
            "recall": right / should if should else None}


def link_table(groups: dict[str, dict], total: dict) -> str:
    head = ["category", "documents", "dossiers", "should link", "right", "wrong", "review/none", "failed"]
    keys = ["documents", "dossiers", "should_link", "right", "wrong", "review", "failed"]
    lines = [[name, *(str(s[k]) for k in keys)] for name, s in [*groups.items(), ("TOTAL", total)]]
    render = _aligned(head, lines)

    def fmt(value):
        return "-" if value is None else f"{value:.4f}"

    render.append(f"precision {fmt(total['precision'])} = right / (right + wrong)   "
                  f"recall {fmt(total['recall'])} = right / should link")
    return "\n".join(render)


def evaluate_links(out: Path, documents: int = 40, seed: int = 20241204, timeout_per_page: float = 120.0) -> dict:
    """Linking precision and recall on a fresh registry and documents with known dossiers."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    settings = config.load_config()
    headers = {field: names[0] for field, names in settings["registry"]["columns"].items()}
    rows = build_link_set(out, documents, seed, settings["office"]["agency_code"], headers)
    pages = sum(r["pages"] for r in rows)
    print(f"Đã tạo / rendered {len(rows)} tài liệu/documents ({pages} trang/pages) and a registry; "
          f"đang liên kết / linking…", file=sys.stderr)
    imported = subprocess.run(digitize_command() + ["registry", "import", str(out / "registry.csv"), "--json"],
                              capture_output=True, env=private_env(out), timeout=600, text=True, encoding="utf-8")
    if imported.returncode != 0:
        raise RuntimeError(f"registry import failed: {imported.stderr.strip()}")
    results = run_pipeline(out, timeout_per_page * pages)
    outcomes = score_links(rows, results)
    groups = {name: summarise_links([o for o in outcomes if o["category"] == name]) for name in LINK_CATEGORIES}
    report = {"seed": seed, "registry": json.loads(imported.stdout), "groups": groups,
              "total": summarise_links(outcomes), "dossiers": outcomes}
    print(link_table(groups, report["total"]))
    return report


# ---------------------------------------------------------------- vendors' layouts

LAYOUT_DOCS = 24
# Agencies of the offices whose papers the layouts print (the registry holds all of them).
LAYOUT_AGENCIES = ("000.00.06.H56", "000.20.25.H55", "000.31.12.H55", "H56.14")


def _impostor(rng: random.Random, victim: dict, other: dict) -> dict:
    """A paper carrying `victim`'s dossier code, procedure and dates, but the name, CCCD, address
    and phone of `other` (another dossier's applicant): it must never link to either."""
    person = {k: other[k] for k in ("applicant", "title", "cccd", "address", "phone")}
    return {**victim, **person}


def build_layout_set(out: Path, per_layout: int, seed: int, headers: dict[str, str],
                     names: tuple[str, ...]) -> list[dict]:
    """Write out/registry.csv and out/scans/*: `per_layout` one-page documents of each layout in
    `names`. Of every eight: six genuine, one impostor (right code, another dossier's person), one
    stranger (a code not in the registry); on a third of them the QR code and barcode did not
    survive (torn, folded, never printed), so the printed text must carry the link. Returns the
    truth, one row per document."""
    rng = random.Random(seed)
    impostors = sum(1 for i in range(per_layout) if i % 8 == 7) * len(names)
    needed = per_layout * len(names) + impostors
    registry = []
    codes, ids = set(), set()
    while len(registry) < round(needed * 1.3) + 10:
        fields = synth.make_fields(rng.randrange(10**9), agency_code=rng.choice(LAYOUT_AGENCIES))
        if fields["dossier_code"] in codes or fields["cccd"] in ids:
            continue
        codes.add(fields["dossier_code"])
        ids.add(fields["cccd"])
        fields["status"] = rng.choice((2, 4, 9, 10))
        fields["finished"] = fields["due"] if fields["status"] in (9, 10) else None
        registry.append(fields)
    synth.write_registry(out / "registry.csv", registry, headers)
    pool = list(registry)
    rng.shuffle(pool)
    scans = out / "scans"
    scans.mkdir(parents=True)
    rows = []
    for name in names:
        render = layouts.LAYOUTS[name]
        for i in range(per_layout):
            variant = {7: "impostor", 3: "stranger"}.get(i % 8, "genuine")
            if variant == "impostor":
                printed, truth = _impostor(rng, pool.pop(), pool.pop()), None
            elif variant == "stranger":
                printed, truth = _stranger(rng, registry, agency_code=rng.choice(LAYOUT_AGENCIES)), None
            else:
                printed = pool.pop()
                truth = printed["dossier_code"]
            page = render(printed, rng, LINK_DPI)
            symbols = i % 3 != 1
            if not symbols:
                page = _blank_symbols(page, whole=True)
            angle = rng.uniform(-2.5, 2.5) + (180 if i % 11 == 10 else 0)
            page = synth.scan(page, angle, seed=rng.randrange(10**6), noise=rng.uniform(1.0, 4.0))
            file = f"{name}-{i:02d}{('.png', '.jpg', '.pdf', '.tif')[i % 4]}"
            synth.write_pages(scans / file, [page["image"]], LINK_DPI, quality=85)
            rows.append({"file": file, "category": name, "variant": variant, "symbols": symbols, "pages": 1,
                         "segments": [{"first_page": 1, "last_page": 1, "code": truth}]})
    return rows


def layout_table(groups: dict[str, dict], splits: dict[str, dict]) -> str:
    head = ["layout", "split", "documents", "should link", "right", "wrong", "review/none", "precision", "recall"]

    def fmt(value):
        return "-" if value is None else f"{value:.4f}"

    split_of = {name: split for split, names in layouts.SPLITS.items() for name in names}
    lines = [[name, split_of.get(name, name), str(s["documents"]), str(s["should_link"]), str(s["right"]),
              str(s["wrong"]), str(s["review"]), fmt(s["precision"]), fmt(s["recall"])]
             for name, s in groups.items()]
    lines += [[f"all {split}", split, str(s["documents"]), str(s["should_link"]), str(s["right"]), str(s["wrong"]),
               str(s["review"]), fmt(s["precision"]), fmt(s["recall"])] for split, s in splits.items()]
    render = _aligned(head, lines)
    del render[-2]   # the split rows are totals, but there are several: one rule above them all
    render.insert(len(render) - len(splits), "-" * len(render[0]))
    return "\n".join(render)


def evaluate_layouts(out: Path, per_layout: int = LAYOUT_DOCS, seed: int = 20241205,
                     splits: tuple[str, ...] = ("dev", "held_out"), timeout_per_page: float = 120.0) -> dict:
    """Linking precision and recall per vendor layout and per split (tools.layouts), through the
    real `digitize registry import` and `digitize process`."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    settings = config.load_config()
    headers = {field: names[0] for field, names in settings["registry"]["columns"].items()}
    names = tuple(name for split in splits for name in layouts.SPLITS[split])
    rows = build_layout_set(out, per_layout, seed, headers, names)
    print(f"Đã tạo / rendered {len(rows)} trang/pages of {len(names)} layouts; đang liên kết / linking…",
          file=sys.stderr)
    imported = subprocess.run(digitize_command() + ["registry", "import", str(out / "registry.csv"), "--json"],
                              capture_output=True, env=private_env(out), timeout=600, text=True, encoding="utf-8")
    if imported.returncode != 0:
        raise RuntimeError(f"registry import failed: {imported.stderr.strip()}")
    results = run_pipeline(out, timeout_per_page * len(rows))
    outcomes = score_links(rows, results)
    truth = {row["file"]: row for row in rows}
    for outcome in outcomes:
        outcome["variant"], outcome["symbols"] = truth[outcome["file"]]["variant"], truth[outcome["file"]]["symbols"]
        part = (results.get(outcome["file"]) or {}).get("parts", [{}])[0]
        fields = part.get("fields") or {}
        outcome["read"] = {"applicant": fields.get("applicant"), "cccd_source": fields.get("cccd_source"),
                           "kind": fields.get("kind"), "codes": [(c["source"], c["exact"]) for c in
                                                                 fields.get("codes") or ()]}
    groups = {name: summarise_links([o for o in outcomes if o["category"] == name]) for name in names}
    by_split = {split: summarise_links([o for o in outcomes if o["category"] in layouts.SPLITS[split]])
                for split in splits}
    report = {"seed": seed, "splits": {s: list(layouts.SPLITS[s]) for s in splits}, "layouts": groups,
              "by_split": by_split, "dossiers": outcomes}
    print(layout_table(groups, by_split))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=55, help="pages in total, spread over the groups")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".eval")
    parser.add_argument("--seed", type=int, default=20241203)
    parser.add_argument("--baseline", choices=("tesseract", "ocrmypdf"), action="append", default=[],
                        help="also score raw tesseract / OCRmyPDF on the same images (repeatable)")
    parser.add_argument("--hard-pages", type=int, default=4, metavar="N",
                        help="pages per group of tools.paper (tinted paper, photocopies, seals, photos, ...)")
    parser.add_argument("--split", choices=("heldout", "tune"), default="heldout",
                        help="which split of tools.paper to render: report on heldout, tune on tune")
    parser.add_argument("--no-links", action="store_true", help="skip the linking evaluation")
    parser.add_argument("--link-docs", type=int, default=40, metavar="N",
                        help="documents in the linking evaluation (feeds hold several dossiers)")
    parser.add_argument("--no-pages", action="store_true", help="skip the OCR accuracy evaluation")
    parser.add_argument("--no-layouts", action="store_true", help="skip the vendors' layouts evaluation")
    parser.add_argument("--layout-docs", type=int, default=LAYOUT_DOCS, metavar="N", help="documents per layout")
    parser.add_argument("--layout-split", choices=("dev", "held_out", "all"), default="all",
                        help="which layouts: those rules are tuned on, those held out, or both")
    args = parser.parse_args(argv)
    report: dict = {}
    ok = True
    if not args.no_pages:
        report = evaluate(args.out, args.pages, args.seed, tuple(args.baseline),
                          hard_pages=args.hard_pages, split=args.split)
        ok = report["total"]["failed"] == 0
    else:
        args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_links:
        print()
        report["links"] = evaluate_links(args.out / "links", args.link_docs, args.seed + 1)
        write_report(args.out, report)
        # A wrong link files a scan under another citizen's dossier: never acceptable.
        ok = ok and report["links"]["total"]["wrong"] == 0
    if not args.no_layouts:
        print()
        splits = ("dev", "held_out") if args.layout_split == "all" else (args.layout_split,)
        report["layouts"] = evaluate_layouts(args.out / "layouts", args.layout_docs, args.seed + 2, splits)
        write_report(args.out, report)
        ok = ok and all(s["wrong"] == 0 for s in report["layouts"]["layouts"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
