"""Search as Vietnamese users type: accents optional, đ as d, exact dossier codes and CCCDs.

The catalogue's search index holds an accent-folded copy of each document
(store.WEB_SCHEMA). A query is folded the same way (vntext.fold_keep_length)
and each word must match (the last one as a prefix, for typing). Because the
folding keeps one character per character, the places a word is found in
the folded text are the places to highlight in the original text.
"""
from __future__ import annotations

import re
import sqlite3

from .. import codes, periods as period_rules, store
from ..privacy import mask_cccd
from ..vntext import fold_keep_length, nfc

SNIPPET = 90          # characters of context each side of the first hit
CCCD = re.compile(r"\d{12}")
WORD = re.compile(r"\w+")
SPACES = re.compile(r"\s+")


def fts_query(words: list[str]) -> str:
    """An FTS5 expression: every word quoted (no operator can be smuggled in), the last as a prefix."""
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def snippet(text: str, words: list[str]) -> list[tuple[str, bool]]:
    """A window of `text` around the first word found, as (piece, highlighted) pairs."""
    folded = fold_keep_length(text)
    # Whole words, the last one also as a prefix (as the query matched it).
    patterns = [r"(?<!\w)" + re.escape(word) + (r"" if last else r"(?!\w)")
                for last, word in ((i == len(words) - 1, w) for i, w in enumerate(words))]
    spans = sorted((m.start(), m.end()) for pattern in patterns for m in re.finditer(pattern, folded))
    if not spans:
        return [(SPACES.sub(" ", text[:2 * SNIPPET]).strip(), False)] if text else []
    start = max(0, spans[0][0] - SNIPPET)
    end = min(len(text), spans[0][1] + SNIPPET)
    pieces, at = [], start
    for left, right in spans:
        if left < at or right > end:
            continue
        pieces += [(text[at:left], False), (text[left:right], True)]
        at = right
    pieces.append((text[at:end], False))
    pieces = [(SPACES.sub(" ", piece), marked) for piece, marked in pieces]
    if start > 0:
        pieces.insert(0, ("… ", False))
    if end < len(text):
        pieces.append((" …", False))
    return [(piece, marked) for piece, marked in pieces if piece]


def search(conn: sqlite3.Connection, query: str, *, quarter: str | None = None, procedure: str | None = None,
           status: str | None = None, cutoff_day: int = 1, limit: int = 50) -> dict:
    """{"query", "mode" (text|dossier|cccd|filter), "results"}: results carry a snippet and a masked CCCD."""
    query = nfc(query).strip()
    start = end = None
    if quarter:
        period = period_rules.parse_label(quarter, cutoff_day)
        start, end = period.start.isoformat(), period.end.isoformat()
    filters = {"start": start, "end": end, "procedure": procedure, "status": status, "limit": limit}
    words: list[str] = []
    compact = re.sub(r"[\s.-]", "", query)
    code = codes.normalise_code(query) if query else ""
    if CCCD.fullmatch(compact):
        mode, rows = "cccd", store.search_documents(conn, cccd=compact, **filters)
    elif query and codes.is_well_formed(code):
        mode, rows = "dossier", store.search_documents(conn, dossier=code, **filters)
    elif query:
        words = WORD.findall(fold_keep_length(query))
        mode = "text"
        rows = store.search_documents(conn, match=fts_query(words), **filters) if words else []
    else:
        mode, rows = "filter", store.search_documents(conn, **filters)
    results = []
    for row in rows:
        fields = row["fields"] or {}
        results.append({
            **row,
            "applicant": row["dossier_applicant"] or fields.get("applicant"),
            "procedure": row["dossier_procedure_name"] or fields.get("procedure_name"),
            "cccd": mask_cccd(fields.get("cccd")),
            "snippet": snippet(store.document_text(conn, row["id"]), words),
        })
    return {"query": query, "mode": mode, "results": results}
