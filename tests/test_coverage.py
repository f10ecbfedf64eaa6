"""Coverage indicators: exact figures on a registry built through the store, periods, bad data."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from digitize import config as site_config, coverage, periods, reports, store

from . import quarter_registry

# Every test here runs on the SQLite catalogue and on a real PostgreSQL one.
pytestmark = pytest.mark.usefixtures("catalogue_backend")

TODAY = date(2025, 1, 15)


@pytest.fixture
def catalogue(tmp_path):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    missing = quarter_registry.build(conn)
    yield conn, missing
    conn.close()


@pytest.fixture
def config():
    return site_config.load_config({})


def test_quarter_reports_255_of_299_and_lists_the_44_missing(catalogue, config):
    conn, expected_missing = catalogue
    report = reports.build(conn, [periods.parse_label("2024-Q3")], config, today=TODAY, by=("procedure",))
    row = report["periods"][0]
    assert (row["period"], row["received"], row["digitised"]) == ("2024-Q3", 299, 255)
    assert row["rate"] == Decimal("85.28") and row["pass"] is True
    assert len(expected_missing) == 44
    assert [m["code"] for m in report["missing"]] == expected_missing
    script = next(m for m in report["missing"] if m["applicant"] == quarter_registry.SCRIPT_NAME)
    assert set(script) == {"code", "applicant", "procedure_code", "procedure_name", "received_date", "officer"}
    # The breakdown adds up to the total.
    assert sum(r["received"] for r in report["by_procedure"]) == 299
    assert sum(r["digitised"] for r in report["by_procedure"]) == 255
    assert {r["procedure_name"] for r in report["by_procedure"]} == {"Đăng ký khai sinh",
                                                                     "Chứng thực bản sao từ bản chính"}


def test_rates_are_exact_half_up_and_never_divide_by_zero():
    assert coverage.rate(255, 299) == Decimal("85.28")
    assert coverage.rate(1, 800) == Decimal("0.13")        # 0.125: half up, not half even
    assert coverage.rate(1, 3) == Decimal("33.33")
    assert coverage.rate(0, 0) is None
    assert coverage.passes(Decimal("80.00"), 80.0) is True
    assert coverage.passes(Decimal("79.99"), 80.0) is False
    assert coverage.passes(None, 80.0) is None


def _dossier(code, received, due=None, finished=None, status=4, document=False, result=False, **extra):
    return {"code": code, "procedure_code": "1.001193", "procedure_name": "Đăng ký khai sinh",
            "applicant": "A", "received_date": received, "due_date": due, "finished_date": finished,
            "status": status, "officer": "B", "has_document": document, "has_result": result, **extra}


def test_timeliness_results_and_overdue_open():
    q3 = periods.parse_label("2024-Q3")
    dossiers = [
        _dossier("early", "2024-06-20", due="2024-07-10", finished="2024-07-05", status=10, result=True),
        _dossier("on-time", "2024-07-01", due="2024-07-10", finished="2024-07-10", status=10, document=True),
        _dossier("late", "2024-07-01", due="2024-07-10", finished="2024-07-11", status=10, result=True),
        _dossier("no-due", "2024-08-01", finished="2024-08-02", status=9),
        # Open at 30/09, due before it: overdue, though received in the previous quarter.
        _dossier("open-overdue", "2024-06-01", due="2024-06-10"),
        # Finished after the quarter, late: still in progress past its appointment at 30/09.
        _dossier("finished-later", "2024-09-01", due="2024-09-05", finished="2024-10-03", status=10),
        _dossier("open-not-due", "2024-09-25", due="2024-10-02"),
        _dossier("due-on-last-day", "2024-09-25", due="2024-09-30"),
        _dossier("withdrawn", "2024-07-01", due="2024-07-03", status=7),
    ]
    row = coverage.coverage(dossiers, [q3], today=TODAY)["periods"][0]
    assert (row["resolved"], row["results_digitised"], row["result_rate"]) == (4, 2, Decimal("50.00"))
    assert (row["early"], row["on_time"], row["late"], row["no_due_date"]) == (1, 1, 1, 1)
    assert row["timely_rate"] == Decimal("66.67") and row["timely_pass"] is False
    assert row["overdue_open"] == 2
    # Today before the period's end: overdue is counted as of today.
    mid = coverage.coverage(dossiers, [q3], today=date(2024, 9, 6))["periods"][0]
    assert mid["overdue_open"] == 2          # open-overdue and finished-later (due 05/09 < 06/09)
    early = coverage.coverage(dossiers, [q3], today=date(2024, 9, 5))["periods"][0]
    assert early["overdue_open"] == 1


def test_cutoff_day_15_labels_periods_by_the_month_they_end_in(tmp_path, config):
    q3 = periods.parse_label("2024-Q3", cutoff_day=15)
    assert (q3.start, q3.end) == (date(2024, 6, 15), date(2024, 9, 14))
    assert (periods.parse_label("2024-09", 15).start, periods.parse_label("2024-09", 15).end) == (
        date(2024, 8, 15), date(2024, 9, 14))
    assert (periods.parse_label("2024", 15).start, periods.parse_label("2024", 15).end) == (
        date(2023, 12, 15), date(2024, 12, 14))
    assert periods.containing(date(2024, 9, 15), "quarter", 15).label == "2024-Q4"
    assert periods.containing(date(2024, 12, 20), "year", 15).label == "2025"
    conn = store.connect(tmp_path / "catalogue.sqlite")
    days = ["2024-06-14", "2024-06-15", "2024-09-14", "2024-09-15", "2024-07-01"]
    store.insert_dossiers(conn, [{"code": f"C{n}", "received_date": day, "status": 2} for n, day in enumerate(days)])
    config["periods"]["cutoff_day"] = 15
    rows = reports.build(conn, periods.year_rows(2024, 15), config, today=TODAY)["periods"]
    assert [r["period"] for r in rows] == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2024"]
    assert [r["received"] for r in rows] == [0, 1, 3, 1, 5]
    config["periods"]["cutoff_day"] = 1
    calendar = reports.build(conn, [periods.parse_label("2024-Q3")], config, today=TODAY)["periods"][0]
    assert calendar["received"] == 3      # 01/07, 14/09, 15/09


def test_period_with_no_dossiers_says_so(tmp_path, config):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    report = reports.build(conn, [periods.parse_label("2023-02")], config, today=TODAY)
    row = report["periods"][0]
    assert (row["received"], row["rate"], row["pass"], row["result_rate"]) == (0, None, None, None)
    shown = reports.to_json(report, "vi")
    assert '"rate": null' in shown and '"note": "không có hồ sơ"' in shown
    assert '"note": "no dossiers"' in reports.to_json(report, "en")
    assert "không có hồ sơ" in reports.to_table(report, "vi")


def test_bad_data_is_counted_apart_and_flagged(tmp_path, config):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    store.insert_dossiers(conn, [
        {"code": "NO-DATE", "received_date": None, "status": 2, "applicant": "Không ngày"},
        {"code": "BAD-DATE", "received_date": "31/07/2024", "status": 2},
        {"code": "DUE-BEFORE", "received_date": "2024-07-10", "due_date": "2024-07-01", "status": 4},
        {"code": "STATUS-42", "received_date": "2024-07-11", "status": 42},
        {"code": "OK", "received_date": "2024-07-12", "status": 2},
    ])
    report = reports.build(conn, [periods.parse_label("2024-Q3")], config, today=TODAY)
    assert report["periods"][0]["received"] == 3
    assert [d["code"] for d in report["problems"]["no_received_date"]] == ["BAD-DATE", "NO-DATE"]
    assert {(f["code"], f["problem"]) for f in report["problems"]["flags"]} == {
        ("DUE-BEFORE", "due_before_received"), ("STATUS-42", "unknown_status")}
    table = reports.to_table(report, "vi")
    assert "Ngày hẹn trả trước ngày tiếp nhận" in table and "Mã trạng thái không xác định" in table


def test_period_arguments():
    today = date(2025, 2, 3)
    assert [p.label for p in periods.select(today=today)] == ["2025-Q1"]
    assert [p.label for p in periods.select(args_month="2024-09", today=today)] == ["2024-09"]
    custom = periods.select(args_from="01/07/2024", args_to="2024-08-15", today=today)[0]
    assert (custom.start, custom.end, custom.kind) == (date(2024, 7, 1), date(2024, 8, 15), "custom")
    assert [p.label for p in periods.preceding(periods.parse_label("2024-Q1"), 3)] == ["2023-Q3", "2023-Q4", "2024-Q1"]
    for bad in ({"args_quarter": "2024-09"}, {"args_month": "2024-13"}, {"args_from": "2024-07-01"},
                {"args_from": "2024-09-01", "args_to": "2024-08-01"}):
        with pytest.raises(periods.PeriodError):
            periods.select(today=today, **bad)
    with pytest.raises(periods.PeriodError):
        periods.quarter(2024, 3, cutoff_day=31)
