"""Report files: XLSX reopened with openpyxl, CSV as Excel reads it, HTML rendered in headless Chromium, the CLI."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from digitize import config as site_config, periods, reports, store

from . import quarter_registry

# Every test here runs on the SQLite catalogue and on a real PostgreSQL one.
pytestmark = pytest.mark.usefixtures("catalogue_backend")

TODAY = date(2025, 1, 15)
CHROMIUM = shutil.which("chromium")


@pytest.fixture
def report(tmp_path):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    quarter_registry.build(conn)
    built = reports.build(conn, [periods.parse_label("2024-Q3")], site_config.load_config({}), today=TODAY,
                          by=tuple(reports.BREAKDOWN_KEYS), chart=True)
    conn.close()
    return built


def test_xlsx_sheets_headers_filters_and_no_formulas(report, tmp_path):
    path = tmp_path / "report.xlsx"
    path.write_bytes(reports.to_xlsx(report, "vi"))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Tổng hợp", "Theo thủ tục", "Theo cán bộ", "Hồ sơ chưa số hóa"]
    summary = book["Tổng hợp"]
    headers = [cell.value for cell in summary[1]]
    assert headers[:4] == ["Kỳ báo cáo", "Hồ sơ tiếp nhận", "Hồ sơ đã số hóa", "Tỷ lệ số hóa hồ sơ (%)"]
    assert summary[1][0].font.bold
    assert [c.value for c in summary[2][:5]] == ["2024-Q3", 299, 255, 85.28, "Đạt"]
    assert summary["D2"].number_format == "0.00"
    assert summary.auto_filter.ref == "A1:P2" and summary.freeze_panes == "B2"
    missing = book["Hồ sơ chưa số hóa"]
    assert [c.value for c in missing[1]] == ["Mã hồ sơ", "Chủ hồ sơ", "Mã TTHC", "Tên thủ tục", "Ngày tiếp nhận",
                                             "Cán bộ tiếp nhận"]
    assert missing.max_row == 45 and missing.auto_filter.ref == "A1:F45"
    assert missing["E2"].is_date and missing["E2"].number_format == "DD/MM/YYYY"
    officers = book["Theo cán bộ"]
    formula_cells = [row[1] for row in officers.iter_rows(min_row=2) if row[1].value == quarter_registry.FORMULA_OFFICER]
    assert formula_cells and all(c.data_type == "s" and c.quotePrefix for c in formula_cells)
    assert all(c.data_type != "f" for sheet in book for row in sheet.iter_rows() for c in row)
    assert book["Theo thủ tục"].column_dimensions["D"].width >= 10


def test_csv_has_bom_vietnamese_headers_and_neutralised_formulas(report):
    data = reports.to_csv(report, "vi", by="officer")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Kỳ báo cáo", "Cán bộ tiếp nhận", "Hồ sơ tiếp nhận"]
    officers = [row[1] for row in rows[1:]]
    assert "'" + quarter_registry.FORMULA_OFFICER in officers
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert sum(int(row[2]) for row in rows[1:]) == 299
    english = list(csv.reader(io.StringIO(reports.to_csv(report, "en").decode("utf-8-sig"))))
    assert english[0][:4] == ["Period", "Received", "Digitised", "Dossier digitisation rate (%)"]
    assert english[1][:4] == ["2024-Q3", "299", "255", "85.28"]


def test_html_escapes_registry_text(report):
    page = reports.to_html(report, "vi")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Nguyễn" in page
    assert 'lang="vi"' in page and "85,28%" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    english = reports.to_html(report, "en")
    assert 'lang="en"' in english and "85.28%" in english and "Missing dossiers" in english


def test_html_renders_chart_and_numbers_in_chromium(report, tmp_path):
    assert CHROMIUM, "chromium is missing: run `make test-system-packages`"
    page = tmp_path / "report.html"
    page.write_text(reports.to_html(report, "vi"), encoding="utf-8")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert '<svg id="rate-chart"' in dom
    assert dom.count('class="bar rate"') >= 1 and 'data-period="2024-Q3"' in dom
    assert "85,28%" in dom and "255/299" in dom
    assert "&lt;script&gt;" in dom and "<script>alert" not in dom
    # Every dossier of the missing list is in the rendered page, and no scanned one is.
    missing = [m["code"] for m in report["missing"]]
    assert len(missing) == 44 and all(code in dom for code in missing)
    assert quarter_registry.quarter_code(1) not in dom          # scanned: not listed
    # Printed to PDF by Chromium, the page still reads the rate and a missing dossier.
    printed = tmp_path / "report.pdf"
    subprocess.run([*command, "--no-pdf-header-footer", f"--print-to-pdf={printed}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    text = subprocess.run(["pdftotext", str(printed), "-"], capture_output=True, text=True, check=True).stdout
    assert "85,28%" in text and missing[0] in text
    screenshot = tmp_path / "report.png"           # smoke: Chromium draws the page
    subprocess.run([*command, "--window-size=1280,1200", f"--screenshot={screenshot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000


def test_cli_coverage_json_and_report_files(tmp_path):
    home = tmp_path / "home"
    conn = store.connect(home / "catalogue.sqlite")
    expected_missing = quarter_registry.build(conn)
    conn.close()
    env = {**os.environ, "DIGITIZE_HOME": str(home), "DIGITIZE_CONFIG": str(tmp_path / "none.toml")}
    digitize = str(Path(sys.executable).parent / "digitize")
    done = subprocess.run([digitize, "coverage", "--quarter", "2024-Q3", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    row = shown["periods"][0]
    assert {k: row[k] for k in ("period", "received", "digitised", "rate")} == {
        "period": "2024-Q3", "received": 299, "digitised": 255, "rate": 85.28}
    assert {"resolved", "results_digitised", "result_rate", "early", "on_time", "late", "overdue_open"} <= set(row)
    assert [m["code"] for m in shown["missing"]] == expected_missing
    out = tmp_path / "out"
    done = subprocess.run([digitize, "report", "--period", "2024-Q3", "--out", str(out), "--lang", "en"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["digitisation-report-2024-Q3.html",
                                                     "digitisation-report-2024-Q3.xlsx"]
    assert openpyxl.load_workbook(out / "digitisation-report-2024-Q3.xlsx").sheetnames[0] == "Summary"
    bad = subprocess.run([digitize, "coverage", "--quarter", "2024-Q5"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2 and "2024-Q5" in bad.stderr
