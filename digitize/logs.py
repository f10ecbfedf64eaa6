"""The watcher's log: a rotating file under home/logs and stderr (journald under systemd),
every line masked (privacy.mask_ids) so no path or message leaks a CCCD."""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from .privacy import mask_ids

LOG = logging.getLogger("digitize.watch")
LOG_BYTES, LOG_BACKUPS = 5_000_000, 5


class MaskingFormatter(logging.Formatter):
    """Masks the whole formatted line, tracebacks included, so no path or message leaks a CCCD."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_ids(super().format(record))


def setup_logging(home: Path) -> None:
    """A rotating log file under home/logs, and stderr (journald under systemd)."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    formatter = MaskingFormatter("%(asctime)s %(levelname)s %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(
        home / "logs" / "watch.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    console = logging.StreamHandler()
    LOG.handlers.clear()
    for handler in (file_handler, console):
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    logging.getLogger("watchdog").setLevel(logging.ERROR)  # its shutdown chatter is not news
