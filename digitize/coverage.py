"""Digitisation coverage and timeliness indicators, as pure functions over plain data.

Input: dossier dicts (code, procedure_code, procedure_name, applicant,
received_date, due_date, finished_date as ISO strings or None, status,
officer, has_document, has_result) and the periods to report on.

Definitions (Decision 766/QĐ-TTg as provincial systems compute them), per period:
- received / digitised: dossiers received in the period / those of them with at
  least one linked, digitised document; rate = digitised / received.
- resolved / results_digitised: dossiers whose processing ended in the period /
  those of them with a linked, digitised result; result_rate.
- early / on_time / late: resolved dossiers, end of processing compared with the
  appointment date, by date; no_due_date when there is no appointment.
  timely_rate = (early + on_time) / (early + on_time + late).
- overdue_open: at R = the period's last day or today, whichever is earlier,
  dossiers received by R, not finished by R and due before R (a dossier
  refused, withdrawn or stopped without an end date is not in progress).
Every rate comes from integer counts: Decimal, two decimals, half up; None
(never a division by zero) when the denominator is 0.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Iterable

from .periods import Period

# Status codes of the one-stop software (DOMAIN.md).
KNOWN_STATUSES = range(1, 11)
# Refused, withdrawn, stopped, processed, returned: no longer in progress even without an end date.
CLOSED_STATUSES = {3, 7, 8, 9, 10}
COUNT_FIELDS = ("received", "digitised", "resolved", "results_digitised",
                "early", "on_time", "late", "no_due_date", "overdue_open")
MISSING_FIELDS = ("code", "applicant", "procedure_code", "procedure_name", "received_date", "officer")
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


def rate(numerator: int, denominator: int) -> Decimal | None:
    """numerator/denominator in percent, two decimals, half up; None when there is nothing to count."""
    if denominator == 0:
        return None
    return (Decimal(numerator) * _HUNDRED / Decimal(denominator)).quantize(_CENT, rounding=ROUND_HALF_UP)


def passes(value: Decimal | None, pass_mark: float) -> bool | None:
    return None if value is None else value >= Decimal(str(pass_mark))


def _iso_day(value) -> str | None:
    """The yyyy-mm-dd part of a date value, or None when it is missing or not a real day."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    text = str(value).strip()[:10]
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else None
    except ValueError:
        return None


def _status(value) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1      # unreadable: reported as an unknown status


def prepare(dossiers: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """Normalised dossiers with a received day (each with its `problems`), and those without one.

    Problems: bad_date (an unreadable due or end date, then ignored),
    due_before_received, finished_before_received, unknown_status.
    """
    usable, undated = [], []
    for dossier in dossiers:
        clean = {**dossier, "status": _status(dossier.get("status")),
                 "has_document": bool(dossier.get("has_document")), "has_result": bool(dossier.get("has_result"))}
        problems = []
        for field in ("received_date", "due_date", "finished_date"):
            raw = dossier.get(field)
            clean[field] = _iso_day(raw)
            if clean[field] is None and raw not in (None, "") and field != "received_date":
                problems.append(("bad_date", f"{field}={raw}"))
        if clean["received_date"] is None:
            undated.append(clean)
            continue
        if clean["due_date"] and clean["due_date"] < clean["received_date"]:
            problems.append(("due_before_received", f"{clean['received_date']} > {clean['due_date']}"))
        if clean["finished_date"] and clean["finished_date"] < clean["received_date"]:
            problems.append(("finished_before_received", f"{clean['received_date']} > {clean['finished_date']}"))
        if clean["status"] is not None and clean["status"] not in KNOWN_STATUSES:
            problems.append(("unknown_status", str(dossier.get("status"))))
        clean["problems"] = problems
        usable.append(clean)
    return usable, undated


def _facts(dossier: dict, start: str, end: str, as_of: str) -> list[str]:
    """The counters one dossier adds to in one period."""
    facts = []
    received, due, finished = dossier["received_date"], dossier["due_date"], dossier["finished_date"]
    if start <= received <= end:
        facts.append("received")
        if dossier["has_document"]:
            facts.append("digitised")
    if finished and start <= finished <= end:
        facts.append("resolved")
        if dossier["has_result"]:
            facts.append("results_digitised")
        facts.append("no_due_date" if not due else "early" if finished < due
                     else "on_time" if finished == due else "late")
    open_at = finished > as_of if finished else dossier["status"] not in CLOSED_STATUSES
    if due and due < as_of and received <= as_of and open_at:
        facts.append("overdue_open")
    return facts


def tally(dossiers: list[dict], period: Period, today: date,
          keys: Iterable[Callable[[dict], object]]) -> list[dict[object, Counter]]:
    """Counters per group for each grouping `key`, in one pass over prepared dossiers."""
    keys = list(keys)
    groups = [defaultdict(Counter) for _ in keys]
    start, end = period.start.isoformat(), period.end.isoformat()
    as_of = min(period.end, today).isoformat()
    for dossier in dossiers:
        facts = _facts(dossier, start, end, as_of)
        if not facts:
            continue
        for key, counters in zip(keys, groups):
            counters[key(dossier)].update(facts)
    return groups


def indicators(period: Period, counts: Counter, pass_mark: float) -> dict:
    """One report row: the counts, then every rate with its pass flag."""
    c = {field: counts.get(field, 0) for field in COUNT_FIELDS}
    timed = c["early"] + c["on_time"]
    rates = {"rate": rate(c["digitised"], c["received"]),
             "result_rate": rate(c["results_digitised"], c["resolved"]),
             "timely_rate": rate(timed, timed + c["late"])}
    return {
        "period": period.label, "start": period.start.isoformat(), "end": period.end.isoformat(),
        "received": c["received"], "digitised": c["digitised"],
        "rate": rates["rate"], "pass": passes(rates["rate"], pass_mark),
        "resolved": c["resolved"], "results_digitised": c["results_digitised"],
        "result_rate": rates["result_rate"], "result_pass": passes(rates["result_rate"], pass_mark),
        "early": c["early"], "on_time": c["on_time"], "late": c["late"], "no_due_date": c["no_due_date"],
        "timely_rate": rates["timely_rate"], "timely_pass": passes(rates["timely_rate"], pass_mark),
        "overdue_open": c["overdue_open"],
    }


def _procedure_key(dossier: dict) -> str:
    return dossier.get("procedure_code") or dossier.get("procedure_name") or ""


def _officer_key(dossier: dict) -> str:
    return dossier.get("officer") or ""


def _total_key(dossier: dict) -> None:
    return None


BREAKDOWNS = {"procedure": _procedure_key, "officer": _officer_key}


def _summary(dossier: dict) -> dict:
    return {field: dossier.get(field) for field in MISSING_FIELDS}


def coverage(dossiers: Iterable[dict], periods: list[Period], *, today: date, pass_mark: float = 80.0,
             by: Iterable[str] = (), history: list[Period] = ()) -> dict:
    """The whole report for `periods`: rows, breakdowns, the missing list and the data problems.

    `missing` and the flags cover dossiers received in any of the periods;
    `no_received_date` lists every dossier given without a usable received day
    (it belongs to no period, so it is counted apart). With `history` (a chart's
    periods), `history` rows too, leading periods with no activity dropped.
    """
    usable, undated = prepare(dossiers)
    by = list(by)
    names = _procedure_names(usable)
    report = {"pass_mark": pass_mark, "as_of": today.isoformat(), "periods": []}
    for name in by:
        report[f"by_{name}"] = []
    for period in periods:
        total, *groups = tally(usable, period, today, [_total_key, *(BREAKDOWNS[name] for name in by)])
        report["periods"].append(indicators(period, total[None], pass_mark))
        for name, counters in zip(by, groups):
            for key in sorted(counters, key=lambda k: (k == "", str(k))):
                row = indicators(period, counters[key], pass_mark)
                label = {"procedure_code": key, "procedure_name": names.get(key, "")} if name == "procedure" \
                    else {"officer": key}
                report[f"by_{name}"].append({"period": row.pop("period"), **label, **row})
    spans = [(period.start.isoformat(), period.end.isoformat()) for period in periods]
    in_periods = sorted((d for d in usable if any(s <= d["received_date"] <= e for s, e in spans)),
                        key=lambda d: (d["received_date"], d.get("code") or ""))
    report["missing"] = [_summary(d) for d in in_periods if not d["has_document"]]
    report["problems"] = {
        "no_received_date": [_summary(d) for d in sorted(undated, key=lambda d: d.get("code") or "")],
        "flags": [{"code": d.get("code"), "problem": problem, "detail": detail}
                  for d in in_periods for problem, detail in d["problems"]],
    }
    if history:
        rows = [indicators(period, tally(usable, period, today, [_total_key])[0][None], pass_mark)
                for period in history]
        while len(rows) > 1 and rows[0]["received"] == 0 and rows[0]["resolved"] == 0:
            rows.pop(0)
        report["history"] = rows
    return report


def _procedure_names(dossiers: list[dict]) -> dict[str, str]:
    names: dict[str, str] = {}
    for dossier in dossiers:
        key = _procedure_key(dossier)
        if key and key not in names and dossier.get("procedure_name"):
            names[key] = dossier["procedure_name"]
    return names

