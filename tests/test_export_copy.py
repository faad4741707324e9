"""The inspectors' CSV export through PostgreSQL's COPY (REC-3, issue 6's export rate):
byte for byte the CSV of the Python writer (``export.csv_stream``) for every log and
filter, edge cells included; on SQLite the Python path serves."""
from __future__ import annotations

import json
import math
import random
import struct
from datetime import datetime, timedelta, timezone

import pytest

from conftest import TEST_DB, access_log, bearer
from lms.clock import KST
from log_world import LogWorld

PG = TEST_DB == "postgresql"
KINDS = ("access", "views", "view-events", "exams")
# A KST day boundary: 2026-09-03 00:00:00 KST = 2026-09-02 15:00:00 UTC.
MIDNIGHT = datetime(2026, 9, 3, 0, 0, tzinfo=KST).astimezone(timezone.utc)
EDGE_FLOATS = [0.0, -0.0, 12.0, 0.1, 1e-4, 9.999e-05, 1e-05, 1.5e-07, 123.456, 1e15, 1234567890123456.7,
               1e16, 1.862680848654615e+16, 3.76510649337012e+17, 1e22, 5e-324, 1.7976931348623157e308,
               0.30000000000000004, float("inf"), float("-inf"), float("nan")]
ANSWERS = [None, "관계형 데이터베이스", "=SUM(A1:A9)", "-3", "", 'say "hi", then\nbreak\r\nend\t☺',
           [1, 3], {"b": [1.5, None, True], "a": "é\u2028/\\", "0": {"x": []}}, -2, 1.0, 2.5e-07, 10 ** 20,
           False, "\x01ctl\x1f", {"z": 1, "a": 2}, [], {}, "   lead"]


@pytest.fixture
def world(app, users):
    w = LogWorld(app, users)
    _add_edge_rows(app, w)
    return w


def _add_edge_rows(app, w):
    """Korean text, NULLs, empty strings, formula-looking cells, JSON answers of every
    shape, float edge values, times on a KST day boundary with and without microseconds."""
    from lms.attendance.models import LessonView, ViewEvent
    from lms.audit.models import AccessLog
    from lms.db import db
    from lms.exams.models import AttemptEvent

    uid = w.ids["lea1"]
    with app.app_context():
        times = [MIDNIGHT, MIDNIGHT - timedelta(microseconds=1), MIDNIGHT + timedelta(microseconds=999_999),
                 MIDNIGHT + timedelta(seconds=1, microseconds=500_000), MIDNIGHT - timedelta(seconds=1)]
        texts = ["=1+1", "+82-10", "-rm", "@cmd", "\tTab", "\rCR", "", "정상, \"따옴표\"", "a\nb", "'quoted",
                 "한글 경로/강의", None]
        for n, at in enumerate(times * 3):
            t = texts[n % len(texts)]
            db.session.add(AccessLog(at=at, user_id=uid, username="lea1", role="learner", event="request",
                                     ip="10.1.2.3", device=t, method="POST", path=f"/x/{n}", course_id=w.course_a,
                                     session_id=None if n % 2 else n, detail=t, user_agent=texts[(n + 3) % len(texts)]))
        # SQLite stores NaN as NULL (credited_seconds is NOT NULL): NaN on PostgreSQL only.
        for n, value in enumerate(EDGE_FLOATS if PG else [v for v in EDGE_FLOATS if not math.isnan(v)]):
            at = MIDNIGHT + timedelta(minutes=n, microseconds=n * 7919)
            v = LessonView(learner_id=uid, lesson_id=w.lesson_a1, course_id=w.course_a, started_at=at,
                           ended_at=None if n % 3 == 0 else at + timedelta(seconds=n),
                           end_reason=texts[n % len(texts)], ip="10.1.2.3", device="=HYPERLINK(\"x\")",
                           credited_seconds=value, suspicious_excess_seconds=-value if n % 2 else 0.0,
                           last_heartbeat_at=None if n % 2 else at)
            db.session.add(v)
            db.session.flush()
            db.session.add(ViewEvent(view_id=v.id, learner_id=uid, lesson_id=w.lesson_a1, course_id=w.course_a,
                                     at=at, kind="heartbeat", ip="10.1.2.3", device=None,
                                     claimed=[[0.0, value if math.isfinite(value) else 1.0]], credited=None if n % 2
                                     else [[0, 10], [12.5, 20.25]], credited_seconds=value,
                                     excess_seconds=None if n % 2 else 1e-05, detail=texts[n % len(texts)]))
        for n, answer in enumerate(ANSWERS):
            db.session.add(AttemptEvent(attempt_id=1, exam_id=w.exam_a, learner_id=uid,
                                        at=MIDNIGHT + timedelta(seconds=n, microseconds=(n % 2) * 123_456),
                                        kind="answer", ip="10.1.2.3", answer=answer, attempt_item_id=n or None,
                                        detail=texts[n % len(texts)]))
        db.session.commit()
        db.session.remove()


QUERIES = {
    "access": ["", "order=desc", "user_id={lea1}&from=2026-09-02&to=2026-09-03", "ip=10.1.&event=request",
               "course_id={course}&week=1", "section_id={section}"],
    "views": ["", "order=desc", "course_id={course}&week=1", "from=2026-09-03&to=2026-09-03", "ip=10.1.2.3"],
    "view-events": ["", "order=desc", "course_id={course}&week=1&kind=heartbeat", "learner_id={lea1}"],
    "exams": ["", "order=desc", "exam_id={exam}", "kind=answer&from=2026-09-03"],
}


def _both(app, w, kind: str, query: str, header: str = "keys"):
    """(COPY bytes, Python bytes) of one export, computed in the app (no access-log row
    is written between the two)."""
    from werkzeug.datastructures import MultiDict

    from lms.audit import export, export_copy, logsearch
    from lms.audit.filters import parse_filters
    from lms.auth.models import ROLES
    from lms.db import db

    args = dict(p.split("=", 1) for p in query.format(lea1=w.ids["lea1"], course=w.course_a, section=w.section_a1,
                                                      exam=w.exam_a).split("&") if p)
    if header == "labels":
        args["header"] = "labels"
    with app.test_request_context():
        f = parse_filters(kind, MultiDict(args), roles=ROLES)
        scope = logsearch.resolve_scope(f, w.inst_a)
        spec = logsearch.SPECS[kind]
        head = [c.label for c in spec.columns] if header == "labels" else [c.key for c in spec.columns]
        python = b"".join(export.csv_stream(spec.columns, head, logsearch.stream_rows(f, scope)))
        db.session.rollback()
        assert export_copy.usable(db.session) is PG
        assert export_copy.usable(db.session, spec) is (PG and kind in ("access", "views"))
        copied = b"".join(export_copy.csv_body(db.session, f, scope, export.csv_header(head),
                                               lambda: pytest.fail("the COPY path fell back to Python"))) if PG else None
        db.session.remove()
    return copied, python


@pytest.mark.skipif(not PG, reason="COPY exists on PostgreSQL only; test_sqlite_exports_use_the_python_path covers SQLite")
@pytest.mark.parametrize("kind", KINDS)
def test_rec3_copy_csv_equals_python_csv_byte_for_byte(app, world, kind):
    """REC-3: for each log and several filters (none, descending, a learner's KST days, IP
    prefix, course week, class, event), the COPY export's bytes equal the Python writer's:
    BOM, header, KST times (day boundary, microseconds dropped), Korean text, NULLs,
    quoting, formula guards, floats as Python's repr and compact JSON."""
    for query in QUERIES[kind]:
        copied, python = _both(app, world, kind, query)
        assert python.count(b"\r\n") > 2, (kind, query)
        assert copied == python, (kind, query, _first_difference(copied, python))
    copied, python = _both(app, world, kind, "", header="labels")
    assert copied == python and python.startswith("\ufeff번호,".encode())


def _first_difference(a: bytes, b: bytes) -> str:
    la, lb = a.split(b"\r\n"), b.split(b"\r\n")
    for x, y in zip(la, lb):
        if x != y:
            return f"copy={x!r}\npython={y!r}"
    return f"lines {len(la)} vs {len(lb)}"


@pytest.mark.skipif(not PG, reason="PostgreSQL only")
def test_the_edge_cells_are_in_the_compared_exports(app, world):
    """The comparison above covers what it claims: guarded formulas, a time on the KST
    midnight, floats as ``12.0``/``1e-05``/``-0.0``/``nan``, compact JSON with Korean."""
    _, access = _both(app, world, "access", "")
    _, views = _both(app, world, "views", "")
    _, events = _both(app, world, "view-events", "")
    _, exams = _both(app, world, "exams", "")
    assert b",'=1+1," in access and b",'+82-10," in access and b"2026-09-03 00:00:00," in access
    assert b"2026-09-02 23:59:59," in access and '"정상, ""따옴표"""'.encode() in access
    for cell in (b",12.0,", b",-0.0,", b",nan,", b",inf,", b",1e-05,", b",1234567890123456.8,"):
        assert cell in views, cell
    assert b",1.862680848654615e+16," in views and b"[[0,10],[12.5,20.25]]" in events
    assert '"{""b"":[1.5,null,true],""a"":""é\u2028/\\\\"",""0"":{""x"":[]}}"'.encode() in exams
    assert b",'-2,\"a" in exams and b',"""=SUM(A1:A9)""",' in exams and b",100000000000000000000," in exams
    assert b',"""\\u0001ctl\\u001f""",' in exams and b',"{""z"":1,""a"":2}",' in exams


@pytest.mark.skipif(not PG, reason="PostgreSQL only")
def test_float_cells_match_python_repr_for_random_doubles(app):
    """The SQL float formatting equals ``repr`` for 30,000 doubles: random bit patterns,
    random magnitudes, integral values up to 10¹⁹ (PostgreSQL prints those differently)."""
    from sqlalchemy import text

    from lms.audit.export_copy import _json_number, _py_float
    from lms.db import db

    r = random.Random(6)
    values = []
    for _ in range(10_000):
        values.append((1 if r.random() < .5 else -1) * r.random() * 10 ** r.uniform(-320, 308))
        values.append(float(r.randint(0, 10 ** r.randint(1, 19))))
        values.append(struct.unpack("d", struct.pack("Q", r.getrandbits(64)))[0])
    values = [v for v in values if not math.isnan(v)]
    with app.app_context():
        got = db.session.execute(text(f"SELECT {_py_float('u.v')} FROM unnest(CAST(:v AS float8[])) "
                                      "WITH ORDINALITY AS u(v, o) ORDER BY u.o"), {"v": values}).scalars().all()
        assert [g for g, v in zip(got, values) if g != repr(v)] == []
        texts = ["0", "-0", "12", "-12.50", "1E5", "1e-7", "123456789012345678901234567890", "0.1e1"]
        got = db.session.execute(text(f"SELECT {_json_number('u.t')} FROM unnest(CAST(:t AS text[])) "
                                      "WITH ORDINALITY AS u(t, o) ORDER BY u.o"), {"t": texts}).scalars().all()
        assert got == [json.dumps(json.loads(t)) for t in texts]


@pytest.mark.skipif(not PG, reason="PostgreSQL only")
def test_rec6_copy_export_is_served_by_copy_and_logged_first(app, client, world):
    """Through the API on PostgreSQL the CSV comes from COPY (``X-LMS-Export-Path``), the
    ``inspector_export`` row is committed before the body is read, and the bytes equal the
    Python writer's; ``LMS_EXPORT_COPY=0`` switches the Python path on; view-events and
    exam evidence (JSON cells) are served by the Python writer."""
    token = world.token(client, "insp")
    before = len(access_log(app, "inspector_export"))
    url = f"/api/v1/logs/views?format=csv&course_id={world.course_a}"
    r = client.get(url, headers=bearer(token), buffered=False)
    assert r.status_code == 200 and r.headers["X-LMS-Export-Path"] == "copy"
    assert len(access_log(app, "inspector_export")) == before + 1  # committed, body not read yet
    copied = r.get_data()
    app.config["EXPORT_COPY"] = False
    try:
        r2 = client.get(url, headers=bearer(token))
        assert r2.headers["X-LMS-Export-Path"] == "python"
        assert r2.get_data() == copied and copied.count(b"\r\n") == len(EDGE_FLOATS) + 4
    finally:
        app.config["EXPORT_COPY"] = True

    def served_by(path):
        resp = client.get(path, headers=bearer(token))
        resp.get_data()  # a streamed body is read before the next request
        assert resp.status_code == 200
        return resp.headers["X-LMS-Export-Path"]

    assert served_by(url.replace("csv", "xlsx")) == "python"
    assert served_by("/api/v1/logs/access?format=csv&to=2026-09-30") == "copy"
    # Logs with JSON cells stay on the Python writer (export_copy.serves: faster there).
    assert served_by("/api/v1/logs/view-events?format=csv") == "python"
    assert served_by("/api/v1/logs/exams?format=csv") == "python"


@pytest.mark.skipif(PG, reason="the SQLite half of the pair; PostgreSQL runs the COPY tests")
def test_sqlite_exports_use_the_python_path(app, client, world):
    """On SQLite (no COPY) every CSV export is written by the Python writer, the same
    bytes ``export.csv_stream`` makes of the query's rows."""
    token = world.token(client, "insp")
    r = client.get(f"/api/v1/logs/exams?format=csv&exam_id={world.exam_a}", headers=bearer(token))
    assert r.status_code == 200 and r.headers["X-LMS-Export-Path"] == "python"
    _, python = _both(app, world, "exams", "exam_id={exam}")
    assert r.get_data() == python
    for kind in KINDS:
        copied, python = _both(app, world, kind, "")
        assert copied is None and python.count(b"\r\n") > 2


@pytest.mark.skipif(not PG, reason="PostgreSQL only (SQLite never takes the COPY path)")
def test_copy_failing_before_its_first_row_falls_back_to_the_python_rows(app, world, monkeypatch):
    """A COPY that fails before any row was sent (here: forced) is answered by the Python
    writer's rows after the same header: the download is still complete and identical."""
    import psycopg

    from lms.audit import export_copy

    _, python = _both(app, world, "access", "")

    def broken(session, sql):
        raise psycopg.errors.UntranslatableCharacter("forced")
        yield b""  # a generator, like copy_rows

    monkeypatch.setattr(export_copy, "copy_rows", broken)
    from werkzeug.datastructures import MultiDict

    from lms.audit import export, logsearch
    from lms.audit.filters import parse_filters
    from lms.auth.models import ROLES
    from lms.db import db

    with app.test_request_context():
        f = parse_filters("access", MultiDict({}), roles=ROLES)
        scope = logsearch.resolve_scope(f, world.inst_a)
        head = [c.key for c in logsearch.SPECS["access"].columns]
        body = b"".join(export_copy.csv_body(db.session, f, scope, export.csv_header(head),
                                             lambda: logsearch.stream_rows(f, scope)))
        db.session.remove()
    assert body == python and body.count(b"\r\n") > 60
