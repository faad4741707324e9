"""A complete term through the API (GRD-1…GRD-7, ATT-6, EXM-11, EXM-13, ENR-6): enrol,
watch, sit exams (one make-up, one cheating finding, one learner missing both regular
exams), grade (propose, adjust, the GRD-2 check), object, finalise, report — and the
NILE report's rows match the data."""
from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime, timedelta

import pytest

from conftest import assert_api_error, bearer, set_clock
from exam_world import CLOSES, OPENS, ExamWorld
from lms.clock import KST
from test_excuses import PDF

FINAL_OPENS = datetime(2027, 5, 25, 9, 0, tzinfo=KST)
FINAL_CLOSES = FINAL_OPENS + timedelta(days=3)
COURSE_END = datetime(2027, 6, 15, 0, 0, tzinfo=KST)  # 15 weeks from 2027-03-02: 24:00 of 06-14
DAY14_LAST = datetime(2027, 6, 28, 23, 59, 59, tzinfo=KST)
CHOICES = ["가", "나", "다", "라"]

# learner → correct answers out of 6 (midterm, final)
GOOD = {"l01": 6, "l02": 6, "l03": 5, "l04": 5, "l05": 4, "l06": 4, "l07": 3, "l08": 3, "l09": 2, "l10": 1}
LEARNERS = (*GOOD, "lmake", "lmiss", "lcheat")


@pytest.fixture(autouse=True)
def _no_challenges(app, monkeypatch):
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 0.0)
    monkeypatch.setitem(app.config, "MAX_PLAYBACK_RATE", 1.0)


def ip_of(name: str) -> str:
    return f"10.1.0.{LEARNERS.index(name) + 1}"


def sit(w: ExamWorld, name: str, exam_id: int, correct: int) -> dict:
    """Start (fresh OTP, own IP), answer ``correct`` of the six items right, submit."""
    env = {"REMOTE_ADDR": ip_of(name)}
    r = w.client.post(f"/api/v1/exams/{exam_id}/attempts", json={"otp": w.users.code(name)}, headers=w.h(name),
                      environ_base=env)
    assert r.status_code == 201, r.get_json()
    a = r.get_json()
    for i, it in enumerate(a["items"]):
        n = int(it["prompt"].split("문항 ")[1].split(":")[0])
        right = it["choices"].index(CHOICES[n % 4])
        answer = right if i < correct else (right + 1) % 4
        r = w.client.put(f"/api/v1/attempts/{a['attempt_id']}/answers/{it['id']}", json={"answer": answer},
                         headers=w.h(name), environ_base=env)
        assert r.status_code == 200, r.get_json()
    r = w.client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=w.h(name), environ_base=env)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["score"] == correct * 2
    return a


def watch_all(w: ExamWorld, lessons: list[dict], start: datetime) -> datetime:
    """Every learner watches every lesson through the player API: a view, then one heartbeat
    covering the lesson once its real time has passed (ATT-4 credits it all)."""
    t = start
    for name in LEARNERS:
        set_clock(w.app, t)
        w.relogin(name)
        for lesson in lessons:
            set_clock(w.app, t)
            r = w.client.post(f"/api/v1/lessons/{lesson['id']}/views", headers=w.h(name))
            assert r.status_code == 201, r.get_json()
            t += timedelta(seconds=lesson["duration_seconds"])
            set_clock(w.app, t)
            r = w.client.post(f"/api/v1/views/{r.get_json()['view_id']}/heartbeat",
                              json={"segments": [[0, lesson["duration_seconds"]]]}, headers=w.h(name))
            assert r.status_code == 200 and r.get_json()["completed"] is True, r.get_json()
        t += timedelta(minutes=1)
    return t


def test_a_complete_term_through_the_api(app, client, users):
    """GRD-1…GRD-7, ATT-6, EXM-11, EXM-13 end to end; the NILE report's rows match."""
    w = ExamWorld(app, client, users, learners=LEARNERS)
    cid = w.cid
    lessons = []
    for week in (1, 1):
        r = client.post(f"/api/v1/courses/{cid}/lessons",
                        json={"week": week, "title": f"{week}주차", "duration_seconds": 1500}, headers=w.ah())
        assert r.status_code == 201, r.get_json()
        lessons.append(r.get_json())
    midterm = w.exam()
    final = w.exam(title="기말고사", kind="final", opens_at=FINAL_OPENS.isoformat(),
                   closes_at=FINAL_CLOSES.isoformat())

    # Watch (week 1, before the ATT-1 deadline).
    watch_all(w, lessons, datetime(2027, 3, 3, 10, 0, tzinfo=KST))

    # Midterm: everyone but lmake and lmiss; lcheat is caught.
    w.goto(OPENS)
    attempts = {}
    for name in LEARNERS:
        if name in ("lmake", "lmiss"):
            continue
        attempts[name] = sit(w, name, midterm["id"], GOOD.get(name, 6))
    r = client.post(f"/api/v1/attempts/{attempts['lcheat']['attempt_id']}/cheating-findings",
                    json={"kind": "proxy_exam", "description": "대리시험 확인", "evidence": "IP 기록"},
                    headers=bearer(w.prof))
    assert r.status_code == 201, r.get_json()

    # lmake applies for a make-up exam (EXM-11), is approved and sits it.
    w.goto(CLOSES + timedelta(hours=1))
    r = client.post(f"/api/v1/exams/{midterm['id']}/makeup-requests", headers=w.h("lmake"),
                    data={"reason": "illness", "detail": "입원", "files": [(io.BytesIO(PDF), "진단서.pdf")]},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    r = client.post(f"/api/v1/makeup-requests/{r.get_json()['id']}/decision", headers=bearer(w.prof),
                    json={"approve": True, "comment": "확인"})
    assert r.status_code == 200, r.get_json()
    sit(w, "lmake", midterm["id"], 6)

    # Final: everyone but lmiss (who thus missed both regular exams, GRD-3).
    w.goto(FINAL_OPENS)
    for name in LEARNERS:
        if name != "lmiss":
            sit(w, name, final["id"], GOOD.get(name, 6))

    # Before the course end a learner sees no grade.
    w.goto(COURSE_END - timedelta(hours=1))
    r = client.get(f"/api/v1/courses/{cid}/grades", headers=bearer(w.prof))
    assert r.status_code == 200 and r.get_json()["finalized"] is False
    sheet = r.get_json()
    assert sheet["scheme"] == "relative" and sheet["class_size"] == 11  # 13 − lmiss − lcheat
    r = client.post(f"/api/v1/courses/{cid}/grades/propose", headers=bearer(w.prof))
    assert r.status_code == 200, r.get_json()
    mine = client.get(f"/api/v1/courses/{cid}/grades", headers=w.h("l01")).get_json()
    assert mine["visible"] is False and mine["grades"] == []

    # After the course end: proposal, checks, adjust.
    w.goto(COURSE_END + timedelta(hours=2))
    sheet = client.post(f"/api/v1/courses/{cid}/grades/propose", headers=bearer(w.prof)).get_json()
    g = {x["learner_id"]: x for x in sheet["grades"]}
    by = {name: g[w.ids[name]] for name in LEARNERS}
    assert by["l01"]["score"] == 100 and by["l01"]["grade"] == "A+" and by["l01"]["points"] == 4.5
    assert by["l10"]["score"] == pytest.approx(80 * (1 / 6) + 20, abs=0.005)  # stored to 2 decimals
    assert by["lmiss"]["grade"] == "F" and by["lmiss"]["fixed_by"] == ["GRD-3"]  # GRD-3
    assert by["lcheat"]["grade"] is None and by["lcheat"]["no_grade"] and by["lcheat"]["points"] is None  # EXM-13
    assert by["lmake"]["score"] == 100 and by["lmake"]["grade"] == "B+" and by["lmake"]["cap"] == "B+"  # EXM-11
    assert by["l01"]["components"] == {"exams": 100, "attendance": 100}
    assert sheet["distribution"]["ok"] is True and sheet["distribution"]["counts"] == {"A": 3, "B": 4, "C": 4}
    assert [by[n]["grade"] for n in ("l01", "l02", "l03")] == ["A+", "A+", "A0"]

    assert_api_error(client.put(f"/api/v1/courses/{cid}/grades/{w.ids['lmake']}", json={"grade": "A0"},
                                headers=bearer(w.prof)), 422, "rule_violation")
    assert_api_error(client.put(f"/api/v1/courses/{cid}/grades/{w.ids['lmiss']}", json={"grade": "D0"},
                                headers=bearer(w.prof)), 422, "rule_violation")
    assert_api_error(client.put(f"/api/v1/courses/{cid}/grades/{w.ids['lcheat']}", json={"grade": "F"},
                                headers=bearer(w.prof)), 422, "rule_violation")
    # l07 (a C) raised to B0: five B of 11 = 45.5% breaks GRD-2.
    r = client.put(f"/api/v1/courses/{cid}/grades/{w.ids['l07']}", json={"grade": "B0", "reason": "과제 우수"},
                   headers=bearer(w.prof))
    assert r.status_code == 200 and r.get_json()["distribution"]["ok"] is False

    # Objections (GRD-6): l08 objects on day 14, l09 on day 15 is refused.
    w.goto(DAY14_LAST - timedelta(minutes=5))
    mine = client.get(f"/api/v1/courses/{cid}/grades", headers=w.h("l08")).get_json()
    assert mine["visible"] and mine["grades"][0]["components"] == by["l08"]["components"]
    assert mine["objection_open"] is True
    set_clock(app, DAY14_LAST)
    r = client.post(f"/api/v1/courses/{cid}/objections", json={"message": "기말 점수 확인 부탁드립니다"},
                    headers=w.h("l08"))
    assert r.status_code == 201, r.get_json()
    oid = r.get_json()["id"]
    set_clock(app, DAY14_LAST + timedelta(seconds=1))
    err = assert_api_error(client.post(f"/api/v1/courses/{cid}/objections", json={"message": "늦은 이의"},
                                       headers=w.h("l09")), 422, "rule_violation")
    assert err["rules"] == ["GRD-6"]
    # Correcting on the objection is too late now; answering is not.
    assert_api_error(client.post(f"/api/v1/objections/{oid}/answer", json={"answer": "정정", "grade": "C+"},
                                 headers=bearer(w.prof)), 422, "rule_violation")
    r = client.post(f"/api/v1/objections/{oid}/answer", json={"answer": "채점 결과를 확인했습니다"},
                    headers=bearer(w.prof))
    assert r.status_code == 200 and r.get_json()["answer"]

    # Finalise: refused while GRD-2 breaks, then fixed and final.
    err = assert_api_error(client.post(f"/api/v1/courses/{cid}/grades/finalize", headers=bearer(w.prof)),
                           422, "rule_violation")
    assert err["rules"] == ["GRD-2"]
    r = client.put(f"/api/v1/courses/{cid}/grades/{w.ids['l06']}", json={"grade": "C+", "reason": "분포 조정"},
                   headers=bearer(w.prof))
    assert r.get_json()["distribution"]["ok"] is True
    r = client.post(f"/api/v1/courses/{cid}/grades/finalize", headers=bearer(w.prof))
    assert r.status_code == 200 and r.get_json()["finalized"] is True, r.get_json()
    assert_api_error(client.put(f"/api/v1/courses/{cid}/grades/{w.ids['l06']}", json={"grade": "B0"},
                                headers=bearer(w.prof)), 409, "grades_finalized")

    # NILE grade report (GRD-7): rows match the grades.
    r = client.post(f"/api/v1/courses/{cid}/nile-reports", json={"kind": "grades", "format": "csv"},
                    headers=w.ah())
    assert r.status_code == 201, r.get_json()
    rep = r.get_json()
    body = client.get(f"/api/v1/nile-reports/{rep['id']}/download", headers=w.ah()).data
    assert hashlib.sha256(body).hexdigest() == rep["sha256"] and body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["과정코드", "과목명", "학점"] and len(rows) == 1 + len(LEARNERS) == rep["rows"] + 1
    final_sheet = client.get(f"/api/v1/courses/{cid}/grades", headers=w.ah()).get_json()
    names = {v: k for k, v in w.ids.items()}
    expected = {names[x["learner_id"]]: x for x in final_sheet["grades"]}
    for row in rows[1:]:
        x = expected[row[3]]
        assert row[0] == "EXM101" and row[2] == "3"
        assert row[6] == (x["grade"] or "성적 없음")
        assert row[7] == ("" if x["points"] is None else str(float(x["points"])))
        assert float(row[5]) == pytest.approx(x["score"])
        assert float(row[8]) == pytest.approx(x["attendance_rate"] * 100)
        assert row[9] == ("Y" if x["passed"] else "N")
    assert expected["l07"]["grade"] == "B0" and expected["l06"]["grade"] == "C+"
    state = client.get(f"/api/v1/courses/{cid}/nile-reports", headers=w.ah()).get_json()
    assert state["due"]["grades"]["state"] == "submitted"
    assert state["due"]["course_status"]["state"] == "overdue"  # never generated, long past 1/5

    # After finalisation (GRD-7): a correction application, approved by an admin; history kept.
    r = client.post(f"/api/v1/courses/{cid}/grade-corrections",
                    json={"learner_id": w.ids["l09"], "grade": "C0", "reasons": "채점 오류",
                          "evidence": "기말 3번 문항 정답 처리 누락"}, headers=bearer(w.prof))
    assert r.status_code == 201, r.get_json()
    corr = r.get_json()
    assert_api_error(client.post(f"/api/v1/grade-corrections/{corr['id']}/decision",
                                 json={"approve": True}, headers=bearer(w.prof)), 403, "forbidden")
    r = client.post(f"/api/v1/grade-corrections/{corr['id']}/decision", json={"approve": True, "comment": "승인"},
                    headers=w.ah())
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    hist = client.get(f"/api/v1/courses/{cid}/grades/history?learner_id={w.ids['l09']}",
                      headers=w.ah()).get_json()["events"]
    assert [e["kind"] for e in hist][-2:] == ["finalized", "correction_approved"]
    assert hist[-1]["grade_before"] == corr["grade_before"] and hist[-1]["grade_after"] == "C0"
    state = client.get(f"/api/v1/courses/{cid}/nile-reports", headers=w.ah()).get_json()
    assert state["due"]["grades"]["corrected_since"] is True  # GRD-7: report the correction again

    # For the certificate: final_results.
    from lms.db import db
    from lms.grading.service import final_results

    with app.app_context():
        res = final_results(w.ids["l09"])
        db.session.remove()
    assert len(res) == 1 and res[0]["grade"] == "C0" and res[0]["points"] == 2.0 and res[0]["credits"] == 3
    assert res[0]["code"] == "EXM101" and res[0]["attendance_rate"] == 1.0 and res[0]["finalized_at"] is not None

    # The learning-history certificate reads the finalised grade (lms.grading.results).
    from lms.enrolment.certificate import course_results

    with app.app_context():
        rows = course_results(w.ids["l09"])
        db.session.remove()
    assert [(r["code"], r["grade"], r["points"], r["passed"]) for r in rows] == [("EXM101", "C0", 2.0, True)]
