"""Viewing through the API (API.md "Viewing and attendance"): starting a view, heartbeats
verified against real time (ATT-4), presence challenges, one open view per learner, the
viewing log as append-only evidence (REC-1, REC-3).

Real time passes through the testing clock (its offset lives in Redis), never by sleeping.
"""
from __future__ import annotations

import http.client
import json
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from conftest import access_log, assert_api_error, bearer, set_clock, table_counts
from lms.clock import KST

STARTS = date(2027, 3, 2)  # week w opens at 00:00 KST of STARTS + 7·(w−1)
T0 = datetime(2027, 3, 2, 10, 0, tzinfo=KST)  # week 1, lessons of week 1 open


def ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


class World:
    """A course of ``weeks`` weeks from STARTS with ``per_week`` lessons of ``seconds`` each,
    an admin, and enrolled learners logged in — all at the testing clock's ``now``."""

    def __init__(self, app, client, users, *, now=T0, weeks=15, per_week=2, seconds=1500,
                 learners=("lea",), code="ATT1"):
        self.app, self.client, self.users = app, client, users
        self.now = now
        set_clock(app, now)
        users.create("admin1", "admin", name="관리자")
        self.admin = users.login(client, "admin1")
        r = client.post("/api/v1/courses", json={"code": code, "title": "출석 테스트", "credits": 3,
                                                 "starts_on": STARTS.isoformat(), "weeks": weeks,
                                                 "capacity": 100}, headers=bearer(self.admin))
        assert r.status_code == 201, r.get_json()
        self.course = r.get_json()
        self.lessons: dict[tuple[int, int], dict] = {}
        for w in range(1, weeks + 1):
            for i in range(per_week):
                r = client.post(f"/api/v1/courses/{self.course['id']}/lessons",
                                json={"week": w, "title": f"{w}주차 {i + 1}차시", "duration_seconds": seconds},
                                headers=bearer(self.admin))
                assert r.status_code == 201, r.get_json()
                self.lessons[(w, i)] = r.get_json()
        self.ids: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        self.seen: dict[str, datetime] = {"admin1": now}
        for name in learners:
            self.add_learner(name)

    def add_learner(self, name: str, enrol: bool = True) -> int:
        uid = self.users.create(name)
        self.ids[name] = uid
        if enrol:
            r = self.client.post(f"/api/v1/courses/{self.course['id']}/enrollments", json={"user_id": uid},
                                 headers=self.ah())
            assert r.status_code == 201, r.get_json()
        self.tokens[name] = self.users.login(self.client, name)
        self.seen[name] = self.now
        return uid

    def lesson(self, week: int, i: int = 0) -> dict:
        return self.lessons[(week, i)]

    def goto(self, when: datetime) -> None:
        """Move the testing clock forward to ``when`` (it runs on from there)."""
        assert when >= self.now - timedelta(seconds=1), "the tests' clock only moves forward"
        set_clock(self.app, when)
        self.now = when

    def _fresh(self, name: str) -> None:
        """Log ``name`` in again when their session would have idled out (30 minutes of
        testing-clock time); the clock is put back where it was, so logging in (real
        seconds of password hashing) takes no testing time."""
        if self.now - self.seen[name] >= timedelta(minutes=25):
            from lms import clock

            with self.app.app_context():
                at = clock.now()
            token = self.users.login(self.client, name)
            if name == "admin1":
                self.admin = token
            else:
                self.tokens[name] = token
            set_clock(self.app, at)
        self.seen[name] = self.now

    def h(self, name: str) -> dict:
        self._fresh(name)
        return bearer(self.tokens[name])

    def ah(self) -> dict:
        self._fresh("admin1")
        return bearer(self.admin)

    def start(self, name: str, lesson: dict):
        return self.client.post(f"/api/v1/lessons/{lesson['id']}/views", headers=self.h(name))

    def started(self, name: str, lesson: dict) -> dict:
        r = self.start(name, lesson)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def hb(self, name: str, view_id: int, segments):
        return self.client.post(f"/api/v1/views/{view_id}/heartbeat", json={"segments": segments},
                                headers=self.h(name))

    def beat(self, name: str, view_id: int, segments) -> dict:
        r = self.hb(name, view_id, segments)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def answer(self, name: str, view_id: int, cid: str, code: str):
        return self.client.post(f"/api/v1/views/{view_id}/challenge", json={"id": cid, "code": code},
                                headers=self.h(name))

    def end(self, name: str, view_id: int):
        return self.client.post(f"/api/v1/views/{view_id}/end", headers=self.h(name))

    def watch(self, name: str, lesson: dict, *, until: float, step: int = 10, view: dict | None = None,
              start_at: float = 0.0) -> dict:
        """Play ``lesson`` from ``start_at`` to ``until`` in real (testing-clock) time, a
        heartbeat every ``step`` seconds, answering any challenge. Returns the last answer."""
        if view is None:
            view = self.started(name, lesson)
            self.goto(ts(view["started_at"]))
        pos, last = start_at, None
        while pos < until:
            nxt = min(until, pos + step)
            self.goto(self.now + timedelta(seconds=nxt - pos))
            last = self.beat(name, view["view_id"], [[pos, nxt]])
            if "challenge" in last:
                ch = last["challenge"]
                assert self.answer(name, view["view_id"], ch["id"], ch["code"]).status_code == 200
            pos = nxt
        return last


def events(app, view_id=None, kind=None) -> list:
    from lms.attendance.models import ViewEvent
    from lms.db import db

    with app.app_context():
        stmt = select(ViewEvent).order_by(ViewEvent.id)
        if view_id is not None:
            stmt = stmt.where(ViewEvent.view_id == view_id)
        if kind is not None:
            stmt = stmt.where(ViewEvent.kind == kind)
        rows = db.session.scalars(stmt).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def view_row(app, view_id):
    from lms.attendance.models import LessonView
    from lms.db import db

    with app.app_context():
        row = db.session.get(LessonView, view_id)
        db.session.expunge_all()
        db.session.remove()
        return row


def progress_row(app, learner_id, lesson_id):
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        row = db.session.scalar(select(LessonProgress).where(LessonProgress.learner_id == learner_id,
                                                             LessonProgress.lesson_id == lesson_id))
        db.session.expunge_all()
        db.session.remove()
        return row


@pytest.fixture(autouse=True)
def _rate_one(app, monkeypatch):
    """Tests do not depend on LMS_* variables of the shell running them."""
    monkeypatch.setitem(app.config, "MAX_PLAYBACK_RATE", 1.0)


@pytest.fixture
def no_challenges(app, monkeypatch):
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 0.0)


@pytest.fixture
def world(app, client, users, no_challenges):
    return World(app, client, users)


# --- starting a view ------------------------------------------------------------------------

def test_start_view_answers_the_contract_fields(world):
    """API.md: 201 {view_id, position_seconds, ...} with the lesson, its duration, the
    maximum playback rate (LMS_MAX_PLAYBACK_RATE, default 1.0) and progress."""
    lesson = world.lesson(1)
    body = world.started("lea", lesson)
    assert isinstance(body["view_id"], int)
    assert body["position_seconds"] == 0.0
    assert body["lesson_id"] == lesson["id"]
    assert body["duration_seconds"] == 1500
    assert body["max_playback_rate"] == 1.0
    assert body["progress"] == 0.0 and body["completed"] is False and body["status"] == "pending"
    assert "challenge" not in body


def test_lesson_opens_at_midnight_kst_not_a_second_before(world):
    """ATT-1 / API.md: a week-2 lesson opens at 00:00 KST; at 23:59:59 the day before the
    view is refused with 409 lesson_not_open, at 00:00 it opens."""
    lesson = world.lesson(2)
    world.goto(datetime(2027, 3, 8, 23, 59, 59, tzinfo=KST))
    assert_api_error(world.start("lea", lesson), 409, "lesson_not_open")
    world.goto(datetime(2027, 3, 9, 0, 0, 0, tzinfo=KST))
    assert world.start("lea", lesson).status_code == 201


def test_only_enrolled_learners_may_view(world, app):
    """API.md: 403 for a learner not enrolled and for staff roles; 404 for an unknown
    lesson; nothing written."""
    world.add_learner("outsider", enrol=False)
    before = table_counts(app)
    assert_api_error(world.start("outsider", world.lesson(1)), 403, "forbidden")
    r = world.client.post(f"/api/v1/lessons/{world.lesson(1)['id']}/views", headers=world.ah())
    assert_api_error(r, 403, "forbidden")
    assert_api_error(world.client.post("/api/v1/lessons/999999/views", headers=world.h("lea")), 404, "not_found")
    after = table_counts(app)
    assert after["view_event"] == before["view_event"] == 0
    assert after["lesson_view"] == 0


# --- ATT-4: crediting against real time --------------------------------------------------------

def test_25_minutes_claimed_in_10_seconds_credits_only_about_10(world, app):
    """ATT-4: a heartbeat claiming the whole 25-minute lesson 10 s after the view started
    earns ~10 s: the heartbeat's budget is 10 s × rate 1.0 + 2 s slack, but a view is never
    credited more than the real time since it started (API.md). The rest is discarded
    and counted as the view's suspicious excess. Both claim and credit are in the log."""
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    body = world.beat("lea", view["view_id"], [[0, 1500]])
    assert 10.0 <= body["credited_seconds"] < 11.0
    assert body["covered_seconds"] == 10
    assert body["completed"] is False and body["progress"] < 0.01
    assert body["discarded_seconds"] == pytest.approx(1500 - body["credited_seconds"])
    row = view_row(app, view["view_id"])
    assert row.suspicious_excess_seconds == pytest.approx(1500 - body["credited_seconds"])
    assert row.credited_seconds == body["credited_seconds"]
    hb = events(app, view["view_id"], "heartbeat")
    assert len(hb) == 1
    assert hb[0].claimed == [[0.0, 1500.0]]
    assert hb[0].credited == [[0.0, body["credited_seconds"]]]
    assert hb[0].excess_seconds == pytest.approx(body["discarded_seconds"])


def test_slack_covers_jitter_between_heartbeats_but_never_adds_up(world):
    """ATT-4: the 2 s slack lets a heartbeat that arrives early still credit the 10 s played
    (jitter), yet a script sending heartbeats every 0.1 s cannot collect 2 s of slack each
    time: the view's credit stays within the real time since it started."""
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    start = ts(view["started_at"])
    world.goto(start + timedelta(seconds=10.5))
    assert world.beat("lea", vid, [[0, 10]])["credited_seconds"] == 10.0
    world.goto(start + timedelta(seconds=19.5))  # 9 s later, 10 s played: the slack covers it
    assert world.beat("lea", vid, [[10, 20]])["credited_seconds"] == pytest.approx(9.5, abs=0.3)
    pos = 20.0
    for i in range(20):  # 20 heartbeats 0.1 s apart, each claiming 2 s more
        world.goto(start + timedelta(seconds=19.6 + 0.1 * i))
        world.beat("lea", vid, [[pos, pos + 2]])
        pos += 2
    row = view_row(world.app, vid)
    elapsed = (world.now - start).total_seconds()
    assert row.credited_seconds <= elapsed + 0.5
    assert row.suspicious_excess_seconds >= 40 - 3


def test_reopening_views_earns_no_slack(world):
    """ATT-4: opening a new view for each heartbeat gains nothing: a fresh view has no
    credit until real time passes."""
    credited = 0.0
    for i in range(5):
        view = world.started("lea", world.lesson(1))
        credited += world.beat("lea", view["view_id"], [[2 * i, 2 * i + 2]])["credited_seconds"]
    assert credited < 1.0


def test_max_playback_rate_setting(world, app, monkeypatch):
    """ATT-4: with LMS_MAX_PLAYBACK_RATE 2.0, 10 s of real time credit ~20 s."""
    monkeypatch.setitem(app.config, "MAX_PLAYBACK_RATE", 2.0)
    view = world.started("lea", world.lesson(1))
    assert view["max_playback_rate"] == 2.0
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    body = world.beat("lea", view["view_id"], [[0, 100]])
    assert 20.0 <= body["credited_seconds"] < 21.0


def test_overlapping_and_out_of_order_segments(world):
    """ATT-4: overlapping and out-of-order spans credit each second once; re-watching earns
    nothing; seeking forward earns only what is played."""
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    assert world.beat("lea", vid, [[0, 10]])["intervals"] == [[0.0, 10.0]]
    world.goto(world.now + timedelta(seconds=30))
    body = world.beat("lea", vid, [[30, 40], [5, 15], [10, 20]])
    assert body["credited_seconds"] == 20.0
    assert body["intervals"] == [[0.0, 20.0], [30.0, 40.0]]
    assert body["covered_seconds"] == 30
    world.goto(world.now + timedelta(seconds=20))
    again = world.beat("lea", vid, [[0, 20], [35, 40]])
    assert again["credited_seconds"] == 0.0 and again["discarded_seconds"] == 0.0
    assert again["covered_seconds"] == 30
    world.goto(world.now + timedelta(seconds=10))
    seek = world.beat("lea", vid, [[900, 910]])  # seeked forward, played 10 s there
    assert seek["intervals"] == [[0.0, 20.0], [30.0, 40.0], [900.0, 910.0]]


BAD_BODIES = [
    '{"segments": [[-1, 10]]}',
    '{"segments": [[0, -5]]}',
    '{"segments": [[0, NaN]]}',
    '{"segments": [[NaN, 10]]}',
    '{"segments": [[0, Infinity]]}',
    '{"segments": [[-Infinity, 0]]}',
    '{"segments": [[0, 1e400]]}',
    '{"segments": [[0, 1' + "0" * 400 + ']]}',
    '{"segments": [[0, 1e12]]}',
    '{"segments": [[20, 10]]}',
    '{"segments": [["0", "10"]]}',
    '{"segments": [[true, 10]]}',
    '{"segments": [[null, 10]]}',
    '{"segments": [[0]]}',
    '{"segments": [[0, 1, 2]]}',
    '{"segments": [0, 10]}',
    '{"segments": "0-10"}',
    '{"segments": null}',
    '{}',
    '{"segments": [[0, 10]], "credited": 1500}',
    '[[0, 10]]',
    'not json',
    json.dumps({"segments": [[i, i + 1] for i in range(201)]}),
    # one bad span among good ones refuses the whole heartbeat
    '{"segments": [[0, 5], [5, 10], [10, -1]]}',
]


def test_bad_segments_are_400_and_store_nothing(world, app):
    """ATT-4: negative, NaN, Infinity, huge, from > to, non-numbers, malformed and too many
    (> 200) segments answer 400 invalid_request, and NOTHING is stored — not a viewing-log
    row, not a summary change (rows of every table counted before and after)."""
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    world.goto(ts(view["started_at"]) + timedelta(seconds=20))
    before = table_counts(app)
    row_before = view_row(app, vid)
    for body in BAD_BODIES:
        r = world.client.post(f"/api/v1/views/{vid}/heartbeat", data=body, content_type="application/json",
                              headers=world.h("lea"))
        assert_api_error(r, 400, "invalid_request")
    assert table_counts(app) == before
    row_after = view_row(app, vid)
    assert row_after.last_heartbeat_at is None and row_after.credited_seconds == 0.0
    assert row_after.suspicious_excess_seconds == row_before.suspicious_excess_seconds == 0.0
    assert [e.kind for e in events(app, vid)] == ["start"]
    # A good heartbeat afterwards is credited from the view's start (nothing was consumed).
    assert world.beat("lea", vid, [[0, 20]])["credited_seconds"] == 20.0


BAD_RAW_BODIES = [
    # (body, content type): what a JSON parser or the body's shape refuses
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),  # deeper than the recursion limit
    (b'{"segments": [[0, 1' + b"0" * 5000 + b']]}', "application/json"),  # past int()'s digit limit
    (b'{"segments": [[0, 10]], "\\ud800": 1}', "application/json"),  # a lone surrogate
    (b'{"segments": [[0, 10]]', "application/json"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b"42", "application/json"),
    (b'{"segments": [[0, 10]]}', "text/plain"),  # not JSON by its type: no body at all
    (b'{"segments": [[0, 10]], "segments2": []}', "application/json"),
]


def test_att4_heartbeat_bodies_checked_by_hand_are_400_and_store_nothing(world, app):
    """ATT-4: the heartbeat's body is checked without marshmallow, with the same answers —
    malformed, too deep, huge or otherwise unusable JSON, a body that is no object, a
    missing or unknown field, a non-JSON content type: 400 invalid_request naming the
    fields, nothing stored, the view's budget untouched."""
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    world.goto(ts(view["started_at"]) + timedelta(seconds=20))
    before = table_counts(app)
    for body, ctype in BAD_RAW_BODIES:
        r = world.client.post(f"/api/v1/views/{vid}/heartbeat", data=body, content_type=ctype,
                              headers=world.h("lea"))
        assert_api_error(r, 400, "invalid_request")
    err = assert_api_error(world.client.post(f"/api/v1/views/{vid}/heartbeat", json={"segments": [[5, 1]]},
                                             headers=world.h("lea")), 400, "invalid_request")
    assert err["fields"] == {"json": {"segments": ["segment 0: from_s must not exceed to_s"]}}
    err = assert_api_error(world.client.post(f"/api/v1/views/{vid}/heartbeat", json={"credited": 1},
                                             headers=world.h("lea")), 400, "invalid_request")
    assert err["fields"] == {"json": {"credited": ["Unknown field."],
                                      "segments": ["Missing data for required field."]}}
    assert table_counts(app) == before
    assert [e.kind for e in events(app, vid)] == ["start"]
    assert world.beat("lea", vid, [[0, 20]])["credited_seconds"] == 20.0


def test_att4_heartbeat_answer_has_the_contract_fields_and_types(world, app):
    """API.md / ATT-4: the answer is HeartbeatOut exactly — integer positions in, float
    seconds out (0.0, not 0, when nothing is credited), whole covered seconds, float
    interval ends — as the schema's serialisation gave it."""
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    r = world.hb("lea", vid, [[0, 10]])
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert set(body) == {"view_id", "progress", "completed", "credited_seconds", "discarded_seconds",
                         "covered_seconds", "duration_seconds", "status", "intervals"}
    assert body["view_id"] == vid and body["status"] == "pending" and body["completed"] is False
    assert body["intervals"] == [[0.0, 10.0]] and all(type(x) is float for x in body["intervals"][0])
    assert type(body["credited_seconds"]) is float and body["credited_seconds"] == 10.0
    assert type(body["covered_seconds"]) is int and body["covered_seconds"] == 10
    assert type(body["duration_seconds"]) is int and body["duration_seconds"] == 1500
    assert type(body["progress"]) is float and body["progress"] == pytest.approx(10 / 1500)
    again = world.beat("lea", vid, [[0, 10]])  # nothing new: nothing credited
    assert type(again["credited_seconds"]) is float and type(again["discarded_seconds"]) is float
    assert again["credited_seconds"] == 0.0 and again["progress"] == body["progress"]


def test_att4_heartbeat_input_and_answer_stay_documented(app):
    """The OpenAPI document still describes the heartbeat's body (HeartbeatIn) and answer
    (HeartbeatOut) though neither goes through marshmallow at run time."""
    with app.app_context():
        spec = app.spec
    op = spec["paths"]["/api/v1/views/{view_id}/heartbeat"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/HeartbeatIn")
    assert "segments" in spec["components"]["schemas"]["HeartbeatIn"]["properties"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/HeartbeatOut")
    assert "credited_seconds" in spec["components"]["schemas"]["HeartbeatOut"]["properties"]


def test_att4_heartbeat_recreates_a_missing_progress_row(world, app):
    """ATT-4: a view whose learner has no progress row of the lesson (removed by hand, say)
    still beats: the row is created and credited in the same heartbeat."""
    from lms.attendance.models import LessonProgress
    from lms.db import db

    view = world.started("lea", world.lesson(1))
    with app.app_context():
        db.session.execute(LessonProgress.__table__.delete())
        db.session.commit()
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    assert world.beat("lea", view["view_id"], [[0, 10]])["covered_seconds"] == 10
    p = progress_row(app, world.ids["lea"], world.lesson(1)["id"])
    assert p.intervals == [[0.0, 10.0]] and p.covered_seconds == 10 and p.status == "pending"


def test_att4_a_heartbeat_after_settling_keeps_the_status_and_its_time(world, app):
    """ATT-1/ATT-2/ATT-4: once the deadline has passed and the lesson is settled absent,
    later heartbeats still credit (and record a late completion) but neither the status
    nor the time it was settled changes; the recompute command agrees."""
    from lms.attendance import service
    from lms.db import db

    lesson = world.lesson(1)
    deadline = ts(lesson["attendance_deadline"])
    world.goto(deadline + timedelta(minutes=1))
    with app.app_context():
        service.settle_due()
        db.session.remove()
    view = world.started("lea", lesson)
    settled = progress_row(app, world.ids["lea"], lesson["id"])
    assert settled.status == "absent" and settled.settled_at is not None
    world.goto(ts(view["started_at"]) + timedelta(seconds=1500))
    body = world.beat("lea", view["view_id"], [[0, 1500]])
    assert body["completed"] is True and body["status"] == "absent"
    world.goto(world.now + timedelta(seconds=10))
    world.beat("lea", view["view_id"], [])
    p = progress_row(app, world.ids["lea"], lesson["id"])
    assert p.status == "absent" and p.settled_at == settled.settled_at and p.completed_at > deadline
    with app.app_context():
        result = service.recompute_course(world.course["id"], write=False)
        assert result.differences == [], result.summary()
        db.session.remove()


def test_empty_heartbeat_keeps_the_view_alive(world, app):
    """A heartbeat with no spans (paused player) is logged and credits nothing."""
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    body = world.beat("lea", view["view_id"], [])
    assert body["credited_seconds"] == 0.0 and body["progress"] == 0.0
    assert [e.kind for e in events(app, view["view_id"])] == ["start", "heartbeat"]


def test_watching_the_whole_lesson_completes_it(world, app):
    """ATT-1/ATT-4: played second by second in real time, the lesson reaches 100% and is
    attended before its deadline; the heartbeat answer says so."""
    last = world.watch("lea", world.lesson(1), until=1500, step=60)
    assert last["completed"] is True and last["progress"] == 1.0
    assert last["covered_seconds"] == 1500 and last["status"] == "attended"
    p = progress_row(app, world.ids["lea"], world.lesson(1)["id"])
    assert p.status == "attended" and p.completed_at is not None and p.settled_at == p.completed_at


# --- one open view per learner; ending; ownership ---------------------------------------------

def test_a_second_view_ends_the_first(world, app):
    """API.md: opening a new view ends the learner's other open views (end_reason
    'replaced', an 'end' event in the log); the first then answers 409 view_ended."""
    first = world.started("lea", world.lesson(1))
    world.goto(world.now + timedelta(seconds=5))
    second = world.started("lea", world.lesson(1, 1))
    old = view_row(app, first["view_id"])
    assert old.ended_at is not None and old.end_reason == "replaced"
    assert view_row(app, second["view_id"]).ended_at is None
    ends = events(app, first["view_id"], "end")
    assert len(ends) == 1 and ends[0].detail == "replaced"
    err = assert_api_error(world.hb("lea", first["view_id"], [[0, 5]]), 409, "view_ended")
    assert err["end_reason"] == "replaced"
    assert_api_error(world.end("lea", first["view_id"]), 409, "view_ended")
    world.goto(ts(second["started_at"]) + timedelta(seconds=5))
    assert world.beat("lea", second["view_id"], [[0, 5]])["credited_seconds"] == 5.0


def test_end_view_and_resume_position(world, app):
    """API.md: /end answers 200 and ends the view (REC-1 end time); the next view of the
    lesson resumes at the learner's last position."""
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]) + timedelta(seconds=30))
    world.beat("lea", view["view_id"], [[0, 30]])
    r = world.end("lea", view["view_id"])
    assert r.status_code == 200
    assert r.get_json()["end_reason"] == "ended"
    row = view_row(app, view["view_id"])
    assert row.ended_at is not None and row.end_reason == "ended"
    assert_api_error(world.end("lea", view["view_id"]), 409, "view_ended")
    again = world.started("lea", world.lesson(1))
    assert again["position_seconds"] == 30.0
    assert again["covered_seconds"] == 30
    other = world.started("lea", world.lesson(1, 1))
    assert other["position_seconds"] == 0.0


def test_only_the_views_learner_may_use_it(world, app):
    """Another learner gets 404 (the view is not revealed); staff get 403; nothing stored."""
    view = world.started("lea", world.lesson(1))
    world.add_learner("bob")
    before = table_counts(app)
    vid = view["view_id"]
    assert_api_error(world.hb("bob", vid, [[0, 5]]), 404, "not_found")
    assert_api_error(world.client.post(f"/api/v1/views/{vid}/end", headers=world.h("bob")), 404, "not_found")
    assert_api_error(world.client.post(f"/api/v1/views/{vid}/challenge", json={"id": "x", "code": "1"},
                                       headers=world.h("bob")), 404, "not_found")
    r = world.client.post(f"/api/v1/views/{vid}/heartbeat", json={"segments": []}, headers=world.ah())
    assert_api_error(r, 403, "forbidden")
    assert_api_error(world.hb("bob", 999999, [[0, 5]]), 404, "not_found")
    after = table_counts(app)
    assert after["view_event"] == before["view_event"]
    assert view_row(app, vid).ended_at is None


def test_idle_views_expire_at_their_last_sign_of_life(world, app):
    """REC-1: a view without a heartbeat for 30 minutes is ended ('expired') by the periodic
    job; its end time is its last heartbeat; it then answers 409 view_ended."""
    from lms.attendance.jobs import PERIODIC
    from lms.attendance.service import expire_idle_views

    assert (expire_idle_views, 60) in PERIODIC
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    world.beat("lea", view["view_id"], [[0, 10]])
    last = view_row(app, view["view_id"]).last_heartbeat_at
    world.goto(world.now + timedelta(minutes=29))
    with app.app_context():
        assert expire_idle_views() == 0
    world.goto(world.now + timedelta(minutes=2))
    with app.app_context():
        assert expire_idle_views() == 1
    row = view_row(app, view["view_id"])
    assert row.end_reason == "expired" and row.ended_at == last
    end = events(app, view["view_id"], "end")
    assert len(end) == 1 and end[0].detail == "expired" and end[0].at == last
    assert assert_api_error(world.hb("lea", view["view_id"], []), 409, "view_ended")["end_reason"] == "expired"


# --- evidence (REC-1, REC-3) ------------------------------------------------------------------

def test_viewing_log_records_every_step_with_ip_and_device(world, app):
    """REC-1/REC-3: start, each heartbeat (claimed and credited spans, credited seconds,
    excess) and the end are appended to the viewing log with IP and device; heartbeats stay
    out of the access log, while starting and ending a view are access-logged."""
    h = {**world.h("lea"), "X-LMS-Device": "AA:BB:CC:DD:EE:FF"}
    r = world.client.post(f"/api/v1/lessons/{world.lesson(1)['id']}/views", headers=h)
    view = r.get_json()
    vid = view["view_id"]
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    for seg in ([[0, 10]], [[10, 40]]):
        r = world.client.post(f"/api/v1/views/{vid}/heartbeat", json={"segments": seg}, headers=h)
        assert r.status_code == 200
        world.goto(world.now + timedelta(seconds=10))
    assert world.client.post(f"/api/v1/views/{vid}/end", headers=h).status_code == 200
    log = events(app, vid)
    assert [e.kind for e in log] == ["start", "heartbeat", "heartbeat", "end"]
    assert all(e.ip == "127.0.0.1" and e.device == "aa:bb:cc:dd:ee:ff" for e in log)
    assert all(e.learner_id == world.ids["lea"] and e.lesson_id == world.lesson(1)["id"] for e in log)
    assert log[1].credited == [[0.0, 10.0]] and log[1].credited_seconds == 10.0 and log[1].excess_seconds == 0.0
    # 20 s since the view started, 10 s credited before: 10 s more at most (ATT-4, API.md)
    assert log[2].claimed == [[10.0, 40.0]] and log[2].credited_seconds == pytest.approx(10.0, abs=0.5)
    assert log[2].excess_seconds == pytest.approx(20.0, abs=0.5)
    paths = [row["path"] for row in access_log(app, "request")]
    assert f"/api/v1/lessons/{world.lesson(1)['id']}/views" in paths
    assert f"/api/v1/views/{vid}/end" in paths
    assert not any(p.endswith("/heartbeat") for p in paths)


def test_concurrent_heartbeats_never_double_credit(world, app, live_server):
    """ATT-4 / REC-1: eight simultaneous heartbeats of one view claiming the same 100 s
    (after 100 s of real time) are serialised on the view's row: the span is credited once,
    the credited total never exceeds what real time allows, every heartbeat is logged."""
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    world.goto(ts(view["started_at"]) + timedelta(seconds=100))
    answers, barrier = [], threading.Barrier(8)
    body = json.dumps({"segments": [[0, 100]]})
    headers = {**world.h("lea"), "Content-Type": "application/json"}

    def send():
        conn = http.client.HTTPConnection(live_server.host, live_server.port, timeout=30)
        barrier.wait()
        conn.request("POST", f"/api/v1/views/{vid}/heartbeat", body=body, headers=headers)
        resp = conn.getresponse()
        answers.append((resp.status, json.loads(resp.read())))
        conn.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in answers] == [200] * 8, answers
    credited = sorted(b["credited_seconds"] for _, b in answers)
    assert credited[-1] == 100.0 and credited[:-1] == [0.0] * 7
    row = view_row(app, vid)
    assert row.credited_seconds == 100.0
    assert len(events(app, vid, "heartbeat")) == 8
    p = progress_row(app, world.ids["lea"], world.lesson(1)["id"])
    assert p.intervals == [[0.0, 100.0]] and p.covered_seconds == 100


def test_heartbeat_is_durable_when_answered(world, app, second_app):
    """REC-1: once a heartbeat is answered 200, another process (a second app instance over
    the same database) sees its credit and its log row."""
    from lms.attendance.models import LessonProgress, ViewEvent
    from lms.db import db

    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]) + timedelta(seconds=10))
    world.beat("lea", view["view_id"], [[0, 10]])
    with second_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ViewEvent)
                                 .where(ViewEvent.view_id == view["view_id"], ViewEvent.kind == "heartbeat")) == 1
        p = db.session.scalar(select(LessonProgress).where(LessonProgress.learner_id == world.ids["lea"]))
        assert p.covered_seconds == 10
        db.session.remove()


# --- presence challenges (ATT-4) ---------------------------------------------------------------

@pytest.fixture
def one_minute_challenges(app, monkeypatch):
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 1.0)
    monkeypatch.setitem(app.config, "CHALLENGE_MAX_MINUTES", 1.0)


def _play_until_challenge(world, vid, start_pos=0):
    pos = start_pos
    for _ in range(20):
        world.goto(world.now + timedelta(seconds=10))
        body = world.beat("lea", vid, [[pos, pos + 10]])
        pos += 10
        if "challenge" in body:
            return body, pos
    raise AssertionError("no challenge came")


def test_unanswered_challenge_blocks_credit_until_the_right_code(app, client, users, one_minute_challenges):
    """ATT-4: after a minute of playing (challenge interval 1–1 min) a heartbeat answer
    carries a challenge {id, code of 4–6 digits}; until it is answered nothing more is
    credited (heartbeats still 200, the challenge repeated); a wrong code is 422
    wrong_code and changes nothing; the right code answers {"ok": true} and credit resumes.
    Issue, failure and answer are in the viewing log."""
    world = World(app, client, users)
    view = world.started("lea", world.lesson(1))
    vid = view["view_id"]
    world.goto(ts(view["started_at"]))
    body, pos = _play_until_challenge(world, vid)
    assert pos == 60 and body["covered_seconds"] == 60  # the 60th second was still credited
    ch = body["challenge"]
    assert set(ch) == {"id", "code"} and ch["code"].isdigit() and 4 <= len(ch["code"]) <= 6

    for _ in range(3):
        world.goto(world.now + timedelta(seconds=10))
        blocked = world.beat("lea", vid, [[pos, pos + 10]])
        assert blocked["credited_seconds"] == 0.0 and blocked["covered_seconds"] == 60
        assert blocked["challenge"] == ch
    wrong = str((int(ch["code"]) + 1) % 10 ** len(ch["code"])).zfill(len(ch["code"]))
    assert_api_error(world.answer("lea", vid, ch["id"], wrong), 422, "wrong_code")
    assert_api_error(world.answer("lea", vid, "not-the-id", ch["code"]), 422, "wrong_code")
    world.goto(world.now + timedelta(seconds=10))
    assert world.beat("lea", vid, [[pos, pos + 10]])["credited_seconds"] == 0.0

    r = world.answer("lea", vid, ch["id"], ch["code"])
    assert r.status_code == 200 and r.get_json() == {"ok": True}
    assert_api_error(world.answer("lea", vid, ch["id"], ch["code"]), 409, "no_challenge")
    world.goto(world.now + timedelta(seconds=10))
    resumed = world.beat("lea", vid, [[pos, pos + 10]])
    assert resumed["credited_seconds"] == 10.0 and resumed["covered_seconds"] == 70
    assert "challenge" not in resumed
    kinds = [e.kind for e in events(app, vid)]
    assert kinds.count("challenge") == 1
    assert kinds.count("challenge_fail") == 2 and kinds.count("challenge_ok") == 1
    pending = [e for e in events(app, vid, "heartbeat") if e.detail == "challenge_pending"]
    assert len(pending) == 4 and all(e.credited == [] for e in pending)


def test_a_new_view_does_not_escape_a_pending_challenge(app, client, users, one_minute_challenges):
    """ATT-4: a learner who opens another view (even of another lesson) while a challenge
    is pending finds it pending there: nothing is credited until it is answered."""
    world = World(app, client, users)
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]))
    body, _ = _play_until_challenge(world, view["view_id"])
    ch = body["challenge"]
    fresh = world.started("lea", world.lesson(1, 1))
    assert fresh["challenge"] == ch
    world.goto(world.now + timedelta(seconds=10))
    assert world.beat("lea", fresh["view_id"], [[0, 10]])["credited_seconds"] == 0.0
    assert world.answer("lea", fresh["view_id"], ch["id"], ch["code"]).status_code == 200
    world.goto(world.now + timedelta(seconds=10))
    assert world.beat("lea", fresh["view_id"], [[0, 10]])["credited_seconds"] == 10.0


def test_challenges_off_with_zero_minutes(app, client, users, monkeypatch):
    """ATT-4: LMS_CHALLENGE_MIN_MINUTES=0 turns challenges off: a whole lesson played
    without one."""
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 0.0)
    world = World(app, client, users)
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]))
    pos = 0
    while pos < 1500:
        world.goto(world.now + timedelta(seconds=60))
        body = world.beat("lea", view["view_id"], [[pos, pos + 60]])
        assert "challenge" not in body
        pos += 60
    assert body["completed"] is True
    assert events(app, view["view_id"], "challenge") == []


def test_default_challenge_interval_is_8_to_15_minutes(app, client, users, monkeypatch):
    """ATT-4 defaults (8 and 15 minutes): the first challenge comes after 8–15 minutes of
    playing, never before."""
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 8.0)
    monkeypatch.setitem(app.config, "CHALLENGE_MAX_MINUTES", 15.0)
    world = World(app, client, users)
    view = world.started("lea", world.lesson(1))
    world.goto(ts(view["started_at"]))
    pos = 0
    while True:
        world.goto(world.now + timedelta(seconds=30))
        body = world.beat("lea", view["view_id"], [[pos, pos + 30]])
        pos += 30
        if "challenge" in body:
            break
        assert pos < 15 * 60
    assert 8 * 60 <= pos <= 15 * 60


def test_config_keys_are_read_from_the_environment(monkeypatch):
    """ATT-4 settings: LMS_MAX_PLAYBACK_RATE (default 1.0), LMS_CHALLENGE_MIN_MINUTES (8) and
    LMS_CHALLENGE_MAX_MINUTES (15), read when the configuration is loaded."""
    from config import load_config

    for name in ("LMS_MAX_PLAYBACK_RATE", "LMS_CHALLENGE_MIN_MINUTES", "LMS_CHALLENGE_MAX_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_config("testing")
    assert (cfg.MAX_PLAYBACK_RATE, cfg.CHALLENGE_MIN_MINUTES, cfg.CHALLENGE_MAX_MINUTES) == (1.0, 8.0, 15.0)
    monkeypatch.setenv("LMS_MAX_PLAYBACK_RATE", "1.5")
    monkeypatch.setenv("LMS_CHALLENGE_MIN_MINUTES", "0")
    monkeypatch.setenv("LMS_CHALLENGE_MAX_MINUTES", "0.5")
    cfg = load_config("testing")
    assert (cfg.MAX_PLAYBACK_RATE, cfg.CHALLENGE_MIN_MINUTES, cfg.CHALLENGE_MAX_MINUTES) == (1.5, 0.0, 0.5)
    monkeypatch.setenv("LMS_MAX_PLAYBACK_RATE", "fast")
    with pytest.raises(RuntimeError):
        load_config("testing")
