"""A registry built through store for the coverage and report tests: 2024-Q3 with 299 dossiers, 255 scanned."""
from __future__ import annotations

from datetime import date, timedelta

from digitize import store

QUARTER_START = date(2024, 7, 1)
RECEIVED = 299
# 44 dossiers of the quarter with no linked, digitised document.
MISSING_INDEXES = list(range(0, RECEIVED, 6))[:44]
SCRIPT_NAME = "<script>alert('x')</script> Nguyễn"
FORMULA_OFFICER = "=cmd|' /C calc'!A0"
OFFICERS = ["Trần Thị Bình", "Lê Văn Cường", FORMULA_OFFICER]
PROCEDURES = [("1.001193", "Đăng ký khai sinh"), ("2.000635", "Chứng thực bản sao từ bản chính")]


def quarter_code(index: int) -> str:
    received = QUARTER_START + timedelta(days=index % 92)
    return f"000.00.06.H56-{received:%y%m%d}-{index:04d}"


def _document(conn, sha: str, code: str | None, status: str = "done", link: str = "linked",
              kind: str = "component") -> None:
    store.save_document(conn, {"sha256": sha, "source": f"/inbox/{sha}.pdf", "status": status,
                               "dossier_code": code, "link_status": link, "kind": kind})


def build(conn) -> list[str]:
    """Fill the catalogue; the codes expected in the missing list, in report order."""
    dossiers = []
    for index in range(RECEIVED):
        received = QUARTER_START + timedelta(days=index % 92)
        procedure = PROCEDURES[index % 2]
        dossiers.append({
            "code": quarter_code(index), "procedure_code": procedure[0], "procedure_name": procedure[1],
            "applicant": SCRIPT_NAME if index == MISSING_INDEXES[3] else f"Công dân {index}",
            "cccd": "001199012345", "received_date": received.isoformat(),
            "due_date": (received + timedelta(days=5)).isoformat(), "finished_date": None, "status": 4,
            "officer": OFFICERS[index % 3],
        })
    # Neighbours outside the quarter, scanned or not: they must not count.
    for index, received in enumerate((date(2024, 6, 30), date(2024, 10, 1), date(2024, 5, 2), date(2024, 12, 31))):
        dossiers.append({"code": f"000.00.06.H56-{received:%y%m%d}-9{index:03d}", "procedure_code": "1.001193",
                         "procedure_name": "Đăng ký khai sinh", "applicant": "Ngoài kỳ",
                         "received_date": received.isoformat(), "status": 10,
                         "due_date": received.isoformat(), "finished_date": received.isoformat(),
                         "officer": "Trần Thị Bình"})
    with store.transaction(conn):
        store.insert_dossiers(conn, dossiers)
        for index in range(RECEIVED):
            code = quarter_code(index)
            if index in MISSING_INDEXES:
                # Scans that do not count: failed, waiting for review, not linked.
                _document(conn, f"failed-{index}", code, status="failed")
                _document(conn, f"review-{index}", code, link="review")
                _document(conn, f"none-{index}", code, link="none")
            else:
                _document(conn, f"scan-{index}", code)
                if index % 5 == 0:
                    _document(conn, f"scan2-{index}", code)     # a second scan counts once
        _document(conn, "outside-q4", dossiers[-3]["code"])
    missing = [d for i, d in enumerate(dossiers[:RECEIVED]) if i in MISSING_INDEXES]
    return [d["code"] for d in sorted(missing, key=lambda d: (d["received_date"], d["code"]))]
