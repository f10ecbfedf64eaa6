"""Pages unlike the project's own scans: tinted paper, photocopies, seals and signatures,
phone photos of a sheet, bold serif headers, coarse JPEGs.

Every generator takes a rendered synth page (white paper, black ink) and returns a new page
dict with the damaged image and the same truth words (ink added on top of text, never over
it: a seal or a signature is multiplied onto the paper as real ink is).

Two splits with different generator parameters, typefaces and seeds: "tune" is what rules and
thresholds are adjusted on; "heldout" is what figures are reported on and is never looked at
while tuning. `SPLITS[split][group]` holds one group's parameters.
"""
from __future__ import annotations

import io
import random

import cv2
import numpy as np
from PIL import Image, ImageDraw

from tools import synth

GROUPS = ("tinted paper 10-40°", "photocopy", "seal + signature", "phone photo", "bold serif headers",
          "150 dpi JPEG")

SPLITS: dict[str, dict] = {
    "tune": {
        "seed": 31_000,
        "typeface": "liberation",
        "tinted paper 10-40°": {"dpi": 300, "angle": (10.0, 35.0),
                                "papers": ((246, 236, 196), (208, 208, 204), (236, 226, 200)),
                                "lid": (235, 255)},
        "photocopy": {"dpi": 300, "angle": (0.0, 4.0), "background": (188, 215), "ink": (35, 80),
                      "spine": (0.45, 0.7), "toner": 0.002},
        "seal + signature": {"dpi": 300, "angle": (0.0, 2.0), "red": (200, 30, 40), "blue": (40, 60, 170),
                             "radius_mm": (16, 20)},
        "phone photo": {"canvas": (3000, 4000), "fill": (0.72, 0.86), "corner_jitter": 0.05,
                        "desk": ((70, 50, 35), (45, 45, 50)), "light": (0.55, 0.8), "jpeg": 85, "turn": 6.0},
        "bold serif headers": {"dpi": 300, "angle": (0.0, 0.4), "header_pt": (15.0, 17.0)},
        "150 dpi JPEG": {"dpi": 150, "angle": (0.0, 2.0), "jpeg": (55, 80)},
    },
    "heldout": {
        "seed": 9_700_000,
        "typeface": "dejavu",
        "tinted paper 10-40°": {"dpi": 200, "angle": (12.0, 40.0),
                                "papers": ((240, 226, 178), (192, 190, 185), (226, 222, 212)),
                                "lid": (215, 250)},
        "photocopy": {"dpi": 300, "angle": (0.0, 4.0), "background": (172, 205), "ink": (45, 95),
                      "spine": (0.35, 0.6), "toner": 0.004},
        "seal + signature": {"dpi": 300, "angle": (0.0, 3.0), "red": (185, 40, 70), "blue": (25, 45, 140),
                             "radius_mm": (18, 23)},
        "phone photo": {"canvas": (3024, 4032), "fill": (0.68, 0.82), "corner_jitter": 0.07,
                        "desk": ((35, 38, 48), (90, 70, 55)), "light": (0.5, 0.75), "jpeg": 80, "turn": 9.0},
        "bold serif headers": {"dpi": 300, "angle": (0.0, 0.5), "header_pt": (16.0, 18.0)},
        "150 dpi JPEG": {"dpi": 150, "angle": (0.0, 3.0), "jpeg": (45, 70)},
    },
}


def _rgb(page: dict) -> np.ndarray:
    return np.asarray(page["image"].convert("RGB"), dtype=np.float32)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, strength: float, cells: int = 6) -> np.ndarray:
    """A smooth multiplicative field around 1 (blotches of old paper, uneven light)."""
    coarse = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    field = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return 1.0 + strength * field / max(1e-6, float(np.abs(field).max()))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    decoded.load()
    decoded.info.clear()
    return decoded


def _turned(page: dict, image: Image.Image, angle: float, fill: int) -> dict:
    orientation, skew = synth.split_angle(angle)
    turned = synth.rotate(image, angle, fill=fill) if angle else image
    return {**page, "image": turned, "angle": float(angle), "orientation": orientation, "skew": skew}


def tinted(page: dict, paper: tuple[int, int, int], angle: float, lid: int, seed: int) -> dict:
    """Yellowed or grey paper, blotchy, on a flatbed at `angle` with the lid's own colour around it."""
    rng = np.random.default_rng(seed)
    pixels = _rgb(page) / 255.0
    blotch = _smooth_field(pixels.shape[:2], rng, 0.04)
    sheet = pixels * np.asarray(paper, np.float32)[None, None, :] * blotch[..., None]
    sheet += rng.normal(0, 3.0, sheet.shape).astype(np.float32)
    image = Image.fromarray(sheet.clip(0, 255).astype(np.uint8))
    return _turned(page, image, angle, lid)


def photocopy(page: dict, angle: float, background: float, ink: float, spine: float, toner: float,
              seed: int) -> dict:
    """A grey photocopy: grey ground, faded toner, grain and specks, a dark spine shadow down one side."""
    rng = np.random.default_rng(seed)
    grey = np.asarray(page["image"].convert("L"), dtype=np.float32) / 255.0
    height, width = grey.shape
    pixels = ink + (background - ink) * grey
    pixels *= _smooth_field(grey.shape, rng, 0.05)
    # The book's spine: a shadow that deepens towards one edge over 6-12% of the width.
    band = int(width * rng.uniform(0.06, 0.12))
    ramp = np.ones(width, np.float32)
    ramp[:band] = spine + (1 - spine) * (np.linspace(0, 1, band, dtype=np.float32) ** 1.5)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    pixels *= ramp[None, :]
    pixels += rng.normal(0, 7.0, pixels.shape).astype(np.float32)
    specks = rng.random(grey.shape) < toner
    pixels[specks] = rng.uniform(20, 90, int(specks.sum()))
    pixels = cv2.GaussianBlur(pixels, (0, 0), 0.7)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    return _turned(page, image, angle, int(background))


def _multiply(base: np.ndarray, layer: Image.Image, colour: tuple[int, int, int]) -> np.ndarray:
    """Ink `colour` where `layer` (L, 255 = ink) is drawn, multiplied onto `base` (RGB float 0-255)."""
    alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0
    tint = np.asarray(colour, np.float32)[None, None, :] / 255.0
    return base * (1 - alpha + alpha * tint)


def seal_and_signature(page: dict, angle: float, red, blue, radius_mm: float, seed: int) -> dict:
    """A red round seal (rings, a star, a ring of dashes for its lettering) and a blue signature,
    both over lines of text, as on a signed result."""
    rng = np.random.default_rng(seed)
    base = _rgb(page)
    height, width = base.shape[:2]
    px_mm = page["dpi"] / 25.4
    radius = int(radius_mm * px_mm)
    seal = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(seal)
    x = int(rng.uniform(0.35, 0.75) * width)
    y = int(rng.uniform(0.3, 0.8) * height)
    for r, w in ((radius, max(3, radius // 22)), (int(radius * 0.72), max(2, radius // 40))):
        draw.ellipse([x - r, y - r, x + r, y + r], outline=255, width=w)
    for k in range(28):  # the seal's lettering, as short strokes round the ring
        a = 2 * np.pi * k / 28
        r0, r1 = radius * 0.78, radius * 0.93
        draw.line([(x + r0 * np.cos(a), y + r0 * np.sin(a)), (x + r1 * np.cos(a + 0.08), y + r1 * np.sin(a + 0.08))],
                  fill=255, width=max(2, radius // 45))
    star = [(x + radius * 0.3 * np.cos(np.pi / 2 + k * 4 * np.pi / 5),
             y - radius * 0.3 * np.sin(np.pi / 2 + k * 4 * np.pi / 5)) for k in range(5)]
    draw.polygon(star, fill=255)
    seal = Image.fromarray((np.asarray(seal, np.float32) * rng.uniform(0.75, 0.95)).astype(np.uint8))
    base = _multiply(base, seal, red)
    signature = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(signature)
    sx, sy = int(rng.uniform(0.15, 0.55) * width), int(rng.uniform(0.25, 0.8) * height)
    span = int(rng.uniform(35, 60) * px_mm)
    t = np.linspace(0, 1, 400)
    xs = sx + span * t
    ys = sy + 6 * px_mm * np.sin(t * rng.uniform(8, 14)) * np.exp(-t) + 4 * px_mm * np.sin(t * 3 + rng.uniform(0, 6))
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=255, width=max(2, int(0.5 * px_mm)), joint="curve")
    base = _multiply(base, signature, blue)
    base += rng.normal(0, 2.5, base.shape).astype(np.float32)
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    return _turned(page, image, angle, 255)


def phone_photo(page: dict, canvas: tuple[int, int], fill: float, corner_jitter: float, desk,
                light: float, jpeg: int, turn: float, seed: int) -> dict:
    """A phone photo of the sheet lying on a desk: perspective, a dark textured surround, light
    falling off across the sheet, a warm cast, sensor noise, JPEG and no resolution."""
    rng = np.random.default_rng(seed)
    sheet = _rgb(page)
    sh, sw = sheet.shape[:2]
    width, height = canvas
    scale = fill * height / sh
    cx, cy = width / 2 + rng.uniform(-0.04, 0.04) * width, height / 2 + rng.uniform(-0.03, 0.03) * height
    theta = np.deg2rad(rng.uniform(-turn, turn))
    corners = []
    for u, v in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        dx, dy = u * sw * scale / 2, v * sh * scale / 2
        rx, ry = dx * np.cos(theta) - dy * np.sin(theta), dx * np.sin(theta) + dy * np.cos(theta)
        corners.append((cx + rx + rng.uniform(-1, 1) * corner_jitter * width,
                        cy + ry + rng.uniform(-1, 1) * corner_jitter * height))
    source = np.float32([(0, 0), (sw, 0), (sw, sh), (0, sh)])
    matrix = cv2.getPerspectiveTransform(source, np.float32(corners))
    colour = np.asarray(desk[int(rng.integers(len(desk)))], np.float32)
    background = colour[None, None, :] * _smooth_field((height, width), rng, 0.25)[..., None]
    background += rng.normal(0, 6.0, background.shape).astype(np.float32)
    warped = cv2.warpPerspective(sheet, matrix, (width, height), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones((sh, sw), np.float32), matrix, (width, height))[..., None]
    pixels = background * (1 - inside) + warped * inside
    # Light: brightest near one point, falling to `light` at the far corner; a warm cast.
    lx, ly = rng.uniform(0.2, 0.8) * width, rng.uniform(0.1, 0.5) * height
    yy, xx = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
    distance = np.hypot(xx - lx, yy - ly) / np.hypot(width, height)
    shade = cv2.resize(1 - (1 - light) * (distance / distance.max()) ** 1.3, (width, height))
    pixels *= shade[..., None] * np.asarray((1.0, 0.96, 0.88), np.float32)[None, None, :]
    pixels = cv2.GaussianBlur(pixels, (0, 0), 0.8)
    pixels += rng.normal(0, 4.0, pixels.shape).astype(np.float32)
    image = _jpeg(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)), jpeg)
    return {**page, "image": image, "angle": None, "orientation": 0, "skew": None}


def make_page(group: str, split: str, index: int, paragraphs: list[str]) -> tuple[dict, int | None, str]:
    """Page `index` of `group` in `split`: (page, dpi written in the file or None, file suffix)."""
    spec, params = SPLITS[split], SPLITS[split][group]
    seed = spec["seed"] + 1000 * GROUPS.index(group) + index
    rng = random.Random(seed)
    kind = ("prose", "receipt", "decision", "declaration")[index % 4]
    dpi = params.get("dpi", 300)
    with synth.typeface(spec["typeface"]):
        if group == "bold serif headers":
            # The official header and title drawn larger, as many offices print them.
            pt = rng.uniform(*params["header_pt"])
            page = synth.render_page(kind if kind != "prose" else "receipt", synth.make_fields(seed), dpi=dpi,
                                     pt=pt)
        elif kind == "prose":
            start = rng.randrange(max(1, len(paragraphs) - 12))
            page = synth.render_prose(paragraphs[start:start + 12], dpi=dpi, paper=rng.choice(("A4", "A4", "A5")))
        else:
            page = synth.render_page(kind, synth.make_fields(seed), dpi=dpi)
    low, high = params.get("angle", (0.0, 0.0))
    angle = rng.uniform(low, high) * rng.choice((-1, 1))
    if group == "tinted paper 10-40°":
        paper = params["papers"][index % len(params["papers"])]
        return tinted(page, paper, angle, rng.randint(*params["lid"]), seed), dpi, ".png"
    if group == "photocopy":
        return photocopy(page, angle, rng.uniform(*params["background"]), rng.uniform(*params["ink"]),
                         rng.uniform(*params["spine"]), params["toner"], seed), dpi, ".png"
    if group == "seal + signature":
        return seal_and_signature(page, angle, params["red"], params["blue"], rng.uniform(*params["radius_mm"]),
                                  seed), dpi, ".png"
    if group == "phone photo":
        return phone_photo(page, params["canvas"], rng.uniform(*params["fill"]), params["corner_jitter"],
                           params["desk"], rng.uniform(*params["light"]), params["jpeg"], params["turn"],
                           seed), None, ".jpg"
    if group == "bold serif headers":
        return _turned(page, page["image"], angle, 255), dpi, ".png"
    quality = rng.randint(*params["jpeg"])
    page = synth.scan(page, angle, seed=seed, noise=2.0)
    return {**page, "image": _jpeg(page["image"], quality)}, dpi, ".jpg"
