"""The format rules a digitised copy of a paper document must meet, page by page and per file.

Decree 30/2020/NĐ-CP Appendix I and Circular 01/2019/TT-BNV (see DOMAIN.md):
PDF 1.4 or later, a colour image, at least 200 dpi, 100% scale; Circular
01/2023/TT-VPCP Art. 8 adds the digitising officer's digital signature.
`page_warnings` flags a page while it is processed; `check_pdf` reads a
finished file back and reports each rule (`digitize check`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pikepdf

MIN_PDF_VERSION = (1, 4)
MIN_DPI = 200.0
# Scale 100%: both axes at one resolution, and a page no smaller than A6 nor larger than A3 (mm).
SCALE_TOLERANCE = 0.02
PAPER_RANGE_MM = (100.0, 420.0)  # long side
RGB_COMPONENTS = 3


def page_warnings(page_no: int, dpi: float, colour: bool, grey_by: str | None) -> list[dict]:
    """What keeps one page from meeting the rules: below 200 dpi, or stored grey.

    grey_by says why a page is grey: "scanner" (the scanner delivered grey) or
    "pipeline" (a pipeline that stores grey); a colour page has None.
    """
    found = []
    if dpi < MIN_DPI:
        found.append({"page": page_no, "rule": "resolution",
                      "message": f"Trang {page_no}: {dpi:.0f} dpi, dưới mức tối thiểu {MIN_DPI:.0f} dpi. / "
                                 f"Page {page_no}: {dpi:.0f} dpi, below the {MIN_DPI:.0f} dpi minimum."})
    if not colour:
        why_vi = "máy quét chỉ quét ảnh xám" if grey_by == "scanner" else "quy trình xử lý lưu ảnh xám"
        why_en = "the scanner delivered grey" if grey_by == "scanner" else "the pipeline stores grey"
        found.append({"page": page_no, "rule": "colour",
                      "message": f"Trang {page_no}: ảnh xám ({why_vi}), quy định yêu cầu ảnh màu. / "
                                 f"Page {page_no}: grey image ({why_en}); the rules want a colour image."})
    return found


@dataclass(frozen=True)
class RuleResult:
    rule: str  # pdf_version | colour | resolution | scale | signature
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PageImage:
    """The scan drawn on one page: its pixels, colour components and resolution in each axis."""

    width: int
    height: int
    components: int
    dpi_x: float
    dpi_y: float
    width_mm: float
    height_mm: float


def _components(image: pikepdf.Object) -> int:
    try:
        return len(pikepdf.PdfImage(image).mode)  # "L"/"1" -> 1, "RGB" -> 3, "CMYK" -> 4
    except (NotImplementedError, ValueError, pikepdf.PdfError):
        return 0


def page_image(page: pikepdf.Page) -> PageImage | None:
    """The largest image on the page, taken as the scan (drawn over the whole page)."""
    images = list(page.images.values())
    if not images:
        return None
    image = max(images, key=lambda im: int(im.Width) * int(im.Height))
    x0, y0, x1, y1 = (float(v) for v in page.mediabox)
    width_pt, height_pt = abs(x1 - x0), abs(y1 - y0)
    if int(page.obj.get("/Rotate", 0)) % 180:
        width_pt, height_pt = height_pt, width_pt
    width, height = int(image.Width), int(image.Height)
    return PageImage(width, height, _components(image), width / (width_pt / 72.0), height / (height_pt / 72.0),
                     width_pt / 72.0 * 25.4, height_pt / 72.0 * 25.4)


def _pages(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:20]) + (" …" if len(numbers) > 20 else "")


def format_rules(pdf: pikepdf.Pdf) -> list[RuleResult]:
    """PDF version, colour, resolution and scale of an open PDF."""
    version = tuple(int(part) for part in pdf.pdf_version.split(".")[:2])
    results = [RuleResult("pdf_version", version >= MIN_PDF_VERSION,
                          f"PDF {pdf.pdf_version} (≥ {'.'.join(map(str, MIN_PDF_VERSION))})")]
    scans = [page_image(page) for page in pdf.pages]
    no_image = [n for n, scan in enumerate(scans, 1) if scan is None]
    grey = [n for n, scan in enumerate(scans, 1) if scan is not None and scan.components < RGB_COMPONENTS]
    results.append(RuleResult(
        "colour", not grey and not no_image,
        "ảnh màu mọi trang / colour image on every page" if not grey and not no_image else
        "; ".join(filter(None, [grey and f"trang xám / grey pages: {_pages(grey)}",
                                no_image and f"trang không có ảnh quét / pages without a scan: {_pages(no_image)}"]))))
    dpis = [(n, min(scan.dpi_x, scan.dpi_y)) for n, scan in enumerate(scans, 1) if scan is not None]
    low = [n for n, dpi in dpis if dpi < MIN_DPI - 0.5]
    lowest = min((dpi for _, dpi in dpis), default=0.0)
    results.append(RuleResult(
        "resolution", bool(dpis) and not low,
        f"thấp nhất / lowest {lowest:.0f} dpi (≥ {MIN_DPI:.0f})"
        + (f"; dưới mức / below: {_pages(low)}" if low else "")))
    stretched = [n for n, scan in enumerate(scans, 1) if scan is not None
                 and abs(scan.dpi_x - scan.dpi_y) > SCALE_TOLERANCE * max(scan.dpi_x, scan.dpi_y)]
    odd_size = [n for n, scan in enumerate(scans, 1) if scan is not None
                and not PAPER_RANGE_MM[0] <= max(scan.width_mm, scan.height_mm) <= PAPER_RANGE_MM[1]]
    first = next((scan for scan in scans if scan is not None), None)
    size = f"{first.width_mm:.0f}×{first.height_mm:.0f} mm" if first else "?"
    results.append(RuleResult(
        "scale", bool(dpis) and not stretched and not odd_size,
        f"trang 1 / page 1: {size}"
        + (f"; ảnh bị kéo giãn / stretched: {_pages(stretched)}" if stretched else "")
        + (f"; khổ giấy bất thường / not a paper size: {_pages(odd_size)}" if odd_size else "")))
    return results


def check_pdf(path: Path, trust_roots: list) -> list[RuleResult]:
    """Every rule for one file; the signature rule wants at least one signature and all intact."""
    from .sign import verify_pdf  # pyHanko loads only when a file is checked

    with pikepdf.open(path) as pdf:
        results = format_rules(pdf)
    checks = verify_pdf(path, trust_roots)
    intact = bool(checks) and all(check.intact for check in checks)
    if not checks:
        detail = "chưa ký số / not signed"
    else:
        detail = "; ".join(
            f"{check.signer or '?'}: " + ("nguyên vẹn / intact" if check.intact else f"HỎNG / BROKEN ({check.problem})")
            + ("" if not check.intact else ", tin cậy / trusted" if check.trusted else ", chưa xác minh nguồn / untrusted")
            for check in checks)
    results.append(RuleResult("signature", intact, detail))
    return results
