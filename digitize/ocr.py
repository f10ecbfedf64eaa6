"""One tesseract run per page: a text-only PDF page (the invisible text layer)
and the word boxes (TSV) from the same pass.

The sidecar text is rebuilt from the word boxes, block by block, so the two
columns of an official header are not run together line by line.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import programs
from .vntext import nfc


@dataclass(frozen=True)
class OcrPage:
    text: str  # NFC, blocks separated by blank lines
    confidence: float  # mean word confidence 0–100; 0 for a page without words
    text_pdf: str  # path of tesseract's text-only PDF page


# A gap this many word heights wide inside a "line" is the gutter between two columns.
COLUMN_GAP_HEIGHTS = 3.0

Word = tuple[str, int, int, int, int, float]  # (text, left, top, width, height, conf)


def _column_break(line: list[Word]) -> int | None:
    """x where a line jumps across a column gutter, if it does."""
    height = float(np.median([w[4] for w in line]))
    for previous, word in zip(line, line[1:]):
        if word[1] - (previous[1] + previous[3]) > COLUMN_GAP_HEIGHTS * height:
            return word[1]
    return None


def _block_text(lines: list[list[Word]]) -> str:
    """A block's lines; a two-column block (official header, signatures) column by column."""
    breaks = [_column_break(line) for line in lines]
    if not any(breaks):
        return "\n".join(" ".join(w[0] for w in line) for line in lines)
    boundary = float(np.median([b for b in breaks if b is not None]))
    left: list[list[Word]] = []
    right: list[list[Word]] = []
    for line, split in zip(lines, breaks):
        if split is None:
            # A line of one column only: it goes to the side its centre is on.
            centre = (line[0][1] + line[-1][1] + line[-1][3]) / 2
            (left if centre < boundary else right).append(line)
        else:
            left.append([w for w in line if w[1] < split])
            right.append([w for w in line if w[1] >= split])
    return "\n".join(" ".join(w[0] for w in line) for line in left + right)


def _read_tsv(path: Path) -> tuple[str, float]:
    """The page's text, block by block, and its mean word confidence."""
    lines: dict[tuple[int, int, int], list[Word]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = nfc((row.get("text") or "").strip())
            if row.get("level") != "5" or not text:
                continue
            key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
            lines.setdefault(key, []).append((text, int(row["left"]), int(row["top"]), int(row["width"]),
                                              int(row["height"]), float(row["conf"])))
    blocks: dict[int, list[list[Word]]] = {}
    for (block, _, _), line_words in lines.items():
        blocks.setdefault(block, []).append(line_words)
    text = "\n\n".join(_block_text(block_lines) for block_lines in blocks.values())
    confidences = [w[5] for line in lines.values() for w in line if w[5] >= 0]
    mean = float(np.mean(confidences)) if confidences else 0.0
    return text, mean


def recognise(image: np.ndarray, dpi: float, work_base: Path, lang: str, psm: int,
              timeout: float) -> OcrPage:
    """OCR a grey page image; outputs land beside `work_base` (.pgm, .pdf, .tsv)."""
    # Uncompressed PGM: the file lives a second; writing and decoding a PNG costs ~0.15 s a page.
    image_path = work_base.with_suffix(".pgm")
    cv2.imwrite(str(image_path), image)
    config = f"--psm {psm} --dpi {round(dpi)} -c tessedit_create_tsv=1 -c textonly_pdf=1"
    try:
        programs.tesseract(image_path, work_base, lang, config, timeout)
    finally:
        image_path.unlink(missing_ok=True)
    text, confidence = _read_tsv(work_base.with_suffix(".tsv"))
    work_base.with_suffix(".tsv").unlink(missing_ok=True)
    return OcrPage(text, round(confidence, 2), str(work_base.with_suffix(".pdf")))
