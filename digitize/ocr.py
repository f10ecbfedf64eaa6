"""One tesseract pass per page: a text-only PDF page (the invisible text layer)
and the word boxes (TSV) from the same pass.

Tesseract runs in-process (tesserocr, which carries its own libtesseract and
reads the system's models): one engine per worker process and language, so
the model is loaded once, not once a page as the command line does. On a
light page (a receipt of 25 lines) that start-up was a third of the page's
whole time.

The sidecar text is rebuilt from the word boxes, block by block, so the two
columns of an official header are not run together line by line.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from . import programs
from .errors import EngineError, MissingDependencyError
from .vntext import nfc

# Where Debian's tesseract-ocr-* packages put the models; TESSDATA_PREFIX first when set.
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata")
TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"


@dataclass(frozen=True)
class OcrPage:
    text: str  # NFC, blocks separated by blank lines
    confidence: float  # mean word confidence 0–100; 0 for a page without words
    text_pdf: str  # path of tesseract's text-only PDF page
    words: int = 0  # words read
    strength: float = 0.0  # words read with confidence ≥ SURE_WORD, each weighted by its confidence / 100

    def better_than(self, other: "OcrPage") -> bool:
        """Tesseract's own judgement of two readings of one page: more words it is sure of wins.
        A mean confidence alone would prefer two sure words to a page of good ones."""
        return (self.strength, self.confidence) > (other.strength, other.confidence)


# A word read with less confidence than this is as likely noise (a rule, a stain) as text.
SURE_WORD = 50.0


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


def _read_tsv(tsv: str) -> tuple[str, list[float]]:
    """The page's text, block by block, and its words' confidences, from tesseract's TSV rows."""
    lines: dict[tuple[int, int, int], list[Word]] = {}
    with io.StringIO(TSV_HEADER + tsv, newline="") as handle:
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
    return text, [w[5] for line in lines.values() for w in line if w[5] >= 0]


def tessdata_dir(lang: str) -> str:
    """The folder holding `lang`'s model (each of lang's parts when joined by '+')."""
    candidates = [os.environ["TESSDATA_PREFIX"]] if os.environ.get("TESSDATA_PREFIX") else []
    for folder in [*candidates, *TESSDATA_DIRS]:
        if all(Path(folder, f"{part}.traineddata").is_file() for part in lang.split("+")):
            return folder
    package = f"tesseract-ocr-{lang.split('+')[0]}"
    raise MissingDependencyError(
        f"Chưa cài mô hình nhận dạng '{lang}' (gói {package}).",
        f"The OCR model '{lang}' is not installed (Debian package {package}).",
        f"Cài gói {package}: chạy 'make install'.", f"Install the package {package}: run 'make install'.")


@lru_cache(maxsize=None)
def _engine(lang: str, psm: int):
    """This process's tesseract for `lang` (a tesserocr.PyTessBaseAPI), writing a text-only PDF
    page per call. Imported here, after programs.limit_threads(): OpenMP reads its thread limit
    once, when libtesseract loads, and without it a page takes five times as long."""
    programs.limit_threads()
    import tesserocr

    engine = tesserocr.PyTessBaseAPI(path=tessdata_dir(lang), lang=lang, psm=psm)
    engine.SetVariable("tessedit_create_pdf", "1")
    engine.SetVariable("textonly_pdf", "1")
    return engine


def recognise(image: np.ndarray, dpi: float, work_base: Path, lang: str, psm: int,
              timeout: float) -> OcrPage:
    """OCR a grey page image; the text-only PDF page lands at work_base.pdf."""
    # Uncompressed PGM: the file lives a second; writing and decoding a PNG costs ~0.15 s a page.
    image_path = work_base.with_suffix(".pgm")
    cv2.imwrite(str(image_path), image)
    engine = _engine(lang, psm)
    engine.SetVariable("user_defined_dpi", str(round(dpi)))
    try:
        done = engine.ProcessPages(str(work_base), str(image_path), timeout=int(timeout * 1000))
    finally:
        image_path.unlink(missing_ok=True)
    if not done:
        raise EngineError("Nhận dạng chữ thất bại hoặc quá thời gian.",
                          f"tesseract failed or ran past {timeout:.0f} s.")
    text, confidences = _read_tsv(engine.GetTSVText(0))
    mean = float(np.mean(confidences)) if confidences else 0.0
    strength = sum(c for c in confidences if c >= SURE_WORD) / 100.0
    return OcrPage(text, round(mean, 2), str(work_base.with_suffix(".pdf")), len(confidences), round(strength, 2))
