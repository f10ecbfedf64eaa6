"""Reporting periods: quarters, months, years and custom ranges, as pure functions.

A period is a label plus an inclusive range of days. With the calendar
cut-off (cutoff_day = 1) `2024-Q3` is 2024-07-01 .. 2024-09-30.

Cut-off day N > 1: a period runs from day N of the month before it to day N-1
of its own last month, and it keeps the label of the month (quarter, year) in
which it ENDS. With N = 15:
    2024-09  = 2024-08-15 .. 2024-09-14
    2024-Q3  = 2024-06-15 .. 2024-09-14
    2024     = 2023-12-15 .. 2024-12-14
This is how Decree 09/2019/NĐ-CP (art. 12, periodic reports) fixes the data
cut-off: "from the 15th of the month before the period to the 14th of the
period's last month". A day on or after the 15th therefore belongs to the
NEXT month's period (2024-09-20 is in 2024-10 and in 2024-Q4).
The cut-off is limited to 1..28 so that every month has that day.

Years run 0001..9999 (Python's dates): `9999-Q4` ends on 9999-12-31; a period
that would start before 0001-01-01 (year 1 with a cut-off past 1) is refused
with a PeriodError (exit 2), never an overflow.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from .errors import BAD_ARGS, DigitizeError

KINDS = ("month", "quarter", "year", "custom")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(DigitizeError):
    exit_code = BAD_ARGS
    advice_vi = "Viết kỳ báo cáo dạng 2024-Q3, 2024-09, 2024 hoặc --from 2024-07-01 --to 2024-09-30."
    advice_en = "Write the period as 2024-Q3, 2024-09, 2024 or --from 2024-07-01 --to 2024-09-30."


@dataclass(frozen=True)
class Period:
    label: str
    kind: str
    start: date      # first day, inclusive
    end: date        # last day, inclusive


def check_cutoff(cutoff_day: int) -> int:
    if not isinstance(cutoff_day, int) or not 1 <= cutoff_day <= 28:
        raise PeriodError(
            f"Ngày chốt số liệu phải từ 1 đến 28, không phải {cutoff_day!r}.",
            f"The cut-off day must be between 1 and 28, not {cutoff_day!r}.",
            "Sửa [periods] cutoff_day trong tệp cấu hình.",
            "Fix [periods] cutoff_day in the configuration file.",
        )
    return cutoff_day


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _out_of_range(label: str) -> PeriodError:
    return PeriodError(f"Kỳ báo cáo {label} nằm ngoài khoảng ngày 01/01/0001 - 31/12/9999.",
                       f"The period {label} falls outside 0001-01-01 .. 9999-12-31.")


def _month_start(year: int, month: int, cutoff_day: int) -> date:
    """First day of the period labelled year-month."""
    if cutoff_day == 1:
        return date(year, month, 1)
    before_year, before_month = _shift_month(year, month, -1)
    return date(before_year, before_month, cutoff_day)


def _month_end(year: int, month: int, cutoff_day: int) -> date:
    """Last day of the period labelled year-month (computed without the month after it,
    so 9999-12 has an end)."""
    return date(year, month, cutoff_day - 1 if cutoff_day > 1 else calendar.monthrange(year, month)[1])


def _span(label: str, kind: str, first: tuple[int, int], last: tuple[int, int], cutoff_day: int) -> Period:
    if not 1 <= first[0] <= last[0] <= 9999 or (first == (1, 1) and cutoff_day > 1):
        raise _out_of_range(label)
    return Period(label, kind, _month_start(*first, cutoff_day), _month_end(*last, cutoff_day))


def month(year: int, month_no: int, cutoff_day: int = 1) -> Period:
    check_cutoff(cutoff_day)
    return _span(f"{year:04d}-{month_no:02d}", "month", (year, month_no), (year, month_no), cutoff_day)


def quarter(year: int, quarter_no: int, cutoff_day: int = 1) -> Period:
    check_cutoff(cutoff_day)
    first = 3 * quarter_no - 2
    return _span(f"{year:04d}-Q{quarter_no}", "quarter", (year, first), (year, first + 2), cutoff_day)


def year(year_no: int, cutoff_day: int = 1) -> Period:
    check_cutoff(cutoff_day)
    return _span(f"{year_no:04d}", "year", (year_no, 1), (year_no, 12), cutoff_day)


def custom(start: date, end: date) -> Period:
    if end < start:
        raise PeriodError(
            f"Ngày bắt đầu {start:%d/%m/%Y} sau ngày kết thúc {end:%d/%m/%Y}.",
            f"The start {start.isoformat()} is after the end {end.isoformat()}.",
        )
    return Period(f"{start.isoformat()}..{end.isoformat()}", "custom", start, end)


def parse_day(text: str) -> date:
    """A day given on the command line: ISO 2024-07-01 or Vietnamese 01/07/2024."""
    text = text.strip()
    try:
        if "/" in text:
            day_no, month_no, year_no = (int(part) for part in text.split("/"))
            return date(year_no, month_no, day_no)
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(
            f"Ngày không hợp lệ: {text!r} (dạng 2024-07-01 hoặc 01/07/2024).",
            f"Not a valid day: {text!r} (write 2024-07-01 or 01/07/2024).",
        ) from None


def parse_label(label: str, cutoff_day: int = 1) -> Period:
    """`2024-Q3`, `2024-09` or `2024`."""
    text = label.strip()
    if match := _QUARTER.match(text):
        return quarter(int(match[1]), int(match[2]), cutoff_day)
    if (match := _MONTH.match(text)) and 1 <= int(match[2]) <= 12:
        return month(int(match[1]), int(match[2]), cutoff_day)
    if match := _YEAR.match(text):
        return year(int(match[1]), cutoff_day)
    raise PeriodError(
        f"Không hiểu kỳ báo cáo {label!r}.",
        f"Cannot read the period {label!r}.",
    )


def containing(day: date, kind: str, cutoff_day: int = 1) -> Period:
    """The month, quarter or year period that contains `day`."""
    check_cutoff(cutoff_day)
    label_year, label_month = day.year, day.month
    if cutoff_day > 1 and day.day >= cutoff_day:
        label_year, label_month = _shift_month(label_year, label_month, 1)
    if kind == "month":
        return month(label_year, label_month, cutoff_day)
    if kind == "quarter":
        return quarter(label_year, (label_month - 1) // 3 + 1, cutoff_day)
    if kind == "year":
        return year(label_year, cutoff_day)
    raise ValueError(f"no period of kind {kind!r} contains a day")


def year_rows(year_no: int, cutoff_day: int = 1) -> list[Period]:
    """What `--year` reports: the four quarters, then the year as a whole."""
    return [quarter(year_no, q, cutoff_day) for q in range(1, 5)] + [year(year_no, cutoff_day)]


def preceding(period: Period, count: int, cutoff_day: int = 1) -> list[Period]:
    """`count` periods of the same kind ending with `period`, oldest first (for charts)."""
    if period.kind == "custom":
        return [period]
    periods = [period]
    while len(periods) < count and periods[0].start > date.min:
        try:
            periods.insert(0, containing(periods[0].start - timedelta(days=1), period.kind, cutoff_day))
        except PeriodError:     # the period before would start before year 1: the history stops here
            break
    return periods


def select(args_quarter: str | None = None, args_month: str | None = None, args_year: str | None = None,
           args_from: str | None = None, args_to: str | None = None, *, cutoff_day: int = 1,
           today: date) -> list[Period]:
    """The periods a command line asks for; the current quarter when it names none."""
    if args_from or args_to:
        if not (args_from and args_to):
            raise PeriodError("Cần cả --from và --to.", "Give both --from and --to.")
        return [custom(parse_day(args_from), parse_day(args_to))]
    if args_quarter:
        return [_expect(parse_label(args_quarter, cutoff_day), "quarter", args_quarter)]
    if args_month:
        return [_expect(parse_label(args_month, cutoff_day), "month", args_month)]
    if args_year:
        return year_rows(int(_expect(parse_label(args_year, cutoff_day), "year", args_year).label), cutoff_day)
    return [containing(today, "quarter", cutoff_day)]


_KIND_VI = {"month": "tháng", "quarter": "quý", "year": "năm"}


def _expect(period: Period, kind: str, text: str) -> Period:
    if period.kind != kind:
        raise PeriodError(f"{text!r} không phải là một {_KIND_VI[kind]}.", f"{text!r} is not a {kind}.")
    return period
