"""Reading scans: what a file is, how many pages, at what resolution, and one page at a time.

A file's type comes from its first bytes, never its name. HEIC/HEIF photos
(what phones save) are read through pillow-heif as any other image. PDFs are checked
with pikepdf (encryption, page count, an existing text layer) and rendered a
page at a time by pdftoppm (pdf2image) at the resolution of the scan inside;
images are read with Pillow behind a pixel limit.

Before a page is decoded, inspect() holds every file to the [processing] bounds
(config/default.toml, README "Limits"): a regular file (a pipe or a device is never
read: it could block or never end), at most max_pages pages, and each page at least
min_side pixels on its short side, at most max_page_points points on its long side,
at most max_aspect times longer than wide, and at most max_pixels pixels at the
resolution it is read at — which bounds a worker's memory per page.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
import pillow_heif
from PIL import Image, ImageSequence, UnidentifiedImageError

from . import programs
from .errors import EncryptedPdfError, InputFileError
from .vntext import reads_as_words

IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"BM": "bmp",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}
# ISO base media brands of HEIF still images (HEIC from phones, plain HEIF); bytes 8-12 of the file.
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
pillow_heif.register_heif_opener()
# Paper long sides in inches, for images that do not say their resolution.
PAPER_LONG_SIDES = {"A4": 11.69, "A5": 8.27}


@dataclass(frozen=True)
class ScanInfo:
    path: str
    kind: str  # "pdf" or "image"
    page_count: int
    dpis: tuple[float, ...]  # per page, from metadata or estimated
    dpi_known: tuple[bool, ...]
    text_layer: bool = False  # a PDF whose own text reads as Vietnamese words (not OCR'd unless forced)
    signatures: tuple[str, ...] = ()  # signers of a digitally signed PDF ("" where unnamed)

    @property
    def keep_as_is(self) -> bool:
        """Filed byte for byte as it came, its own text used: a signed PDF (rewriting it would
        break the signature), or one with a real text layer."""
        return bool(self.signatures) or self.text_layer


def sniff_type(path: Path) -> str:
    """'pdf', 'png', 'jpeg', 'tiff', 'bmp', 'gif', 'webp', 'heif' from the file's first bytes."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        raise InputFileError("Tệp rỗng (0 byte).", "The file is empty (0 bytes).")
    if head.startswith(b"%PDF") or b"%PDF" in head:
        return "pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "heif"
    for signature, kind in IMAGE_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    raise InputFileError(
        "Không phải tệp ảnh quét hay PDF (định dạng không hỗ trợ).",
        "Not a scanned image or PDF (unsupported format).",
    )


def estimate_dpi(width: int, height: int, dpi_floor: float, dpi_ceiling: float) -> float:
    """Resolution of an image that does not say, from its size as A4 (or A5 if A4 is too coarse)."""
    long_side = max(width, height)
    for inches in PAPER_LONG_SIDES.values():
        dpi = long_side / inches
        if dpi >= dpi_floor:
            return float(min(dpi, dpi_ceiling))
    return float(dpi_floor)


def _image_dpi(image: Image.Image, dpi_floor: float, dpi_ceiling: float) -> tuple[float, bool]:
    dpi = image.info.get("dpi")
    if dpi and float(dpi[0]) >= dpi_floor:
        return float(min(float(dpi[0]), dpi_ceiling)), True
    # No metadata, or a placeholder such as 72 or 96: trust the paper size instead.
    return estimate_dpi(image.width, image.height, dpi_floor, dpi_ceiling), False


def check_regular(path: Path) -> None:
    """`path` is a regular file (links followed), else InputFileError — before a byte of it is read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputFileError("Không tìm thấy tệp.", "File not found.") from None
    except OSError as exc:
        raise InputFileError("Không đọc được tệp.", f"Cannot read the file ({exc.strerror}).") from None
    if stat.S_ISDIR(mode):
        raise InputFileError("Đây là thư mục, không phải tệp.", "This is a folder, not a file.")
    if not stat.S_ISREG(mode):
        raise InputFileError("Không phải tệp thường (ống dẫn, thiết bị hay socket): không đọc.",
                             "Not a regular file (a pipe, device or socket): not read.")


def _check_page_count(count: int, processing: dict) -> None:
    if count > int(processing["max_pages"]):
        raise InputFileError(
            f"Tệp có quá nhiều trang (hơn {processing['max_pages']:,} trang).",
            f"Too many pages (more than the limit of {processing['max_pages']:,}).",
            "Tách tệp thành nhiều tệp nhỏ hơn rồi đặt lại vào thư mục nhận.",
            "Split the file into smaller files and drop them into the inbox again.")


def _check_page(width_px: float, height_px: float, dpi: float, processing: dict, page: int = 1) -> None:
    """One page of width_px × height_px read at `dpi` is within the [processing] bounds."""
    short, long = sorted((width_px, height_px))
    where_vi, where_en = f"Trang {page}", f"Page {page}"
    size = f"{round(width_px)}×{round(height_px)}"
    if short < int(processing["min_side"]):
        raise InputFileError(
            f"{where_vi} quá nhỏ ({size} điểm ảnh, cạnh ngắn tối thiểu {processing['min_side']}).",
            f"{where_en} too small ({size} pixels, the short side must be at least {processing['min_side']}).")
    if long / short > float(processing["max_aspect"]):
        raise InputFileError(
            f"{where_vi} quá dài và hẹp ({size} điểm ảnh, tỉ lệ tối đa {processing['max_aspect']:g}:1).",
            f"{where_en} too long and narrow ({size} pixels, at most {processing['max_aspect']:g}:1).")
    points = long / dpi * 72.0
    if points > float(processing["max_page_points"]):
        raise InputFileError(
            f"{where_vi} quá khổ ({points:,.0f} pt ở {dpi:.0f} dpi, tối đa {processing['max_page_points']:,.0f} pt).",
            f"{where_en} too large ({points:,.0f} pt at {dpi:.0f} dpi, at most "
            f"{processing['max_page_points']:,.0f} pt).")
    if width_px * height_px > int(processing["max_pixels"]):
        raise InputFileError(
            f"{where_vi}: ảnh quá lớn ({size} điểm ảnh, giới hạn {processing['max_pixels']:,}).",
            f"{where_en}: image too large ({size} pixels, limit {processing['max_pixels']:,}).")


def _pdf_page_dpi(page: pikepdf.Page, dpi_floor: float, dpi_ceiling: float) -> float:
    """Resolution of the largest image drawn on a PDF page; 300 for pages without images."""
    width_in = float(page.mediabox[2] - page.mediabox[0]) / 72.0
    best = 0.0
    for _, image in page.get_images().items():
        try:
            best = max(best, int(image.Width) / width_in)
        except (AttributeError, TypeError, ValueError, ZeroDivisionError):
            continue
    if best <= 0:
        return 300.0
    return float(min(max(round(best), dpi_floor), dpi_ceiling))


def _signers(pdf: pikepdf.Pdf) -> tuple[str, ...]:
    """The signers named in the PDF's signed signature fields ("" where a signature names none)."""
    form = pdf.Root.get("/AcroForm")
    pending = list(form.get("/Fields", [])) if form is not None else []
    found = []
    while pending:
        field = pending.pop(0)
        pending.extend(field.get("/Kids", []))
        value = field.get("/V")
        if field.get("/FT") == pikepdf.Name.Sig and isinstance(value, pikepdf.Dictionary):
            found.append(str(value.get("/Name", "")))
    return tuple(found)


def _pdf_page_points(page: pikepdf.Page) -> tuple[float, float]:
    """A PDF page's width and height in points (its media box, whichever corner it starts at)."""
    x0, y0, x1, y1 = (float(value) for value in page.mediabox)
    return abs(x1 - x0), abs(y1 - y0)


def inspect(path: Path, config: dict, force: bool = False) -> ScanInfo:
    """What a scan is, or an InputFileError saying why it cannot be processed."""
    processing = config["processing"]
    floor, ceiling = float(processing["min_dpi"]), float(processing["max_dpi"])
    check_regular(path)
    kind = sniff_type(path)
    if kind == "pdf":
        return _inspect_pdf(path, config, force, floor, ceiling)
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, with a clear message
    try:
        with Image.open(path) as image:
            dpis, known = [], []
            for frame in ImageSequence.Iterator(image):
                _check_page_count(len(dpis) + 1, processing)
                dpi, is_known = _image_dpi(frame, floor, ceiling)
                _check_page(frame.width, frame.height, dpi, processing, len(dpis) + 1)
                dpis.append(dpi)
                known.append(is_known)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputFileError(
            "Ảnh bị hỏng hoặc không đọc được.", f"The image is damaged or unreadable ({exc})."
        ) from exc
    return ScanInfo(str(path), "image", len(dpis), tuple(dpis), tuple(known))


def inspect_complete(path: Path, config: dict) -> ScanInfo:
    """inspect(), and every image frame decoded: a scan still being written fails here.

    For the watched folder, where a file may be caught mid-copy; a PDF cut short
    already fails inspect() (qpdf has to reconstruct it).
    """
    info = inspect(path, config)
    if info.kind == "image":
        for index in range(info.page_count):
            load_page(info, index, float(config["processing"]["page_timeout"]))
    return info


def _inspect_pdf(path: Path, config: dict, force: bool, floor: float, ceiling: float) -> ScanInfo:
    try:
        # A PDF with only an owner password (e-signed results from the portal) opens without one.
        with pikepdf.open(path) as pdf:
            _check_page_count(len(pdf.pages), config["processing"])
            pages = list(pdf.pages)
            dpis = tuple(_pdf_page_dpi(page, floor, ceiling) for page in pages)
            for number, (page, dpi) in enumerate(zip(pages, dpis), start=1):
                width_pt, height_pt = _pdf_page_points(page)
                _check_page(width_pt / 72.0 * dpi, height_pt / 72.0 * dpi, dpi, config["processing"], number)
            known = tuple(any(True for _ in page.get_images()) for page in pages)
            signatures = _signers(pdf)
            warnings = pdf.get_warnings()
    except pikepdf.PasswordError as exc:
        raise EncryptedPdfError("Tệp PDF có mật khẩu.", "The PDF is password-protected.") from exc
    except (pikepdf.PdfError, TypeError, ValueError) as exc:  # the last two: a media box that is not numbers
        raise InputFileError("Tệp PDF bị hỏng.", f"The PDF is damaged ({exc}).") from exc
    if warnings and any("damaged" in w or "reconstruct" in w for w in warnings):
        raise InputFileError(
            "Tệp PDF bị hỏng hoặc chưa được chép hết.",
            "The PDF is damaged or incomplete (truncated).",
        )
    if not pages:
        raise InputFileError("Tệp PDF không có trang nào.", "The PDF has no pages.")
    text_layer = False
    if not force:
        first_pages = programs.pdftotext(path, float(config["processing"]["page_timeout"]), last_page=3)
        text_layer = reads_as_words(first_pages)  # junk over a scan is OCR'd like a scan
    return ScanInfo(str(path), "pdf", len(pages), dpis, known, text_layer, signatures)


def _to_array(image: Image.Image) -> np.ndarray:
    """An 8-bit grey (H×W) or RGB (H×W×3) array."""
    if image.mode in ("1", "L", "I;16", "I;16B", "I", "F"):
        if image.mode.startswith("I") or image.mode == "F":
            array = np.asarray(image, dtype=np.float64)
            top = array.max() or 1.0
            return (array * (255.0 / top)).astype(np.uint8)
        return np.asarray(image.convert("L"))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _drawn_full_page(pdf_page: pikepdf.Page) -> pikepdf.Object | None:
    """The one image a scanned page is made of, drawn upright over the whole page; else None.

    That image's own pixels are the scan: taking them costs a JPEG decode, where
    rendering the page costs a pdftoppm run, and nothing is resampled.
    """
    if int(pdf_page.obj.get("/Rotate", 0)) % 360:
        return None
    images = list(pdf_page.get_images(recursive=False).values())
    if len(images) != 1 or "/SMask" in images[0] or "/Mask" in images[0] or images[0].get("/ImageMask"):
        return None
    operators = [(list(i.operands), str(i.operator)) for i in pikepdf.parse_content_stream(pdf_page)]
    drawing = [op for op in operators if op[1] not in ("q", "Q")]
    if [name for _, name in drawing] != ["cm", "Do"]:
        return None
    a, b, c, d, e, f = (float(v) for v in drawing[0][0])
    x0, y0, x1, y1 = (float(v) for v in pdf_page.mediabox)
    fits = abs(b) < 1e-6 and abs(c) < 1e-6 and abs(e - x0) < 1 and abs(f - y0) < 1 \
        and abs(a - (x1 - x0)) < 1 and abs(d - (y1 - y0)) < 1
    return images[0] if fits else None


def _pdf_scan_image(info: ScanInfo, index: int) -> Image.Image | None:
    try:
        with pikepdf.open(info.path) as pdf:
            page = pdf.pages[index]
            image = _drawn_full_page(page)
            if image is None:
                return None
            width_in = float(page.mediabox[2] - page.mediabox[0]) / 72.0
            if round(int(image.Width) / width_in) != round(info.dpis[index]):
                return None  # resolution outside the accepted range: render at the one chosen
            return pikepdf.PdfImage(image).as_pil_image()
    except (pikepdf.PdfError, NotImplementedError, ValueError, OSError):
        return None  # an encoding Pillow cannot decode here (JBIG2, odd colour spaces): render instead


def load_page(info: ScanInfo, index: int, timeout: float) -> np.ndarray:
    """Page `index` (0-based) as an 8-bit grey or RGB array at info.dpis[index]."""
    if info.kind == "pdf":
        scan = _pdf_scan_image(info, index)
        if scan is not None:
            return _to_array(scan)
        return _to_array(programs.render_pdf_page(info.path, index, info.dpis[index], timeout))
    Image.MAX_IMAGE_PIXELS = None  # checked in inspect()
    try:
        with Image.open(info.path) as image:
            image.seek(index)
            image.load()  # a truncated file fails here, in the worker, not in the dispatching parent
            return _to_array(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputFileError(
            "Ảnh bị hỏng hoặc không đọc được.", f"The image is damaged or unreadable ({exc})."
        ) from exc
