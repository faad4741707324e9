"""The inspectors' CSV export on PostgreSQL through ``COPY (SELECT …) TO STDOUT`` (REC-3):
the same filtered, scoped, ordered query as ``logsearch.stream_rows``, with every cell
formatted *in SQL* exactly as ``export.csv_stream`` formats it in Python, so the bytes are
the same and the worker only forwards PostgreSQL's output (≈ 2.5× the Python row path
over HTTP, see docs/PERFORMANCE.md). It serves the logs without JSON cells — the access
log and viewing sessions (``serves``); view-events and exam evidence stay on the Python
writer, which is faster for JSON cells than the exact SQL below.

Cell by cell (``export.csv_stream`` is the reference; tests/test_export_copy.py compares
the two byte for byte):

- int: PostgreSQL's text of the integer (as ``str(int)``);
- float (double precision): Python's ``repr`` — ``12.0`` not ``12``, ``1e-05``, ``-0.0``,
  ``nan``/``inf`` — see ``_py_float``;
- time (naive UTC columns): KST as ``YYYY-MM-DD HH:MM:SS``, the fractional second dropped
  (``isoformat(" ", "seconds")`` truncates; so does ``to_char``), by the fixed +9 h shift
  the Python path uses (KST has had no DST since 1988);
- text: empty and NULL both an empty cell (``NULLIF``: COPY would quote an empty string),
  a leading ``'`` before ``= + - @ TAB CR`` (formula injection);
- JSON: the stored JSON re-serialised as ``json.dumps(json.loads(v), ensure_ascii=False,
  separators=(",", ":"))`` — key order kept (``json_each`` preserves it), strings escaped
  by ``to_json(text)`` (the same escapes as Python's), numbers re-read (ints as numeric,
  floats through ``_py_float``), JSON ``null`` at the top as an empty cell, then the formula
  guard (a negative number).

CSV framing: PostgreSQL's ``FORMAT csv`` quotes exactly when Python's minimal quoting does
(a delimiter, a quote, CR or LF in the value; quotes doubled); it ends rows with LF where
the Python writer uses CRLF. Every CopyData message of ``COPY TO`` holds exactly one row
(libpq: "data is always returned one data row at a time"), so its last byte is the row's
end and is replaced with CRLF — line breaks inside quoted values stay as they are.

Parameters: ``COPY`` is a utility statement and takes no bind parameters, so the compiled
statement's values are rendered as SQL literals by psycopg itself
(``ClientCursor.mogrify``, the same adaptation and quoting as ``psycopg.sql.Literal``,
escaping for the connection's encoding and ``standard_conforming_strings``). The values
are the validated filters (ints, KST-range datetimes, role/event names, IP digits and
dots) — never text concatenated by hand.

Not reproduced (the Python path would differ; none occurs in data this system writes):
JSON numbers beyond double range (Python reads ``1e400`` as ``inf``), JSON objects with
duplicate keys, JSON strings holding ``\\u0000`` (PostgreSQL cannot unescape them: the
COPY fails: before the first row, ``csv_body`` answers from the Python path instead).
"""
from __future__ import annotations

import psycopg

from lms.audit import logsearch
from lms.audit.logsearch import Column, LogSpec

FLUSH_BYTES = 64 * 1024  # hand the stream a chunk once this much CSV is gathered

# Characters that make a cell a formula in the Python path (export._FORMULA_START).
_RISKY_SQL = "'=', '+', '-', '@', E'\\t', E'\\r'"


def _py_float(v: str) -> str:
    """SQL text of ``repr(float)`` for the double-precision expression ``v``.

    PostgreSQL (``extra_float_digits`` ≥ 1, the default) prints the shortest round-trip
    digits, as Python does, but (a) integral values without ``.0``, (b) 1e15 ≤ |x| < 1e16
    in exponent notation (Python: fixed), (c) integral values in [1e16, 2⁶⁴) with all
    their exact digits (Python: shortest): (b) goes through ``numeric`` (exact for the
    printed digits), (c) tries 15, 16 then 17 significant digits for the first that
    reads back as the same double, and writes it Python's way (``1.23e+16``)."""
    t = f"({v})::text"
    n = f"({t})::numeric"
    big_digits = f"length(trunc(abs({n}))::text)"

    def sig(k: int) -> str:  # |x| rounded to k significant digits (numeric)
        return f"round(abs({n}), {k} - {big_digits})"

    def exp_text(r: str) -> str:
        ds = f"rtrim(trunc({r})::text, '0')"
        return (f"(CASE WHEN ({v}) < 0 THEN '-' ELSE '' END || left({ds}, 1) || "
                f"CASE WHEN length({ds}) > 1 THEN '.' || substr({ds}, 2) ELSE '' END || "
                f"'e+' || ({big_digits} - 1)::text)")

    return (f"CASE WHEN ({v}) IS NULL THEN NULL "
            f"WHEN ({v}) = 'NaN'::float8 THEN 'nan' "
            f"WHEN ({v}) = 'Infinity'::float8 THEN 'inf' "
            f"WHEN ({v}) = '-Infinity'::float8 THEN '-inf' "
            f"WHEN abs({v}) >= 1e15 AND abs({v}) < 1e16 THEN "
            f"CASE WHEN strpos({n}::text, '.') = 0 THEN {n}::text || '.0' ELSE {n}::text END "
            f"WHEN abs({v}) >= 1e16 AND abs({v}) < 18446744073709551616 AND ({v}) = trunc({v}) THEN "
            f"CASE WHEN ({sig(15)})::float8 = abs({v}) THEN {exp_text(sig(15))} "
            f"WHEN ({sig(16)})::float8 = abs({v}) THEN {exp_text(sig(16))} "
            f"ELSE {exp_text(f'abs({n})')} END "
            f"WHEN strpos({t}, '.') = 0 AND strpos({t}, 'e') = 0 AND strpos({t}, 'n') = 0 THEN {t} || '.0' "
            f"ELSE {t} END")


def _json_number(t: str) -> str:
    """A JSON number's text as Python re-dumps it: ints exactly (``-0`` → ``0``), others
    as floats."""
    return f"CASE WHEN {t} ~ '^-?[0-9]+$' THEN ({t})::numeric::text ELSE {_py_float(f'({t})::float8')} END"


def _json_compact(j: str) -> str:
    """SQL text of the compact, order-keeping re-serialisation of the ``json`` value ``j``.

    A recursive walk of the value: each node gets a sort key (the ordinal path from the
    root), an opening token (separator, key, then ``[``/``{`` or the scalar) and containers
    a closing token after their last descendant; the tokens, in key order, are the text."""
    node = ("CASE json_typeof(w.v) WHEN 'array' THEN '[' WHEN 'object' THEN '{' "
            "WHEN 'string' THEN to_json(w.v #>> '{}')::text "
            f"WHEN 'number' THEN {_json_number('(w.v)::text')} ELSE (w.v)::text END")
    return (
        "(WITH RECURSIVE w(k, v, pre) AS ("
        f"SELECT ARRAY[]::int[], ({j}), ''::text "
        "UNION ALL "
        "SELECT w.k || c.o::int, c.v, CASE WHEN c.o > 1 THEN ',' ELSE '' END || "
        "COALESCE(to_json(c.key)::text || ':', '') "
        "FROM w, LATERAL ("
        "SELECT NULL::text AS key, e.v, e.o FROM json_array_elements("
        "CASE WHEN json_typeof(w.v) = 'array' THEN w.v ELSE '[]'::json END) WITH ORDINALITY AS e(v, o) "
        "UNION ALL "
        "SELECT e.key, e.value, e.o FROM json_each("
        "CASE WHEN json_typeof(w.v) = 'object' THEN w.v ELSE '{}'::json END) WITH ORDINALITY AS e(key, value, o)"
        ") AS c) "
        "SELECT string_agg(t.tok, '' ORDER BY t.k) FROM ("
        f"SELECT w.k, w.pre || {node} AS tok FROM w "
        "UNION ALL "
        "SELECT w.k || 2147483647, CASE json_typeof(w.v) WHEN 'array' THEN ']' ELSE '}' END FROM w "
        "WHERE json_typeof(w.v) IN ('array', 'object')) AS t)")


def _guarded(v: str) -> str:
    return f"CASE WHEN left({v}, 1) IN ({_RISKY_SQL}) THEN '''' || {v} ELSE NULLIF({v}, '') END"


def cell_sql(column: Column, expr: str) -> str:
    """SQL text of one CSV cell, as ``export.csv_stream`` writes ``column``'s value."""
    if column.kind == "int":
        return expr
    if column.kind == "float":
        return _py_float(expr)
    if column.kind == "time":
        return f"to_char({expr} + interval '9 hours', 'YYYY-MM-DD HH24:MI:SS')"
    if column.kind == "json":
        compact = _json_compact(expr)
        return (f"CASE WHEN {expr} IS NULL OR json_typeof({expr}) = 'null' THEN NULL "
                f"WHEN left(({expr})::text, 1) = '-' THEN '''' || {compact} ELSE {compact} END")
    return _guarded(expr)


def serves(spec: LogSpec) -> bool:
    """Whether the COPY path serves this log by default: only logs without JSON columns
    (the access log, viewing sessions). The JSON cells are exact in SQL too (the tests
    compare all four logs byte for byte through ``csv_body``) but the recursive walk costs
    ~0.1 ms a cell: 5,600 rows/s for two JSON columns (a no-string fast path checked per
    number reached 14,000), below the Python path's 24,500–47,000 rows/s measured on the
    other logs, so view-events and exam evidence stay on the Python path."""
    return not any(c.kind == "json" for c in spec.columns)


def usable(session, spec: LogSpec | None = None) -> bool:
    """The COPY path serves CSV exports on PostgreSQL through psycopg 3, for the logs
    ``serves`` names (config ``EXPORT_COPY``, env ``LMS_EXPORT_COPY=0``, turns it off: the
    Python path then serves)."""
    from flask import current_app

    if not current_app.config.get("EXPORT_COPY", True):
        return False
    if spec is not None and not serves(spec):
        return False
    bind = session.get_bind()
    return bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg"


def export_sql(session, f, scope) -> str:
    """The export's query as SQL text: ``logsearch``'s filtered, scoped statement (the same
    FROM and WHERE as ``stream_rows``) as a subquery with positional column names, its
    cells formatted by ``cell_sql`` and ordered by its (time, id) order."""
    spec = logsearch.SPECS[f.kind]
    stmt, tcol, idcol = logsearch.base_query(f, scope)
    names = [f"c{i}" for i in range(len(spec.columns))]
    inner = stmt.with_only_columns(*[c.label(n) for c, n in zip(stmt.selected_columns, names)],
                                   maintain_column_froms=False)
    tpos = [c.key for c in spec.columns].index(spec.time_key)
    direction = " DESC" if f.order == "desc" else ""
    cells = ", ".join(cell_sql(col, f"q.{n}") for col, n in zip(spec.columns, names))
    return (f"SELECT {cells} FROM ({render(session, inner)}) AS q "
            f"ORDER BY q.c{tpos}{direction}, q.c0{direction}")


def render(session, stmt) -> str:
    """SQL text of ``stmt`` with its bound values as literals quoted by psycopg.

    ``render_postcompile`` expands IN lists into single parameters; the values go through
    the statement's own bind processors first (``UTCDateTime``: aware → naive UTC) —
    SQLAlchemy exposes these only as ``_bind_processors`` (2.0) — then
    ``ClientCursor.mogrify`` merges them as literals (COPY takes no bind parameters)."""
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    values = {k: (processors[k](v) if k in processors else v) for k, v in params.items()}
    raw = conn.connection.driver_connection
    return psycopg.ClientCursor(raw).mogrify(str(compiled), values)


def copy_rows(session, sql: str):
    """Bytes of the rows of ``COPY (sql) TO STDOUT WITH (FORMAT csv)``, CRLF-ended, in
    chunks of about ``FLUSH_BYTES`` — one chunk in memory at a time."""
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        # Shortest round-trip float digits (as Python's repr), and UTF-8 bytes whatever the
        # database's default client encoding: both for this transaction only.
        cur.execute("SET LOCAL extra_float_digits = 1")
        cur.execute("SET LOCAL client_encoding = 'UTF8'")
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            parts: list[bytes] = []
            size = 0
            for data in copy:
                row = bytes(data)
                parts.append(row[:-1])
                size += len(row)
                if size >= FLUSH_BYTES:
                    parts.append(b"")
                    yield b"\r\n".join(parts)
                    parts.clear()
                    size = 0
            if parts:
                parts.append(b"")
                yield b"\r\n".join(parts)


def csv_body(session, f, scope, header_bytes: bytes, python_rows):
    """Bytes of the CSV export through COPY: ``header_bytes`` (the BOM and header line of
    ``export.csv_stream``), then PostgreSQL's rows. Runs inside the streamed response
    (``stream_with_context``), on the request's session, after the export was logged and
    committed. Should the COPY fail before its first row, the rows come from
    ``python_rows()`` (the Python path) instead; a failure later ends the download early,
    as a failing query of the Python path would."""
    from lms.audit import export

    sql = export_sql(session, f, scope)
    rows = copy_rows(session, sql)
    try:
        first = next(rows, None)
    except psycopg.Error:
        session.rollback()
        yield from export.csv_stream(logsearch.SPECS[f.kind].columns, None, python_rows(), header_bytes=header_bytes)
        return
    yield header_bytes
    if first is not None:
        yield first
        yield from rows
