"""Proctoring (EXM-8, EXM-9): duplicate IP and device refused over real sockets from
distinct loopback addresses (127.0.0.2, 127.0.0.3), race-free at the same instant, a
mid-attempt address change recorded and blocked when it collides, documented exceptions,
Safe Exam Browser; the auto-submit job through a real RQ worker (EXM-4, EXM-10)."""
from __future__ import annotations

import hashlib
import http.client
import json
import threading
from datetime import datetime, timedelta

import pytest

from conftest import access_log, assert_api_error, start_lms_process, stop_process
from exam_world import CLOSES, OPENS, ExamWorld


class Net:
    """JSON over a real socket from a chosen source address."""

    def __init__(self, server, source: str):
        self.host, self.port, self.source = server.host, server.port, source

    def call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60, source_address=(self.source, 0))
        try:
            data = json.dumps(body) if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()


def start(w, net, name, exam_id, **headers):
    return net.call("POST", f"/api/v1/exams/{exam_id}/attempts", {"otp": w.users.code(name)},
                    {**w.h(name), **headers})


@pytest.fixture
def w(app, client, users):
    return ExamWorld(app, client, users, learners=("lea", "leb", "lec"))


def test_exm9_duplicate_ip_refused_over_real_sockets(w, live_server, app):
    exam = w.exam()
    w.goto(OPENS)
    a2 = Net(live_server, "127.0.0.2")
    a3 = Net(live_server, "127.0.0.3")
    status, body = start(w, a2, "lea", exam["id"])
    assert status == 201, body
    assert body["ip"] == "127.0.0.2"
    status, body = start(w, a2, "leb", exam["id"])
    assert status == 403 and body["error"]["code"] == "duplicate_ip" and body["error"]["rules"] == ["EXM-9"]
    status, body = start(w, a3, "leb", exam["id"])
    assert status == 201, body
    # the refusal is logged as evidence
    blocked = access_log(app, "exam_blocked")
    assert len(blocked) == 1 and blocked[0]["ip"] == "127.0.0.2" and "duplicate_ip" in blocked[0]["detail"]


def test_exm9_ip_used_in_this_exam_stays_taken_after_submission(w, live_server):
    exam = w.exam()
    w.goto(OPENS)
    a2 = Net(live_server, "127.0.0.2")
    status, body = start(w, a2, "lea", exam["id"])
    assert status == 201
    status, _ = a2.call("POST", f"/api/v1/attempts/{body['attempt_id']}/submit", headers=w.h("lea"))
    assert status == 200
    status, body = start(w, a2, "leb", exam["id"])
    assert status == 403 and body["error"]["code"] == "duplicate_ip"


def test_exm9_running_attempt_in_another_exam_blocks_the_ip_until_it_ends(app, client, users, live_server):
    w = ExamWorld(app, client, users, learners=("lea", "leb"), bank=12)
    first = w.exam(title="A")
    second = w.exam(title="B", kind="final")
    w.goto(OPENS)
    a2 = Net(live_server, "127.0.0.2")
    status, a = start(w, a2, "lea", first["id"])
    assert status == 201
    status, body = start(w, a2, "leb", second["id"])
    assert status == 403 and body["error"]["code"] == "duplicate_ip"
    status, _ = a2.call("POST", f"/api/v1/attempts/{a['attempt_id']}/submit", headers=w.h("lea"))
    assert status == 200
    status, body = start(w, a2, "leb", second["id"])  # not running any more, another exam
    assert status == 201, body


def test_exm9_duplicate_device_refused_from_distinct_ips(w, live_server):
    exam = w.exam()
    w.goto(OPENS)
    mac = {"X-LMS-Device": "00:1A:2B:3C:4D:5E"}
    status, _ = start(w, Net(live_server, "127.0.0.2"), "lea", exam["id"], **mac)
    assert status == 201
    status, body = start(w, Net(live_server, "127.0.0.3"), "leb", exam["id"], **{"X-LMS-Device": "00:1a:2b:3c:4d:5e"})
    assert status == 403 and body["error"]["code"] == "duplicate_device"
    status, body = start(w, Net(live_server, "127.0.0.3"), "leb", exam["id"], **{"X-LMS-Device": "00:1a:2b:3c:4d:5f"})
    assert status == 201, body


def test_exm9_simultaneous_starts_from_one_ip_exactly_one_succeeds(app, client, users, live_server):
    names = ("lea", "leb", "lec", "led")
    w = ExamWorld(app, client, users, learners=names)
    exam = w.exam()
    w.goto(OPENS)
    codes = {n: w.users.code(n) for n in names}
    net = Net(live_server, "127.0.0.2")
    barrier = threading.Barrier(len(names))
    results = {}

    def go(name):
        barrier.wait()
        results[name] = net.call("POST", f"/api/v1/exams/{exam['id']}/attempts", {"otp": codes[name]}, w.h(name))

    threads = [threading.Thread(target=go, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(s for s, _ in results.values())
    assert statuses == [201, 403, 403, 403], results
    assert all(b["error"]["code"] == "duplicate_ip" for s, b in results.values() if s == 403)
    with app.app_context():
        from sqlalchemy import func, select

        from lms.db import db
        from lms.exams.models import Attempt

        assert db.session.scalar(select(func.count(Attempt.id)).where(Attempt.exam_id == exam["id"])) == 1
        db.session.remove()


def test_exm9_simultaneous_starts_on_two_app_instances(app, client, users, second_app):
    """The same race across two independent app instances (two web processes sharing the
    database): the lock lives in the database, not in a process."""
    from conftest import LiveServer

    w = ExamWorld(app, client, users, learners=("lea", "leb"))
    exam = w.exam()
    w.goto(OPENS)
    codes = {n: w.users.code(n) for n in ("lea", "leb")}
    with LiveServer(app, host="0.0.0.0") as s1, LiveServer(second_app, host="0.0.0.0") as s2:
        s1.host = s2.host = "127.0.0.1"
        barrier = threading.Barrier(2)
        results = {}

        def go(name, srv):
            barrier.wait()
            results[name] = Net(srv, "127.0.0.4").call("POST", f"/api/v1/exams/{exam['id']}/attempts",
                                                       {"otp": codes[name]}, w.h(name))

        ts = [threading.Thread(target=go, args=("lea", s1)), threading.Thread(target=go, args=("leb", s2))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    assert sorted(s for s, _ in results.values()) == [201, 403], results


def test_exm9_mid_attempt_ip_change_recorded_and_blocked_when_it_collides(w, live_server):
    exam = w.exam()
    w.goto(OPENS)
    a2, a3, a5 = (Net(live_server, f"127.0.0.{n}") for n in (2, 3, 5))
    status, lea = start(w, a2, "lea", exam["id"])
    assert status == 201
    status, leb = start(w, a3, "leb", exam["id"])
    assert status == 201
    item = lea["items"][0]["id"]
    # lea moves to a fresh address: recorded
    status, _ = a5.call("PUT", f"/api/v1/attempts/{lea['attempt_id']}/answers/{item}", {"answer": 1}, w.h("lea"))
    assert status == 200
    # lea moves onto leb's address: blocked
    status, body = a3.call("PUT", f"/api/v1/attempts/{lea['attempt_id']}/answers/{item}", {"answer": 2}, w.h("lea"))
    assert status == 403 and body["error"]["code"] == "duplicate_ip"
    status, events = a2.call("GET", f"/api/v1/attempts/{lea['attempt_id']}/events", headers=w.ah())
    kinds = [(e["kind"], e["ip"]) for e in events["events"]]
    assert kinds == [("started", "127.0.0.2"), ("ip_changed", "127.0.0.5"), ("answer", "127.0.0.5"),
                     ("blocked", "127.0.0.3")]
    status, detail = a2.call("GET", f"/api/v1/attempts/{lea['attempt_id']}", headers=w.ah())
    assert {(a["kind"], a["value"]) for a in detail["addresses"]} == {("ip", "127.0.0.2"), ("ip", "127.0.0.5")}
    assert detail["items"][0]["answer"] == 1  # the blocked save stored nothing


def test_exm9_documented_exception_allows_a_shared_ip_and_is_logged(w, live_server, app):
    exam = w.exam()
    w.goto(OPENS)
    r = w.client.post(f"/api/v1/exams/{exam['id']}/exceptions",
                      json={"kind": "ip", "value": "127.0.0.2", "reason": "감독관 입회 시험장 (제2고사실)"},
                      headers=w.ah())
    assert r.status_code == 201, r.get_json()
    exc = r.get_json()
    a2 = Net(live_server, "127.0.0.2")
    assert start(w, a2, "lea", exam["id"])[0] == 201
    assert start(w, a2, "leb", exam["id"])[0] == 201
    logged = access_log(app, "proctor_exception_granted")
    assert len(logged) == 1 and "127.0.0.2" in logged[0]["detail"]
    # revoked: the next learner is refused again
    r = w.client.delete(f"/api/v1/exams/{exam['id']}/exceptions/{exc['id']}", headers=w.ah())
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    status, body = start(w, a2, "lec", exam["id"])
    assert status == 403 and body["error"]["code"] == "duplicate_ip"
    # only admins grant exceptions
    r = w.client.post(f"/api/v1/exams/{exam['id']}/exceptions",
                      json={"kind": "ip", "value": "127.0.0.9", "reason": "test centre"},
                      headers={"Authorization": f"Bearer {w.prof}"})
    assert_api_error(r, 403, "forbidden")
    r = w.client.post(f"/api/v1/exams/{exam['id']}/exceptions", json={"kind": "ip", "value": "nope", "reason": "xxxxx"},
                      headers=w.ah())
    assert_api_error(r, 400, "invalid_request")


def test_exm9_an_ip_exception_is_recorded_and_leaves_the_device_check(w, app):
    """IP and device are checked in one statement with the exceptions: an exception for the
    IP lets a second learner share it (the address row names the exception), while the
    device stays checked; a refusal writes no attempt and is logged."""
    exam = w.exam()
    w.goto(OPENS)
    r = w.client.post(f"/api/v1/exams/{exam['id']}/exceptions",
                      json={"kind": "ip", "value": "10.9.0.1", "reason": "감독관 입회 시험장"}, headers=w.ah())
    assert r.status_code == 201, r.get_json()
    exc_id = r.get_json()["id"]

    def go(name, ip, device):
        return w.client.post(f"/api/v1/exams/{exam['id']}/attempts", json={"otp": w.users.code(name)},
                             headers={**w.h(name), "X-LMS-Device": device}, environ_base={"REMOTE_ADDR": ip})

    assert go("lea", "10.9.0.1", "dev-a").status_code == 201
    assert go("leb", "10.9.0.1", "dev-b").status_code == 201
    r = go("lec", "10.9.0.2", "dev-a")
    assert_api_error(r, 403, "duplicate_device")
    assert [e["detail"] for e in access_log(app, "exam_blocked")] == [f"exam {exam['id']}: duplicate_device"]
    with app.app_context():
        from sqlalchemy import select

        from lms.db import db
        from lms.proctoring.models import AttemptAddress

        rows = db.session.execute(select(AttemptAddress.learner_id, AttemptAddress.kind, AttemptAddress.value,
                                         AttemptAddress.exception_id).order_by(AttemptAddress.id)).all()
        db.session.remove()
    lea, leb = w.ids["lea"], w.ids["leb"]
    assert [tuple(r) for r in rows] == [(lea, "ip", "10.9.0.1", exc_id), (lea, "device", "dev-a", None),
                                        (leb, "ip", "10.9.0.1", exc_id), (leb, "device", "dev-b", None)]


def test_exm9_safe_exam_browser_required(w, live_server):
    key = "seb-config-key-0123456789abcdef"
    exam = w.exam(requires_seb=True, seb_config_key=key)
    w.goto(OPENS)
    net = Net(live_server, "127.0.0.2")
    path = f"/api/v1/exams/{exam['id']}/attempts"
    status, body = start(w, net, "lea", exam["id"])
    assert status == 403 and body["error"]["code"] == "seb_required"
    url = f"http://{live_server.host}:{live_server.port}{path}"
    wrong = hashlib.sha256((url + "other-key").encode()).hexdigest()
    status, body = start(w, net, "lea", exam["id"], **{"X-SafeExamBrowser-ConfigKeyHash": wrong})
    assert status == 403 and body["error"]["code"] == "seb_required"
    good = hashlib.sha256((url + key).encode()).hexdigest()
    status, body = start(w, net, "lea", exam["id"], **{"X-SafeExamBrowser-ConfigKeyHash": good})
    assert status == 201, body
    # every later request of the attempt is checked too (the hash covers its own URL)
    item = body["items"][0]["id"]
    answer_path = f"/api/v1/attempts/{body['attempt_id']}/answers/{item}"
    status, err = net.call("PUT", answer_path, {"answer": 0}, w.h("lea"))
    assert status == 403 and err["error"]["code"] == "seb_required"
    answer_hash = hashlib.sha256((f"http://{live_server.host}:{live_server.port}{answer_path}" + key).encode()).hexdigest()
    status, _ = net.call("PUT", answer_path, {"answer": 0}, {**w.h("lea"), "X-SafeExamBrowser-ConfigKeyHash": answer_hash})
    assert status == 200
    submit_path = f"/api/v1/attempts/{body['attempt_id']}/submit"
    status, err = net.call("POST", submit_path, None, {**w.h("lea"), "X-SafeExamBrowser-ConfigKeyHash": answer_hash})
    assert status == 403 and err["error"]["code"] == "seb_required"
    submit_hash = hashlib.sha256((f"http://{live_server.host}:{live_server.port}{submit_path}" + key).encode()).hexdigest()
    status, _ = net.call("POST", submit_path, None, {**w.h("lea"), "X-SafeExamBrowser-ConfigKeyHash": submit_hash})
    assert status == 200


def test_exm4_auto_submit_through_a_real_rq_worker(w, app, test_env, tmp_path):
    """The periodic job (lms/exams/jobs.py) enqueued and run by `flask lms worker --burst`
    in another process at the testing clock: an attempt past its deadline is submitted at
    its deadline, with its saved answers scored."""
    from lms.exams.jobs import PERIODIC
    from lms.exams.service import submit_overdue
    from lms.jobs import enqueue, periodic_jobs

    assert (submit_overdue, 30) in PERIODIC and (submit_overdue, 30) in periodic_jobs()
    exam = w.exam()
    w.goto(OPENS)
    a = w.start("lea", exam["id"]).get_json()
    b = w.client.post(
        f"/api/v1/exams/{exam['id']}/attempts", json={"otp": w.users.code("leb")}, headers=w.h("leb"),
        environ_base={"REMOTE_ADDR": "127.0.0.7"}).get_json()
    w.client.put(f"/api/v1/attempts/{a['attempt_id']}/answers/{a['items'][0]['id']}", json={"answer": 0},
                 headers=w.h("lea"))
    deadline = datetime.fromisoformat(a["deadline"])
    w.goto(deadline + timedelta(seconds=5), relogin=False)
    with app.app_context():
        job = enqueue(submit_overdue)
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
        assert job.return_value() == 2
        from lms.db import db
        from lms.exams.models import Attempt

        for attempt_id in (a["attempt_id"], b["attempt_id"]):
            row = db.session.get(Attempt, attempt_id)
            assert row.submit_reason == "deadline" and row.submitted_at == row.deadline
            assert row.score is not None
        db.session.remove()


def test_exm9_mid_attempt_device_change_recorded_and_blocked_when_it_collides(w, live_server):
    """The device header changes during an attempt: a new device is recorded as evidence;
    another learner's device is refused with 403 duplicate_device and stores nothing."""
    exam = w.exam()
    w.goto(OPENS)
    a2, a3 = Net(live_server, "127.0.0.2"), Net(live_server, "127.0.0.3")
    status, lea = start(w, a2, "lea", exam["id"], **{"X-LMS-Device": "dev-lea-1"})
    assert status == 201
    status, _ = start(w, a3, "leb", exam["id"], **{"X-LMS-Device": "dev-leb-1"})
    assert status == 201
    url = f"/api/v1/attempts/{lea['attempt_id']}/answers/{lea['items'][0]['id']}"
    status, _ = a2.call("PUT", url, {"answer": 1}, {**w.h("lea"), "X-LMS-Device": "dev-lea-2"})
    assert status == 200
    status, body = a2.call("PUT", url, {"answer": 2}, {**w.h("lea"), "X-LMS-Device": "dev-leb-1"})
    assert status == 403 and body["error"]["code"] == "duplicate_device"
    status, events = a2.call("GET", f"/api/v1/attempts/{lea['attempt_id']}/events", headers=w.ah())
    assert [(e["kind"], e["device"]) for e in events["events"]] == [
        ("started", "dev-lea-1"), ("device_changed", "dev-lea-2"), ("answer", "dev-lea-2"), ("blocked", "dev-leb-1")]
    status, detail = a2.call("GET", f"/api/v1/attempts/{lea['attempt_id']}", headers=w.ah())
    assert detail["items"][0]["answer"] == 1
