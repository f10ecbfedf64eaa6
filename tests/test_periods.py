"""Reporting periods at their edges: first and last days, months 01 and 12, cut-off days 1, 2 and 28.

Each expectation is written out by hand from the rule in periods.py's docstring
(a period with cut-off N runs from day N of the month before to day N-1 of its
own last month, and is labelled by the month it ends in).
"""
from __future__ import annotations

from datetime import date

import pytest

from digitize import periods
from digitize.periods import Period, PeriodError


def span(period: Period) -> tuple[str, str, date, date]:
    return period.label, period.kind, period.start, period.end


@pytest.mark.parametrize("cutoff, expected", [
    (1, {"2024-01": (date(2024, 1, 1), date(2024, 1, 31)), "2024-02": (date(2024, 2, 1), date(2024, 2, 29)),
         "2024-12": (date(2024, 12, 1), date(2024, 12, 31)),
         "2024-Q1": (date(2024, 1, 1), date(2024, 3, 31)), "2024-Q4": (date(2024, 10, 1), date(2024, 12, 31)),
         "2024": (date(2024, 1, 1), date(2024, 12, 31))}),
    (2, {"2024-01": (date(2023, 12, 2), date(2024, 1, 1)), "2024-12": (date(2024, 11, 2), date(2024, 12, 1)),
         "2024": (date(2023, 12, 2), date(2024, 12, 1))}),
    (28, {"2024-01": (date(2023, 12, 28), date(2024, 1, 27)), "2024-03": (date(2024, 2, 28), date(2024, 3, 27)),
          "2024-12": (date(2024, 11, 28), date(2024, 12, 27)),
          "2024-Q1": (date(2023, 12, 28), date(2024, 3, 27)), "2024-Q4": (date(2024, 9, 28), date(2024, 12, 27)),
          "2024": (date(2023, 12, 28), date(2024, 12, 27))}),
])
def test_labels_and_spans_at_months_01_and_12(cutoff, expected):
    for label, (start, end) in expected.items():
        kind = "quarter" if "Q" in label else "month" if "-" in label else "year"
        assert span(periods.parse_label(label, cutoff)) == (label, kind, start, end), label


def test_calendar_periods_are_the_default():
    assert span(periods.month(2024, 12)) == ("2024-12", "month", date(2024, 12, 1), date(2024, 12, 31))
    assert span(periods.quarter(2024, 4)) == ("2024-Q4", "quarter", date(2024, 10, 1), date(2024, 12, 31))
    assert span(periods.year(2024)) == ("2024", "year", date(2024, 1, 1), date(2024, 12, 31))
    assert span(periods.parse_label(" 2024-q3 ")) == ("2024-Q3", "quarter", date(2024, 7, 1), date(2024, 9, 30))


@pytest.mark.parametrize("cutoff", [1, 28])
def test_cutoff_days_1_and_28_are_accepted(cutoff):
    assert periods.check_cutoff(cutoff) == cutoff


@pytest.mark.parametrize("cutoff", [0, 29, 31, "15", 15.0, None])
def test_other_cutoff_days_are_refused(cutoff):
    for make in (lambda: periods.check_cutoff(cutoff), lambda: periods.month(2024, 1, cutoff),
                 lambda: periods.quarter(2024, 1, cutoff), lambda: periods.year(2024, cutoff),
                 lambda: periods.containing(date(2024, 1, 1), "month", cutoff)):
        with pytest.raises(PeriodError) as raised:
            make()
        assert raised.value.exit_code == 2


@pytest.mark.parametrize("text", ["2024-00", "2024-13", "2024-Q0", "2024-Q5", "24-Q3", "2024-9", "Q3-2024", "", "năm"])
def test_unreadable_labels_are_refused(text):
    with pytest.raises(PeriodError):
        periods.parse_label(text)


@pytest.mark.parametrize("day, cutoff, month, quarter, year", [
    (date(2024, 1, 1), 1, "2024-01", "2024-Q1", "2024"),
    (date(2024, 3, 31), 1, "2024-03", "2024-Q1", "2024"),
    (date(2024, 4, 1), 1, "2024-04", "2024-Q2", "2024"),
    (date(2024, 12, 31), 1, "2024-12", "2024-Q4", "2024"),
    (date(2024, 3, 1), 2, "2024-03", "2024-Q1", "2024"),
    (date(2024, 3, 2), 2, "2024-04", "2024-Q2", "2024"),      # day N opens the next month's period
    (date(2024, 12, 1), 2, "2024-12", "2024-Q4", "2024"),
    (date(2024, 12, 2), 2, "2025-01", "2025-Q1", "2025"),
    (date(2024, 12, 27), 28, "2024-12", "2024-Q4", "2024"),
    (date(2024, 12, 28), 28, "2025-01", "2025-Q1", "2025"),
    (date(2024, 9, 27), 28, "2024-09", "2024-Q3", "2024"),
    (date(2024, 9, 28), 28, "2024-10", "2024-Q4", "2024"),
    (date(2024, 2, 28), 28, "2024-03", "2024-Q1", "2024"),
])
def test_the_period_containing_a_day(day, cutoff, month, quarter, year):
    found = {kind: periods.containing(day, kind, cutoff) for kind in ("month", "quarter", "year")}
    assert (found["month"].label, found["quarter"].label, found["year"].label) == (month, quarter, year)
    for kind, period in found.items():
        assert period.kind == kind and period.start <= day <= period.end
        assert period == periods.parse_label(period.label, cutoff)
    with pytest.raises(ValueError):
        periods.containing(day, "custom", cutoff)


def test_calendar_cutoff_is_the_default_everywhere():
    assert periods.containing(date(2024, 3, 2), "month").label == "2024-03"
    assert periods.containing(date(2024, 12, 31), "year") == periods.year(2024)
    assert periods.year_rows(2024)[0] == Period("2024-Q1", "quarter", date(2024, 1, 1), date(2024, 3, 31))
    assert periods.parse_label("2024-02") == Period("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29))


def test_custom_range_one_day_long_and_reversed():
    one_day = periods.custom(date(2024, 7, 1), date(2024, 7, 1))
    assert span(one_day) == ("2024-07-01..2024-07-01", "custom", date(2024, 7, 1), date(2024, 7, 1))
    with pytest.raises(PeriodError):
        periods.custom(date(2024, 7, 2), date(2024, 7, 1))


@pytest.mark.parametrize("text, day", [("2024-07-01", date(2024, 7, 1)), ("01/07/2024", date(2024, 7, 1)),
                                       (" 1/7/2024 ", date(2024, 7, 1)), ("31/12/2024", date(2024, 12, 31))])
def test_days_in_iso_and_vietnamese_order(text, day):
    assert periods.parse_day(text) == day


@pytest.mark.parametrize("text", ["31/02/2024", "2024-13-01", "07/2024", "mai", "1/7/24/1"])
def test_unreadable_days_are_refused(text):
    with pytest.raises(PeriodError):
        periods.parse_day(text)


def test_year_gives_each_quarter_then_the_year():
    rows = periods.select(args_year="2024", today=date(2025, 2, 3))
    assert [span(p) for p in rows] == [
        ("2024-Q1", "quarter", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-Q2", "quarter", date(2024, 4, 1), date(2024, 6, 30)),
        ("2024-Q3", "quarter", date(2024, 7, 1), date(2024, 9, 30)),
        ("2024-Q4", "quarter", date(2024, 10, 1), date(2024, 12, 31)),
        ("2024", "year", date(2024, 1, 1), date(2024, 12, 31))]
    with_cutoff = periods.select(args_year="2024", cutoff_day=28, today=date(2025, 2, 3))
    assert [(p.start, p.end) for p in with_cutoff] == [
        (date(2023, 12, 28), date(2024, 3, 27)), (date(2024, 3, 28), date(2024, 6, 27)),
        (date(2024, 6, 28), date(2024, 9, 27)), (date(2024, 9, 28), date(2024, 12, 27)),
        (date(2023, 12, 28), date(2024, 12, 27))]
    assert periods.year_rows(2024, 28) == with_cutoff


def test_every_selector_applies_the_cutoff():
    today = date(2024, 12, 20)
    assert periods.select(today=today) == [periods.quarter(2024, 4)]
    assert periods.select(today=today, cutoff_day=15) == [periods.quarter(2025, 1, 15)]
    assert periods.select(args_quarter="2024-Q3", today=today) == [periods.quarter(2024, 3)]
    assert periods.select(args_quarter="2024-Q3", cutoff_day=15, today=today) == [
        Period("2024-Q3", "quarter", date(2024, 6, 15), date(2024, 9, 14))]
    assert periods.select(args_month="2024-12", cutoff_day=15, today=today) == [
        Period("2024-12", "month", date(2024, 11, 15), date(2024, 12, 14))]
    assert periods.select(args_month="2024-01", today=today) == [
        Period("2024-01", "month", date(2024, 1, 1), date(2024, 1, 31))]
    # --from/--to are days, whatever the cut-off.
    assert periods.select(args_from="2024-07-01", args_to="31/07/2024", cutoff_day=15, today=today) == [
        Period("2024-07-01..2024-07-31", "custom", date(2024, 7, 1), date(2024, 7, 31))]


@pytest.mark.parametrize("selectors", [
    {"args_quarter": "2024-09"}, {"args_quarter": "2024"}, {"args_month": "2024-Q3"}, {"args_month": "2024"},
    {"args_month": "2024-13"}, {"args_year": "2024-Q3"}, {"args_year": "2024-09"}, {"args_from": "2024-07-01"},
    {"args_to": "2024-07-01"}, {"args_from": "2024-09-01", "args_to": "2024-08-01"},
])
def test_selectors_of_the_wrong_kind_are_refused(selectors):
    with pytest.raises(PeriodError) as raised:
        periods.select(today=date(2025, 2, 3), **selectors)
    assert raised.value.vi and raised.value.en and raised.value.vi != raised.value.en
    if not {"args_from", "args_to"} & set(selectors):
        given = next(iter(selectors.values()))
        assert given in raised.value.vi and given in raised.value.en    # the message names what was typed


def test_preceding_periods_cross_the_year_and_keep_the_cutoff():
    assert [p.label for p in periods.preceding(periods.month(2024, 2), 3)] == ["2023-12", "2024-01", "2024-02"]
    assert [p.label for p in periods.preceding(periods.quarter(2024, 1), 4)] == [
        "2023-Q2", "2023-Q3", "2023-Q4", "2024-Q1"]
    with_cutoff = periods.preceding(periods.quarter(2024, 1, 15), 2, 15)
    assert [(p.label, p.start, p.end) for p in with_cutoff] == [
        ("2023-Q4", date(2023, 9, 15), date(2023, 12, 14)), ("2024-Q1", date(2023, 12, 15), date(2024, 3, 14))]
    custom = periods.custom(date(2024, 1, 1), date(2024, 1, 9))
    assert periods.preceding(custom, 4) == [custom]
    assert periods.preceding(periods.year(2024), 1) == [periods.year(2024)]
