"""Generated registry exports (any Unicode, markup, control characters, odd dates, damaged
codes, repeated codes) thrown at the real `digitize registry import`, as CSV, XLSX and UTF-16
text. After each run: no traceback, a documented exit code, every data line accounted for
(added + updated + unchanged + rejected), no full CCCD printed, and the catalogue holds what
was added. Few examples with a deadline, so it fits in `make test`."""
from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings, strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from tests.conftest import run_digitize

HEADER = ["Mã hồ sơ", "Chủ hồ sơ", "Số CCCD", "Ngày tiếp nhận", "Ngày hẹn trả", "Trạng thái", "Cán bộ tiếp nhận"]
MARKUP = ["[/b]", "[chủ hộ]", "[bold red]", "\x1b[31m", "\x1b]0;x\x07", "\n", "\r\n", "\t", "=1+1", "@SUM(A1)",
          "\u202e", "\x00", "\ufeff", "Nguyễn", "Đặng", "001195012345", "'", '"', ";", ","]
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


def code_for(day: date, number: int) -> str:
    return f"000.00.06.H56-{day:%y%m%d}-{number:04d}"


text = st.lists(st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
                          st.sampled_from(MARKUP)), max_size=4).map("".join)
codes = st.one_of(
    st.builds(code_for, DAYS, st.integers(0, 9999)),
    st.builds(lambda day, n: code_for(day, n).replace("-", " - ").lower(), DAYS, st.integers(0, 9999)),
    st.builds(lambda n: f"000.00.06.H56-241399-{n:04d}", st.integers(0, 9999)),   # month 13
    text,
)
dates = st.one_of(
    DAYS.map(lambda d: f"{d:%d/%m/%Y}"), DAYS.map(lambda d: f"{d:%m/%d/%Y}"), DAYS.map(lambda d: f"{d:%Y%m%d%H%M%S}"),
    DAYS.map(lambda d: d.isoformat() + "T23:30:00Z"), st.sampled_from(["31/12/9999", "00/00/0000", "29/02/2023",
                                                                       "99999999999999", "", "  "]),
    text,
)


@st.composite
def exports(draw) -> tuple[str, list[list[str]]]:
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):             # a coherent row: its received date is its code's
            day = draw(DAYS)
            code = code_for(day, draw(st.integers(0, 9999)))
            received = draw(st.sampled_from([f"{day:%d/%m/%Y}", f"{day:%Y%m%d}080000", ""]))
            due = f"{day + timedelta(days=3):%d/%m/%Y}"
        else:
            code, received, due = draw(codes), draw(dates), draw(dates)
        rows.append([code, draw(text), draw(st.one_of(text, st.from_regex(r"\A\d{9,13}\Z"))), received, due,
                     draw(st.one_of(text, st.integers(-1, 12).map(str))), draw(text)])
    if len(rows) > 1 and draw(st.booleans()):
        rows.append(list(rows[0]))           # a repeated code
    return draw(st.sampled_from(["csv", "xlsx", "utf16"])), rows


def write(kind: str, rows: list[list[str]], folder: Path) -> tuple[Path, list[list[str]]]:
    """The export file and the rows as written (XLSX cannot hold control characters)."""
    if kind == "xlsx":
        rows = [[ILLEGAL_CHARACTERS_RE.sub("", cell) for cell in row] for row in rows]
        workbook = openpyxl.Workbook()
        for row in [HEADER, *rows]:
            workbook.active.append(row)
        path = folder / "export.xlsx"
        workbook.save(path)
        return path, rows
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t" if kind == "utf16" else ";").writerows([HEADER, *rows])
    path = folder / "export.csv"
    path.write_bytes(b"\xff\xfe" + buffer.getvalue().encode("utf-16-le") if kind == "utf16"
                     else buffer.getvalue().encode("utf-8"))
    return path, rows


def blank(cell: str) -> bool:
    return cell.replace("\x00", "").strip() == ""


@settings(max_examples=10, deadline=timedelta(seconds=60), suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(exports())
def test_any_export_is_imported_or_refused_with_every_line_accounted_for(export):
    kind, rows = export
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        path, rows = write(kind, rows, folder)
        run = run_digitize(["registry", "import", str(path), "--json"], folder / "home", timeout=60)
        assert "Traceback" not in run.stderr, run.stderr
        assert run.returncode in (0, 4), (run.returncode, run.stderr)
        assert not re.search(r"(?<!\d)\d{12}(?!\d)", run.stdout + run.stderr)      # no full CCCD printed
        if run.returncode == 4:
            assert "lỗi / error" in run.stderr
            return
        report = json.loads(run.stdout)
        lines = sum(not all(blank(cell) for cell in row) for row in rows)
        assert report["lines"] == lines
        assert lines == report["added"] + report["updated"] + report["unchanged"] + len(report["rejected"])
        # line numbers are the file's own lines (a quoted cell may span several)
        assert all(r["reason_vi"] and r["reason_en"] and r["line"] >= 2 for r in report["rejected"])
        assert len({r["line"] for r in report["rejected"]}) == len(report["rejected"])
        listed = run_digitize(["registry", "list", "--json"], folder / "home", timeout=60)
        assert listed.returncode == 0 and "Traceback" not in listed.stderr
        assert len(listed.stdout.split("\n")) - 1 == report["added"]      # JSON lines (U+2028 stays raw)
