"""What may be shown: the one rule for masking a CCCD and the one for control characters.

Every printer (command output, `--json`, `status`, logs, terminal tables) goes
through these, so a citizen ID or a forged line cannot leak through one path
that another path guards.

- A CCCD is shown as its first 3 and last 3 digits (`070******725`): the
  province and a check an officer can compare, never the person. Any run of 12
  or more digits in free text (a file name, an error message) is taken for an
  ID and masked the same way. A run that is part of a hexadecimal hash (32 or
  more hex characters, as a sha256) is not an ID and is left alone.
- Control characters (C0, DEL, C1, line and paragraph separators, bidi
  overrides) are shown escaped (`\\n`, `\\x1b`, `\\u202e`) in lines and logs, so a
  newline in a file name cannot forge a log line and an ANSI escape cannot drive
  the terminal; terminal tables drop them (and whole escape sequences) instead.
"""
from __future__ import annotations

import re

from .vntext import path_text

ID_RUN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])|(?<!\d)\d{12,}(?!\d)")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# ANSI/VT escape sequences: CSI (ESC [ or 0x9b ... final byte), OSC (ESC ] ... BEL or ST), two-byte ESC X.
ANSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d).*?(?:\x07|\x1b\\|\x9c)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def mask_cccd(value: str | None) -> str:
    """A CCCD (or a 9-digit CMND) as printed: first 3 and last 3 digits, the rest stars."""
    if not value:
        return ""
    keep = 3 if len(value) > 6 else 1
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def mask_ids(text: str) -> str:
    """Every run of 12+ digits in `text` masked by mask_cccd; hex hashes kept whole."""
    def masked(match: re.Match) -> str:
        run = match.group()
        return run if not run.isdigit() else mask_cccd(run)

    return ID_RUN.sub(masked, text)


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` on one line: control and direction-override characters written as escapes."""
    return _CONTROL.sub(_escape, text)


def for_terminal(value: object) -> str:
    """Data for a terminal table: escape sequences removed whole, other controls dropped
    (line breaks and tabs become spaces), IDs masked. Print it as text, never as markup."""
    text = ANSI.sub("", "" if value is None else str(value))
    return mask_ids(_CONTROL.sub(lambda m: " " if m.group() in "\n\r\t\u2028\u2029" else "", text))


def shown(value: object) -> str:
    """Any value as it may be printed: one line, controls escaped, IDs masked, bytes of a file
    name that are not UTF-8 replaced."""
    return mask_ids(escape_controls(path_text("" if value is None else value)))


def masked_data(value):
    """A JSON-able structure with IDs masked in every string (for --json output). Control
    characters are left to the JSON encoder, which escapes them, so values stay exact."""
    if isinstance(value, str):
        return mask_ids(value)
    if isinstance(value, dict):
        return {key: masked_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked_data(item) for item in value]
    return value
