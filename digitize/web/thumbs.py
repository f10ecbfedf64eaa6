"""Page thumbnails for the review queue, rendered once by pdftoppm (pdf2image) and kept in work/thumbs."""
from __future__ import annotations

import io
import os
from pathlib import Path

from pdf2image import convert_from_path

from ..files import write_bytes_atomic

WIDTH = 220


def thumbnail(pdf: Path, page: int, folder: Path, document_id: int) -> bytes:
    """PNG of one page, WIDTH pixels wide; cached by document, page and the PDF's size and time."""
    stat = pdf.stat()
    cached = folder / f"{document_id}-{page}-{stat.st_size}-{stat.st_mtime_ns}.png"
    if cached.is_file():
        return cached.read_bytes()
    image = convert_from_path(str(pdf), first_page=page, last_page=page, size=(WIDTH, None), fmt="png",
                              timeout=60)[0]
    buffer = io.BytesIO()
    image.convert("L").save(buffer, "PNG", optimize=True)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{document_id}-{page}-*.png"):
        os.unlink(old)
    write_bytes_atomic(cached, buffer.getvalue())
    return buffer.getvalue()
