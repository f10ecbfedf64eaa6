"""Vietnamese text helpers shared by the stages that compare text."""
from __future__ import annotations

import re
import unicodedata


def nfc(text: object) -> str:
    return unicodedata.normalize("NFC", "" if text is None else str(text))


def fold(text: object) -> str:
    """Lower case without accents or extra spaces ("Chủ  Hồ Sơ" -> "chu ho so"),
    for comparing headers, labels and names typed or OCR'd differently."""
    decomposed = unicodedata.normalize("NFD", nfc(text).replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped).strip().lower()
