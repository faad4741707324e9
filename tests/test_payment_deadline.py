"""ENR-1 "registers and pays by the day before": payment state, the payment deadline (the
registration deadline; late registrations their own), the unpaid-cancellation job at its
edges (paid at 23:59:59 the day before vs unpaid at 00:00:00 of the start date), fee 0,
waivers, the administrator's override untouched, courses without a published fee as
before — and the NILE course-status report's fee columns (ENR-6)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import assert_api_error, bearer, set_clock
from lms.enrolment import rules
from test_registration import START, World, kst

DEADLINE = kst(2027, 3, 2, 0, 0, 0)  # 00:00:00 KST of the start date


@pytest.fixture
def w(app, client, users):
    return World(app, client, users)


def _fee(w, cid, amount=300_000, lab=0):
    r = w.client.put(f"/api/v1/courses/{cid}/fee", json={"amount": amount, "lab_fee": lab}, headers=bearer(w.admin))
    assert r.status_code == 200, r.get_json()


def _pay(w, eid, amount):
    r = w.client.post(f"/api/v1/enrollments/{eid}/payments", json={"amount": amount, "method": "transfer"},
                      headers=bearer(w.admin))
    assert r.status_code == 201, r.get_json()


def _status(app, eid):
    from lms.db import db
    from lms.enrolment.models import Enrollment

    with app.app_context():
        e = db.session.get(Enrollment, eid)
        out = (e.status, e.cancel_reason)
        db.session.remove()
    return out


def _run_job(app, when):
    from lms.db import db
    from lms.enrolment.fees import cancel_unpaid

    set_clock(app, when)
    with app.app_context():
        out = cancel_unpaid()
        db.session.remove()
    return out


# --- pure rules ------------------------------------------------------------------------------

def test_enr1_payment_state_and_deadline_rules():
    """ENR-1: states by the published fee; the deadline is the registration deadline for a
    regular registration, the end of the next KST day for a late one, none for an override."""
    assert rules.payment_state(None, 0) == "no_fee"
    assert rules.payment_state(0, 0) == "free"
    assert rules.payment_state(300_000, 0, waived=True) == "waived"
    assert rules.payment_state(300_000, 300_000) == "paid"
    assert rules.payment_state(300_000, 299_999) == "partial"
    assert rules.payment_state(300_000, 0) == "unpaid"
    reg_at = kst(2027, 2, 1, 10)
    assert rules.payment_deadline(START, "regular", reg_at) == rules.registration_deadline(START) == DEADLINE
    assert rules.payment_deadline(START, "late", kst(2027, 3, 5, 23, 0)) == kst(2027, 3, 7, 0, 0, 0)
    assert rules.payment_deadline(START, "admin_override", reg_at) is None
    assert not rules.unpaid_at_deadline("unpaid", DEADLINE, DEADLINE - timedelta(seconds=1))
    assert rules.unpaid_at_deadline("unpaid", DEADLINE, DEADLINE)
    assert rules.unpaid_at_deadline("partial", DEADLINE, DEADLINE)
    assert not rules.unpaid_at_deadline("paid", DEADLINE, DEADLINE)
    assert not rules.unpaid_at_deadline("unpaid", None, DEADLINE + timedelta(days=30))
    assert rules.registration_complete(True, "paid") and rules.registration_complete(True, "free")
    assert not rules.registration_complete(False, "paid") and not rules.registration_complete(True, "partial")


# --- the job at its edges --------------------------------------------------------------------

def test_enr1_job_cancels_only_the_unpaid_at_the_start_instant(w, app):
    """ENR-1: paid in full at 23:59:59 KST the day before → kept; unpaid at 00:00:00 KST of
    the start date → cancelled with the reason recorded and the learner notified; a partial
    payment is refunded in full through the refund machinery (due within 5 days)."""
    from lms.db import db
    from lms.enrolment.models import EnrollmentEvent, Refund
    from lms.notify.models import Notice

    cid = w.course()
    _fee(w, cid, 300_000, 20_000)
    payer, nopay, part = (w.admin_enrol(w.learner(n), cid).get_json()["id"] for n in ("payer", "nopay", "part"))
    _pay(w, part, 100_000)
    w.at(kst(2027, 3, 1, 23, 59, 59))
    w.admin = w.users.login(w.client, "admin1")
    _pay(w, payer, 320_000)  # at 23:59:59 the day before: on time
    body = w.client.get(f"/api/v1/enrollments/{payer}/payments", headers=bearer(w.admin)).get_json()
    assert "payment" in body, body
    st = body["payment"]
    assert st["state"] == "paid" and st["deadline"] == "2027-03-02T00:00:00+09:00"
    assert st["last_on_time"] == "2027-03-01T23:59:59+09:00"
    # One second before the deadline the job cancels nothing.
    assert _run_job(app, kst(2027, 3, 1, 23, 59, 59))["cancelled"] == 0
    assert _status(app, nopay)[0] == "active"
    out = _run_job(app, DEADLINE)
    assert out["cancelled"] == 2 and out["refunds"] == 1
    assert _status(app, payer) == ("active", None)
    assert _status(app, nopay)[0] == "cancelled" and "미납" in _status(app, nopay)[1]
    assert _status(app, part)[0] == "cancelled"
    with app.app_context():
        ev = db.session.scalars(select(EnrollmentEvent).where(EnrollmentEvent.enrollment_id == part)
                                .order_by(EnrollmentEvent.id)).all()[-1]
        assert ev.kind == "cancelled" and ev.actor_id is None and "ENR-1" in ev.reason
        assert ev.detail["unpaid"] is True and ev.detail["payment_state"] == "partial"
        assert ev.detail["payment_deadline"] == "2027-03-02T00:00:00+09:00"
        refund = db.session.scalar(select(Refund).where(Refund.enrollment_id == part))
        assert (refund.cause, refund.table_row, refund.amount) == ("unpaid_cancelled", "unpaid_cancelled", 100_000)
        assert refund.due_on.isoformat() == "2027-03-07" and refund.refunded_at is None
        assert db.session.scalar(select(Refund).where(Refund.enrollment_id == nopay)) is None
        kinds = [(n.user_id, n.kind) for n in db.session.scalars(select(Notice).where(
            Notice.kind == "registration_unpaid"))]
        assert sorted(u for u, _k in kinds) == sorted([w.ids["nopay"], w.ids["part"]])
        db.session.remove()
    assert _run_job(app, DEADLINE + timedelta(minutes=5))["cancelled"] == 0  # idempotent


def test_enr1_job_spares_fee_zero_no_fee_waived_and_admin_override(w, app):
    """ENR-1: a course whose published fee is 0 and a course without a published fee are
    never touched; a waived fee (reason recorded) is settled; a registration made by an
    administrator's documented override after the deadline is never cancelled."""
    free = w.course()
    _fee(w, free, 0)
    nofee = w.course()
    paid_course = w.course()
    _fee(w, paid_course, 300_000)
    e_free = w.admin_enrol(w.learner("a"), free).get_json()["id"]
    e_nofee = w.admin_enrol(w.learner("b"), nofee).get_json()["id"]
    e_waived = w.admin_enrol(w.learner("c"), paid_course).get_json()["id"]
    assert_api_error(w.client.post(f"/api/v1/enrollments/{e_waived}/fee-waiver", json={"reason": ""},
                                   headers=bearer(w.admin)), 400, "invalid_request")
    r = w.client.post(f"/api/v1/enrollments/{e_waived}/fee-waiver", json={"reason": "국가유공자 감면 (증빙 확인)"},
                      headers=bearer(w.admin))
    assert r.status_code == 200 and r.get_json()["state"] == "waived" and r.get_json()["complete"] is False
    assert_api_error(w.client.post(f"/api/v1/enrollments/{e_free}/fee-waiver", json={"reason": "x"},
                                   headers=bearer(w.admin)), 409, "nothing_to_waive")
    assert_api_error(w.client.post(f"/api/v1/enrollments/{e_waived}/fee-waiver", json={"reason": "x"},
                                   headers=bearer(w.admin)), 409, "already_waived")
    history = [(e["kind"], e["reason"]) for e in w.events(e_waived)]
    assert ("fee_waived", "국가유공자 감면 (증빙 확인)") in history
    # After the deadline the admin enrols a learner by override (documented reason).
    w.at(kst(2027, 3, 3, 10), "a")
    w.admin = w.users.login(w.client, "admin1")
    r = w.admin_enrol(w.learner("d"), paid_course, reason="원서 접수 오류 정정 (민원 2027-014)")
    assert r.status_code == 201, r.get_json()
    e_override = r.get_json()["id"]
    st = w.client.get(f"/api/v1/enrollments/{e_override}/payments", headers=bearer(w.admin)).get_json()["payment"]
    assert st["state"] == "unpaid" and st["registration_kind"] == "admin_override" and st["deadline"] is None
    out = _run_job(app, kst(2027, 3, 10))
    assert out["cancelled"] == 0
    for eid in (e_free, e_nofee, e_waived, e_override):
        assert _status(app, eid)[0] == "active"
    w.at(kst(2027, 3, 10, 0, 1), "a")
    info = w.client.get(f"/api/v1/courses/{free}/registration", headers=bearer(w.tokens["a"])).get_json()
    assert info["payment"]["state"] == "free" and info["payment"]["complete"] is False  # consent not yet given


def test_enr1_late_registration_has_its_own_payment_deadline(w, app):
    """ENR-1: a late registration (late right) made on day 3 must be paid by the end of the
    next KST day: unpaid at 23:59:59 of that day it stays, at 00:00:00 after it goes."""
    gone = w.course(starts_on=START - timedelta(days=7))
    cid = w.course()
    _fee(w, cid, 200_000)
    w.learner("late")
    eid0 = w.admin_enrol(w.ids["late"], gone).get_json()["id"]
    r = w.client.post(f"/api/v1/enrollments/{eid0}/cancel", json={"reason": "폐강", "unavoidable": True},
                      headers=bearer(w.admin))
    assert r.status_code == 200
    w.at(kst(2027, 3, 4, 15), "late")
    r = w.self_enrol("late", cid)
    assert r.status_code == 201, r.get_json()
    eid = r.get_json()["id"]
    info = w.client.get(f"/api/v1/courses/{cid}/registration", headers=bearer(w.tokens["late"])).get_json()
    assert info["payment"]["deadline"] == "2027-03-06T00:00:00+09:00" and info["payment"]["state"] == "unpaid"
    assert info["payment"]["registration_kind"] == "late"
    assert _run_job(app, kst(2027, 3, 5, 23, 59, 59))["cancelled"] == 0
    assert _status(app, eid)[0] == "active"
    assert _run_job(app, kst(2027, 3, 6, 0, 0, 0))["cancelled"] == 1
    assert _status(app, eid)[0] == "cancelled"


def test_enr1_unpaid_job_is_periodic():
    from lms.enrolment.fees import cancel_unpaid
    from lms.enrolment.jobs import PERIODIC

    assert (cancel_unpaid, 300) in PERIODIC


def test_enr1_payment_state_on_the_learner_and_admin_pages(w, app, client, users):
    """ENR-1 on the pages: the learner's registration page shows "미납" and the deadline
    (23:59:59 the day before); the admin's registrations list shows state and deadline."""
    from test_registration_pages import page_login

    cid = w.course()
    _fee(w, cid, 300_000)
    w.learner("pp")
    w.at(kst(2027, 2, 20, 10), "pp")
    r = w.self_enrol("pp", cid)
    assert r.status_code == 201
    pages = app.test_client()
    page_login(pages, users, "u_pp")
    html = pages.get(f"/courses/{cid}/register").get_data(as_text=True)
    assert 'data-testid="payment-status" data-state="unpaid"' in html
    assert 'data-testid="registration-incomplete"' in html and "2027-03-01 23:59:59" in html
    admin_pages = app.test_client()
    page_login(admin_pages, users, "admin1")
    html = admin_pages.get(f"/admin/courses/{cid}/registrations").get_data(as_text=True)
    assert 'data-state="unpaid"' in html and "2027-03-01 23:59:59" in html
    w.admin = users.login(client, "admin1")
    _pay(w, r.get_json()["id"], 300_000)
    html = pages.get(f"/courses/{cid}/register").get_data(as_text=True)
    assert 'data-state="paid"' in html and 'data-testid="registration-complete"' in html


# --- ENR-6: the NILE course-status report's fee columns --------------------------------------

def test_enr6_course_status_report_fee_paid_and_refund_columns(w, app):
    """ENR-6: 수강료 is the published fee (+ lab fee), 납부액 each learner's recorded payments,
    환불액 the refunds decided — matching the payment and refund rows."""
    import csv
    import io

    from lms.auth.models import User
    from lms.db import db
    from lms.enrolment.models import Payment, Refund
    from lms.grading import reports

    cid = w.course()
    _fee(w, cid, 300_000, 20_000)
    e1 = w.admin_enrol(w.learner("r1"), cid).get_json()["id"]
    e2 = w.admin_enrol(w.learner("r2"), cid).get_json()["id"]
    w.admin_enrol(w.learner("r3"), cid)
    _pay(w, e1, 320_000)
    _pay(w, e2, 100_000)
    _pay(w, e2, 50_000)
    r = w.client.post(f"/api/v1/enrollments/{e2}/refunds", json={"cause": "withdrawal",
                                                                  "cause_at": kst(2027, 2, 10).isoformat()},
                      headers=bearer(w.admin))
    assert r.status_code == 201 and r.get_json()["amount"] == 150_000
    rep = w.client.post(f"/api/v1/courses/{cid}/nile-reports", json={"kind": "course_status", "format": "csv"},
                        headers=bearer(w.admin))
    assert rep.status_code == 201, rep.get_json()
    data = w.client.get(f"/api/v1/nile-reports/{rep.get_json()['id']}/download", headers=bearer(w.admin)).data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    head = rows[0]
    assert head[-3:] == ["수강료", "납부액", "환불액"]
    with app.app_context():
        expect = {}
        for u in db.session.scalars(select(User).where(User.username.in_(("u_r1", "u_r2", "u_r3")))):
            expect[u.username] = u.id
        paid = {}
        for p in db.session.scalars(select(Payment)):
            paid[p.enrollment_id] = paid.get(p.enrollment_id, 0) + p.amount
        refunded = {}
        for x in db.session.scalars(select(Refund)):
            refunded[x.enrollment_id] = refunded.get(x.enrollment_id, 0) + x.amount
        db.session.remove()
    by_user = {r[head.index("학습자 아이디")]: r for r in rows[1:]}
    assert set(by_user) == {"u_r1", "u_r2", "u_r3"}
    eids = {"u_r1": e1, "u_r2": e2}
    for name, row in by_user.items():
        assert row[head.index("수강료")] == "320000"
        eid = eids.get(name)
        assert int(row[head.index("납부액")]) == paid.get(eid, 0)
        assert int(row[head.index("환불액")]) == refunded.get(eid, 0)
    assert by_user["u_r2"][-2:] == ["150000", "150000"] and by_user["u_r3"][-2:] == ["0", "0"]
    # Without a published fee the columns stay empty.
    other = w.course()
    w.admin_enrol(w.learner("r4"), other)
    with app.app_context():
        from lms.content.models import Course

        row = reports.status_rows(db.session.get(Course, other))[0]
        assert row[-3:] == ["", "", ""]
        db.session.remove()
