"""Timing of the coverage reports on a large catalogue: `python -m tools.benchmark_reports`.

Fills a temporary catalogue through store with 100,000 dossiers received over
2021-2025 and 300,000 documents (about 3 per dossier: components and results,
some failed or unlinked), then times a quarter, a year with the per-procedure
breakdown, and the full report (XLSX + HTML with the chart) for one quarter.
Target: each under 2 s.
"""
from __future__ import annotations

import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from digitize import config as site_config, periods as period_rules, reports, store

DOSSIERS = 100_000
DOCUMENTS = 300_000
PROCEDURES = [(f"1.{1000 + n:06d}", f"Thủ tục hành chính số {n}") for n in range(60)]
OFFICERS = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em", "Vũ Thị Giang"]


def fill(conn, seed: int = 7) -> None:
    rng = random.Random(seed)
    first_day = date(2021, 1, 1)
    dossiers, documents = [], []
    for number in range(DOSSIERS):
        received = first_day + timedelta(days=rng.randrange(5 * 365))
        due = received + timedelta(days=rng.choice((1, 3, 5, 7, 15)))
        finished = received + timedelta(days=rng.randrange(20)) if rng.random() < 0.93 else None
        code, (procedure_code, procedure_name) = f"000.00.06.H56-{received:%y%m%d}-{number:05d}", rng.choice(PROCEDURES)
        dossiers.append({"code": code, "procedure_code": procedure_code, "procedure_name": procedure_name,
                         "applicant": f"Công dân {number}", "received_date": received.isoformat(),
                         "due_date": due.isoformat(), "finished_date": finished and finished.isoformat(),
                         "status": 10 if finished else 4, "officer": rng.choice(OFFICERS)})
        for part in range(3):
            documents.append({"sha256": f"{number:064x}", "part": part, "source": f"scan-{number}-{part}.pdf",
                              "status": "done" if rng.random() < 0.95 else "failed",
                              "kind": "result" if part == 2 else "component",
                              "dossier_code": code if rng.random() < 0.9 else None,
                              "link_status": "linked" if rng.random() < 0.9 else "review"})
    with store.transaction(conn):
        store.insert_dossiers(conn, dossiers)
        for document in documents:
            store.save_document(conn, document)


def timed(label: str, work) -> float:
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    print(f"{label:48} {elapsed:6.3f} s")
    return elapsed


def main() -> int:
    config = site_config.load_config({})
    with tempfile.TemporaryDirectory(prefix="digitize-bench-") as folder:
        conn = store.connect(Path(folder) / "catalogue.sqlite")
        started = time.perf_counter()
        fill(conn)
        conn.execute("ANALYZE")
        print(f"filled {DOSSIERS:,} dossiers / {DOCUMENTS:,} documents in {time.perf_counter() - started:.1f} s")
        today = date(2025, 12, 31)
        quarter = [period_rules.parse_label("2024-Q3")]
        year = period_rules.year_rows(2024)
        results = [
            timed("coverage --quarter 2024-Q3 (json)", lambda: reports.to_json(
                reports.build(conn, quarter, config, today=today))),
            timed("coverage --year 2024 --by procedure (table)", lambda: reports.to_table(
                reports.build(conn, year, config, today=today, by=("procedure",)))),
            timed("report --period 2024-Q3 (xlsx + html, chart)", lambda: _full(conn, quarter, config, today)),
        ]
        conn.close()
    print("all under 2 s" if max(results) < 2 else "SLOWER THAN 2 s")
    return 0 if max(results) < 2 else 1


def _full(conn, quarter, config, today) -> None:
    report = reports.build(conn, quarter, config, today=today, by=tuple(reports.BREAKDOWN_KEYS), chart=True)
    reports.to_xlsx(report)
    reports.to_html(report)


if __name__ == "__main__":
    raise SystemExit(main())
