"""Link a scanned document to its dossier in the registry, or send it to review.

Precision first: a wrong link is worse than no link. Evidence has weights:
strong is an exact registry code (from a QR code, a barcode or the printed
text) and a CCCD equal to the registry's; weak is a name read by OCR, a
procedure and a date. The rules:
- strong evidence that disagrees (the code names one dossier, the CCCD is
  another dossier's or, held by a QR code, not this one's) always goes to
  review; a printed CCCD that is nobody's in the registry weighs as a weak
  field (an OCR slip, a child's or a representative's ID);
- an exact code whose dossier's CCCD the document also carries links, and no
  weak field vetoes it;
- an exact code alone links unless the weak fields that disagree weigh at
  least as much as those that agree, or the name read is another dossier's
  applicant;
- a code repaired from an OCR-damaged reading, or typed into the file name,
  links only when nothing contradicts it, and a repaired one only when
  exactly one registry dossier fits the damaged reading, the date inside
  the code included;
- a well-formed code that is not in the registry waits in review, never
  forced onto a near neighbour; `relink` links it once an import brings it;
- with no code, applicant + procedure + the CCCD or a date link when they
  single out one dossier;
- two different codes go to review.
The result carries ranked candidates with the evidence for each.
"""
from __future__ import annotations

import re

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from digitize.codes import code_date, damage_fits
from digitize.extract import extract_page, merge_fields
from digitize.vntext import fold

NAME_MATCH = 90       # folded token-sort similarity at which two names agree
NAME_CONFLICT = 80    # below this two names disagree; in between proves nothing
NEIGHBOUR_DISTANCE = 2
MAX_CANDIDATES = 5
CONFIDENCE = {"barcode": 1.0, "text": 0.95, "filename": 0.9}
REPAIRED_PENALTY = 0.1
SEPARATOR_KINDS = ("receipt", "cover_sheet")

EVIDENCE = {
    # The source only: whether the code is in the registry is said by "not_in_registry" or the link.
    "qr": "mã đọc từ mã QR / code read from the QR code",
    "barcode": "mã đọc từ mã vạch / code read from the barcode",
    "text": "mã đọc được trong văn bản / code read in the text",
    "text_repaired": "mã sửa từ chữ OCR lỗi / code repaired from a damaged OCR reading",
    "filename": "mã trong tên tệp / code in the file name",
    "filename_repaired": "mã sửa từ tên tệp / code repaired from the file name",
    "not_in_registry": "mã chưa có trong sổ, chờ nhập sổ / code not in the registry yet, waiting for an import",
    "neighbour": "mã gần giống mã đọc được / code similar to the one read",
    "applicant": "người nộp khớp / applicant matches",
    "applicant_conflict": "người nộp khác / applicant differs",
    "applicant_elsewhere": "tên người nộp là chủ hồ sơ khác / the name is another dossier's applicant",
    "cccd": "CCCD khớp / citizen ID matches",
    "cccd_conflict": "CCCD khác, không thuộc hồ sơ nào / citizen ID differs, nobody's in the registry",
    "cccd_elsewhere": "CCCD thuộc hồ sơ khác / citizen ID belongs to another dossier",
    "cccd_qr_conflict": "CCCD trong mã QR khác / the QR code's citizen ID differs",
    "procedure": "thủ tục khớp / procedure matches",
    "procedure_conflict": "thủ tục khác / procedure differs",
    "date": "ngày khớp / date matches",
    "received_conflict": "ngày tiếp nhận khác / received date differs",
    "code_date_conflict": "ngày trong mã khác ngày tiếp nhận / date in the code differs from the received date",
    "ambiguous_fit": "nhiều hồ sơ khớp với mã lỗi / several dossiers fit the damaged code",
}

REASONS = {
    "several_codes": "nhiều mã hồ sơ khác nhau trên văn bản / several different dossier codes on the document",
    "waiting": "mã hồ sơ chưa có trong sổ / dossier code not in the registry yet",
    "contradiction": "thông tin trên văn bản mâu thuẫn với sổ / the document contradicts the registry",
    "ambiguous": "không xác định được duy nhất một hồ sơ / no single dossier fits",
    "no_code": "không tìm thấy mã hồ sơ / no dossier code found",
}


def _name_similarity(a: str, b: str) -> float:
    """Token-sort similarity, accent-insensitive (OCR and typists drop accents)."""
    return fuzz.token_sort_ratio(fold(a), fold(b))


def _base_procedure(code: str | None) -> str | None:
    match = re.match(r"\d\.\d{6}", code or "")
    return match.group(0) if match else None


# Strong conflicts send a document to review whatever else agrees.
STRONG_CONFLICTS = {"cccd_elsewhere", "cccd_qr_conflict"}
# Weak evidence: how much each agreeing or disagreeing field weighs against an exact code alone.
WEAK_WEIGHTS = {"applicant": 0.3, "procedure": 0.2, "date": 0.2,
                "applicant_conflict": 0.3, "procedure_conflict": 0.2, "received_conflict": 0.2,
                "cccd_conflict": 0.4, "code_date_conflict": 0.2}


class Registry:
    """The dossiers, indexed by code, CCCD and folded applicant name."""

    def __init__(self, dossiers: list[dict]):
        self.dossiers = dossiers
        self.by_code = {d["code"]: d for d in dossiers}
        self.by_cccd: dict[str, set[str]] = {}
        for d in dossiers:
            if d.get("cccd"):
                self.by_cccd.setdefault(d["cccd"], set()).add(d["code"])
        self._names = [(fold(d["applicant"]), d["code"]) for d in dossiers if d.get("applicant")]
        self._named: dict[str, set[str]] = {}

    def named(self, name: str) -> set[str]:
        """Codes of the dossiers whose applicant is this name (accent-insensitive); one
        pass over the registry per name, however many dossiers it is compared with."""
        folded = fold(name)
        if folded not in self._named:
            self._named[folded] = {code for other, code in self._names
                                   if fuzz.token_sort_ratio(folded, other) >= NAME_MATCH}
        return self._named[folded]


def compare(fields: dict, dossier: dict, registry: Registry | None = None) -> tuple[list[str], list[str]]:
    """(supporting evidence keys, contradicting evidence keys) of a document's
    fields against one registry dossier. Absent fields prove nothing. A CCCD
    that differs is a strong conflict when it is another dossier's or a QR code
    holds it (the issuing system's own record of the applicant); printed and
    nobody's (an OCR slip, a child's or a representative's ID) it is weak. A
    name that differs is weak, `applicant_elsewhere` when it is another
    dossier's applicant."""
    support, conflict = [], []
    if fields.get("applicant") and dossier.get("applicant"):
        similarity = _name_similarity(fields["applicant"], dossier["applicant"])
        if similarity >= NAME_MATCH:
            support.append("applicant")
        elif similarity < NAME_CONFLICT:
            conflict.append("applicant_conflict")
            if registry is not None and registry.named(fields["applicant"]) - {dossier["code"]}:
                conflict.append("applicant_elsewhere")
    mine, theirs = fields.get("cccd"), dossier.get("cccd")
    if mine and theirs:
        owners = registry.by_cccd.get(mine, set()) - {dossier["code"]} if registry else set()
        if mine == theirs:
            support.append("cccd")
        elif owners:
            conflict.append("cccd_elsewhere")
        else:
            conflict.append("cccd_qr_conflict" if fields.get("cccd_source") == "qr" else "cccd_conflict")
    mine, theirs = _base_procedure(fields.get("procedure_code")), _base_procedure(dossier.get("procedure_code"))
    if mine and theirs:
        (support if mine == theirs else conflict).append("procedure" if mine == theirs else "procedure_conflict")
    elif dossier.get("procedure_name"):
        # A declaration names its procedure in its title ("TỜ KHAI ĐĂNG KÝ KHAI SINH").
        wanted = fold(dossier["procedure_name"])
        for text in (fields.get("procedure_name"), fields.get("title")):
            if text and fuzz.partial_ratio(wanted, fold(text)) >= NAME_MATCH:
                support.append("procedure")
                break
    registry_dates = {dossier.get(k) for k in ("received_date", "due_date", "finished_date")} - {None}
    if fields.get("received_date") and dossier.get("received_date"):
        if fields["received_date"] != dossier["received_date"]:
            conflict.append("received_conflict")
    if registry_dates & set(fields.get("dates") or ()):
        support.append("date")
    return support, conflict


def outweighed(support: list[str], conflict: list[str]) -> bool:
    """Whether an exact code standing alone (no CCCD agreeing) is contradicted: a strong
    conflict, a name that is another dossier's applicant, or weak fields that disagree
    weighing at least as much as those that agree (a tie goes to review)."""
    if STRONG_CONFLICTS & set(conflict) or "applicant_elsewhere" in conflict:
        return True
    against = sum(WEAK_WEIGHTS.get(key, 0.0) for key in conflict)
    return against > 0 and against >= sum(WEAK_WEIGHTS.get(key, 0.0) for key in support)


def _code_date_conflict(code: str, dossier: dict) -> bool:
    written = code_date(code)
    return bool(written and dossier.get("received_date") and written.isoformat() != dossier["received_date"])


def _score(support: list[str], conflict: list[str]) -> float:
    weights = {"applicant": 0.3, "cccd": 0.3, "procedure": 0.2, "date": 0.2}
    score = sum(weights.get(key, 0.0) for key in support) - 0.3 * len(conflict)
    return round(min(max(score, 0.0), 1.0), 3)


def _candidate(code: str, score: float, keys: list[str]) -> dict:
    return {"code": code, "score": round(score, 3), "evidence": [EVIDENCE[k] for k in dict.fromkeys(keys)]}


def _result(status: str, method: str | None, confidence: float, candidates: list[dict],
            dossier: str | None = None, reason: str | None = None, waiting: str | None = None) -> dict:
    # The code read from the document heads the list even while it is not in the registry.
    ranked = sorted(candidates, key=lambda c: (c["code"] != waiting, -c["score"]))
    unique = [c for i, c in enumerate(ranked) if c["code"] not in {d["code"] for d in ranked[:i]}]
    return {"status": status, "method": method, "confidence": round(confidence, 3),
            "dossier": dossier, "candidates": unique[:MAX_CANDIDATES],
            "reason": REASONS.get(reason) if reason else None, "waiting": waiting}


def _neighbours(code: str, fields: dict, registry: Registry) -> list[dict]:
    """Registry codes a few characters away: shown to the reviewer, never linked."""
    found = []
    for other, dossier in registry.by_code.items():
        distance = Levenshtein.distance(code, other, score_cutoff=NEIGHBOUR_DISTANCE)
        if other != code and distance <= NEIGHBOUR_DISTANCE:
            support, conflict = compare(fields, dossier, registry)
            found.append(_candidate(other, 0.5 * _score(support, conflict), ["neighbour", *support, *conflict]))
    return found


def _field_candidates(fields: dict, registry: Registry) -> list[tuple[dict, list[str], list[str]]]:
    """Dossiers whose applicant or CCCD agrees with the document."""
    found = []
    for dossier in registry.dossiers:
        support, conflict = compare(fields, dossier, registry)
        if "applicant" in support or "cccd" in support:
            found.append((dossier, support, conflict))
    return found


def _link_by_fields(fields: dict, registry: Registry) -> dict:
    """No code: link only when applicant, procedure and the CCCD or a date agree
    with exactly one dossier and nothing contradicts. The procedure is required:
    one person may have several dossiers, some not imported yet."""
    found = _field_candidates(fields, registry)
    candidates = [_candidate(d["code"], _score(s, c), s + c) for d, s, c in found]
    strong = [(d, s) for d, s, c in found
              if {"applicant", "procedure"} <= set(s) and not c and {"cccd", "date"} & set(s)]
    if len(strong) == 1:
        dossier, support = strong[0]
        return _result("linked", "fields", _score(support, []), candidates, dossier["code"])
    reason = "ambiguous" if strong or candidates else "no_code"
    return _result("review" if candidates else "none", None, 0.0, candidates, reason=reason)


def _link_code(claim: dict, fields: dict, registry: Registry, method: str) -> dict:
    """Decide on the one code the most trusted source gave (see the module's rules)."""
    code = claim["code"]
    dossier = registry.by_code.get(code)
    source_key = claim["source"] if claim["exact"] else f"{claim['source']}_repaired"
    if dossier is None:
        waiting = [_candidate(code, 0.0, [source_key, "not_in_registry"])]
        return _result("review", None, 0.0, waiting + _neighbours(code, fields, registry),
                       reason="waiting", waiting=code)
    support, conflict = compare(fields, dossier, registry)
    strong_code = claim["exact"] and claim["source"] in ("qr", "barcode", "text")
    if not claim["exact"]:
        if _code_date_conflict(code, dossier):
            conflict.append("code_date_conflict")
        fits = [other for other in registry.by_code if damage_fits(claim["raw"], other)]
        if fits != [code]:
            candidates = [_candidate(other, 0.5, [source_key, "ambiguous_fit"]) for other in fits]
            return _result("review", None, 0.0, candidates, reason="ambiguous")
    if STRONG_CONFLICTS & set(conflict):
        contradicted = True
    elif strong_code:
        contradicted = "cccd" not in support and outweighed(support, conflict)
    else:
        contradicted = bool(conflict)
    confidence = CONFIDENCE[method] - (0.0 if claim["exact"] else REPAIRED_PENALTY)
    candidate = _candidate(code, _score(support, conflict) if contradicted else confidence,
                           [source_key, *support, *conflict])
    if contradicted:
        return _result("review", None, 0.0, [candidate], reason="contradiction")
    return _result("linked", method, confidence, [candidate], code)


def decide_link(fields: dict, registry: list[dict] | Registry) -> dict:
    """{"status": "linked"|"review"|"none", "method", "confidence", "dossier",
    "candidates": [{"code", "score", "evidence"}], "reason", "waiting"} for a
    document's merged fields (see extract.merge_fields) against the registry
    (its dossiers, or a Registry built once for many documents)."""
    index = registry if isinstance(registry, Registry) else Registry(registry)
    codes = fields.get("codes") or []
    tiers = (("barcode", ("qr", "barcode")), ("text", ("text",)), ("filename", ("filename",)))
    labels = {c["code"]: c["source"] if c["exact"] else f"{c['source']}_repaired" for c in reversed(codes)}
    for method, sources in tiers:
        claims = [c for c in codes if c["source"] in sources]
        if not claims:
            continue
        distinct = list(dict.fromkeys(c["code"] for c in claims))
        # Any code read exactly elsewhere on the document that names another registry dossier is a conflict.
        elsewhere = {c["code"] for c in codes if c["exact"] and c["code"] in index.by_code
                     and c["code"] not in distinct}
        if len(distinct) > 1 or elsewhere:
            candidates = [_candidate(code, 0.5 if code in index.by_code else 0.0, [labels[code]])
                          for code in dict.fromkeys([*distinct, *elsewhere])]
            return _result("review", None, 0.0, candidates, reason="several_codes")
        return _link_code(next((c for c in claims if c["exact"]), claims[0]), fields, index, method)
    return _link_by_fields(fields, index)


def relink(documents: list[dict], registry: list[dict]) -> list[tuple[int, dict]]:
    """(document id, new link) for documents waiting in review that the registry
    now links. Manual decisions are never revisited."""
    changed = []
    index = Registry(registry)
    for document in documents:
        if document.get("link_method") == "manual" or document.get("link_status") == "linked":
            continue
        link = decide_link(document.get("fields") or {}, index)
        if link["status"] == "linked":
            changed.append((document["id"], link))
    return changed


def _page_code(page: dict) -> str | None:
    return page["codes"][0]["code"] if page["codes"] else None


def split_parts(pages: list[dict]) -> list[dict]:
    """Page ranges of the dossiers in one feed: [{"first_page", "last_page"}], 1-based.

    A receipt or cover sheet opens a new dossier, except the first one (pages
    before it stay with the first part), one carrying the current part's own
    code (a receipt behind its cover sheet), and a codeless one right behind
    a cover sheet."""
    parts = [{"first_page": 1, "last_page": 0, "code": None, "opened": False, "only_separators": True}]
    for number, page in enumerate(pages, 1):
        current = parts[-1]
        separator = page["kind"] in SEPARATOR_KINDS
        code = _page_code(page)
        same = code is not None and code == current["code"]
        follows_cover = code is None and current["only_separators"]
        if separator and current["opened"] and not same and not follows_cover:
            current = {"first_page": number, "last_page": number, "code": None, "opened": False,
                       "only_separators": True}
            parts.append(current)
        current["last_page"] = number
        if separator:
            current["opened"] = True
            current["code"] = current["code"] or code
        else:
            current["only_separators"] = False
    return [{"first_page": p["first_page"], "last_page": p["last_page"]} for p in parts]


def analyse_document(pages_text: list[str], barcodes_per_page: list[list[dict]], file_name: str,
                     registry: list[dict]) -> dict:
    """Everything the engine needs after OCR, for one input file.

    pages_text: NFC text per page; barcodes_per_page: barcodes.decode_barcodes()
    per page; file_name: the original's name (an officer may have typed the
    code into it); registry: the dossiers (store.list_dossiers()).
    Returns {"parts": [{"first_page", "last_page", "fields", "dossier", "link"}],
    "fields", "dossier", "link"}; the top-level keys repeat the first part, so a
    single-dossier scan needs only those. A feed of several dossiers has one
    part each; the file name's code is used only when there is one part.
    """
    pages = [extract_page(text, barcodes, number)
             for number, (text, barcodes) in enumerate(zip(pages_text, barcodes_per_page), 1)]
    ranges = split_parts(pages)
    parts = []
    for page_range in ranges:
        chosen = pages[page_range["first_page"] - 1:page_range["last_page"]]
        fields = merge_fields(chosen, file_name if len(ranges) == 1 else None)
        link = decide_link(fields, registry)
        parts.append({**page_range, "fields": fields, "dossier": link["dossier"], "link": link})
    first = parts[0]
    return {"parts": parts, "fields": first["fields"], "dossier": first["dossier"], "link": first["link"]}
