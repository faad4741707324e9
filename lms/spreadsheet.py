"""Cells for files staff open in a spreadsheet (CSV/XLSX exports).

A text cell starting with one of ``FORMULA_START`` could be run as a formula by the
spreadsheet (CSV injection): ``safe_text`` puts a ``'`` before it, which spreadsheets show
as plain text. Every export of the LMS uses this one rule.
"""
from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """``text`` as a cell that never starts a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_bytes(rows) -> bytes:
    """CSV as spreadsheets open it right: UTF-8 with a byte-order mark (Excel then reads
    the Korean text), CRLF line ends. ``rows`` are lists of cells, the header first;
    cells are written as given (make text safe with ``safe_text`` first)."""
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
