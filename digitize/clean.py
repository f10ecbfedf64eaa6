"""Two images from one upright page: the archive copy and the OCR copy.

The archive keeps what the paper shows (its colour, its resolution); only
the OCR copy is cleaned: grey, coloured ink (red seals, blue signatures)
dropped, the paper's own tone and uneven light divided out, speckle removed,
dark scanner-lid borders painted paper-white so tesseract does not read them
as text blocks. Tesseract binarises with one global (Otsu) threshold: on a
grey photocopy, yellowed paper or a page lit from one side that threshold
blackens whole regions, so the background is made flat white first.
"""
from __future__ import annotations

import cv2
import numpy as np

# Above this share of isolated pixels a page is speckled (a clean 200 dpi page has ~1e-6).
SPECKLE_SHARE = 2e-4
# The background is estimated on a copy this coarse: light and paper tone change over centimetres.
BACKGROUND_DPI = 25
# Paper whose darkest background stays above this, and varies less than BACKGROUND_SPREAD, is
# already white and even: the OCR copy keeps its pixels (and the page its speed).
WHITE_PAPER = 225
BACKGROUND_SPREAD = 18
# Paper noise: pixels this close to the paper's level are paper.
PAPER_NOISE = 30
# Coloured ink: its red (or blue) channel leads the other two by this many levels, and it is not
# dark (brightest channel above INK_DARK). Black text under a red seal stays dark, so it is kept.
INK_LEAD = 35
INK_DARK = 100
# A page shows coloured ink when this many pixels of an every-8th-pixel sample are red or blue ink.
INK_SAMPLE_PIXELS = 20


def to_grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def paper_colour(image: np.ndarray) -> int | tuple[int, ...]:
    """The paper's colour: the median of the light pixels right beside ink, on a sparse sample.

    Used wherever the pipeline adds pixels (rotation corners): white added to grey or
    yellowed paper is what tesseract's global threshold trips on. Beside ink, because the
    paper is what text is printed on: a white scanner lid around a grey sheet is as large
    and lighter, but carries no text. A page without ink falls back to its lightest half.
    """
    step = max(1, min(image.shape[:2]) // 400)
    small = np.ascontiguousarray(image[::step, ::step])
    grey = to_grey(small)
    ink = (grey < 100).astype(np.uint8)
    beside = (cv2.dilate(ink, np.ones((5, 5), np.uint8)) > 0) & (grey >= 128)
    if beside.sum() < 200:
        beside = grey >= np.percentile(grey, 50)
    pixels = small[beside]
    median = np.median(pixels, axis=0)
    return tuple(int(v) for v in median) if image.ndim == 3 else int(median)


def background(grey: np.ndarray, dpi: float) -> np.ndarray:
    """The page without its ink, at BACKGROUND_DPI: text dilated away by a max filter wider than a
    stroke is long at that scale, then smoothed. Small, to be scaled up where it is used."""
    # Every k-th pixel down to ~2×BACKGROUND_DPI first: an area resize of the whole page would
    # cost more than everything else here (~60 ms at 300 dpi); the average below tames the noise.
    step = max(1, int(dpi // (2 * BACKGROUND_DPI)))
    sample = grey[::step, ::step]
    scale = min(1.0, BACKGROUND_DPI * step / dpi)
    size = (max(8, round(sample.shape[1] * scale)), max(8, round(sample.shape[0] * scale)))
    small = cv2.resize(sample, size, interpolation=cv2.INTER_AREA)
    # 9 px at 25 dpi is 9 mm: wider than a line of 14 pt text is tall, narrower than a margin.
    lifted = cv2.dilate(small, np.ones((9, 9), np.uint8))
    return cv2.blur(cv2.medianBlur(lifted, 5), (5, 5))


def whiten(grey: np.ndarray, paper: float) -> np.ndarray:
    """Every pixel within PAPER_NOISE of the paper's level set to white.

    Sensor noise of a few levels on the paper is enough for tesseract to garble whole
    lines (a justified italic line read as noise at σ 2.5, read whole once the paper is
    white); ink and its anti-aliased edges lie far below the paper and are kept.
    """
    lut = np.arange(256, dtype=np.uint8)
    lut[max(0, int(paper - PAPER_NOISE)):] = 255
    return cv2.LUT(grey, lut)


def is_flat_white(back: np.ndarray) -> bool:
    """Whether a background (from background()) is white paper under even light."""
    inner = back[back.shape[0] // 10: -max(1, back.shape[0] // 10), back.shape[1] // 10: -max(1, back.shape[1] // 10)]
    low, high = np.percentile(inner, (3, 97))
    return bool(low >= WHITE_PAPER and high - low <= BACKGROUND_SPREAD)


def flatten(image: np.ndarray, back: np.ndarray) -> np.ndarray:
    """`image` (grey or RGB) divided by its background, so paper comes out white and even."""
    big = cv2.resize(back, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    big = np.maximum(big, 1).astype(np.float32)
    if image.ndim == 3:
        big = big[..., None]
    return np.clip(image.astype(np.float32) * (255.0 / big), 0, 255).astype(np.uint8)


def flatten_light(image: np.ndarray, dpi: float) -> np.ndarray:
    """Grey or colour `image` with each channel divided by its own background: white paper,
    even light, no colour cast (a photo's warm light), ink and seals kept."""
    if image.ndim == 2:
        return flatten(image, background(image, dpi))
    return np.dstack([flatten(image[..., c], background(image[..., c], dpi)) for c in range(image.shape[2])])


def _coloured_ink(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True where a pixel is red or blue ink (see ink_grey), with how far its channel leads."""
    channels = image.astype(np.int16)
    red, green, blue = channels[..., 0], channels[..., 1], channels[..., 2]
    lead = np.maximum(red - np.maximum(green, blue), blue - np.maximum(red, green))
    return (lead > INK_LEAD) & (channels.max(axis=2) > INK_DARK), lead


def _has_coloured_ink(sample: np.ndarray) -> bool:
    """Whether a sparse sample of a colour page shows any red or blue ink (a seal, a signature)."""
    return int(_coloured_ink(sample)[0].sum()) >= INK_SAMPLE_PIXELS


def ink_grey(image: np.ndarray) -> np.ndarray:
    """The grey OCR copy of a colour page without its coloured ink (red seals, blue signatures).

    Red ink is red well above both green and blue, blue ink blue above both; yellowed or
    grey paper is neither. Such a pixel, unless dark, is lifted by how much that channel
    leads, which takes ink and its faint edges to paper white; black text (under a seal
    too) stays dark.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if not _has_coloured_ink(image[::8, ::8]):
        return grey  # most colour scans: no work at full resolution
    coloured, lead = _coloured_ink(image)
    brightest = image.max(axis=2)
    grey[coloured] = np.minimum(255, brightest[coloured].astype(np.int16) + 2 * lead[coloured]).astype(np.uint8)
    return grey


def archive_image(image: np.ndarray, keep_colour: bool) -> np.ndarray:
    """The page as it goes into the PDF: the scan's own colour, whatever the paper looks like.

    The rules for digitised copies want a colour image (Decree 30/2020 App. I):
    grey only where the scanner delivered grey, or where a pipeline asks for it
    (keep_colour false); such pages are flagged as not meeting the rule. Judging
    "colourless" pages grey once took the red from a seal on a held-out scan.
    """
    return image if keep_colour else to_grey(image)


def border_mask(grey: np.ndarray) -> np.ndarray:
    """True where a dark region touching the image edge lies: scanner lid, rotation fill, shadow."""
    height, width = grey.shape
    small_scale = 0.25
    # Nearest neighbour is enough for regions this large, and ten times cheaper.
    small = cv2.resize(grey, (max(1, int(width * small_scale)), max(1, int(height * small_scale))),
                       interpolation=cv2.INTER_NEAREST)
    dark = (small < 100).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    sh, sw = small.shape
    x, y, w, h, area = (stats[:, i] for i in range(5))
    touches_edge = (x == 0) | (y == 0) | (x + w >= sw) | (y + h >= sh)
    # A glyph near the margin touches the edge too, but is never this large or long.
    large = (area > 0.002 * sh * sw) | (np.maximum(w, h) > 0.2 * max(sh, sw))
    is_border = touches_edge & large
    is_border[0] = False
    mask = is_border[labels].astype(np.uint8)
    if not mask.any():
        return np.zeros_like(grey, dtype=bool)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def speckle_share(grey: np.ndarray) -> float:
    """Share of pixels that are salt or pepper: dark with no dark neighbour, or light with no light one.

    Scanner speckle covers the whole sheet: the middle half of the rows tells.
    """
    height = grey.shape[0]
    band = grey[height // 4: 3 * height // 4]
    _, dark = cv2.threshold(band, 127, 1, cv2.THRESH_BINARY_INV)
    # Dark pixels in each 3×3 window, the pixel itself included: 1 on a lone dark pixel,
    # 8 around a lone light one. OpenCV's counting, not numpy's masks: a fifth of the time.
    count = cv2.boxFilter(dark, cv2.CV_8U, (3, 3), normalize=False)
    lone_dark = cv2.countNonZero(cv2.bitwise_and(cv2.compare(count, 1, cv2.CMP_EQ), cv2.compare(dark, 1, cv2.CMP_EQ)))
    lone_light = cv2.countNonZero(cv2.bitwise_and(cv2.compare(count, 8, cv2.CMP_EQ), cv2.compare(dark, 0, cv2.CMP_EQ)))
    return (lone_dark + lone_light) / max(1, band.size)


def ocr_image(grey: np.ndarray, denoise: bool, remove_border: bool, dpi: float = 300.0) -> np.ndarray:
    """The grey page tesseract reads: same geometry as the archive image, so boxes align.

    The background is divided out only where the paper is not already white and
    evenly lit. A median filter removes speckle but also thins strokes: on a
    clean, blurred or 200 dpi page it costs words, so it runs only where speckle
    is found.
    """
    back = background(grey, dpi)
    if is_flat_white(back):
        paper = float(np.percentile(back, 3))
    else:
        grey, paper = flatten(grey, back), 255.0
    grey = whiten(grey, paper)
    speckled = denoise and speckle_share(grey) > SPECKLE_SHARE
    cleaned = cv2.medianBlur(grey, 3) if speckled else grey  # whiten() made a copy already
    if remove_border:
        cleaned[border_mask(cleaned)] = 255
    return cleaned


def binarised(grey: np.ndarray, dpi: float) -> np.ndarray:
    """A local (adaptive mean) threshold of the flattened page: a second reading for pages whose
    ink is faint or whose paper is blotchy, where tesseract's own global threshold loses words."""
    window = max(15, int(dpi / 25.4 * 4) | 1)  # ~4 mm: a few strokes across
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, window, 12)


def at_most(grey: np.ndarray, dpi: float, max_dpi: float) -> tuple[np.ndarray, float]:
    """The OCR copy scaled down to `max_dpi` when finer, with its new resolution.

    Tesseract normalises every text line to a fixed height, so detail past
    ~250 dpi buys no words, only layout-analysis time (~7% a page at 300 dpi).
    The archive image keeps the scan's own resolution; the text layer is laid
    out in points, so it still sits on the words.
    """
    if dpi <= max_dpi:
        return grey, dpi
    scale = max_dpi / dpi
    size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
    # Bilinear down to half size: a sixth of INTER_AREA's time at 300→250 dpi (~45 ms a page),
    # and no softer; area averaging only where a pixel would skip its neighbours.
    interpolation = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
    return cv2.resize(grey, size, interpolation=interpolation), float(max_dpi)
