"""QR codes and 1-D barcodes (Code 39, Code 128) on a page image.

Receipts print the dossier code as a QR code and often a Code 39 barcode;
both are more trustworthy than OCR. Decoding never raises: a page whose
barcodes cannot be read falls back to its text.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import zxingcpp

log = logging.getLogger(__name__)

FORMATS = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code39, zxingcpp.BarcodeFormat.Code128)


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (image > 0).astype(np.uint8) * 255 if image.dtype == bool else np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(image)


def _read(gray: np.ndarray, binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage) -> list[dict]:
    found = []
    # Pages arrive upright (orient ran first): searching quarter-turned and
    # inverted symbols as well would triple the cost of every page.
    for result in zxingcpp.read_barcodes(gray, formats=FORMATS, try_rotate=False, try_invert=False,
                                         binarizer=binarizer):
        if not result.valid or not result.text:
            continue
        kind = "qr" if result.format == zxingcpp.BarcodeFormat.QRCode else "barcode"
        entry = {"text": result.text, "format": str(result.format), "kind": kind}
        if entry not in found:
            found.append(entry)
    return found


def decode_barcodes(image: np.ndarray) -> list[dict]:
    """[{"text", "format", "kind": "qr"|"barcode"}] found on a page (grey, BGR or
    BGRA array). Tries the page, then a half-size copy: on a 300-400 dpi scan
    the modules of a small QR code can be noisier than zxing's own downscaling
    copes with; then the page at one fixed threshold: a dense QR code of 2-3 px
    modules, resampled by deskewing, can defeat zxing's local thresholds."""
    try:
        gray = _gray(image)
        if gray.ndim != 2 or min(gray.shape) < 16:
            return []
        found = _read(gray)
        if not found:
            half = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)
            found = _read(half)
        if not found:
            found = _read(gray, zxingcpp.Binarizer.FixedThreshold)
        return found
    except Exception as error:  # a barcode library failure must never stop the page
        log.warning("barcode decoding failed / không đọc được mã vạch: %s", error)
        return []
