"""Every external program digitize runs, behind one module, found and versioned once.

tesseract (Debian: tesseract-ocr, and tesseract-ocr-vie for the model; pages are read
in-process by ocr.py through tesserocr, with these same models) and poppler's
pdftoppm and pdftotext (poppler-utils). A missing program or model is
MissingDependencyError (exit 3) naming the package to install; a program that fails
or runs past its time limit is EngineError (exit 7). This is also the one place
that sets OMP_THREAD_LIMIT for tesseract.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytesseract
import tesserocr
from pdf2image import convert_from_path
from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError
from PIL import Image

from .errors import EngineError, InputFileError, MissingDependencyError

PACKAGES = {"tesseract": "tesseract-ocr", "pdftoppm": "poppler-utils", "pdftotext": "poppler-utils",
            "pdfinfo": "poppler-utils"}
MODEL_PACKAGES = {"vie": "tesseract-ocr-vie", "eng": "tesseract-ocr-eng", "osd": "tesseract-ocr-osd"}


def limit_threads() -> None:
    """Tesseract's OpenMP threads fight over two cores without this: about five times slower.
    Parallelism comes from processes, one page each."""
    os.environ["OMP_THREAD_LIMIT"] = "1"


limit_threads()


def _missing(program: str) -> MissingDependencyError:
    package = PACKAGES.get(program) or MODEL_PACKAGES.get(program, program)
    return MissingDependencyError(
        f"Chưa cài {program} (gói {package}).", f"{program} is not installed (Debian package {package}).",
        f"Cài gói {package}: chạy 'make install'.", f"Install the package {package}: run 'make install'.")


def present() -> None:
    """MissingDependencyError (exit 3) if a program digitize runs is no longer on the PATH."""
    for program in PACKAGES:
        if shutil.which(program) is None:
            raise _missing(program)


@lru_cache(maxsize=None)
def versions(lang: str = "vie") -> dict[str, str]:
    """{program: version} for every program digitize needs, and the OCR model `lang`.

    Called once at the start of a command that processes scans, so a missing program
    stops it with exit 3 before any file is touched."""
    present()
    found = {}
    for program in PACKAGES:
        if program == "tesseract":
            found[program] = str(pytesseract.get_tesseract_version())
            continue
        output = subprocess.run([program, "-v"], capture_output=True, text=True, timeout=30, check=False)
        match = re.search(r"\d+\.\d+(\.\d+)?", output.stdout + output.stderr)
        found[program] = match.group(0) if match else "?"
    # Pages are read in-process by the library tesserocr carries, with the same models.
    found["libtesseract"] = tesserocr.tesseract_version().split()[1]
    models = pytesseract.get_languages()
    for model in lang.split("+"):
        if model not in models:
            raise _missing(model)
    return found


def render_pdf_page(path: str, index: int, dpi: float, timeout: float) -> Image.Image:
    """Page `index` (0-based) of a PDF rendered by pdftoppm at `dpi`."""
    try:
        images = convert_from_path(path, dpi=dpi, first_page=index + 1, last_page=index + 1, timeout=timeout)
    except PDFInfoNotInstalledError as exc:
        raise _missing("pdftoppm") from exc
    except FileNotFoundError as exc:
        raise _missing("pdftoppm") from exc
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"Đọc trang {index + 1} quá thời gian.", f"Rendering page {index + 1} timed out.") from exc
    except (PDFPageCountError, PDFSyntaxError) as exc:
        raise InputFileError("Tệp PDF bị hỏng.", f"The PDF is damaged ({exc}).") from exc
    if not images:
        raise InputFileError(f"Không đọc được trang {index + 1}.", f"Page {index + 1} could not be rendered.")
    return images[0]


def pdftotext(path: Path, timeout: float, last_page: int | None = None) -> str:
    """The PDF's own text layer (UTF-8; pages separated by form feeds)."""
    command = ["pdftotext", "-enc", "UTF-8", *(["-l", str(last_page)] if last_page else []), str(path), "-"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise _missing("pdftotext") from exc
    except subprocess.TimeoutExpired as exc:
        raise EngineError("pdftotext quá thời gian.", "pdftotext timed out.") from exc
    return result.stdout.decode("utf-8", "replace")
