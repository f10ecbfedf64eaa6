"""One searchable PDF from upright page images and their text-only OCR pages.

Each page is the scan's own image (its resolution, grey or colour) drawn
full-page, with tesseract's invisible text page laid over it, so viewers
search and select the words where they are. Metadata goes into both the
DocInfo dictionary and XMP. Files are written under a temporary name,
fsynced, then renamed: a reader never sees half a PDF.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path

import pikepdf
from pikepdf import Dictionary, Name
from pikepdf.models.metadata import PdfMetadata

from . import __version__
from .files import write_atomic

XMP_NAMESPACE = "urn:digitize:ns:1.0:"
XMP_PREFIX = "digitize"
PdfMetadata.register_xml_namespace(XMP_NAMESPACE, XMP_PREFIX)
# Vietnam keeps +07:00 all year (no daylight saving): times recorded on and shown in copies.
VIETNAM = timezone(timedelta(hours=7))
PDF_VERSION = "1.7"


@dataclass(frozen=True)
class AssembledPage:
    image_path: str  # JPEG of the upright page
    width: int  # pixels
    height: int
    dpi: float
    colour: bool
    text_pdf: str  # tesseract's text-only page for the same pixels


def _image_page(pdf: pikepdf.Pdf, page: AssembledPage) -> pikepdf.Page:
    width_pt = page.width * 72.0 / page.dpi
    height_pt = page.height * 72.0 / page.dpi
    image = pikepdf.Stream(pdf, Path(page.image_path).read_bytes())
    image.Type = Name.XObject
    image.Subtype = Name.Image
    image.Width = page.width
    image.Height = page.height
    image.ColorSpace = Name.DeviceRGB if page.colour else Name.DeviceGray
    image.BitsPerComponent = 8
    image.Filter = Name.DCTDecode
    content = f"q {width_pt:.4f} 0 0 {height_pt:.4f} 0 0 cm /Scan Do Q".encode()
    return pikepdf.Page(Dictionary(
        Type=Name.Page,
        MediaBox=[0, 0, width_pt, height_pt],
        Resources=Dictionary(XObject=Dictionary(Scan=image)),
        Contents=pdf.make_stream(content),
    ))


def write_metadata(pdf: pikepdf.Pdf, metadata: dict[str, str]) -> None:
    """DocInfo and XMP: title, producer and creation time in their standard places, the rest
    under our namespace."""
    with pdf.open_metadata(set_pikepdf_as_editor=False) as xmp:
        xmp["pdf:Producer"] = f"digitize {__version__}"
        xmp["xmp:CreatorTool"] = f"digitize {__version__}"
        if metadata.get("title"):
            xmp["dc:title"] = metadata["title"]
        if metadata.get("digitisedAt"):
            xmp["xmp:CreateDate"] = metadata["digitisedAt"]
        for key, value in metadata.items():
            if value not in (None, "") and key != "title":
                xmp[f"{XMP_PREFIX}:{key}"] = str(value)
    # DocInfo custom keys mirror XMP for viewers that read only DocInfo.
    for key, value in metadata.items():
        if value not in (None, "") and key != "title":
            pdf.docinfo[Name("/" + key[:1].upper() + key[1:])] = str(value)


def read_metadata(path: Path) -> dict[str, str]:
    """What one of our PDFs says of itself (write_metadata's keys, lowerCamel); {} for any other file."""
    try:
        with pikepdf.open(path) as pdf:
            if "/Sha256" not in pdf.docinfo:
                return {}
            return {key[1:2].lower() + key[2:]: str(value) for key, value in pdf.docinfo.items()}
    except (pikepdf.PdfError, OSError, ValueError):
        return {}


def pdf_sha256(path: Path) -> str | None:
    """The sha256 of the source recorded in one of our PDFs, if it is one."""
    return read_metadata(path).get("sha256")


def assemble_pdf(pages: list[AssembledPage], target: Path, metadata: dict[str, str]) -> None:
    """Write the searchable PDF atomically at `target`."""
    with ExitStack() as stack:
        pdf = stack.enter_context(pikepdf.new())
        for page in pages:
            pdf.pages.append(_image_page(pdf, page))
            text_pdf = stack.enter_context(pikepdf.open(page.text_pdf))
            pdf.pages[-1].add_overlay(text_pdf.pages[0])
        pdf.docinfo[Name.Title] = metadata.get("title", "")
        write_metadata(pdf, metadata)
        # PDF 1.7: the rules want 1.4 or later; PAdES signatures are an extension of 1.7.
        write_atomic(target, lambda temp: pdf.save(temp, compress_streams=True, min_version=PDF_VERSION))
