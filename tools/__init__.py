"""Measuring, rendering and demo tools: run from the repository (`make eval`, `make bench`,
`make soak`, `make demo`), never installed with the package."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
