"""Streamed CSV and XLSX exports of a log search (REC-3, REC-6): generators of bytes that
hold one batch of rows at a time, so a million-row export runs in flat memory.

CSV is UTF-8 with a byte-order mark (spreadsheet software then reads Korean text right),
CRLF line ends and a header line. Text that would start a formula gets a leading ``'``.

XLSX is written here as a minimal SpreadsheetML package (workbook, styles, inline-string
worksheets) into a ZIP stream with data descriptors (``zipfile`` on an unseekable sink):
each batch of rows is compressed and handed to the client as soon as it is formed.
openpyxl's write-only mode keeps memory flat too, but it cannot stream: it writes the
rows to a temporary file and builds the ZIP only in ``save()``, so the first byte would
leave after the last row was read (and at a fraction of the rate). Sheets hold at most
1,048,575 rows under the header (Excel's limit); longer exports continue on more sheets.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from lms.audit.logsearch import Column
from lms.spreadsheet import FORMULA_START, csv_bytes, safe_text

# KST has been a fixed UTC+9 since 1988: a constant shift is exact for every stored time,
# and much cheaper per row than a time-zone conversion.
KST_SHIFT = timedelta(hours=9)
EXCEL_EPOCH = datetime(1899, 12, 30)
ROWS_PER_CHUNK = 1000
MAX_SHEET_ROWS = 1_048_575  # Excel's 1,048,576 rows, less the header
MAX_CELL_CHARS = 32_767
_FORMULA_START = "".join(FORMULA_START)  # a cell starting with one of these could be read as a formula
# Characters XML 1.0 cannot carry (a crafted user agent must not break the workbook).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

CSV_MIMETYPE = "text/csv; charset=utf-8"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def kst_text(value: datetime | None) -> str:
    """A stored (aware UTC) time as KST ``YYYY-MM-DD HH:MM:SS``."""
    if value is None:
        return ""
    return (value.replace(tzinfo=None) + KST_SHIFT).isoformat(" ", "seconds")


def _json_text(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _safe_text(value: str) -> str:
    """A spreadsheet cell that never starts a formula (CSV injection)."""
    return safe_text(value)


def csv_header(header: list[str]) -> bytes:
    """The BOM and the header line of a CSV export."""
    return csv_bytes([header])


def csv_stream(columns: tuple[Column, ...], header: list[str] | None, rows, *, header_bytes: bytes | None = None):
    """Bytes of the CSV export: the BOM and header first (``header_bytes`` when given, else
    made of ``header``), then ``ROWS_PER_CHUNK`` rows per chunk. Numbers and None (an empty
    cell) go to the csv writer as they are; only times, JSON and text cells are converted
    (per row, no call per cell). ``lms.audit.export_copy`` writes the same bytes in SQL."""
    yield header_bytes if header_bytes is not None else csv_header(header)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    times = [i for i, c in enumerate(columns) if c.kind == "time"]
    jsons = [i for i, c in enumerate(columns) if c.kind == "json"]
    texts = [i for i, c in enumerate(columns) if c.kind == "text"]
    risky = _FORMULA_START
    pending = 0
    for row in rows:
        out = list(row)
        for i in times:
            v = out[i]
            if v is not None:
                out[i] = (v.replace(tzinfo=None) + KST_SHIFT).isoformat(" ", "seconds")
        for i in jsons:
            v = out[i]
            if v is not None:
                out[i] = _safe_text(_json_text(v))
        for i in texts:
            v = out[i]
            if v and v[0] in risky:
                out[i] = "'" + v
        writer.writerow(out)
        pending += 1
        if pending == ROWS_PER_CHUNK:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
            pending = 0
    if pending:
        yield buf.getvalue().encode("utf-8")


# --- XLSX ------------------------------------------------------------------------------

class _Sink(io.RawIOBase):
    """An unseekable file that keeps what is written until taken (zipfile then writes
    each member with a data descriptor instead of seeking back)."""

    def __init__(self):
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._chunks.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (_HEAD + f'<styleSheet {_NS}><numFmts count="1"><numFmt numFmtId="164" '
           'formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts><fonts count="2"><font><sz val="11"/>'
           '<name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
           '<fills count="2"><fill><patternFill patternType="none"/></fill><fill>'
           '<patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/>'
           '<right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1">'
           '<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3">'
           '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
           '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
           '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
           '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
           '</cellStyles></styleSheet>')


def _col_letters(n: int) -> list[str]:
    out = []
    for i in range(1, n + 1):
        s = ""
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(65 + r) + s
        out.append(s)
    return out


def _xml_text(value: str) -> str:
    if len(value) > MAX_CELL_CHARS:
        value = value[:MAX_CELL_CHARS]
    return escape(_XML_ILLEGAL.sub("\ufffd", value))


def _inline(ref: str, text: str, style: str = "") -> str:
    return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{_xml_text(text)}</t></is></c>'


_NUMBER, _TIME, _TEXT, _JSON = 0, 1, 2, 3
_KIND_CODES = {"int": _NUMBER, "float": _NUMBER, "time": _TIME, "text": _TEXT, "json": _JSON}
_DAY = timedelta(days=1)


def _row_xml(rs: str, letters: list[str], kinds: list[int], row) -> str:
    """One worksheet row: empty cells left out, numbers as numbers, times as KST date
    serials (style 2), text and JSON as inline strings (never formulas)."""
    cells = []
    for letter, kind, v in zip(letters, kinds, row):
        if v is None:
            continue
        if kind == _NUMBER:
            cells.append(f'<c r="{letter}{rs}"><v>{v!r}</v></c>')
        elif kind == _TIME:
            serial = (v.replace(tzinfo=None) + KST_SHIFT - EXCEL_EPOCH) / _DAY
            cells.append(f'<c r="{letter}{rs}" s="2"><v>{serial!r}</v></c>')
        elif kind == _TEXT:
            if v != "":
                cells.append(_inline(letter + rs, str(v)))
        else:
            cells.append(_inline(letter + rs, _json_text(v)))
    return f'<row r="{rs}">{"".join(cells)}</row>'


def _sheet_name(title: str, n: int) -> str:
    name = re.sub(r"[\[\]:*?/\\]", " ", title).strip()[:28] or "Sheet"
    return name if n == 1 else f"{name} {n}"[:31]


def xlsx_stream(columns: tuple[Column, ...], header: list[str], rows, *, title: str = "Log",
                max_sheet_rows: int = MAX_SHEET_ROWS):
    """Bytes of the XLSX export, handed out as each batch of rows is compressed."""
    sink = _Sink()
    zf = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    letters = _col_letters(len(columns))
    kinds = [_KIND_CODES[c.kind] for c in columns]
    head_cells = "".join(_inline(f"{letters[i]}1", h, ' s="1"') for i, h in enumerate(header))
    widths = "".join(f'<col min="{i}" max="{i}" width="{18 if c.kind == "time" else 14}" customWidth="1"/>'
                     for i, c in enumerate(columns, start=1))
    sheet_start = (_HEAD + f'<worksheet {_NS}><sheetViews><sheetView workbookViewId="0"><pane ySplit="1" '
                   'topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                   f'<cols>{widths}</cols><sheetData><row r="1">{head_cells}</row>').encode()
    sheet_end = b"</sheetData></worksheet>"
    sheets = 0
    member = None
    r = 1
    parts: list[str] = []
    try:
        for row in rows:
            if member is None or r > max_sheet_rows:
                if member is not None:
                    member.write("".join(parts).encode())
                    parts.clear()
                    member.write(sheet_end)
                    member.close()
                sheets += 1
                member = zf.open(f"xl/worksheets/sheet{sheets}.xml", "w", force_zip64=True)
                member.write(sheet_start)
                r = 1
            r += 1
            rs = str(r)
            parts.append(_row_xml(rs, letters, kinds, row))
            if len(parts) == ROWS_PER_CHUNK:
                member.write("".join(parts).encode())
                parts.clear()
                data = sink.take()
                if data:
                    yield data
        if member is None:  # no rows: the header alone
            sheets = 1
            member = zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
            member.write(sheet_start)
        member.write("".join(parts).encode())
        member.write(sheet_end)
        member.close()
        member = None
        sheet_list = "".join(f'<sheet name="{escape(_sheet_name(title, n), {chr(34): "&quot;"})}" sheetId="{n}" '
                             f'r:id="rId{n}"/>' for n in range(1, sheets + 1))
        zf.writestr("xl/workbook.xml", _HEAD + f'<workbook {_NS} xmlns:r="{_REL_NS}"><sheets>{sheet_list}'
                    '</sheets></workbook>')
        rels = "".join(f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                       for n in range(1, sheets + 1))
        rels += f'<Relationship Id="rId{sheets + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        zf.writestr("xl/_rels/workbook.xml.rels", _HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/'
                    f'package/2006/relationships">{rels}</Relationships>')
        zf.writestr("xl/styles.xml", _STYLES)
        zf.writestr("_rels/.rels", _HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                    f'relationships"><Relationship Id="rId1" Type="{_REL_NS}/officeDocument" '
                    'Target="xl/workbook.xml"/></Relationships>')
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
                            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                            for n in range(1, sheets + 1))
        zf.writestr("[Content_Types].xml", _HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                    'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                    'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
                    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                    f'{overrides}</Types>')
        zf.close()
        yield sink.take()
    finally:
        if member is not None:
            try:
                member.close()
            except Exception:  # noqa: BLE001 - the download was abandoned mid-way
                pass
