"""ATT-9: the instructor submits the attendance record within one week after the course
ends; the submission is a settled, append-only snapshot."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from conftest import assert_api_error, bearer, set_clock
from lms.attendance import rules
from lms.clock import KST

START = date(2027, 3, 2)  # 15 weeks: the last day is 2027-06-14
DUE = datetime(2027, 6, 22, 0, 0, tzinfo=KST)  # 24:00 KST of the 7th day after 06-14


def test_due_time_pure():
    """ATT-9: due at 24:00 KST of the seventh day after the course's last day."""
    assert rules.attendance_record_due(START, 15) == DUE
    s = lambda at, now: rules.attendance_record_state(starts_on=START, weeks=15, submitted_at=at, now=now)  # noqa: E731
    ended = datetime(2027, 6, 15, 0, 0, tzinfo=KST)
    assert s(None, ended - timedelta(seconds=1)) == "not_due"
    assert s(None, ended) == "open"
    assert s(None, DUE) == "open"
    assert s(None, DUE + timedelta(seconds=1)) == "overdue"
    assert s(DUE - timedelta(seconds=1), DUE + timedelta(days=9)) == "on_time"
    assert s(DUE, DUE) == "on_time"
    assert s(DUE + timedelta(seconds=1), DUE + timedelta(seconds=1)) == "late"


def _course(client, admin_token, users):
    h = bearer(admin_token)
    c = client.post("/api/v1/courses", json={"code": "REC1", "title": "출석부", "credits": 3,
                                             "starts_on": START.isoformat(), "weeks": 15, "capacity": 50},
                    headers=h).get_json()
    for w in (1, 15):
        r = client.post(f"/api/v1/courses/{c['id']}/lessons", json={"week": w, "title": f"{w}", "frames": 20},
                        headers=h)
        assert r.status_code == 201
    inst = users.create("inst9", "instructor")
    users.create("ta9", "ta")
    client.post(f"/api/v1/courses/{c['id']}/staff", json={"user_id": inst, "role": "instructor"}, headers=h)
    learners = [users.create(f"lrn9{i}") for i in range(2)]
    for lid in learners:
        assert client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": lid}, headers=h).status_code == 201
    return c, learners


def test_submission_edges_and_snapshot(app, client, admin_token, users):
    """ATT-9: refused while the course runs; on time at the due instant, late one second
    after; each submission appended with a snapshot of every learner (settled: nobody
    watched, so every lesson is absent and the rate 0 → F)."""
    c, learners = _course(client, admin_token, users)
    url = f"/api/v1/courses/{c['id']}/attendance-record"
    set_clock(app, datetime(2027, 6, 14, 23, 59, 50, tzinfo=KST))
    inst = users.login(client, "inst9")
    assert_api_error(client.post(url, headers=bearer(inst)), 409, "course_not_ended")
    assert client.get(url, headers=bearer(inst)).get_json()["state"] == "not_due"

    set_clock(app, DUE - timedelta(seconds=10))
    inst = users.login(client, "inst9")
    r = client.post(url, headers=bearer(inst))
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert first["on_time"] is True and first["learners"] == 2
    assert first["due_at"] == "2027-06-22T00:00:00+09:00"

    set_clock(app, DUE + timedelta(seconds=1))
    inst = users.login(client, "inst9")
    second = client.post(url, headers=bearer(inst)).get_json()
    assert second["on_time"] is False and second["id"] != first["id"]
    status = client.get(url, headers=bearer(inst)).get_json()
    assert status["state"] == "on_time"  # judged by the first submission
    assert [s["id"] for s in status["submissions"]] == [first["id"], second["id"]]

    with app.app_context():
        from lms.attendance.models import AttendanceSubmission
        from lms.db import db

        row = db.session.get(AttendanceSubmission, first["id"])
        snap = row.snapshot["learners"]
        assert sorted(s["learner_id"] for s in snap) == sorted(learners)
        assert all(s["f"] is True and s["rate"] == 0.0 for s in snap)
        assert all(l["status"] == "absent" for s in snap for l in s["lessons"])


def test_overdue_and_who_may_submit(app, client, admin_token, users):
    """ATT-9: unsubmitted past due is overdue; a TA or learner may not submit."""
    c, _ = _course(client, admin_token, users)
    url = f"/api/v1/courses/{c['id']}/attendance-record"
    set_clock(app, DUE + timedelta(seconds=1))
    ta = users.login(client, "ta9")
    assert_api_error(client.post(url, headers=bearer(ta)), 403, "forbidden")
    learner = users.login(client, "lrn90")
    assert_api_error(client.post(url, headers=bearer(learner)), 403, "forbidden")
    admin = users.login(client, "admin1")
    assert client.get(url, headers=bearer(admin)).get_json()["state"] == "overdue"
