"""Attendance, automatically (ATT-1, ATT-2, ATT-5): statuses stored when a lesson is
completed in time, settled at the deadline by a real RQ worker (testing clock in Redis),
excuses read in, and the recompute command rebuilding everything from the viewing log
(REC-1) to exactly the stored result."""
from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from conftest import FLASK, ROOT, start_lms_process, stop_process
from lms.clock import KST
from test_heartbeat import World, events, progress_row, ts

D1 = datetime(2027, 3, 16, 0, 0, tzinfo=KST)  # ATT-1 deadline of week-1 lessons (opened 03-02)
D15 = datetime(2027, 6, 15, 0, 0, tzinfo=KST)  # last week (opened 06-08): 24:00 of 06-14
SEC = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _no_challenges(app, monkeypatch):
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 0.0)
    monkeypatch.setitem(app.config, "MAX_PLAYBACK_RATE", 1.0)


def statuses(app, course_id) -> dict:
    """{(learner_id, lesson_id): (status, completed_at)} as stored."""
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        out = {(p.learner_id, p.lesson_id): (p.status, p.completed_at) for p in db.session.scalars(
            select(LessonProgress).where(LessonProgress.course_id == course_id))}
        db.session.remove()
        return out


def approve_excuse(app, learner_id, course_id, lesson_ids, status="approved"):
    """An excuse request as the excuse workflow leaves it (ATT-5), then ``settle_learner``
    as that workflow calls it after a decision."""
    from lms import clock
    from lms.attendance.models import ExcuseLesson, ExcuseRequest
    from lms.attendance.service import settle_learner
    from lms.db import db

    with app.app_context():
        req = ExcuseRequest(learner_id=learner_id, course_id=course_id, reason="hospitalisation",
                            status=status, created_at=clock.now(), decided_at=clock.now())
        db.session.add(req)
        db.session.flush()
        for lid in lesson_ids:
            db.session.add(ExcuseLesson(request_id=req.id, lesson_id=lid))
        db.session.commit()
        settle_learner(course_id, learner_id)
        db.session.remove()


def settle(app, now=None) -> int:
    from lms.attendance.service import settle_due

    with app.app_context():
        n = settle_due(now)
        from lms.db import db

        db.session.remove()
        return n


def complete_at(world, name, lesson, when):
    """Start a view 1500 s before ``when`` and claim the whole lesson at ``when``: the real
    time passed allows it all, so ``when`` is the completion instant."""
    world.goto(when - timedelta(seconds=lesson["duration_seconds"]))
    view = world.started(name, lesson)
    world.goto(when)
    body = world.beat(name, view["view_id"], [[0, lesson["duration_seconds"]]])
    return body


# --- ATT-1 at the deadline --------------------------------------------------------------------

def test_completion_one_second_before_and_after_the_deadline(app, client, users):
    """ATT-1/ATT-2: completed at deadline −1 s → attended at once (and stays so when
    settled); completed at deadline +1 s → absent, the late completion recorded but never
    turning the absence into attendance; never watched → absent once settled."""
    world = World(app, client, users, learners=("early", "late", "idle"))
    lesson = world.lesson(1)
    world.goto(D1 - timedelta(seconds=1501))
    v_early = world.started("early", lesson)
    world.goto(D1 - timedelta(seconds=1499))
    v_late = world.started("late", lesson)
    world.goto(D1 - SEC)
    body = world.beat("early", v_early["view_id"], [[0, 1500]])
    assert body["completed"] is True and body["status"] == "attended"
    assert world.beat("idle", world.started("idle", lesson)["view_id"], [])["status"] == "pending"
    world.goto(D1 + SEC)
    body = world.beat("late", v_late["view_id"], [[0, 1500]])
    assert body["completed"] is True and body["status"] == "absent"

    early = progress_row(app, world.ids["early"], lesson["id"])
    late = progress_row(app, world.ids["late"], lesson["id"])
    assert early.completed_at < D1 and early.status == "attended"
    assert late.completed_at > D1 and late.status == "absent"

    world.goto(D1 + timedelta(minutes=5))
    settle(app)
    got = statuses(app, world.course["id"])
    assert got[(world.ids["early"], lesson["id"])][0] == "attended"
    assert got[(world.ids["late"], lesson["id"])] == ("absent", late.completed_at)
    assert got[(world.ids["idle"], lesson["id"])] == ("absent", None)
    # Week 1's other lesson: nobody watched it — absent for all; week 2: not due, no rows.
    for name in ("early", "late", "idle"):
        assert got[(world.ids[name], world.lesson(1, 1)["id"])] == ("absent", None)
        assert (world.ids[name], world.lesson(2)["id"]) not in got


def test_completion_exactly_at_the_deadline_counts(app, client, users, monkeypatch):
    """ATT-1: completion *at* the deadline instant still counts. (The running testing clock
    cannot land a request on an exact instant, so this one freezes ``lms.clock.now``.)"""
    from lms import clock

    world = World(app, client, users)
    lesson = world.lesson(1)
    frozen = {"t": D1 - timedelta(seconds=1500)}
    monkeypatch.setattr(clock, "now", lambda: frozen["t"].astimezone(timezone.utc))
    world.now = frozen["t"]
    view = world.started("lea", lesson)
    assert ts(view["started_at"]) == D1 - timedelta(seconds=1500)
    frozen["t"] = D1
    body = world.beat("lea", view["view_id"], [[0, 1500]])
    assert body["completed"] is True and body["status"] == "attended"
    assert progress_row(app, world.ids["lea"], lesson["id"]).completed_at == D1
    frozen["t"] = D1 + SEC
    settle(app)
    assert statuses(app, world.course["id"])[(world.ids["lea"], lesson["id"])] == ("attended", D1)


def test_last_week_lessons_are_due_at_the_end_of_that_week(app, client, users):
    """ATT-1 last week: a week-15 lesson (opened 06-08) is due at 24:00 KST of the course's
    last day (06-14), not 14 days after opening: complete at 23:59:59 → attended; at
    00:00:01 the next day → absent."""
    world = World(app, client, users, learners=("early", "late"))
    lesson = world.lesson(15)
    assert lesson["attendance_deadline"] == "2027-06-15T00:00:00+09:00"
    world.goto(D15 - timedelta(seconds=1501))
    v_early = world.started("early", lesson)
    world.goto(D15 - timedelta(seconds=1499))
    v_late = world.started("late", lesson)
    world.goto(datetime(2027, 6, 14, 23, 59, 59, tzinfo=KST))
    assert world.beat("early", v_early["view_id"], [[0, 1500]])["status"] == "attended"
    world.goto(datetime(2027, 6, 15, 0, 0, 1, tzinfo=KST))
    assert world.beat("late", v_late["view_id"], [[0, 1500]])["status"] == "absent"
    settle(app)
    got = statuses(app, world.course["id"])
    assert got[(world.ids["early"], lesson["id"])][0] == "attended"
    assert got[(world.ids["late"], lesson["id"])][0] == "absent"


# --- ATT-5 --------------------------------------------------------------------------------------

def test_approved_excuses_count_as_excused_unless_attended(app, client, users):
    """ATT-5: lessons covered by an APPROVED excuse are excused (at once, via
    settle_learner, and when settled at the deadline) — unless the learner attends anyway;
    pending and rejected requests change nothing."""
    world = World(app, client, users, learners=("exc", "pend", "rej"))
    l1, l2 = world.lesson(1), world.lesson(1, 1)
    cid = world.course["id"]
    approve_excuse(app, world.ids["exc"], cid, [l1["id"], l2["id"]])
    approve_excuse(app, world.ids["pend"], cid, [l1["id"]], status="pending")
    approve_excuse(app, world.ids["rej"], cid, [l1["id"]], status="rejected")
    got = statuses(app, cid)
    assert got[(world.ids["exc"], l1["id"])][0] == "excused"
    assert got[(world.ids["exc"], l2["id"])][0] == "excused"
    assert (world.ids["pend"], l1["id"]) not in got  # still pending: no row needed
    # The excused learner watches lesson 1 in time after all: attended beats excused.
    world.watch("exc", l1, until=1500, step=300)
    assert progress_row(app, world.ids["exc"], l1["id"]).status == "attended"
    world.goto(D1 + timedelta(minutes=1))
    settle(app)
    got = statuses(app, cid)
    assert got[(world.ids["exc"], l1["id"])][0] == "attended"
    assert got[(world.ids["exc"], l2["id"])][0] == "excused"
    assert got[(world.ids["pend"], l1["id"])][0] == "absent"
    assert got[(world.ids["rej"], l1["id"])][0] == "absent"
    # An excuse approved after the deadline turns the absence into an excused one.
    approve_excuse(app, world.ids["rej"], cid, [l1["id"]])
    assert statuses(app, cid)[(world.ids["rej"], l1["id"])][0] == "excused"


def test_settle_due_touches_only_due_lessons_and_is_idempotent(app, client, users):
    """ATT-2: before a deadline nothing is settled; after it each learner×lesson is settled
    once; a second run changes nothing."""
    world = World(app, client, users, learners=("amy", "abe"))
    world.goto(D1 - timedelta(minutes=1))
    assert settle(app) == 0
    world.goto(D1 + timedelta(minutes=1))
    out = app.test_cli_runner().invoke(args=["lms", "attendance", "settle"])
    assert out.exit_code == 0 and "settled 4 " in out.output, out.output  # 2 learners × 2 week-1 lessons
    assert settle(app) == 0
    got = statuses(app, world.course["id"])
    assert sorted(s for s, _ in got.values()) == ["absent"] * 4


# --- through a real RQ worker -------------------------------------------------------------------

def test_settled_at_the_deadline_by_a_real_rq_worker(app, client, users, test_env, tmp_path):
    """ATT-2: the periodic settle job (lms/attendance/jobs.py, every 60 s) enqueued and run
    by `flask lms worker --burst` in another process, whose clock is the testing clock
    (offset in Redis): at deadline +1 min the learner who completed in time is attended,
    the one who did not is absent — stored, not computed per request."""
    from lms.attendance.jobs import PERIODIC
    from lms.attendance.service import settle_due
    from lms.jobs import enqueue, periodic_jobs

    assert (settle_due, 60) in PERIODIC and (settle_due, 60) in periodic_jobs()
    world = World(app, client, users, learners=("done", "missed"))
    lesson = world.lesson(1)
    complete_at(world, "done", lesson, D1 - timedelta(hours=1))
    world.watch("missed", lesson, until=600, step=300)  # 40% only
    world.goto(D1 + timedelta(minutes=1))
    before = statuses(app, world.course["id"])
    assert before[(world.ids["missed"], lesson["id"])][0] == "pending"
    with app.app_context():
        job = enqueue(settle_due)

    log = tmp_path / "worker.log"
    proc = start_lms_process(["worker", "--burst"], test_env, log)
    try:
        rc = proc.wait(timeout=120)
    finally:
        stop_process(proc)
    assert rc == 0, log.read_text()
    with app.app_context():
        job.refresh()
        assert job.get_status() == "finished", log.read_text()
        assert job.return_value() == 3  # missed: lesson 1 absent; both: lesson (1, 1) absent

    got = statuses(app, world.course["id"])
    assert got[(world.ids["done"], lesson["id"])][0] == "attended"
    assert got[(world.ids["missed"], lesson["id"])] == ("absent", None)
    assert got[(world.ids["done"], world.lesson(1, 1)["id"])] == ("absent", None)
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        row = db.session.scalar(select(LessonProgress).where(LessonProgress.learner_id == world.ids["missed"],
                                                             LessonProgress.lesson_id == lesson["id"]))
        # Settled at the worker's (testing) clock: just after the deadline, not real time.
        assert D1 < row.settled_at < D1 + timedelta(minutes=10)
        db.session.remove()


# --- recompute from the viewing log --------------------------------------------------------------

def _snapshot(app, course_id):
    from lms.attendance.service import snapshot_course
    from lms.db import db

    with app.app_context():
        snap = snapshot_course(course_id)
        db.session.remove()
        return snap


def _recompute_cli(test_env, course_id, *extra):
    return subprocess.run([str(FLASK), "--app", "wsgi", "lms", "attendance", "recompute",
                           "--course", str(course_id), *extra], cwd=ROOT, env={**os.environ, **test_env},
                          capture_output=True, text=True, timeout=120)


def test_recompute_reproduces_the_stored_result(app, client, users, test_env, monkeypatch):
    """ATT-2 / REC-1: after live traffic — full and partial viewing, claims beyond real time,
    presence challenges, replaced and expired views, a completion after the deadline, an
    approved excuse, settling — `flask lms attendance recompute --course N` rebuilds the
    progress and view summaries purely from the viewing log and finds them equal to the
    stored ones. A tampered stored row is reported (field, stored, rebuilt) by --check
    (exit 1, nothing written) and restored by a plain recompute."""
    from lms.attendance.models import LessonProgress, LessonView
    from lms.attendance.service import expire_idle_views
    from lms.db import db

    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 5.0)
    monkeypatch.setitem(app.config, "CHALLENGE_MAX_MINUTES", 7.0)
    world = World(app, client, users, learners=("ann", "ben", "cat", "dan"))
    cid = world.course["id"]
    l1, l2, w2 = world.lesson(1), world.lesson(1, 1), world.lesson(2)

    world.watch("ann", l1, until=1500, step=60)  # complete, answering challenges
    assert events(app, kind="challenge_ok")
    v = world.started("ben", l1)
    world.goto(ts(v["started_at"]) + timedelta(seconds=10))
    world.beat("ben", v["view_id"], [[0, 1500]])  # 25 min claimed in 10 s
    v2 = world.started("ben", l2)  # replaces the first view
    world.watch("ben", l2, until=300, step=30, view=v2)
    assert world.end("ben", v2["view_id"]).status_code == 200
    vc = world.started("cat", l1)
    world.watch("cat", l1, until=200, step=50, view=vc)
    world.goto(world.now + timedelta(minutes=31))
    with app.app_context():
        assert expire_idle_views() == 2  # ann's first view and cat's, both silent 31 min
        db.session.remove()
    approve_excuse(app, world.ids["dan"], cid, [l2["id"]])

    world.goto(datetime(2027, 3, 10, 9, 0, tzinfo=KST))
    world.watch("ann", w2, until=400, step=100)  # week 2: partial, still pending
    world.goto(D1 + timedelta(minutes=10))
    world.watch("ann", l2, until=1500, step=300)  # complete after the deadline
    world.goto(D1 + timedelta(hours=1))
    assert settle(app) > 0

    stored = _snapshot(app, cid)
    ann_l2 = stored["progress"][(world.ids["ann"], l2["id"])]
    assert ann_l2["status"] == "absent" and ann_l2["completed_at"] > D1
    assert stored["progress"][(world.ids["ann"], l1["id"])]["status"] == "attended"
    assert stored["progress"][(world.ids["dan"], l2["id"])]["status"] == "excused"
    assert stored["progress"][(world.ids["ann"], w2["id"])]["status"] == "pending"
    assert {v["end_reason"] for v in stored["views"].values()} >= {"replaced", "ended", "expired"}
    assert any(v["suspicious_excess_seconds"] > 1000 for v in stored["views"].values())

    r = _recompute_cli(test_env, cid, "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rebuilt result equals the stored one" in r.stdout
    r = _recompute_cli(test_env, cid)
    assert r.returncode == 0 and "equals" in r.stdout, r.stdout + r.stderr
    assert _snapshot(app, cid) == stored

    # Tamper with the derived rows (never with the log): recompute finds and repairs it.
    with app.app_context():
        row = db.session.scalar(select(LessonProgress).where(LessonProgress.learner_id == world.ids["ann"],
                                                             LessonProgress.lesson_id == l2["id"]))
        row.status = "attended"
        row.intervals = [[0.0, 1500.0], [1600.0, 1700.0]]
        view = db.session.get(LessonView, v["view_id"])
        view.credited_seconds = 1500.0
        db.session.commit()
        db.session.remove()
    r = _recompute_cli(test_env, cid, "--check")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 difference(s)" in r.stdout and "nothing written" in r.stdout
    assert f"learner {world.ids['ann']} lesson {l2['id']}: status stored 'attended' rebuilt 'absent'" in r.stdout
    assert f"view {v['view_id']}: credited_seconds stored 1500.0" in r.stdout
    r = _recompute_cli(test_env, cid)
    assert r.returncode == 0 and "stored rows rewritten" in r.stdout, r.stdout + r.stderr
    assert _snapshot(app, cid) == stored
    assert "equals" in _recompute_cli(test_env, cid, "--check").stdout


def test_recompute_in_process_matches_after_settling(app, client, users):
    """ATT-2: the service behind the command — ``recompute_course(write=False)`` — reports
    no difference right after live viewing and settling; an unknown course is refused."""
    from lms.attendance.service import recompute_course
    from lms.db import db
    from lms.errors import ApiError

    world = World(app, client, users, learners=("pia", "quin"))
    complete_at(world, "pia", world.lesson(1), D1 - timedelta(days=2))
    world.watch("quin", world.lesson(1, 1), until=700, step=100)
    world.goto(D1 + timedelta(minutes=30))
    settle(app)
    with app.app_context():
        result = recompute_course(world.course["id"], write=False)
        assert result.differences == [], result.summary()
        assert result.events > 0 and result.progress_rows == 4
        with pytest.raises(ApiError):
            recompute_course(999999, write=False)
        db.session.remove()
