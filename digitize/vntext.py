"""Vietnamese text helpers shared by the stages that compare text."""
from __future__ import annotations

import os
import re
import unicodedata


def nfc(text: object) -> str:
    return unicodedata.normalize("NFC", "" if text is None else str(text))


def path_text(path: object) -> str:
    """A file name or path as text: bytes that are not UTF-8 (an SMB share's legacy code page)
    become U+FFFD instead of surrogates that no catalogue, terminal or log can write."""
    return os.fsencode(str(path)).decode("utf-8", "replace")


def fold(text: object) -> str:
    """Lower case without accents or extra spaces ("Chủ  Hồ Sơ" -> "chu ho so"),
    for comparing headers, labels and names typed or OCR'd differently."""
    decomposed = unicodedata.normalize("NFD", nfc(text).replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped).strip().lower()


def _fold_table() -> dict[int, str]:
    table = {}
    for code in range(0x2000):  # Latin, its extensions and Vietnamese letters
        char = chr(code)
        base = unicodedata.normalize("NFD", char)[0].lower()
        if len(base) == 1 and base != char:
            table[code] = base
    table[ord("đ")] = table[ord("Đ")] = "d"
    return table


_FOLD = _fold_table()


def fold_keep_length(text: str) -> str:
    """Lower case, no accents, one output character per input character."""
    return text.translate(_FOLD)


# A Vietnamese syllable, folded: optional initial consonant(s), a vowel cluster, an optional final.
_SYLLABLE = re.compile(r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnpqrstvx])?"
                       r"[aeiouy]{1,3}(ng|nh|ch|[cmnpt])?")


def reads_as_words(text: str, min_words: int = 10, min_share: float = 0.6) -> bool:
    """Whether `text` reads as Vietnamese words rather than junk (an invisible text layer of
    garbage over a scan): enough words, most of them shaped like Vietnamese syllables."""
    words = [w for w in fold(text).split() if w.isalpha()]
    if len(words) < min_words:
        return False
    syllables = sum(1 for word in words if _SYLLABLE.fullmatch(word))
    return syllables / len(words) >= min_share
