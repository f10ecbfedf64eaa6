"""The fonts digitize draws with (cover sheets, signature boxes): Liberation Serif with Vietnamese glyphs."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageFont

# Liberation 1.x (fonts-liberation) has no glyphs for most Vietnamese vowels;
# Liberation 2.x (fonts-liberation2) does, so it is tried first.
FONT_DIRS = (Path("/usr/share/fonts/truetype/liberation2"), Path("/usr/share/fonts/truetype/liberation"))
STYLES = {"regular": "Regular", "bold": "Bold", "italic": "Italic", "bolditalic": "BoldItalic"}


def covers_vietnamese(path: Path) -> bool:
    """Whether the font draws Vietnamese letters rather than its .notdef box."""
    font = ImageFont.truetype(str(path), 40)

    def mask(ch: str) -> bytes:
        return Image.Image()._new(font.getmask(ch)).tobytes()

    missing = mask("\ue000")  # a private-use code point: always the .notdef glyph
    return all(mask(ch) != missing for ch in "ậếữỡưƠđ")


@lru_cache(maxsize=None)
def font_path(style: str = "regular", family: str = "Serif") -> Path:
    """Liberation Serif or Sans (metric-compatible with Times New Roman and Arial) in `style`."""
    for folder in FONT_DIRS:
        path = folder / f"Liberation{family}-{STYLES[style]}.ttf"
        if path.exists() and covers_vietnamese(path):
            return path
    raise RuntimeError(
        "Không tìm thấy phông Liberation có đủ chữ tiếng Việt (cài gói fonts-liberation2) / "
        "no Liberation font with Vietnamese glyphs found (install fonts-liberation2)")
