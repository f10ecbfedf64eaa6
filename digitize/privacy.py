"""Personal data in what digitize prints and logs: one masking rule for the whole project.

A CCCD (12 digits) is personal data (DOMAIN.md): it is kept in the catalogue and the
PDF's metadata, and shown masked everywhere else — printed output, --json, logs, status.
"""
from __future__ import annotations

import re

# Any run of 12 or more digits may be a CCCD, even inside a file name.
CCCD_RUN = re.compile(r"(?<!\d)\d{12,}(?!\d)")


def mask_cccd(value: str | None) -> str:
    """070******725: the province code and the last three digits stay, the rest is hidden."""
    return "" if not value else value[:3] + "*" * max(len(value) - 6, 0) + value[-3:]


def mask_ids(text: str) -> str:
    """`text` with every run of 12 or more digits masked as a CCCD."""
    return CCCD_RUN.sub(lambda match: mask_cccd(match.group()), text)
