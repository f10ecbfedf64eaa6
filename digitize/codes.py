"""Dossier codes (mã hồ sơ): the strict form and an OCR-tolerant finder.

A dossier code is AGENCY-YYMMDD-XXXX (Circular 01/2018/TT-VPCP Art. 19):
AGENCY the receiving agency's QCVN 102:2016 code (`000.00.06.H56`) or a
short local form (`H56.14`), YYMMDD the receipt date, XXXX the sequence.

OCR damages codes in known ways (O/0, I/l/1, S/5, B/8, Z/2, G/6, dots and
dashes dropped or doubled, spaces inside). The finder matches a loose
pattern, then rebuilds the code from its characters position by position,
so a repaired code is always well formed; `exact` tells whether any repair
was needed, because a repaired code must clear a higher bar to be linked.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

FULL_AGENCY = r"\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}"
SHORT_AGENCY = r"[A-Z]\d{2}(?:\.\d{2}){1,3}"
CODE_RE = re.compile(rf"(?:{FULL_AGENCY}|{SHORT_AGENCY})-\d{{6}}-\d{{4}}")
# Inside free text (a QR payload, a sentence): not glued to other code characters; spaces around dashes.
SPACED_CODE_RE = re.compile(rf"(?<![0-9A-Za-z.])(?:{FULL_AGENCY}|{SHORT_AGENCY})[ ]{{0,3}}-[ ]{{0,3}}\d{{6}}[ ]{{0,3}}-[ ]{{0,3}}\d{{4}}(?!\d)")

# What OCR reads in place of a digit; digits read as digits are taken as they are.
DIGIT_LOOKALIKES = {
    "O": "0", "o": "0", "D": "0", "Q": "0",
    "I": "1", "l": "1", "i": "1", "|": "1", "!": "1",
    "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "G": "6",
}
# Where the agency's letter stands OCR may print a digit.
LETTER_LOOKALIKES = {"0": "O", "1": "I", "5": "S", "8": "B", "2": "Z", "6": "G"}

_D = "[0-9" + re.escape("".join(DIGIT_LOOKALIKES)) + "]"
_L = "[A-Za-z" + "".join(LETTER_LOOKALIKES) + "]"
_SP = "[ ]?"                                    # one stray space between characters


def _separator(chars: str) -> str:
    """A separator as printed and read: dropped, doubled or misread with a stray space around it
    ("H56-", "H56 -"), or a real one with spaces around it and at most one line break beside it
    ("000.20.25.H55 - 240812 - 0003", "...H55-240812-⏎0003"). A line break alone never joins."""
    wide = r"[ \t]{0,3}"
    return rf"(?:[ ]?[{chars}]{{0,2}}[ ]?|{wide}[{chars}]{{1,2}}{wide}\n?{wide}|{wide}\n{wide}[{chars}]{{1,2}}{wide})"


_DOT = _separator(r".,·")                       # dot dropped, doubled or misread
_DASH = _separator(r"\-‐‑–—_~.")                # dash dropped, doubled or misread


def _digits(n: int) -> str:
    return _SP.join([_D] * n)


_LOOSE_FULL = (
    rf"(?P<full>{_digits(3)}{_DOT}{_digits(2)}{_DOT}{_digits(2)}{_DOT}{_L}{_SP}{_digits(2)}"
    rf"{_DASH}{_digits(6)}{_DASH}{_digits(4)})"
)
_LOOSE_SHORT = (
    rf"(?P<short>{_L}{_SP}{_digits(2)}(?:{_DOT}{_digits(2)}){{1,3}}{_DASH}{_digits(6)}{_DASH}{_digits(4)})"
)
LOOSE_RE = re.compile(rf"(?<![0-9A-Za-z]){_LOOSE_FULL}(?![0-9])|(?<![0-9A-Za-z]){_LOOSE_SHORT}(?![0-9])")

# Glyphs a row of barcode bars or table rules is read as. A reading made of
# little else is not a damaged code, however well it fits the pattern.
_STROKES = set("Il1|!i")
MIN_NON_STROKE = 4

_DASHES = str.maketrans({"‐": "-", "‑": "-", "–": "-", "—": "-"})


def code_date(code: str) -> date | None:
    """The receipt date written in a code (its YYMMDD), None when not a real date."""
    match = re.search(r"-(\d{2})(\d{2})(\d{2})-\d{4}$", code)
    if not match:
        return None
    try:
        return date(2000 + int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def normalise_code(text: str) -> str:
    """The code as typed in a registry cell: NFC, upper case, no spaces, plain dashes."""
    text = unicodedata.normalize("NFC", str(text)).translate(_DASHES)
    return re.sub(r"\s+", "", text).upper()


def is_well_formed(code: str) -> bool:
    return bool(CODE_RE.fullmatch(code)) and code_date(code) is not None


def _skeleton(raw: str) -> list[str]:
    """The characters of a loose match that carry information (no separators)."""
    return [c for c in raw if c.isalnum() or c in "|!"]


def _layout(raw: str, short: bool) -> str | None:
    """The strict template a loose match fills: L letter, # digit, . and - literal."""
    if not short:
        return "###.##.##.L##-######-####"
    extra = len(_skeleton(raw)) - 1 - 2 - 10
    if extra < 2 or extra % 2:
        return None
    return "L##" + ".##" * (extra // 2) + "-######-####"


def _rebuild(raw: str, short: bool) -> str | None:
    """Put the characters of a loose match back into the strict template."""
    layout = _layout(raw, short)
    chars = _skeleton(raw)
    if layout is None or len([s for s in layout if s in "#L"]) != len(chars):
        return None
    it = iter(chars)
    out = []
    for slot in layout:
        if slot not in "#L":
            out.append(slot)
            continue
        char = next(it)
        if slot == "L":
            char = LETTER_LOOKALIKES.get(char, char).upper()
            if not ("A" <= char <= "Z"):
                return None
        else:
            char = DIGIT_LOOKALIKES.get(char, char)
            if not (char.isascii() and char.isdigit()):
                return None
        out.append(char)
    code = "".join(out)
    return code if is_well_formed(code) else None


def _unspaced(raw: str) -> str:
    """A reading without the spaces and line break printed around its dots and dashes."""
    return re.sub(r"\s*([.\-])\s*", r"\1", raw)


def find_codes(text: str) -> list[dict]:
    """Dossier codes in a text, in reading order: [{"code", "raw", "exact"}].

    `exact` is True when the text held the code character for character,
    spaces and a line break around its separators aside (printers space
    them, lines wrap); otherwise the code was repaired from an OCR-damaged
    reading.
    """
    text = unicodedata.normalize("NFC", text or "")
    found: list[dict] = []
    for match in LOOSE_RE.finditer(text):
        raw = match.group(0)
        if sum(c not in _STROKES for c in _skeleton(raw)) < MIN_NON_STROKE:
            continue
        code = _rebuild(raw, short=match.group("short") is not None)
        if code and not any(f["code"] == code for f in found):
            found.append({"code": code, "raw": raw, "exact": _unspaced(raw) == code})
    return found


def find_exact_codes(text: str) -> list[str]:
    """Well-formed codes written exactly (barcode payloads are never repaired;
    spaces around the dashes, as some vendors encode them, are not damage)."""
    codes: list[str] = []
    for match in SPACED_CODE_RE.finditer(unicodedata.normalize("NFC", text or "").translate(_DASHES)):
        code = re.sub(r"\s+", "", match.group(0))
        if is_well_formed(code) and code not in codes:
            codes.append(code)
    return codes


def damage_fits(raw: str, code: str) -> bool:
    """Could an OCR reading `raw` stand for `code`? Every character read cleanly
    (a digit where a digit belongs, a letter where the agency letter belongs)
    must agree; characters that needed repair could have been anything."""
    seen = _skeleton(raw)
    want = [c for c in code if c.isalnum()]
    if len(seen) != len(want):
        return False
    for s, w in zip(seen, want):
        clean = (s.isdigit() and w.isdigit()) or (s.isalpha() and s.isupper() and w.isalpha())
        if clean and s != w:
            return False
    return True
