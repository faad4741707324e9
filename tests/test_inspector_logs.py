"""The inspectors' log search, exports and portal (REC-1, REC-3, REC-6): API.md's "Logs"
section, institution scope, keyset paging, filters, streamed CSV/XLSX, every search logged."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import openpyxl
import pytest

from conftest import access_log, assert_api_error, bearer, set_clock
from lms.clock import KST
from log_world import ACCESS_ROWS, LESSON_TITLE, NOW, STARTS, WEEK1, WEEK2, LogWorld

KINDS = ("access", "views", "view-events", "exams")


@pytest.fixture
def world(app, users):
    return LogWorld(app, users)


def get(client, token, path, status=200, **headers):
    r = client.get(path, headers={**bearer(token), **headers})
    r.get_data()  # a streamed body is read before the next request (its context stays open until then)
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:400])
    return r


def all_pages(client, token, path, limit=7):
    """Every entry of a search, following ``next``; also checks each ``prev``."""
    sep = "&" if "?" in path else "?"
    body = get(client, token, f"{path}{sep}limit={limit}").get_json()
    pages = [body]
    while body["next"]:
        body = get(client, token, f"{path}{sep}limit={limit}&cursor={body['next']}").get_json()
        pages.append(body)
    return [e for p in pages for e in p["entries"]], pages


# --- scope and roles -------------------------------------------------------------------

@pytest.mark.parametrize("role_user", ["lea1", "prof", "ta1"])
def test_rec6_learners_instructors_and_tas_get_403(app, client, world, role_user):
    """REC-6: the logs are for inspectors and admins; learners, instructors and TAs get 403
    on every log, JSON or CSV, and on the portal pages."""
    token = world.token(client, role_user)
    for kind in KINDS:
        assert_api_error(client.get(f"/api/v1/logs/{kind}", headers=bearer(token)), 403, "forbidden")
        assert_api_error(client.get(f"/api/v1/logs/{kind}?format=csv", headers=bearer(token)), 403, "forbidden")
    assert not access_log(app, "log_search") and not access_log(app, "inspector_search")


def test_rec6_portal_pages_refuse_other_roles(app, client, world):
    for name in ("lea1", "prof", "ta1"):
        c = app.test_client()
        _page_login(c, world, name)
        assert c.get("/inspect").status_code == 403
        assert c.get("/inspect/access?run=1").status_code == 403


def test_logs_need_a_session(client):
    for kind in KINDS:
        assert_api_error(client.get(f"/api/v1/logs/{kind}"), 401, "unauthorized")


def test_rec6_inspector_of_another_institution_sees_nothing(app, client, world):
    """An inspector of institution B sees none of A's rows, whatever the filters; A's course
    and class are not there for them (404)."""
    token = world.token(client, "inspb")
    a_users = {world.ids[n] for n in ("adm", "insp", "lea1", "lea2", "prof", "ta1")}
    access, _ = all_pages(client, token, "/api/v1/logs/access", limit=50)
    assert access and {e["user_id"] for e in access} <= {world.ids["leab"], world.ids["inspb"]}
    assert not a_users & {e["user_id"] for e in access}
    assert get(client, token, f"/api/v1/logs/access?user_id={world.ids['lea1']}").get_json() == \
        {"entries": [], "next": None, "prev": None}
    views = get(client, token, "/api/v1/logs/views?limit=500").get_json()["entries"]
    assert [v["learner_id"] for v in views] == [world.ids["leab"]]
    events = get(client, token, "/api/v1/logs/view-events?limit=500").get_json()["entries"]
    assert {e["course_id"] for e in events} == {world.course_b}
    exams = get(client, token, "/api/v1/logs/exams?limit=500").get_json()["entries"]
    assert [e["exam_id"] for e in exams] == [world.exam_b]
    assert get(client, token, f"/api/v1/logs/exams?exam_id={world.exam_a}").get_json()["entries"] == []
    for kind in KINDS:
        assert_api_error(client.get(f"/api/v1/logs/{kind}?course_id={world.course_a}", headers=bearer(token)),
                         404, "not_found")
        assert_api_error(client.get(f"/api/v1/logs/{kind}?section_id={world.section_a1}", headers=bearer(token)),
                         404, "not_found")
    csv_text = get(client, token, f"/api/v1/logs/views?format=csv").get_data(as_text=True)
    assert LESSON_TITLE not in csv_text and "다른 과정 1주차" in csv_text


def test_rec6_expired_inspector_session_ends(app, client, users, world):
    """REC-6: an inspector account with an expiry works until it and not a second after:
    the open session ends (401 session_expired) and the password step refuses (403)."""
    from lms.auth.models import User
    from lms.db import db

    expires = NOW + timedelta(minutes=20)  # inside the 30-minute idle limit
    with app.app_context():
        db.session.get(User, world.ids["insp"]).expires_at = expires
        db.session.commit()
    token = world.token(client, "insp")
    set_clock(app, expires - timedelta(seconds=1))
    get(client, token, "/api/v1/logs/access?limit=1")
    set_clock(app, expires + timedelta(seconds=1))
    assert_api_error(client.get("/api/v1/logs/access?limit=1", headers=bearer(token)), 401, "session_expired")
    ended = access_log(app, "session_expired")
    assert [e["detail"] for e in ended] == ["locked"] and ended[0]["user_id"] == world.ids["insp"]
    r = client.post("/api/v1/auth/login", json={"username": "insp", "password": users.passwords["insp"]})
    assert_api_error(r, 403, "account_expired")


# --- every search is logged --------------------------------------------------------------

def test_rec6_every_inspector_search_and_export_is_logged_before_rows_stream(app, client, world):
    token = world.token(client, "insp")
    get(client, token, f"/api/v1/logs/access?user_id={world.ids['lea1']}&from=2026-09-01&to=2026-09-07")
    get(client, token, f"/api/v1/logs/views?course_id={world.course_a}&week=1")
    get(client, token, f"/api/v1/logs/view-events?learner_id={world.ids['lea1']}")
    get(client, token, f"/api/v1/logs/exams?exam_id={world.exam_a}")
    searches = access_log(app, "inspector_search")
    assert [s["detail"] for s in searches] == [
        f"access user_id={world.ids['lea1']} from=2026-09-01 to=2026-09-07",
        f"views course_id={world.course_a} week=1",
        f"view-events learner_id={world.ids['lea1']}",
        f"exams exam_id={world.exam_a}",
    ]
    assert all(s["user_id"] == world.ids["insp"] and s["role"] == "inspector" and s["session_id"] for s in searches)
    # The export's row is committed before a single row is read: check it while the body
    # is still unread.
    r = client.get(f"/api/v1/logs/access?user_id={world.ids['lea1']}&format=csv", headers=bearer(token),
                   buffered=False)
    assert r.status_code == 200
    exports = access_log(app, "inspector_export")
    assert [e["detail"] for e in exports] == [f"access user_id={world.ids['lea1']} format=csv"]
    body = b"".join(r.response)
    r.close()
    assert body.startswith(b"\xef\xbb\xbf")
    get(client, token, f"/api/v1/logs/exams?format=xlsx")
    assert [e["detail"] for e in access_log(app, "inspector_export")][-1] == "exams format=xlsx"
    # A refused search (bad filter) is not a search: nothing written.
    before = len(access_log(app, "inspector_search"))
    assert_api_error(client.get("/api/v1/logs/access?user_id=x", headers=bearer(token)), 400, "invalid_request")
    assert len(access_log(app, "inspector_search")) == before


def test_admin_searches_are_logged_as_log_search(app, client, world):
    token = world.token(client, "adm")
    get(client, token, "/api/v1/logs/access?role=instructor")
    assert [s["detail"] for s in access_log(app, "log_search")] == ["access role=instructor"]


# --- API.md fields, filters and keyset paging ------------------------------------------------

def test_rec3_access_log_fields_filters_and_keyset_pages(app, client, world):
    token = world.token(client, "insp")
    lea1 = world.ids["lea1"]
    entries, pages = all_pages(client, token, f"/api/v1/logs/access?user_id={lea1}", limit=7)
    assert len(entries) == ACCESS_ROWS and len(pages) == 9  # 60 rows by 7 (the last page 4)
    assert all(p["next"] for p in pages[:-1]) and pages[-1]["next"] is None
    assert pages[0]["prev"] is None and all(p["prev"] for p in pages[1:])
    first = entries[0]
    assert {"at", "user_id", "role", "ip", "event"} <= set(first)
    assert first["at"] == "2026-09-01T01:00:00+09:00" and first["detail"] == "강의 목록"
    keys = [(datetime.fromisoformat(e["at"]), e["id"]) for e in entries]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # prev of a page leads back to the page before it.
    third = pages[2]
    back = get(client, token, f"/api/v1/logs/access?user_id={lea1}&limit=7&cursor={third['prev']}").get_json()
    assert back["entries"] == pages[1]["entries"]
    assert back["next"] and back["prev"]
    again = get(client, token, f"/api/v1/logs/access?user_id={lea1}&limit=7&cursor={back['next']}").get_json()
    assert again["entries"] == third["entries"]
    # Newest first.
    desc, _ = all_pages(client, token, f"/api/v1/logs/access?user_id={lea1}&order=desc", limit=11)
    assert [e["id"] for e in desc] == [e["id"] for e in reversed(entries)]
    # Newest first, paged back and forth the same way.
    dpages = [get(client, token, f"/api/v1/logs/access?user_id={lea1}&order=desc&limit=9").get_json()]
    while dpages[-1]["next"]:
        dpages.append(get(client, token, f"/api/v1/logs/access?user_id={lea1}&order=desc&limit=9"
                                         f"&cursor={dpages[-1]['next']}").get_json())
    assert [e["id"] for p in dpages for e in p["entries"]] == [e["id"] for e in desc]
    back = get(client, token, f"/api/v1/logs/access?user_id={lea1}&order=desc&limit=9&cursor={dpages[-1]['prev']}"
               ).get_json()
    assert back["entries"] == dpages[-2]["entries"]
    first = get(client, token, f"/api/v1/logs/access?user_id={lea1}&order=desc&limit=9&cursor={dpages[1]['prev']}"
                ).get_json()
    assert first["entries"] == dpages[0]["entries"] and first["prev"] is None
    # Ties on the time are broken by id, across a page boundary.
    lea2 = world.ids["lea2"]
    tied, _ = all_pages(client, token, f"/api/v1/logs/access?user_id={lea2}&event=request", limit=1)
    assert len(tied) == 2 and tied[0]["at"] == tied[1]["at"] and tied[0]["id"] < tied[1]["id"]


def test_rec3_access_filters_week_dates_ip_role_event_course_class(app, client, world):
    token = world.token(client, "insp")
    lea1 = world.ids["lea1"]
    base = f"/api/v1/logs/access?user_id={lea1}"

    def ids(query):
        entries, _ = all_pages(client, token, base + query, limit=500)
        return entries

    # Week 1 of course A (KST): the first 30 rows (1:00 … 6 days 2:00), none of week 2.
    week1 = ids(f"&course_id={world.course_a}&week=1")
    assert all(WEEK1 <= datetime.fromisoformat(e["at"]) < WEEK2 for e in week1)
    assert all(e["course_id"] == world.course_a for e in week1)  # course_id filters rows of the course
    in_week = [e for e in ids("") if WEEK1 <= datetime.fromisoformat(e["at"]) < WEEK2]
    assert len(in_week) == 30
    # The class filter is the class's members (any course); with a week it needs no course_id.
    assert len(ids(f"&section_id={world.section_a1}&week=1")) == 30
    assert ids(f"&section_id={world.section_a2}") == []
    # KST dates: from the first day's 00:00, to through the last day's end.
    assert len(ids("&from=2026-09-01&to=2026-09-01")) == 5  # 01:00, 06:00, 11:00, 16:00, 21:00
    assert len(ids("&from=2026-09-02&to=2026-09-02")) == 5
    # Time bounds to the second: `to` includes its instant, `from` too.
    assert len(ids("&from=2026-09-01T06:00:00%2B09:00&to=2026-09-01T11:00:00%2B09:00")) == 2
    assert len(ids("&from=2026-09-01T06:00:01%2B09:00&to=2026-09-01T10:59:59%2B09:00")) == 0
    # IP: exact, CIDR (on and off octet boundaries), prefix.
    assert len(ids("&ip=10.1.2.3")) == 30 and len(ids("&ip=10.1.9.9")) == 30
    assert len(ids("&ip=10.1.0.0/16")) == 60 and len(ids("&ip=10.1.0.0/21")) == 30  # 10.1.0–7.x
    assert len(ids("&ip=10.1.2.0/30")) == 30 and len(ids("&ip=10.1.")) == 60 and ids("&ip=10.2.") == []
    # Role and event.
    token_all = "/api/v1/logs/access?role=instructor&limit=500"
    assert [e["user_id"] for e in get(client, token, token_all).get_json()["entries"]] == [world.ids["prof"]]
    logins = get(client, token, "/api/v1/logs/access?event=login&to=2026-10-01").get_json()["entries"]
    assert {e["user_id"] for e in logins} == {world.ids["prof"], world.ids["ta1"], world.ids["lea2"]}


def test_rec3_views_fields_and_filters(app, client, world):
    """/logs/views: one entry per viewing session with API.md's fields; by learner, course,
    class, lesson week, lesson, IP and date range."""
    token = world.token(client, "insp")
    lea1 = world.ids["lea1"]
    r = get(client, token, f"/api/v1/logs/views?course_id={world.course_a}&learner_id={lea1}").get_json()
    assert [e["id"] for e in r["entries"]] == [world.views["lea1-w1"], world.views["lea1-w2"]]
    e = r["entries"][0]
    assert {"learner_id", "lesson_id", "ip", "started_at", "ended_at"} <= set(e)
    assert e["lesson_title"] == LESSON_TITLE and e["week"] == 1 and e["credited_seconds"] == 1500.0
    assert e["started_at"] == "2026-09-02T20:00:00+09:00" and e["ended_at"] == "2026-09-02T20:25:00+09:00"
    week1 = get(client, token, f"/api/v1/logs/views?course_id={world.course_a}&week=1").get_json()["entries"]
    assert [v["id"] for v in week1] == [world.views["lea1-w1"], world.views["lea2-w1"]]
    cls = get(client, token, f"/api/v1/logs/views?section_id={world.section_a2}").get_json()["entries"]
    assert [v["id"] for v in cls] == [world.views["lea2-w1"]]
    assert [v["id"] for v in get(client, token, "/api/v1/logs/views?ip=192.168.0.0/24").get_json()["entries"]] == \
        [world.views["lea2-w1"]]
    assert [v["id"] for v in get(client, token, f"/api/v1/logs/views?lesson_id={world.lesson_a2}")
            .get_json()["entries"]] == [world.views["lea1-w2"]]
    assert get(client, token, "/api/v1/logs/views?from=2026-09-10").get_json()["entries"][0]["id"] == \
        world.views["lea1-w2"]


def test_rec3_view_events_and_exam_evidence(app, client, world):
    token = world.token(client, "insp")
    lea1 = world.ids["lea1"]
    evs = get(client, token, f"/api/v1/logs/view-events?learner_id={lea1}&course_id={world.course_a}&week=1"
              ).get_json()["entries"]
    assert [e["kind"] for e in evs] == ["start", "heartbeat", "heartbeat", "end"]
    assert {e["view_id"] for e in evs} == {world.views["lea1-w1"]} and evs[1]["claimed"] == [[0, 10]]
    hb = get(client, token, f"/api/v1/logs/view-events?kind=heartbeat&view_id={world.views['lea2-w1']}"
             ).get_json()["entries"]
    assert len(hb) == 2 and all(e["kind"] == "heartbeat" for e in hb)
    ex = get(client, token, f"/api/v1/logs/exams?exam_id={world.exam_a}&learner_id={lea1}").get_json()["entries"]
    assert [e["kind"] for e in ex] == ["started", "answer", "incident", "submitted"]
    assert ex[1]["answer"] == "관계형 데이터베이스" and ex[2]["detail"] == "전체 화면 종료"
    assert ex[0]["exam_title"] == "중간고사" and ex[0]["course_id"] == world.course_a
    assert [e["kind"] for e in get(client, token, "/api/v1/logs/exams?kind=incident").get_json()["entries"]] == \
        ["incident"]
    assert get(client, token, f"/api/v1/logs/exams?course_id={world.course_a}&week=1").get_json()["entries"] == []
    assert len(get(client, token, f"/api/v1/logs/exams?course_id={world.course_a}&week=2").get_json()["entries"]) == 4


@pytest.mark.parametrize("query", [
    "user_id=abc", "user_id=0", "user_id=99999999999", "user_id=1&user_id=2", "from=2026-13-01",
    "from=2026-09-01T09:00:00", "to=yesterday", "from=2026-09-05&to=2026-09-01", "ip=999.1.1.1",
    "ip=10.1.0.0/33", "ip=2001:db8::/32", "ip=10.1", "week=3", "week=0&course_id=1", "limit=0", "limit=501",
    "order=up", "format=pdf", "role=king", "event=a%20b", "cursor=bm90LWEtY3Vyc29y", "cursor=%%%",
    "learner_id=1", "nonsense=1", "header=fancy",
])
def test_bad_filters_are_400_and_write_nothing(app, client, world, query):
    token = world.token(client, "insp")
    before = len(access_log(app))
    assert_api_error(client.get(f"/api/v1/logs/access?{query}", headers=bearer(token)), 400, "invalid_request")
    rows = access_log(app)
    assert len(rows) == before + 1 and rows[-1]["event"] == "request"  # only the request itself


def test_cursor_of_another_log_or_order_is_refused(app, client, world):
    token = world.token(client, "insp")
    page = get(client, token, "/api/v1/logs/access?limit=1").get_json()
    assert_api_error(client.get(f"/api/v1/logs/views?cursor={page['next']}", headers=bearer(token)),
                     400, "invalid_request")
    assert_api_error(client.get(f"/api/v1/logs/access?order=desc&cursor={page['next']}", headers=bearer(token)),
                     400, "invalid_request")
    r = client.get(f"/api/v1/logs/access?course_id={world.course_a}&week=16", headers=bearer(token))
    assert_api_error(r, 400, "invalid_request")


# --- exports ------------------------------------------------------------------------------

def _csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline="")))


@pytest.mark.parametrize("kind,query", [
    ("access", "user_id={lea1}&from=2026-09-03"),
    ("views", "course_id={course}"),
    ("view-events", "learner_id={lea1}&order=desc"),
    ("exams", "exam_id={exam}"),
])
def test_rec3_csv_export_equals_the_filtered_rows_with_korean_intact(app, client, world, kind, query):
    token = world.token(client, "insp")
    q = query.format(lea1=world.ids["lea1"], course=world.course_a, exam=world.exam_a)
    entries, _ = all_pages(client, token, f"/api/v1/logs/{kind}?{q}", limit=5)
    assert entries
    for r in (get(client, token, f"/api/v1/logs/{kind}?{q}&format=csv"),
              get(client, token, f"/api/v1/logs/{kind}?{q}", Accept="text/csv")):
        assert r.mimetype == "text/csv" and r.headers["Content-Disposition"].startswith("attachment;")
        rows = _csv_rows(r.get_data())
        header, data = rows[0], rows[1:]
        assert header[0] == "id" and len(data) == len(entries)
        assert [int(row[0]) for row in data] == [e["id"] for e in entries]
        for row, e in zip(data, entries):
            rec = dict(zip(header, row))
            for key, value in e.items():
                if value is None:
                    assert rec[key] == "", key
                elif key in ("at", "started_at", "ended_at", "last_heartbeat_at"):
                    assert rec[key] == datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
                elif isinstance(value, (list, dict)) or key == "answer":
                    import json
                    assert json.loads(rec[key]) == value
                else:
                    assert rec[key] == str(value), key
    text = r.get_data().decode("utf-8")
    korean = {"access": "강의 목록", "views": LESSON_TITLE, "view-events": "정상 시청", "exams": "관계형 데이터베이스"}
    assert korean[kind] in text or kind == "access" and "2026-09-03" in q


def test_rec3_csv_korean_headers_and_access_detail(app, client, world):
    token = world.token(client, "insp")
    r = get(client, token, f"/api/v1/logs/access?user_id={world.ids['lea1']}&to=2026-09-01&format=csv&header=labels")
    rows = _csv_rows(r.get_data())
    assert rows[0][:4] == ["번호", "일시", "사용자 번호", "아이디"]
    assert rows[1][rows[0].index("내용")] == "강의 목록" and len(rows) == 1 + 5


def test_rec3_xlsx_export_equals_the_filtered_rows(app, client, world):
    token = world.token(client, "insp")
    q = f"course_id={world.course_a}"
    entries, _ = all_pages(client, token, f"/api/v1/logs/views?{q}", limit=2)
    r = get(client, token, f"/api/v1/logs/views?{q}&format=xlsx&header=labels")
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    wb = openpyxl.load_workbook(io.BytesIO(r.get_data()))
    ws = wb.worksheets[0]
    values = list(ws.iter_rows(values_only=True))
    header, data = values[0], values[1:]
    assert header[0] == "번호" and "차시명" in header
    assert [row[0] for row in data] == [e["id"] for e in entries]
    title_col = header.index("차시명")
    start_col = header.index("시작")
    for row, e in zip(data, entries):
        assert row[title_col] == e["lesson_title"]
        assert row[start_col] == datetime.fromisoformat(e["started_at"]).replace(tzinfo=None)
    assert data[0][title_col] == LESSON_TITLE
    # Accept negotiation gives the same workbook.
    r2 = get(client, token, f"/api/v1/logs/views?{q}",
             Accept="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    ws2 = openpyxl.load_workbook(io.BytesIO(r2.get_data())).worksheets[0]
    assert [row[0] for row in ws2.iter_rows(min_row=2, values_only=True)] == [e["id"] for e in entries]


def test_empty_exports_have_the_header_only(app, client, world):
    token = world.token(client, "insp")
    assert _csv_rows(get(client, token, "/api/v1/logs/exams?kind=nothing&format=csv").get_data())[1:] == []
    wb = openpyxl.load_workbook(io.BytesIO(get(client, token, "/api/v1/logs/exams?kind=nothing&format=xlsx").get_data()))
    assert list(wb.worksheets[0].iter_rows(values_only=True))[0][0] == "id"


def test_xlsx_stream_continues_on_a_new_sheet_past_the_row_limit():
    """Excel's sheet holds 1,048,576 rows: the stream starts a new sheet (header again)."""
    from lms.audit.export import xlsx_stream
    from lms.audit.logsearch import SPECS

    spec = SPECS["access"]
    t = datetime(2026, 9, 1, tzinfo=timezone.utc)
    rows = [(n, t + timedelta(seconds=n), 1, "홍길동", "learner", "request", "10.0.0.1", None, "GET", "/=1+1",
             None, None, "<&>\x01", None) for n in range(1, 26)]
    body = b"".join(xlsx_stream(spec.columns, [c.key for c in spec.columns], iter(rows), title="접속 기록",
                                max_sheet_rows=10))
    wb = openpyxl.load_workbook(io.BytesIO(body))
    assert wb.sheetnames == ["접속 기록", "접속 기록 2", "접속 기록 3"]
    got = [r for ws in wb.worksheets for r in ws.iter_rows(min_row=2, values_only=True)]
    assert [r[0] for r in got] == list(range(1, 26))
    assert got[0][3] == "홍길동" and got[0][9] == "/=1+1" and got[0][12] == "<&>\ufffd"
    assert got[24][1] == datetime(2026, 9, 1, 9, 0, 25)


def test_csv_cells_never_start_a_formula():
    from lms.audit.export import csv_stream
    from lms.audit.logsearch import Column

    body = b"".join(csv_stream((Column("a", "a"), Column("b", "b", "int")), ["a", "b"], iter([("=1+1", 2), ("x", None)])))
    assert _csv_rows(body) == [["a", "b"], ["'=1+1", "2"], ["x", ""]]


# --- filters (pure) --------------------------------------------------------------------------

def test_filter_time_ranges_are_kst_days_and_weeks():
    from lms.audit.filters import kst_day_start, parse_time, week_range

    assert parse_time("from", "2026-09-01", end=False) == datetime(2026, 8, 31, 15, 0, tzinfo=timezone.utc)
    assert parse_time("to", "2026-09-01", end=True) == datetime(2026, 9, 1, 15, 0, tzinfo=timezone.utc)
    assert parse_time("to", "2026-09-01T09:00:00+09:00", end=True) == \
        datetime(2026, 9, 1, 0, 0, 0, 1, tzinfo=timezone.utc)
    start, end = week_range(STARTS, 2)
    assert start == kst_day_start(date(2026, 9, 8)) and end - start == timedelta(days=7)


def test_filter_ip_ranges_become_prefixes_or_addresses():
    from lms.audit.filters import FilterError, parse_ip

    assert parse_ip("10.1.0.0/16").prefixes == ("10.1.",)
    assert parse_ip("10.1.0.0/21").prefixes == tuple(f"10.1.{n}." for n in range(8))
    assert parse_ip("10.0.0.0/7").prefixes == ("10.", "11.")
    assert parse_ip("10.1.2.0/30").exact == ("10.1.2.0", "10.1.2.1", "10.1.2.2", "10.1.2.3")
    assert parse_ip("10.1.2.3").exact == ("10.1.2.3",) and parse_ip("2001:db8::1").exact == ("2001:db8::1",)
    assert parse_ip("10.1.").prefixes == ("10.1.",)
    assert len(parse_ip("0.0.0.0/1").prefixes) == 128
    for bad in ("10.01.", "256.", "1.2.3.4.", "x", "10.1.0.0/40", "::/64"):
        with pytest.raises(FilterError):
            parse_ip(bad)


def test_cursor_round_trip_and_tampering():
    from lms.audit.filters import Cursor, FilterError, decode_cursor, encode_cursor

    c = Cursor("views", "asc", datetime(2026, 9, 1, 1, 2, 3, 456, tzinfo=timezone.utc), 42, True)
    assert decode_cursor(encode_cursor(c), "views", "asc") == c
    with pytest.raises(FilterError):
        decode_cursor(encode_cursor(c), "access", "asc")
    with pytest.raises(FilterError):
        decode_cursor("W10", "views", "asc")


# --- pages -------------------------------------------------------------------------------

def _csrf(resp) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True)).group(1)


def _page_login(c, world, name):
    r = c.post("/login", data={"csrf_token": _csrf(c.get("/login")), "username": name,
                               "password": world.users.passwords[name]})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    r = c.post("/login/otp", data={"csrf_token": _csrf(c.get("/login/otp")), "code": world.users.code(name)})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]


def test_rec6_portal_home_and_search_page(app, client, world):
    c = app.test_client()
    _page_login(c, world, "insp")
    home = c.get("/inspect").get_data(as_text=True)
    assert "데이터베이스 개론" in home and "다른 과정" not in home and "1분반" in home
    r = c.get(f"/inspect/views?run=1&username=lea1&course_id={world.course_a}&week=1")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and LESSON_TITLE in page and f'data-row-id="{world.views["lea1-w1"]}"' in page
    assert f'data-row-id="{world.views["lea2-w1"]}"' not in page
    assert "format=csv" in page and "header=labels" in page and f"learner_id={world.ids['lea1']}" in page
    assert access_log(app, "inspector_search")[-1]["detail"] == \
        f"views learner_id={world.ids['lea1']} course_id={world.course_a} week=1"
    # Paging on the page: 60 access rows of lea1, 50 per page.
    p1 = c.get(f"/inspect/access?run=1&user_id={world.ids['lea1']}").get_data(as_text=True)
    assert p1.count("data-row-id=") == 50 and 'data-testid="page-next"' in p1 and 'data-testid="page-prev"' not in p1
    bad = c.get("/inspect/access?run=1&ip=nope")
    assert bad.status_code == 400 and "ip" in bad.get_data(as_text=True)
    unknown = c.get("/inspect/access?run=1&username=nobody")
    assert unknown.status_code == 400 and "그런 아이디가 없습니다" in unknown.get_data(as_text=True)
    assert c.get("/inspect/nothing").status_code == 404


def test_rec6_admin_creates_an_inspector_with_an_expiry_date(app, client, world):
    from lms.auth.models import User
    from lms.db import db

    c = app.test_client()
    _page_login(c, world, "adm")
    token = _csrf(c.get("/admin/users/new"))
    r = c.post("/admin/users/new", data={"csrf_token": token, "username": "inspector9", "name": "감사관",
                                         "password": "long-enough-pass-1", "role": "inspector",
                                         "expires_on": "2026-12-31"})
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    with app.app_context():
        u = db.session.scalar(db.select(User).where(User.username == "inspector9"))
        assert u.role == "inspector"
        assert u.expires_at == datetime(2027, 1, 1, 0, 0, tzinfo=KST)  # through 31 December (KST)
    r = c.post("/admin/users/new", data={"csrf_token": token, "username": "inspector8", "name": "감사관",
                                         "password": "long-enough-pass-1", "role": "inspector",
                                         "expires_on": "2026-10-19"})
    assert r.status_code == 400 and "이미 지났습니다" in r.get_data(as_text=True)
