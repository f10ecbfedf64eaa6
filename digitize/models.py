"""The data that crosses module borders: what became of a page, a document and its parts.

Every producer builds these — the engine for OCRed scans, the watcher's file-as-is and
quarantine paths, reprocessing — the catalogue records them (store.record_result), and
`--json` prints DocumentResult.to_json(). Plain frozen dataclasses: no behaviour beyond
views of their own data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .privacy import mask_cccd, mask_ids

# A document's status in the catalogue and in --json:
DONE = "done"          # processed: a searchable PDF (or a PDF filed as it came) and its text
FAILED = "failed"      # could not be processed: the error says why


@dataclass(frozen=True)
class PageReading:
    """What one page became: its turn, residual skew and tesseract's reading."""

    orientation: int  # counter-clockwise quarter turn found on the scan
    skew: float  # residual counter-clockwise angle of its text lines, degrees
    confidence: float | None  # tesseract's mean word confidence; None: the PDF's own text, not OCR
    text: str  # NFC, block by block
    reading: str = "clean"  # which reading won (engine.READINGS): the OCR copy, the scan's own pixels, ...
    warnings: tuple[str, ...] = ()  # "vi / en": e.g. no text read on the page
    photo: bool = False  # a phone photo of a sheet, found, warped flat and its light evened out


@dataclass(frozen=True)
class LinkDecision:
    """link.decide_link's verdict: linked to `dossier`, or waiting in review with candidates."""

    status: str  # linked | review | none
    method: str | None = None  # barcode | text | filename | fields | manual
    confidence: float | None = None
    dossier: str | None = None
    candidates: tuple[dict, ...] = ()  # {"code", "score", "evidence": [...]}, best first
    reason: str | None = None
    waiting: str | None = None  # a well-formed code not yet in the registry

    @classmethod
    def from_mapping(cls, decided: dict[str, Any]) -> "LinkDecision":
        return cls(decided["status"], decided.get("method"), decided.get("confidence"), decided.get("dossier"),
                   tuple(decided.get("candidates") or ()), decided.get("reason"), decided.get("waiting"))

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "method": self.method, "confidence": self.confidence,
                "dossier": self.dossier, "candidates": list(self.candidates), "reason": self.reason,
                "waiting": self.waiting}


NO_LINK = LinkDecision("none")


@dataclass(frozen=True)
class SignOutcome:
    """What signing did to one copy (sign.sign_copy): signed now or before, or pending with the reason."""

    path: str
    status: str  # "signed" | "already-signed" | "pending"
    signer: str | None = None
    signed_at: str | None = None  # ISO 8601, +07:00
    level: str | None = None  # "PAdES-B-B" | "PAdES-B-T"
    box: tuple[float, float, float, float] | None = None  # widget rectangle (PDF points), None: invisible
    box_clear: bool | None = None  # whether the box found paper with no ink under it
    reason: str | None = None  # "vi / en" when pending

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Part:
    """One dossier's pages of a scan (a feed of several dossiers has one part each)."""

    number: int  # 0-based
    first_page: int  # 1-based, inclusive
    last_page: int
    output: str | None  # the part's PDF
    text_path: str | None
    link: LinkDecision = NO_LINK
    fields: dict[str, Any] = field(default_factory=dict)  # extract.merge_fields' mapping
    warnings: tuple[dict, ...] = ()  # pages missing a format rule (check.page_warnings)
    signature: SignOutcome | None = None  # None: signing is off

    @property
    def dossier(self) -> str | None:
        return self.link.dossier if self.link.status == "linked" else None

    @property
    def kind(self) -> str | None:
        return self.fields.get("kind")

    def to_json(self, masked: bool = True) -> dict[str, Any]:
        return {"part": self.number, "first_page": self.first_page, "last_page": self.last_page,
                "output": _shown(self.output, masked), "text_path": _shown(self.text_path, masked),
                "dossier": self.dossier,
                "link": self.link.to_json(), "fields": _shown_fields(self.fields, masked), "kind": self.kind,
                "warnings": list(self.warnings), "signature": self.signature.to_json() if self.signature else None}


@dataclass(frozen=True)
class DocumentResult:
    """One input file's outcome. The top-level output, link and fields repeat the first part's."""

    source: str  # where the file was read from (the inbox path for the watcher)
    sha256: str | None  # None when the file could not even be read
    status: str  # DONE | FAILED
    pages: tuple[PageReading, ...] = ()
    parts: tuple[Part, ...] = ()
    error: str | None = None  # "vi / en"
    exit_code: int = 0
    kept_as_is: bool = False  # a signed PDF or one with a real text layer, filed byte for byte
    retry: bool = False  # the file changed while it was read: nothing recorded, to be read again

    @property
    def first(self) -> Part | None:
        return self.parts[0] if self.parts else None

    @property
    def output(self) -> str | None:
        return self.first.output if self.first else None

    @property
    def text_path(self) -> str | None:
        return self.first.text_path if self.first else None

    @property
    def dossier(self) -> str | None:
        return self.first.dossier if self.first else None

    @property
    def link(self) -> LinkDecision | None:
        return self.first.link if self.first else None

    @property
    def fields(self) -> dict[str, Any]:
        return self.first.fields if self.first else {}

    @property
    def warnings(self) -> list[dict]:
        return [warning for part in self.parts for warning in part.warnings]

    def to_json(self, masked: bool = True) -> dict[str, Any]:
        """The README's --json contract; personal data (a CCCD in a file name, in the fields)
        masked unless masked=False."""
        return {
            "source": _shown(self.source, masked), "sha256": self.sha256, "status": self.status,
            "output": _shown(self.output, masked), "text_path": _shown(self.text_path, masked),
            "pages": [{"orientation": p.orientation, "skew": p.skew, "confidence": p.confidence,
                       "reading": p.reading, "warnings": list(p.warnings), "photo": p.photo} for p in self.pages],
            "error": _shown(self.error, masked),
            "exit_code": self.exit_code, "kept_as_is": self.kept_as_is, "dossier": self.dossier,
            "link": self.link.to_json() if self.link else None,
            "fields": _shown_fields(self.fields, masked),
            "parts": [part.to_json(masked) for part in self.parts],
            "warnings": self.warnings,
        }


def _shown(text: str | None, masked: bool) -> str | None:
    return mask_ids(text) if masked and text else text


def _shown_fields(fields: dict[str, Any], masked: bool) -> dict[str, Any]:
    if masked and fields.get("cccd"):
        return {**fields, "cccd": mask_cccd(fields["cccd"])}
    return dict(fields)
