"""The watcher's log: a rotating file under home/logs and stderr (journald under systemd),
every line masked and escaped (privacy.shown) so no path or message leaks a CCCD or forges a line."""
from __future__ import annotations

import copy
import logging
import logging.handlers
from pathlib import Path

from .privacy import shown

LOG = logging.getLogger("digitize.watch")
LOG_BYTES, LOG_BACKUPS = 5_000_000, 5


class MaskingFormatter(logging.Formatter):
    """One log record, one line: its message with control characters escaped (a newline in a
    file name cannot forge a record) and IDs masked. A traceback follows on lines indented by
    four spaces, each escaped and masked, so none can pass for a record."""

    def format(self, record: logging.LogRecord) -> str:
        line = copy.copy(record)
        line.msg, line.args = shown(record.getMessage()), None
        line.exc_info, line.exc_text, line.stack_info = None, None, None
        text = super().format(line)
        extra = [self.formatException(record.exc_info) if record.exc_info else record.exc_text,
                 self.formatStack(record.stack_info) if record.stack_info else None]
        lines = [shown(part) for block in extra if block for part in block.splitlines()]
        return "\n".join([text, *("    " + part for part in lines)])


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
