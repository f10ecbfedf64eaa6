"""`digitize serve`: the office's web page under uvicorn (see app.py for the routes and their rules)."""
from __future__ import annotations

import logging
import sys

from .. import errors
from ..logs import MaskingFormatter


def serve(config: dict, host: str, port: int) -> int:
    """Run until SIGTERM/Ctrl-C. uvicorn's access log is off: ours (app.py) never logs a query string."""
    import uvicorn

    from .app import build

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("digitize.web", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    uvicorn.run(build(config), host=host, port=port, access_log=False, log_config=None,
                proxy_headers=False, server_header=False)
    return errors.OK
