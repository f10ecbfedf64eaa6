"""Errors a user can act on, each with an exit code and a bilingual message.

Exit codes follow OCRmyPDF's spirit (README lists them):
0 ok, 2 bad arguments, 3 missing dependency, 4 bad input file, 5 cannot write
output, 7 an engine failed or timed out,
8 encrypted PDF, 9 bad configuration or pipeline, 10 the catalogue is missing or damaged,
11 a signature is broken or missing, 12 a copy could not be signed, 13 a copy does
not meet the format rules, 15 other error,
130 interrupted.
"""
from __future__ import annotations

OK = 0
BAD_ARGS = 2
MISSING_DEPENDENCY = 3
INPUT_FILE = 4
OUTPUT_FILE = 5
ENGINE_FAILED = 7
ENCRYPTED_PDF = 8
BAD_CONFIG = 9
CATALOGUE = 10
SIGNATURE_INVALID = 11
SIGNING_FAILED = 12
FORMAT_RULES = 13
OTHER = 15
INTERRUPTED = 130


class DigitizeError(Exception):
    """A failure explained to the officer (Vietnamese) and the IT officer (English)."""

    exit_code = OTHER
    advice_vi = "Báo cho cán bộ CNTT."
    advice_en = "Tell the IT officer."

    def __init__(self, vi: str, en: str, advice_vi: str | None = None, advice_en: str | None = None):
        super().__init__(en)
        self.vi = vi
        self.en = en
        if advice_vi:
            self.advice_vi = advice_vi
        if advice_en:
            self.advice_en = advice_en

    def __reduce__(self):
        # Raised in worker processes: it must cross back to the parent whole.
        return self.__class__, (self.vi, self.en, self.advice_vi, self.advice_en)

    def one_line(self) -> str:
        return f"{self.vi} / {self.en}"


class InputFileError(DigitizeError):
    exit_code = INPUT_FILE
    advice_vi = "Quét lại tài liệu hoặc lưu lại tệp (PDF, TIFF, JPEG, PNG) rồi đặt lại vào thư mục nhận."
    advice_en = "Scan the paper again or re-save the file (PDF, TIFF, JPEG, PNG) and drop it into the inbox again."


class EncryptedPdfError(InputFileError):
    exit_code = ENCRYPTED_PDF
    advice_vi = "Gỡ mật khẩu của tệp PDF (hoặc quét lại bản giấy) rồi đặt lại vào thư mục nhận."
    advice_en = "Remove the PDF's password (or scan the paper again) and drop it into the inbox again."


class EngineError(DigitizeError):
    exit_code = ENGINE_FAILED


class OutputError(DigitizeError):
    exit_code = OUTPUT_FILE
    advice_vi = "Kiểm tra dung lượng đĩa và quyền ghi của thư mục lưu trữ."
    advice_en = "Check free disk space and write permission on the archive folder."


class ConfigError(DigitizeError):
    exit_code = BAD_CONFIG


class CatalogueError(DigitizeError):
    exit_code = CATALOGUE
    advice_vi = ("Khôi phục tệp danh mục từ bản sao lưu, hoặc dựng lại từ kho lưu trữ: "
                 "digitize catalogue rebuild (rồi nhập lại danh sách hồ sơ).")
    advice_en = ("Restore the catalogue from a backup, or rebuild it from the archive: "
                 "digitize catalogue rebuild (then import the dossier list again).")


class MissingDependencyError(DigitizeError):
    exit_code = MISSING_DEPENDENCY
    advice_vi = "Chạy 'make install' để cài đặt các gói cần thiết."
    advice_en = "Run 'make install' to install the required packages."
