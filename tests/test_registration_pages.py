"""Registration pages, the learner register (ENR-5, REC-2) and its corrections, the
learning-history certificate (seed 000) and its public verification page."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import date, timedelta

import pytest

from conftest import assert_api_error, bearer, set_clock
from test_registration import START, World, kst

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def page_login(client, users, username):
    """Log in through the pages (cookie session). Ends the user's other sessions."""
    r = client.post("/login", data={"csrf_token": _csrf(client.get("/login").get_data(as_text=True)),
                                    "username": username, "password": users.passwords[username]})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    r = client.post("/login/otp", data={"csrf_token": _csrf(client.get("/login/otp").get_data(as_text=True)),
                                        "code": users.code(username)})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]


@pytest.fixture
def w(app, client, users):
    return World(app, client, users)


def test_registration_page_consent_and_credit_totals(w, app, client, users):
    """ENR-2 on the page: the syllabus is shown; without the consent box the registration
    is refused naming ENR-2; with it the learner is enrolled. ENR-3 totals are shown."""
    done = w.course_ending(date(2027, 7, 31), 6)
    cid = w.course()
    uid = w.learner("pg")
    assert w.admin_enrol(uid, done).status_code == 201
    from lms.content.models import Syllabus
    from lms.db import db
    from lms import clock

    with app.app_context():
        db.session.add(Syllabus(course_id=cid, instructor_name="김교수", goals="사회복지의 기초를 이해한다",
                                weekly_topics=["개관"], updated_at=clock.now()))
        db.session.commit()
    page_login(client, users, "u_pg")
    html = client.get(f"/courses/{cid}/register").get_data(as_text=True)
    assert "사회복지의 기초를 이해한다" in html and 'data-testid="consent-checkbox"' in html
    assert "2027-03-01 23:59:59 KST" in html  # the last on-time second (ENR-1)
    assert re.search(r'data-testid="credit-now">[^<]*연간 6 / 42학점, 해당 학기 6 / 24학점', html)
    r = client.post(f"/courses/{cid}/register", data={"csrf_token": _csrf(html)})
    assert r.status_code == 422 and "ENR-2" in r.get_data(as_text=True)
    r = client.post(f"/courses/{cid}/register", data={"csrf_token": _csrf(html), "syllabus_consent": "on"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/courses/{cid}")
    cat = client.get("/registration").get_data(as_text=True)
    assert f'data-course-id="{cid}"' in cat and "신청 완료" in cat


def test_admin_pages_render(w, app, client, users):
    cid = w.course(weeks=18)
    uid = w.learner("adm")
    eid = w.admin_enrol(uid, cid).get_json()["id"]
    page_login(client, users, "admin1")
    html = client.get("/admin/registrations").get_data(as_text=True)
    r = client.post("/admin/registrations", data={"csrf_token": _csrf(html), "course_id": cid, "amount": "300,000",
                                                  "lab_fee": "0"})
    assert r.status_code == 303
    html = client.get(f"/admin/courses/{cid}/registrations").get_data(as_text=True)
    assert f'data-enrollment-id="{eid}"' in html and "폐강 (CRS-14)" in html
    html = client.get(f"/admin/enrollments/{eid}/payments").get_data(as_text=True)
    r = client.post(f"/admin/enrollments/{eid}/payments", data={"csrf_token": _csrf(html), "action": "payment",
                                                                "amount": "300000", "method": "card"})
    assert r.status_code == 303
    r = client.post(f"/admin/enrollments/{eid}/payments", data={
        "csrf_token": _csrf(html), "action": "quote", "cause": "withdrawal", "cause_at": "2027-03-23T00:00:00",
        "overpaid": "0"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    # Exactly 1/6 of 126 days: the "1/6 이상부터 1/3 미만" row is marked as used.
    used = re.search(r'<tr[^>]*data-testid="row-used"[^>]*><td colspan="2">([^<]+)<', html).group(1)
    assert "1/6 이상부터 1/3 미만" in used
    assert re.search(r'data-testid="quote-amount">200,000<', html)
    assert client.get("/admin/refunds").status_code == 200
    assert client.get("/admin/register-corrections").status_code == 200
    assert client.get(f"/admin/learners/{uid}/register").status_code == 200


# --- the learner register (ENR-5, REC-2) -----------------------------------------------------

def _register(client, token):
    r = client.get("/api/v1/me/register", headers=bearer(token))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_enr5_register_created_with_registration_and_never_deleted(w, app, client):
    """ENR-5: the register exists from the registration on (inside 3 weeks of the start);
    REC-2: its rows cannot be deleted."""
    cid = w.course()
    uid = w.learner("reg")
    w.admin_enrol(uid, cid)
    token = w.login("reg")
    body = _register(client, token)
    assert body["fields"]["name"] == "홍길동"
    assert [c["course_id"] for c in body["courses"]] == [cid]
    assert body["courses"][0]["registration_kind"] == "regular"
    from lms.db import db
    from lms.enrolment.models import LearnerRegister

    with app.app_context():
        reg = db.session.scalar(db.select(LearnerRegister).where(LearnerRegister.user_id == uid))
        db.session.delete(reg)
        with pytest.raises(RuntimeError, match="REC-2"):
            db.session.flush()
        db.session.rollback()


def test_enr5_job_creates_missing_registers_for_started_courses(w, app):
    """ENR-5: the hourly job gives every registration of a started course its register entry."""
    from sqlalchemy import func, select

    from lms import clock
    from lms.db import db
    from lms.enrolment import register as reg
    from lms.enrolment.models import Enrollment, RegisterEntry

    cid, future = w.course(starts_on=date(2026, 11, 30)), w.course()
    a, b = w.learner("ja"), w.learner("jb")
    with app.app_context():  # registrations made outside the service (e.g. an import)
        db.session.add_all([Enrollment(course_id=cid, user_id=a, status="active", created_at=clock.now()),
                            Enrollment(course_id=future, user_id=b, status="active", created_at=clock.now())])
        db.session.commit()
        assert reg.create_due_registers() == 1
        assert db.session.scalar(select(func.count(RegisterEntry.id))) == 1
        assert reg.create_due_registers() == 0
        from lms.enrolment import rules
        assert rules.register_due(date(2027, 3, 2)) == kst(2027, 3, 23)


def test_enr5_correction_with_evidence_keeps_history(w, app, client, users):
    """REC-2: a correction needs evidence; an admin's approval appends the new value and the
    old one stays in the history; a decided application cannot be decided again."""
    cid = w.course()
    uid = w.learner("cor")
    w.admin_enrol(uid, cid)
    token = w.login("cor")
    url = "/api/v1/me/register/corrections"
    r = client.post(url, data={"field": "name", "value": "홍길순", "reason": "개명"}, headers=bearer(token),
                    content_type="multipart/form-data")
    assert_api_error(r, 400, "invalid_request")
    r = client.post(url, data={"field": "name", "value": "홍길순", "reason": "개명 (법원 허가)",
                               "files": [(io.BytesIO(b"not a pdf"), "x.pdf")]},
                    headers=bearer(token), content_type="multipart/form-data")
    assert_api_error(r, 400, "invalid_request")
    r = client.post(url, data={"field": "name", "value": "홍길순", "reason": "개명 (법원 허가)",
                               "files": [(io.BytesIO(PDF), "허가서.pdf")]},
                    headers=bearer(token), content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    corr = r.get_json()
    assert corr["status"] == "pending" and corr["evidence"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert _register(client, token)["fields"]["name"] == "홍길동"
    assert_api_error(client.post(f"/api/v1/register-corrections/{corr['id']}/decision", json={"approve": True},
                                 headers=bearer(token)), 403, "forbidden")
    r = client.post(f"/api/v1/register-corrections/{corr['id']}/decision", json={"approve": True, "comment": "확인"},
                    headers=bearer(w.admin))
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    assert_api_error(client.post(f"/api/v1/register-corrections/{corr['id']}/decision", json={"approve": False},
                                 headers=bearer(w.admin)), 409, "already_decided")
    body = _register(client, token)
    assert body["fields"]["name"] == "홍길순"
    names = [(h["value"], h["source"]) for h in body["history"] if h["field"] == "name"]
    assert names == [("홍길동", "created"), ("홍길순", "correction")]
    r = client.get(f"/api/v1/register-corrections/{corr['id']}/evidence/{corr['evidence'][0]['id']}",
                   headers=bearer(w.admin))
    assert r.status_code == 200 and r.data == PDF
    admin_view = client.get(f"/api/v1/learners/{uid}/register", headers=bearer(w.admin)).get_json()
    assert admin_view["number"] == body["number"]


# --- the learning-history certificate ----------------------------------------------------------

def test_certificate_pdf_code_and_public_verification(w, app, client, users):
    """Seed 000: the certificate lists completed courses with credits, attendance rate and the
    grade ("성적 미확정" until grading finalises); the code is random; the PDF's hash is
    stored; the public page shows the masked holder, the issue date and the courses."""
    from lms.enrolment import certificate

    ended = w.course(starts_on=date(2026, 6, 2))  # ended 2026-09-14
    running = w.course(starts_on=date(2026, 11, 3))
    uid = w.learner("cert")
    for c in (ended, running):
        assert w.admin_enrol(uid, c).status_code == 201
    token = w.login("cert")
    r = client.post("/api/v1/me/certificates", headers=bearer(token))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert [c["course_id"] for c in body["courses"]] == [ended]
    row = body["courses"][0]
    assert row["grade"] == certificate.GRADE_PENDING and row["credits"] == 3 and row["attendance_rate"] == 0.0
    assert body["holder"] == "홍*동" and re.fullmatch(r"[A-Z2-9]{20}", body["code"])
    pdf = client.get(body["pdf_url"], headers=bearer(token))
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert hashlib.sha256(pdf.data).hexdigest() == body["pdf_sha256"] == pdf.headers["X-Certificate-SHA256"]
    second = client.post("/api/v1/me/certificates", headers=bearer(token)).get_json()
    assert second["code"] != body["code"]
    # Public page, no login (a fresh client without cookies).
    anon = app.test_client()
    pretty = "-".join(body["code"][i:i + 5] for i in range(0, 20, 5)).lower()
    page = anon.get(f"/verify?code={pretty}", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="verify-valid"' in html
    assert "홍*동" in html and "홍길동" not in html and "과정 1" in html
    bad = anon.get("/verify/AAAAABBBBBCCCCCDDDDD")
    assert bad.status_code == 404 and 'data-testid="verify-invalid"' in bad.get_data(as_text=True)
    assert anon.get(f"/api/v1/verify/{body['code']}").get_json()["valid"] is True
    assert_api_error(anon.get("/api/v1/verify/nope"), 404, "not_valid")
    # Another learner cannot download it.
    w.learner("other")
    other = w.login("other")
    assert_api_error(client.get(body["pdf_url"], headers=bearer(other)), 404, "not_found")


def test_certificate_reads_finalised_grades_when_grading_provides_them(w, app, monkeypatch):
    """course_results reads grades through lms.grading.results.finalised_grade when present."""
    import sys
    import types

    from lms.enrolment import certificate

    ended = w.course(starts_on=date(2026, 6, 2))
    uid = w.learner("gr")
    w.admin_enrol(uid, ended)
    fake = types.ModuleType("lms.grading.results")
    fake.finalised_grade = lambda course_id, learner_id: {"letter": "A+", "points": 4.5, "passed": True}
    monkeypatch.setitem(sys.modules, "lms.grading.results", fake)
    with app.app_context():
        rows = certificate.course_results(uid)
    assert rows[0]["grade"] == "A+" and rows[0]["passed"] is True and rows[0]["points"] == 4.5
