"""Coverage indicators on asymmetric data, every count written out by hand.

Symmetric data hides swapped rules (one early, one late: swapping them changes
nothing). Here no two counts that a mistake could exchange are equal: 12 of 28
received dossiers digitised, 5 of 8 resolved with a result, early 1 / on time 2 /
late 3 / no appointment 2, and statuses 3, 7, 8, 9, 10 (closed) against 4, 2 and
none (open), on the first and last days of the quarter and just outside it.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from digitize import coverage, periods

Q3 = periods.quarter(2024, 3)            # 2024-07-01 .. 2024-09-30
TODAY = date(2025, 1, 15)                # after the quarter: counted as of 2024-09-30
BIRTH = ("1.001193", "Đăng ký khai sinh")


def dossier(code, received, due=None, finished=None, status=4, document=False, result=False,
            procedure=BIRTH, officer="An"):
    return {"code": code, "procedure_code": procedure[0], "procedure_name": procedure[1],
            "applicant": f"Chủ hồ sơ {code}", "received_date": received, "due_date": due,
            "finished_date": finished, "status": status, "officer": officer,
            "has_document": document, "has_result": result}


CLOSED_WITHOUT_END = [("REFUSED-3", 3, True), ("STOPPED-8", 8, False), ("PROCESSED-9", 9, False),
                      ("RETURNED-10", 10, False), ("WITHDRAWN-7", 7, False), ("STATUS-TEXT-10", "10", False)]
OPEN_WITHOUT_END = [("PROCESSING-4", 4, True), ("NO-STATUS", None, False)]

DOSSIERS = [
    # Resolved in the quarter: early 1, on time 2, late 3, no appointment 2; 5 of 8 with a result.
    dossier("Q3-FIRST", "2024-07-01", due="2024-07-05", finished="2024-07-01", status=10, document=True,
            result=True, officer="Bình"),
    dossier("Q2-LAST", "2024-06-30", due="2024-07-01", finished="2024-07-01 16:30:00", status=10, document=True),
    dossier("ON-TIME-LAST-DAY", "2024-09-10", due="2024-09-30 17:00:00", finished="2024-09-30", status=9,
            result=True, officer=None),
    dossier("LATE-LAST-DAY", "2024-09-01", due="2024-09-29", finished="2024-09-30", status=10, document=True,
            result=True),
    dossier("LATE-JULY", "2024-07-03", due="2024-07-04", finished="2024-07-08", status=10),
    dossier("LATE-AUGUST", "2024-08-12", due="2024-08-15", finished="2024-08-20", status=9, document=True,
            result=True),
    dossier("NO-DUE", "2024-08-01", finished="2024-08-02", status=10),
    dossier("FINISHED-EARLY", "2024-08-05", finished="2024-08-04", status=10, document=True, result=True),
    # Outside the quarter by one day.
    dossier("Q4-FIRST", "2024-10-01", status=2, document=False),
    # Open at 30/09 past the appointment (overdue_open), or not.
    dossier("FINISHED-AFTER", "2024-09-01", due="2024-09-05", finished="2024-10-03", status=10),
    dossier("OPEN-OVERDUE-Q2", "2024-06-01", due="2024-06-10"),
    *[dossier(code, "2024-07-02", due="2024-07-09", status=status, document=document)
      for code, status, document in CLOSED_WITHOUT_END + OPEN_WITHOUT_END],
    dossier("DUE-ON-AS-OF", "2024-09-25", due="2024-09-30"),
    dossier("RECEIVED-ON-AS-OF", "2024-09-30", due="2024-09-29"),
    dossier("DUE-SAME-DAY", "2024-08-10", due="2024-08-10", document=True),
    dossier("Q3-LAST", "2024-09-30", due="2024-10-04", document=True),
    dossier("DATETIME-RECEIVED", datetime(2024, 9, 30, 8, 15), document=True),
    # Data problems.
    dossier("BAD-DUE", "2024-07-15", due="31/07/2024", document=True),
    dossier("BAD-FINISHED", "2024-07-16", due="2024-07-20", finished="2024-13-01", status=10),
    dossier("EMPTY-DUE", "2024-07-17", due="", document=True),
    dossier("UNKNOWN-STATUS", "2024-07-18", status=42, document=True),
    dossier("UNREADABLE-STATUS", "2024-07-19", due="2024-07-20", status="đang xử lý"),
    dossier("EMPTY-STATUS", "2024-07-20", status=""),
    {"code": "NO-FLAGS", "received_date": "2024-08-20", "status": 2},     # no document columns at all
    dossier("NO-RECEIVED", None, status=2),
    dossier("BAD-RECEIVED", "20240701", status=2),
]
BY_CODE = {d["code"]: d for d in DOSSIERS}


def summary(code: str, received: str | None) -> dict:
    d = BY_CODE[code]
    return {"code": code, "applicant": d.get("applicant"), "procedure_code": d.get("procedure_code"),
            "procedure_name": d.get("procedure_name"), "received_date": received, "officer": d.get("officer")}


def row(label, start, end, *, received, digitised, rate, resolved, results, result_rate, early=0, on_time=0,
        late=0, no_due=0, timely_rate=None, overdue=0, mark=Decimal(80)) -> dict:
    def passing(value):
        return None if value is None else value >= mark
    return {"period": label, "start": start, "end": end, "received": received, "digitised": digitised,
            "rate": rate, "pass": passing(rate), "resolved": resolved, "results_digitised": results,
            "result_rate": result_rate, "result_pass": passing(result_rate), "early": early, "on_time": on_time,
            "late": late, "no_due_date": no_due, "timely_rate": timely_rate, "timely_pass": passing(timely_rate),
            "overdue_open": overdue}


def test_a_quarter_counted_exactly():
    report = coverage.coverage(DOSSIERS, [Q3], today=TODAY)
    missing_codes = [
        ("2024-07-02", ["NO-STATUS", "PROCESSED-9", "RETURNED-10", "STATUS-TEXT-10", "STOPPED-8", "WITHDRAWN-7"]),
        ("2024-07-03", ["LATE-JULY"]), ("2024-07-16", ["BAD-FINISHED"]), ("2024-07-19", ["UNREADABLE-STATUS"]),
        ("2024-07-20", ["EMPTY-STATUS"]), ("2024-08-01", ["NO-DUE"]), ("2024-08-20", ["NO-FLAGS"]),
        ("2024-09-01", ["FINISHED-AFTER"]), ("2024-09-10", ["ON-TIME-LAST-DAY"]), ("2024-09-25", ["DUE-ON-AS-OF"]),
        ("2024-09-30", ["RECEIVED-ON-AS-OF"])]
    assert report == {
        "pass_mark": 80.0, "as_of": "2025-01-15",
        "periods": [row("2024-Q3", "2024-07-01", "2024-09-30", received=28, digitised=12, rate=Decimal("42.86"),
                        resolved=8, results=5, result_rate=Decimal("62.50"), early=1, on_time=2, late=3, no_due=2,
                        timely_rate=Decimal("50.00"), overdue=7)],
        "missing": [summary(code, day) for day, codes in missing_codes for code in codes],
        "problems": {
            "no_received_date": [summary("BAD-RECEIVED", None), summary("NO-RECEIVED", None)],
            "flags": [
                {"code": "BAD-DUE", "problem": "bad_date", "detail": "due_date=31/07/2024"},
                {"code": "BAD-FINISHED", "problem": "bad_date", "detail": "finished_date=2024-13-01"},
                {"code": "UNKNOWN-STATUS", "problem": "unknown_status", "detail": "42"},
                {"code": "UNREADABLE-STATUS", "problem": "unknown_status", "detail": "đang xử lý"},
                {"code": "FINISHED-EARLY", "problem": "finished_before_received",
                 "detail": "2024-08-05 > 2024-08-04"},
                {"code": "RECEIVED-ON-AS-OF", "problem": "due_before_received", "detail": "2024-09-30 > 2024-09-29"},
            ],
        },
    }


def test_overdue_is_counted_as_of_today_inside_the_quarter():
    # As of 10/07: OPEN-OVERDUE-Q2, PROCESSING-4 and NO-STATUS (due 09/07); LATE-JULY was finished on 08/07.
    assert coverage.coverage(DOSSIERS, [Q3], today=date(2024, 7, 10))["periods"][0]["overdue_open"] == 3
    # As of 09/07: those due on 09/07 are not overdue yet.
    assert coverage.coverage(DOSSIERS, [Q3], today=date(2024, 7, 9))["periods"][0]["overdue_open"] == 1
    # As of 07/07: LATE-JULY (due 04/07) is still open, finished only on 08/07.
    assert coverage.coverage(DOSSIERS, [Q3], today=date(2024, 7, 7))["periods"][0]["overdue_open"] == 2


def test_closed_statuses_without_an_end_date_are_not_in_progress():
    day = "2024-07-02"
    for status in (3, 7, 8, 9, 10, "10"):
        report = coverage.coverage([dossier("X", day, due="2024-07-09", status=status)], [Q3], today=TODAY)
        assert report["periods"][0]["overdue_open"] == 0, status
    for status in (1, 2, 4, 5, 6, None, "", "?"):
        report = coverage.coverage([dossier("X", day, due="2024-07-09", status=status)], [Q3], today=TODAY)
        assert report["periods"][0]["overdue_open"] == 1, status


def test_a_registry_row_without_document_columns_counts_as_not_digitised():
    bare = {"code": "BARE", "received_date": "2024-07-01", "due_date": "2024-07-02", "finished_date": "2024-07-02",
            "status": 10}
    [counted] = coverage.coverage([bare], [Q3], today=TODAY)["periods"]
    assert counted == row("2024-Q3", "2024-07-01", "2024-09-30", received=1, digitised=0, rate=Decimal("0.00"),
                          resolved=1, results=0, result_rate=Decimal("0.00"), on_time=1,
                          timely_rate=Decimal("100.00"))


BREAKDOWN = [
    dossier("A", "2024-07-01", document=True, officer="Bình"),
    dossier("B", "2024-07-02", due="2024-07-05", finished="2024-07-03", status=10, result=True,
            procedure=("1.001193", "Khai sinh (tên cũ)"), officer="An"),
    dossier("C", "2024-07-03", document=True, procedure=("1.000894", None), officer=None),
    dossier("D", "2024-07-04", procedure=(None, "Thủ tục riêng"), officer="An"),
    dossier("E", "2024-07-05", document=True, procedure=(None, None), officer=""),
    dossier("F", "2024-10-01", document=True, procedure=("2.000635", "Chứng thực"), officer="Chi"),
    dossier("G", "2024-06-01", due="2024-07-09", finished="2024-07-10", status=10,
            procedure=("2.000635", "Chứng thực"), officer="Chi"),
]


def test_breakdowns_by_procedure_and_officer():
    report = coverage.coverage(BREAKDOWN, [Q3], today=TODAY, by=("procedure", "officer"))
    days = ("2024-Q3", "2024-07-01", "2024-09-30")
    hundred, zero, half = Decimal("100.00"), Decimal("0.00"), Decimal("50.00")
    nothing = {"resolved": 0, "results": 0, "result_rate": None}

    def grouped(label: dict, **counts) -> dict:
        full = row(*days, **counts)
        return {"period": full.pop("period"), **label, **full}
    assert report["periods"] == [row(*days, received=5, digitised=3, rate=Decimal("60.00"), resolved=2, results=1,
                                     result_rate=half, early=1, late=1, timely_rate=half)]
    assert report["by_procedure"] == [
        grouped({"procedure_code": "1.000894", "procedure_name": ""}, received=1, digitised=1, rate=hundred,
                **nothing),
        grouped({"procedure_code": "1.001193", "procedure_name": "Đăng ký khai sinh"}, received=2, digitised=1,
                rate=half, resolved=1, results=1, result_rate=hundred, early=1, timely_rate=hundred),
        grouped({"procedure_code": "2.000635", "procedure_name": "Chứng thực"}, received=0, digitised=0, rate=None,
                resolved=1, results=0, result_rate=zero, late=1, timely_rate=zero),
        grouped({"procedure_code": "Thủ tục riêng", "procedure_name": "Thủ tục riêng"}, received=1, digitised=0,
                rate=zero, **nothing),
        grouped({"procedure_code": "", "procedure_name": ""}, received=1, digitised=1, rate=hundred, **nothing),
    ]
    assert report["by_officer"] == [
        grouped({"officer": "An"}, received=2, digitised=0, rate=zero, resolved=1, results=1, result_rate=hundred,
                early=1, timely_rate=hundred),
        grouped({"officer": "Bình"}, received=1, digitised=1, rate=hundred, **nothing),
        grouped({"officer": "Chi"}, received=0, digitised=0, rate=None, resolved=1, results=0, result_rate=zero,
                late=1, timely_rate=zero),
        grouped({"officer": ""}, received=2, digitised=2, rate=hundred, **nothing),
    ]
    assert [m["code"] for m in report["missing"]] == ["B", "D"]


def test_history_drops_only_leading_periods_with_no_activity():
    data = [dossier("H1", "2023-12-01", document=True),
            dossier("H2", "2024-05-01", due="2024-07-01", finished="2024-07-02", status=10, result=True)]
    history = periods.preceding(Q3, 5)
    report = coverage.coverage(data, [Q3], today=TODAY, history=history)
    assert [(r["period"], r["received"], r["digitised"], r["resolved"], r["late"]) for r in report["history"]] == [
        ("2023-Q4", 1, 1, 0, 0), ("2024-Q1", 0, 0, 0, 0), ("2024-Q2", 1, 0, 0, 0), ("2024-Q3", 0, 0, 1, 1)]
    assert report["history"][-1] == report["periods"][0]
    # A leading period where dossiers were only resolved is activity too.
    resolved_only = coverage.coverage(data, [Q3], today=TODAY, history=[Q3, periods.quarter(2024, 4)])
    assert [r["period"] for r in resolved_only["history"]] == ["2024-Q3", "2024-Q4"]
    # Nothing at all: the last period stays, so a chart has something to draw.
    empty = coverage.coverage([], [Q3], today=TODAY, history=history)
    assert [r["period"] for r in empty["history"]] == ["2024-Q3"] and empty["history"][0]["rate"] is None
    assert "history" not in coverage.coverage(data, [Q3], today=TODAY)
