"""Cover sheets that separate dossiers in one scanner feed.

For stacks without receipts: the officer prints one sheet per dossier and
lays it on top of the dossier's papers. The QR code carries the dossier
code behind extract.COVER_PREFIX, so the page is recognised as a cover
sheet (and the code read) even when OCR fails; the code is also printed
large, as a Code 39 barcode and as text, for people and 1-D scanners.
"""
from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from .extract import COVER_PREFIX
from .files import write_atomic
from .fonts import font_path

A4_MM = (210, 297)


def _font(family: str, style: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(style, family)), px)


def _symbol(content: str, fmt: zxingcpp.BarcodeFormat, scale: int) -> Image.Image:
    symbol = zxingcpp.create_barcode(content, fmt)
    return Image.fromarray(np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=scale))).convert("L")


def render_cover_sheet(code: str, dossier: dict | None = None, dpi: int = 200) -> Image.Image:
    """One A4 page (greyscale) for the dossier `code`; `dossier` is its registry
    row when known (applicant, procedure, received date are printed)."""
    mm = dpi / 25.4
    width, height = round(A4_MM[0] * mm), round(A4_MM[1] * mm)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    pt = dpi / 72

    def centred(text: str, font: ImageFont.FreeTypeFont, y: float) -> float:
        draw.text(((width - font.getlength(text)) / 2, y), text, font=font, fill=0)
        return y + font.size * 1.35

    y = centred("PHIẾU PHÂN TÁCH HỒ SƠ", _font("Sans", "bold", round(26 * pt)), 20 * mm)
    y = centred("Dossier cover sheet", _font("Sans", "regular", round(16 * pt)), y)
    qr = _symbol(COVER_PREFIX + code, zxingcpp.BarcodeFormat.QRCode, 1)
    qr = qr.resize((round(70 * mm),) * 2, Image.NEAREST)
    page.paste(qr, ((width - qr.width) // 2, round(y + 8 * mm)))
    y += qr.height + 16 * mm
    code_font = _font("Sans", "bold", round(30 * pt))
    while code_font.getlength(code) > width - 30 * mm:
        code_font = _font("Sans", "bold", code_font.size - 4)
    y = centred(code, code_font, y)
    bar = _symbol(code, zxingcpp.BarcodeFormat.Code39, max(2, round(0.3 * mm)))
    bar = bar.resize((min(bar.width, round(width - 30 * mm)), round(14 * mm)), Image.NEAREST)
    page.paste(bar, ((width - bar.width) // 2, round(y + 4 * mm)))
    y += bar.height + 14 * mm

    label, value = _font("Serif", "bold", round(16 * pt)), _font("Serif", "regular", round(16 * pt))
    dossier = dossier or {}
    procedure = " - ".join(filter(None, (dossier.get("procedure_code"), dossier.get("procedure_name"))))
    received = dossier.get("received_date")
    rows = [
        ("Chủ hồ sơ / Applicant:", dossier.get("applicant") or "—"),
        ("Thủ tục / Procedure:", procedure or "—"),
        ("Ngày tiếp nhận / Received:", date.fromisoformat(received).strftime("%d/%m/%Y") if received else "—"),
    ]
    left = 20 * mm
    chars = max(20, int((width - 2 * left) / value.getlength("n")))
    for caption, text in rows:
        draw.text((left, y), caption, font=label, fill=0)
        y += label.size * 1.3
        for line in textwrap.wrap(text, chars) or ["—"]:
            draw.text((left + 10 * mm, y), line, font=value, fill=0)
            y += value.size * 1.3
        y += 3 * mm
    hint = _font("Serif", "italic", round(12 * pt))
    centred("Đặt phiếu này lên trên cùng hồ sơ khi quét.", hint, height - 30 * mm)
    centred("Put this sheet on top of the dossier when scanning.", hint, height - 30 * mm + hint.size * 1.4)
    return page


def write_cover_sheets(codes: list[str], dossiers: dict[str, dict], out: Path | str, dpi: int = 200) -> Path:
    """One PDF with a cover sheet per code, written atomically (temp name, fsync, rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pages = [render_cover_sheet(code, dossiers.get(code), dpi) for code in codes]
    write_atomic(out, lambda temp: pages[0].save(temp, "PDF", save_all=True, append_images=pages[1:],
                                                 resolution=dpi))
    return out
