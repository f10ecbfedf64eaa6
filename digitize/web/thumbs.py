"""Page thumbnails for the review queue, rendered once by pdftoppm (pdf2image) and cached under work/."""
from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from .. import layout, programs
from ..files import write_bytes_atomic

WIDTH = 220
DPI = 40  # an A4 page at 40 dpi is 331 px wide: enough to shrink to WIDTH sharply, cheap to render


def thumbnail(pdf: Path, page: int, work: Path, document_id: int) -> bytes:
    """PNG of one page, WIDTH pixels wide, in grey; cached until the PDF changes."""
    stat = pdf.stat()
    cached = layout.thumbnail_path(work, document_id, page, stat.st_size, stat.st_mtime_ns)
    if cached.is_file():
        return cached.read_bytes()
    image = programs.render_pdf_page(str(pdf), page - 1, DPI, timeout=60).convert("L")
    if image.width > WIDTH:
        image = image.resize((WIDTH, max(1, round(image.height * WIDTH / image.width))), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    for old in layout.old_thumbnails(work, document_id, page):
        os.unlink(old)
    write_bytes_atomic(cached, buffer.getvalue())
    return buffer.getvalue()
