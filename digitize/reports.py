"""Coverage reports for supervisors: terminal table, CSV, JSON, XLSX and one HTML page.

`build` reads the catalogue (through store) and computes with coverage; the
renderers turn that plain report dict into text or bytes. Vietnamese by
default, English with lang="en". Every text that came from the registry is
escaped in HTML and neutralised as a formula in CSV/XLSX.
"""
from __future__ import annotations

import csv
import html
import io
import json
import shutil
from datetime import date
from decimal import Decimal

from . import coverage, periods as period_rules, privacy, store
from .periods import Period

CHART_PERIODS = 8
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

TEXT = {
    "period": ("Kỳ báo cáo", "Period"),
    "start": ("Từ ngày", "From"),
    "end": ("Đến ngày", "To"),
    "received": ("Hồ sơ tiếp nhận", "Received"),
    "digitised": ("Hồ sơ đã số hóa", "Digitised"),
    "rate": ("Tỷ lệ số hóa hồ sơ (%)", "Dossier digitisation rate (%)"),
    "pass": ("Đánh giá số hóa hồ sơ", "Dossier rate assessment"),
    "resolved": ("Hồ sơ đã giải quyết", "Resolved"),
    "results_digitised": ("Kết quả đã số hóa", "Results digitised"),
    "result_rate": ("Tỷ lệ số hóa kết quả (%)", "Result digitisation rate (%)"),
    "result_pass": ("Đánh giá số hóa kết quả", "Result rate assessment"),
    "early": ("Trước hạn", "Early"),
    "on_time": ("Đúng hạn", "On time"),
    "late": ("Quá hạn", "Late"),
    "no_due_date": ("Không có ngày hẹn", "No appointment date"),
    "timely_rate": ("Tỷ lệ đúng và trước hạn (%)", "On-time rate (%)"),
    "timely_pass": ("Đánh giá đúng hạn", "Timeliness assessment"),
    "overdue_open": ("Đang xử lý quá hạn", "Open past appointment"),
    "code": ("Mã hồ sơ", "Dossier code"),
    "applicant": ("Chủ hồ sơ", "Applicant"),
    "procedure_code": ("Mã TTHC", "Procedure code"),
    "procedure_name": ("Tên thủ tục", "Procedure"),
    "received_date": ("Ngày tiếp nhận", "Received on"),
    "officer": ("Cán bộ tiếp nhận", "Officer"),
    "problem": ("Vấn đề", "Problem"),
    "detail": ("Chi tiết", "Detail"),
    # words
    "yes": ("Đạt", "Pass"),
    "no": ("Chưa đạt", "Below target"),
    "none": ("không có hồ sơ", "no dossiers"),
    "unknown": ("(không rõ)", "(unknown)"),
    "title": ("Báo cáo số hóa hồ sơ thủ tục hành chính", "Digitisation of administrative dossiers"),
    "summary": ("Tổng hợp", "Summary"),
    "by_procedure": ("Theo thủ tục", "By procedure"),
    "by_officer": ("Theo cán bộ", "By officer"),
    "missing": ("Hồ sơ chưa số hóa", "Missing dossiers"),
    "problems": ("Dữ liệu cần kiểm tra", "Data to check"),
    "chart": ("Tỷ lệ số hóa qua các kỳ", "Digitisation rates across periods"),
    "chart_rate": ("Số hóa hồ sơ", "Dossiers digitised"),
    "chart_result": ("Số hóa kết quả", "Results digitised"),
    "pass_mark": ("Mức đạt", "Pass mark"),
    "as_of": ("Số liệu đến ngày", "Data as of"),
    "none_missing": ("Mọi hồ sơ tiếp nhận trong kỳ đều đã có bản số hóa.",
                     "Every dossier received in the period has a digitised document."),
    "more": ("… và {n} hồ sơ khác (xem --format csv hoặc xlsx)", "… and {n} more (see --format csv or xlsx)"),
    "no_received_date": ("Không có ngày tiếp nhận (không tính vào kỳ nào)",
                         "No received date (counted in no period)"),
    "due_before_received": ("Ngày hẹn trả trước ngày tiếp nhận", "Appointment before receipt"),
    "finished_before_received": ("Ngày kết thúc trước ngày tiếp nhận", "Finished before receipt"),
    "unknown_status": ("Mã trạng thái không xác định", "Unknown status value"),
    "bad_date": ("Ngày không đọc được", "Unreadable date"),
    "definitions": (
        "Tỷ lệ số hóa hồ sơ = hồ sơ tiếp nhận trong kỳ có ít nhất một thành phần đã số hóa và liên kết / hồ sơ "
        "tiếp nhận trong kỳ. Tỷ lệ số hóa kết quả = hồ sơ giải quyết trong kỳ có kết quả đã số hóa / hồ sơ giải "
        "quyết trong kỳ. Đúng hạn so sánh ngày kết thúc xử lý với ngày hẹn trả. Làm tròn hai chữ số thập phân.",
        "Dossier rate = dossiers received in the period with at least one linked digitised component / dossiers "
        "received in the period. Result rate = dossiers resolved in the period with a digitised result / dossiers "
        "resolved in the period. Timeliness compares the end of processing with the appointment date. Rounded to "
        "two decimals, half up."),
}

# Narrow headers for the terminal.
SHORT = {
    "received": ("Tiếp nhận", "Received"), "digitised": ("Đã số hóa", "Digitised"), "rate": ("Tỷ lệ", "Rate"),
    "resolved": ("Giải quyết", "Resolved"), "results_digitised": ("KQ số hóa", "Results"),
    "result_rate": ("Tỷ lệ KQ", "Result rate"), "timely_rate": ("Tỷ lệ đúng hạn", "On-time rate"),
    "overdue_open": ("Quá hạn chưa xong", "Open overdue"), "procedure_name": ("Thủ tục", "Procedure"),
    "officer": ("Cán bộ", "Officer"), "received_date": ("Ngày nhận", "Received on"),
}

SUMMARY_COLUMNS = ("period", "received", "digitised", "rate", "pass", "resolved", "results_digitised",
                   "result_rate", "result_pass", "early", "on_time", "late", "no_due_date", "timely_rate",
                   "timely_pass", "overdue_open")
BREAKDOWN_KEYS = {"procedure": ("procedure_code", "procedure_name"), "officer": ("officer",)}
MISSING_COLUMNS = coverage.MISSING_FIELDS
RATE_COLUMNS = {"rate", "result_rate", "timely_rate"}
PASS_COLUMNS = {"pass", "result_pass", "timely_pass"}
DATE_COLUMNS = {"received_date"}
NUMERIC = {"received", "digitised", "resolved", "results_digitised", "early", "on_time", "late",
           "no_due_date", "overdue_open", *RATE_COLUMNS}


def t(key: str, lang: str) -> str:
    return TEXT[key][0 if lang == "vi" else 1]


# --- gathering ---------------------------------------------------------------

def build(conn, periods: list[Period], config: dict, *, today: date, by: tuple[str, ...] = (),
          chart: bool = False) -> dict:
    """The report for `periods` from the catalogue; with `chart`, also the rows of recent periods."""
    cutoff = config["periods"]["cutoff_day"]
    pass_mark = float(config["periods"]["pass_mark"])
    recent = (periods[:-1] if len(periods) > 1 else
              period_rules.preceding(periods[-1], CHART_PERIODS, cutoff)) if chart else []
    span = periods + recent
    dossiers = store.coverage_dossiers(conn, min(p.start for p in span).isoformat(),
                                       max(p.end for p in span).isoformat())
    report = coverage.coverage(dossiers, periods, today=today, pass_mark=pass_mark, by=by, history=recent)
    report["office"] = config.get("office", {}).get("name", "")
    return report


def for_options(conn, config: dict, *, today: date, fmt: str, quarter: str | None = None,
                month: str | None = None, year: str | None = None, from_day: str | None = None,
                to_day: str | None = None, by: str | None = None) -> tuple[list[Period], dict]:
    """The periods and report of `digitize coverage` for these options. The web page and
    /api/coverage call this too, so their figures are the command's, never recomputed.
    Workbooks and pages (xlsx, html) carry both breakdowns and the chart; the text
    formats only the breakdown asked for."""
    chosen = period_rules.select(quarter, month, year, from_day, to_day,
                                 cutoff_day=config["periods"]["cutoff_day"], today=today)
    breakdowns = tuple(BREAKDOWN_KEYS) if fmt in ("xlsx", "html") else tuple(filter(None, [by]))
    return chosen, build(conn, chosen, config, today=today, by=breakdowns, chart=fmt == "html")


# --- cell values ---------------------------------------------------------------

def safe_text(value) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def percent(value: Decimal | None, lang: str) -> str:
    if value is None:
        return t("none", lang)
    text = f"{value:.2f}%"
    return text.replace(".", ",") if lang == "vi" else text


def verdict(value: bool | None, lang: str) -> str:
    return "" if value is None else t("yes" if value else "no", lang)


def day_text(value: str | None) -> str:
    return date.fromisoformat(value).strftime("%d/%m/%Y") if value else ""


def display(column: str, row: dict, lang: str) -> str:
    """A cell as people read it (terminal, HTML)."""
    value = row.get(column)
    if column in RATE_COLUMNS:
        return percent(value, lang)
    if column in PASS_COLUMNS:
        return verdict(value, lang)
    if column in DATE_COLUMNS:
        return day_text(value)
    if column == "officer" and not value:
        return t("unknown", lang)
    return "" if value is None else str(value)


def breakdown_columns(by: str) -> tuple[str, ...]:
    return ("period", *BREAKDOWN_KEYS[by], *SUMMARY_COLUMNS[1:])


def sections(report: dict) -> list[tuple[str, tuple[str, ...], list[dict]]]:
    """(title key, columns, rows) for every table the report holds, in reading order."""
    found = [("summary", SUMMARY_COLUMNS, report["periods"])]
    for by in BREAKDOWN_KEYS:
        if f"by_{by}" in report:
            found.append((f"by_{by}", breakdown_columns(by), report[f"by_{by}"]))
    found.append(("missing", MISSING_COLUMNS, report["missing"]))
    return found


def problem_rows(report: dict, lang: str) -> list[dict]:
    problems = report["problems"]
    rows = [{"code": d["code"], "problem": t("no_received_date", lang),
             "detail": " · ".join(str(d[k]) for k in ("applicant", "procedure_code", "officer") if d.get(k))}
            for d in problems["no_received_date"]]
    rows += [{"code": f["code"], "problem": t(f["problem"], lang), "detail": f["detail"]}
             for f in problems["flags"]]
    return rows


# --- renderers -------------------------------------------------------------------

def to_json(report: dict, lang: str = "vi") -> str:
    def plain(value):
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(f"cannot encode {type(value).__name__}")

    shown = {**report, "periods": [
        {**row, "note": t("none", lang)} if row["received"] == 0 else row for row in report["periods"]
    ]}
    return json.dumps(shown, ensure_ascii=False, indent=2, default=plain) + "\n"


def to_csv(report: dict, lang: str = "vi", by: str | None = None) -> bytes:
    """The summary (or the `by` breakdown) as one CSV table, UTF-8 with BOM so Excel reads Vietnamese."""
    columns = breakdown_columns(by) if by else SUMMARY_COLUMNS
    rows = report[f"by_{by}"] if by else report["periods"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([t(column, lang) for column in columns])
    for row in rows:
        writer.writerow([_csv_cell(column, row, lang) for column in columns])
    return buffer.getvalue().encode("utf-8-sig")


def _csv_cell(column: str, row: dict, lang: str):
    value = row.get(column)
    if column in RATE_COLUMNS:
        return t("none", lang) if value is None else f"{value:.2f}"
    if column in PASS_COLUMNS:
        return verdict(value, lang)
    if isinstance(value, int):
        return value
    return safe_text(value)


# Text columns keep this much room when rates, which never wrap, take the rest.
TEXT_WIDTHS = {"period": 8, "procedure_code": 9, "procedure_name": 18, "officer": 14, "code": 16,
               "applicant": 16, "received_date": 10}


def to_table(report: dict, lang: str = "vi", width: int | None = None) -> str:
    """Aligned terminal tables (rich) for the IT officer; at least 200 columns wide, even through a pipe.
    Every cell is a rich Text of privacy.for_terminal: data is never read as markup
    (`[/b]` cannot crash it, `[chủ hộ]` stays), escapes and control characters are dropped."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value) -> Text:
        return Text(privacy.for_terminal(value))

    width = width or max(shutil.get_terminal_size((200, 24)).columns, 200)
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    for key, columns, rows in sections(report):
        table = Table(title=cell(t(key, lang)), title_justify="left", show_lines=False)
        hidden = {"no_due_date", "pass", "result_pass", "timely_pass"}
        if key != "summary" and len(report["periods"]) == 1:
            hidden.add("period")        # one period: the summary above names it
        shown = [c for c in columns if c not in hidden]
        for column in shown:
            header = SHORT[column][0 if lang == "vi" else 1] if column in SHORT else t(column, lang)
            table.add_column(cell(header), justify="right" if column in NUMERIC else "left", overflow="fold",
                             no_wrap=column in RATE_COLUMNS, min_width=TEXT_WIDTHS.get(column))
        limit = 50 if key == "missing" else None
        for row in rows[:limit]:
            table.add_row(*[cell(_table_cell(column, row, lang)) for column in shown])
        console.print(table)
        if limit and len(rows) > limit:
            console.print(cell(t("more", lang).format(n=len(rows) - limit)))
        if key == "missing" and not rows:
            console.print(cell(_nothing_missing(report, lang)))
    problems = problem_rows(report, lang)
    if problems:
        table = Table(title=cell(t("problems", lang)), title_justify="left")
        for column in ("code", "problem", "detail"):
            table.add_column(cell(t(column, lang)), overflow="fold")
        for row in problems:
            table.add_row(*(cell(row[c]) for c in ("code", "problem", "detail")))
        console.print(table)
    return console.file.getvalue()


def _nothing_missing(report: dict, lang: str) -> str:
    received = any(row["received"] for row in report["periods"])
    return t("none_missing" if received else "none", lang).capitalize()


def _table_cell(column: str, row: dict, lang: str) -> str:
    text = display(column, row, lang)
    if column in RATE_COLUMNS and row.get(column) is not None:
        return f"{text} {verdict(row[column.replace('rate', 'pass')], lang)}"
    return text


# --- XLSX --------------------------------------------------------------------------

def to_xlsx(report: dict, lang: str = "vi") -> bytes:
    """Workbook: summary, per procedure, per officer, missing dossiers (and data to check when there is any)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    workbook = Workbook()
    workbook.remove(workbook.active)
    tables = sections(report)
    problems = problem_rows(report, lang)
    if problems:
        tables.append(("problems", ("code", "problem", "detail"), problems))
    header_font, header_fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for key, columns, rows in tables:
        sheet = workbook.create_sheet(t(key, lang)[:31])
        for index, column in enumerate(columns, start=1):
            cell = sheet.cell(row=1, column=index, value=t(column, lang))
            cell.font, cell.fill = header_font, header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for number, row in enumerate(rows, start=2):
            for index, column in enumerate(columns, start=1):
                _xlsx_cell(sheet.cell(row=number, column=index), column, row, lang)
        for index, column in enumerate(columns, start=1):
            longest = max([len(str(sheet.cell(row=r, column=index).value or "")) for r in range(2, len(rows) + 2)]
                          + [min(len(t(column, lang)), 18)])
            sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = min(max(longest + 2, 10), 60)
        sheet.row_dimensions[1].height = 45
        sheet.auto_filter.ref = f"A1:{sheet.cell(row=1, column=len(columns)).column_letter}{max(len(rows) + 1, 1)}"
        sheet.freeze_panes = "B2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(cell, column: str, row: dict, lang: str) -> None:
    value = row.get(column)
    if column in RATE_COLUMNS:
        if value is None:
            cell.value = t("none", lang)
        else:
            cell.value, cell.number_format = float(value), "0.00"
    elif column in PASS_COLUMNS:
        cell.value = verdict(value, lang)
    elif column in DATE_COLUMNS and value:
        cell.value, cell.number_format = date.fromisoformat(value), "DD/MM/YYYY"
    elif isinstance(value, int) and not isinstance(value, bool):
        cell.value, cell.number_format = value, "#,##0"
    elif value is not None:
        # Registry text stays text: never a formula, whatever it starts with.
        cell.value = str(value)
        cell.data_type = "s"
        if cell.value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True


# --- HTML ----------------------------------------------------------------------------

CSS = """
body{font-family:"Liberation Sans",Arial,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;color:#1d2733;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #2b6cb0;padding-bottom:4px}
.meta{color:#555;margin:0 0 16px}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #cbd5e0;border-radius:6px;padding:10px 14px;min-width:220px}
.card .value{font-size:26px;font-weight:bold}.card .count{color:#555}
.pass{color:#22763a}.fail{color:#b42318}.none{color:#777}
table{border-collapse:collapse;width:100%;font-size:13px;margin-bottom:8px}
th,td{border:1px solid #cbd5e0;padding:4px 6px;vertical-align:top}
th{background:#ebf4ff;text-align:left}td.n{text-align:right;white-space:nowrap}
tr:nth-child(even) td{background:#f7fafc}svg text{font-family:inherit}
.note{color:#555;font-size:12px}
@media print{body{margin:0}h2{page-break-after:avoid}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html_table(columns: tuple[str, ...], rows: list[dict], lang: str, table_id: str) -> str:
    head = "".join(f"<th>{_e(t(c, lang))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            css = ' class="n"' if column in NUMERIC else ""
            if column in PASS_COLUMNS and row.get(column) is not None:
                css = f' class="{"pass" if row[column] else "fail"}"'
            cells.append(f"<td{css}>{_e(display(column, row, lang))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def chart_svg(rows: list[dict], pass_mark: float, lang: str) -> str:
    """Grouped bars of the dossier and result rates per period, with the pass mark as a dashed line."""
    width, height, left, right, top, bottom = 800, 300, 48, 72, 28, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    group = plot_w / max(len(rows), 1)
    bar = min(group * 0.34, 42)
    colours = {"rate": "#2b6cb0", "result_rate": "#dd6b20"}

    def y(value: float) -> float:
        return top + plot_h * (1 - value / 100)

    parts = [f'<svg id="rate-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(t("chart", lang))}">']
    for tick in range(0, 101, 20):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e2e8f0"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick}%</text>')
    for index, row in enumerate(rows):
        centre = left + group * (index + 0.5)
        for offset, key in ((-1, "rate"), (0, "result_rate")):
            x = centre + offset * bar
            value = row[key]
            counts = (row["digitised"], row["received"]) if key == "rate" else (row["results_digitised"], row["resolved"])
            label = percent(value, lang)
            if value is None:
                parts.append(f'<text class="bar-value" x="{x + bar / 2:.1f}" y="{y(0) - 4:.1f}" text-anchor="middle" '
                             f'font-size="10" fill="#777">–</text>')
                continue
            parts.append(
                f'<rect class="bar {key}" data-period="{_e(row["period"])}" x="{x:.1f}" y="{y(float(value)):.1f}" '
                f'width="{bar - 2:.1f}" height="{plot_h * float(value) / 100:.1f}" fill="{colours[key]}">'
                f'<title>{_e(t("chart_" + ("rate" if key == "rate" else "result"), lang))} {_e(row["period"])}: '
                f'{_e(label)} ({counts[0]}/{counts[1]})</title></rect>'
                f'<text class="bar-value" x="{x + bar / 2 - 1:.1f}" y="{y(float(value)) - 4:.1f}" text-anchor="middle" '
                f'font-size="10">{_e(label)}</text>')
        parts.append(f'<text x="{centre:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="12">'
                     f'{_e(row["period"])}</text>')
    parts.append(f'<line id="pass-mark" x1="{left}" x2="{width - right}" y1="{y(pass_mark):.1f}" y2="{y(pass_mark):.1f}" '
                 f'stroke="#22763a" stroke-dasharray="6 4" stroke-width="1.5"/>'
                 f'<text x="{width - right + 4}" y="{y(pass_mark) + 4:.1f}" font-size="11" fill="#22763a">'
                 f'{_e(t("pass_mark", lang))} {pass_mark:g}%</text>')
    legend_y = height - 14
    for index, key in enumerate(("rate", "result")):
        x = left + index * 170
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" '
                     f'fill="{colours["rate" if key == "rate" else "result_rate"]}"/>'
                     f'<text x="{x + 18}" y="{legend_y}" font-size="12">{_e(t("chart_" + key, lang))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _card(title: str, value: Decimal | None, passed: bool | None, numerator: int, denominator: int,
          lang: str) -> str:
    css = "none" if passed is None else "pass" if passed else "fail"
    return (f'<div class="card"><div>{_e(title)}</div><div class="value {css}">{_e(percent(value, lang))}</div>'
            f'<div class="count">{numerator}/{denominator}'
            f'{" · " + _e(verdict(passed, lang)) if passed is not None else ""}</div></div>')


def to_html(report: dict, lang: str = "vi") -> str:
    """One self-contained page: no scripts, no fonts, no links to fetch; works from a shared folder."""
    main = report["periods"][-1]
    title = f'{t("title", lang)} — {main["period"]}'
    timed = main["early"] + main["on_time"]
    cards = "".join([
        _card(t("rate", lang).replace(" (%)", ""), main["rate"], main["pass"], main["digitised"], main["received"], lang),
        _card(t("result_rate", lang).replace(" (%)", ""), main["result_rate"], main["result_pass"],
              main["results_digitised"], main["resolved"], lang),
        _card(t("timely_rate", lang).replace(" (%)", ""), main["timely_rate"], main["timely_pass"], timed,
              timed + main["late"], lang),
        f'<div class="card"><div>{_e(t("overdue_open", lang))}</div>'
        f'<div class="value">{main["overdue_open"]}</div></div>',
    ])
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="meta">{_e(report.get("office", ""))} · {_e(day_text(main["start"]))} – '
            f'{_e(day_text(main["end"]))} · {_e(t("as_of", lang))} {_e(day_text(report["as_of"]))}</p>',
            f'<div class="cards">{cards}</div>']
    if report.get("history"):
        body += [f'<h2>{_e(t("chart", lang))}</h2>', chart_svg(report["history"], report["pass_mark"], lang)]
    for key, columns, rows in sections(report):
        body.append(f'<h2>{_e(t(key, lang))} ({len(rows)})</h2>')
        if key == "missing" and not rows:
            body.append(f'<p>{_e(_nothing_missing(report, lang))}</p>')
        else:
            body.append(_html_table(columns, rows, lang, key.replace("_", "-")))
    problems = problem_rows(report, lang)
    if problems:
        body += [f'<h2>{_e(t("problems", lang))} ({len(problems)})</h2>',
                 _html_table(("code", "problem", "detail"), problems, lang, "problems")]
    body.append(f'<p class="note">{_e(t("definitions", lang))}</p>')
    return (f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# --- files and commands ------------------------------------------------------------------

def render(report: dict, fmt: str, lang: str, by: str | None) -> bytes:
    if fmt == "json":
        return to_json(report, lang).encode("utf-8")
    if fmt == "csv":
        return to_csv(report, lang, by)
    if fmt == "xlsx":
        return to_xlsx(report, lang)
    if fmt == "html":
        return to_html(report, lang).encode("utf-8")
    return to_table(report, lang).encode("utf-8")


def report_stem(label: str, lang: str) -> str:
    return f'{"bao-cao-so-hoa" if lang == "vi" else "digitisation-report"}-{label.replace("..", "_")}'
