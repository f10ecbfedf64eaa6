"""`make demo`: the main job on the bundled samples, into DIGITIZE_HOME (demo-home/).

Each step is the real command an IT officer would type; the demo only
chains them and says where the results are.
"""
from __future__ import annotations

import shutil
import sys

from digitize import cli, store
from digitize.config import load_config, resolve_paths
from tools import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"


def step(title: str, argv: list[str]) -> int:
    print(f"\n=== {title}\n$ digitize {' '.join(argv)}", flush=True)
    code = cli.main(argv)
    print(f"(exit {code})", flush=True)
    return code


def main(queued: bool = False) -> int:
    """queued: the scans go through the queue to the workers (make cluster-demo), waited for."""
    paths = resolve_paths(load_config())
    # A fresh demo each run: the demo home holds nothing else.
    if paths["home"].exists():
        shutil.rmtree(paths["home"])
    step("Nơi lưu trữ / Where digitize keeps its files", ["paths"])
    step("Nhập danh sách hồ sơ / Importing the dossier registry",
         ["registry", "import", str(SAMPLES / "registry.csv")])
    scans = paths["home"] / "scans"
    shutil.copytree(SAMPLES, scans, ignore=shutil.ignore_patterns("*.py", "*.json", "*.csv", "*.md"))
    code = step("Xử lý bản quét mẫu / Processing the sample scans",
                ["process", str(scans), *(["--queue", "--wait"] if queued else [])])
    if queued:
        step("Hàng đợi và máy xử lý / Queue and workers", ["status"])
    step("Chờ xem xét / Waiting for review", ["review"])
    step("Tỷ lệ số hóa quý 4/2024 / Digitisation in 2024-Q4", ["coverage", "--quarter", "2024-Q4"])
    reports_dir = paths["home"] / "reports"
    step("Báo cáo cho lãnh đạo / Report for supervisors",
         ["report", "--period", "2024-Q4", "--out", str(reports_dir)])
    print(f"\nPDF tìm kiếm được / Searchable PDFs in {paths['archive']}:")
    for pdf in sorted(paths["archive"].rglob("*.pdf")):
        print(f"  {pdf.relative_to(paths['home'])}")
    print(f"Báo cáo / Reports: {reports_dir}")
    print(f"Danh mục / Catalogue: {store.location(paths['catalogue'])}")
    return code


if __name__ == "__main__":
    sys.exit(main())
