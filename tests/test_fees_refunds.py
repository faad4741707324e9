"""Fees, payments and refunds (ENR-4): the table at exactly 1/6, 1/3, 1/2 of class time,
no fee beyond the published one, refunds due within 5 days and the overdue list."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest

from conftest import assert_api_error, bearer, set_clock
from lms.clock import KST
from lms.enrolment import rules
from test_registration import START, World, kst

START_AT = kst(2027, 3, 2)
WEEKS = 18  # 126 days: 1/6 = 21 days, 1/3 = 42 days, 1/2 = 63 days


@pytest.mark.parametrize("offset, row, amount", [
    (-timedelta(seconds=1), "before_start", 300_000),
    (timedelta(0), "before_1_6", 250_000),
    (timedelta(days=21) - timedelta(seconds=1), "before_1_6", 250_000),
    (timedelta(days=21), "before_1_3", 200_000),  # exactly 1/6: "1/6 이상" → 2/3
    (timedelta(days=42) - timedelta(seconds=1), "before_1_3", 200_000),
    (timedelta(days=42), "before_1_2", 150_000),  # exactly 1/3: "1/3 이상" → 1/2
    (timedelta(days=63) - timedelta(seconds=1), "before_1_2", 150_000),
    (timedelta(days=63), "from_1_2", 0),  # exactly 1/2: "1/2 이상 경과" → nothing
])
def test_enr4_refund_table_edges(offset, row, amount):
    """ENR-4: before the start in full; from the start to before 1/6 → 5/6; from exactly 1/6
    to before 1/3 → 2/3; from exactly 1/3 to before 1/2 → 1/2; from exactly 1/2 → nothing."""
    r = rules.refund(cause="withdrawal", paid=300_000, cause_at=START_AT + offset, starts_on=START, weeks=WEEKS)
    assert (r.row, r.amount) == (row, amount)


def test_enr4_exact_fraction_on_15_weeks():
    """ENR-4: 15 weeks = 105 days, 1/6 falls at 17.5 days exactly: compared exactly."""
    at = START_AT + timedelta(days=17, hours=12)
    r = rules.refund(cause="illness", paid=100_000, cause_at=at, starts_on=START, weeks=15)
    assert r.elapsed == Fraction(1, 6) and r.row == "before_1_3" and r.amount == 66_667  # rounded up
    r = rules.refund(cause="illness", paid=100_000, cause_at=at - timedelta(seconds=1), starts_on=START, weeks=15)
    assert r.row == "before_1_6" and r.amount == 83_334


def test_enr4_due_within_5_days():
    """ENR-4: a cause on Jan 1 (KST) is refunded by the end of Jan 6."""
    r = rules.refund(cause="overpayment", paid=10, overpaid=10, cause_at=kst(2027, 1, 1, 23, 59),
                     starts_on=START, weeks=15)
    assert r.due_on == date(2027, 1, 6) and r.amount == 10
    assert not rules.refund_overdue(date(2027, 1, 6), False, kst(2027, 1, 6, 23, 59, 59))
    assert rules.refund_overdue(date(2027, 1, 6), False, kst(2027, 1, 7, 0, 0, 0))
    assert not rules.refund_overdue(date(2027, 1, 6), True, kst(2027, 1, 7, 0, 0, 0))


@pytest.fixture
def w(app, client, users):
    return World(app, client, users)


def _enrolled_paid(w, *, fee=300_000, lab=0, paid=300_000):
    cid = w.course(weeks=WEEKS)
    r = w.client.put(f"/api/v1/courses/{cid}/fee", json={"amount": fee, "lab_fee": lab}, headers=bearer(w.admin))
    assert r.status_code == 200, r.get_json()
    uid = w.learner("payer")
    eid = w.admin_enrol(uid, cid).get_json()["id"]
    if paid:
        r = w.client.post(f"/api/v1/enrollments/{eid}/payments", json={"amount": paid, "method": "transfer"},
                          headers=bearer(w.admin))
        assert r.status_code == 201, r.get_json()
    return cid, eid


def test_enr4_no_payment_beyond_the_published_fee(w):
    """ENR-4: no fee beyond the published fee and lab costs (422); without a published fee
    no payment is recorded (409)."""
    cid, eid = _enrolled_paid(w, fee=300_000, lab=20_000, paid=300_000)
    r = w.client.post(f"/api/v1/enrollments/{eid}/payments", json={"amount": 20_000, "method": "card"},
                      headers=bearer(w.admin))
    assert r.status_code == 201
    err = assert_api_error(w.client.post(f"/api/v1/enrollments/{eid}/payments", json={"amount": 1, "method": "cash"},
                                         headers=bearer(w.admin)), 422, "rule_violation")
    assert err["rules"] == ["ENR-4"]
    assert_api_error(w.client.post(f"/api/v1/enrollments/{eid}/payments", json={"amount": 1, "method": "bitcoin"},
                                   headers=bearer(w.admin)), 400, "invalid_request")
    other = w.course()
    e2 = w.admin_enrol(w.learner("nofee"), other).get_json()["id"]
    assert_api_error(w.client.post(f"/api/v1/enrollments/{e2}/payments", json={"amount": 1, "method": "cash"},
                                   headers=bearer(w.admin)), 409, "fee_not_published")
    body = w.client.get(f"/api/v1/enrollments/{eid}/payments", headers=bearer(w.admin)).get_json()
    assert body["paid"] == 320_000 and [p["method"] for p in body["payments"]] == ["transfer", "card"]


def test_enr4_refund_quote_and_decision_through_the_api(w, app):
    """ENR-4: the calculator names the table row; at exactly 1/3 of class time the learner
    gets half of what they actually paid, due within 5 days."""
    _cid, eid = _enrolled_paid(w, paid=300_000)
    at = (START_AT + timedelta(days=42)).isoformat()
    r = w.client.post(f"/api/v1/enrollments/{eid}/refund-quote", json={"cause": "withdrawal", "cause_at": at},
                      headers=bearer(w.admin))
    q = r.get_json()
    assert r.status_code == 200, q
    assert q["row"] == "before_1_2" and q["elapsed"] == "1/3" and q["amount"] == 150_000 and q["share"] == "1/2"
    assert q["due_on"] == "2027-04-18" and "1/3 이상부터 1/2 미만" in q["row_label"]
    r = w.client.post(f"/api/v1/enrollments/{eid}/refunds", json={"cause": "withdrawal", "cause_at": at},
                      headers=bearer(w.admin))
    assert r.status_code == 201 and r.get_json()["amount"] == 150_000
    # A second decision refunds from what is left (150 000), not from the whole fee.
    q2 = w.client.post(f"/api/v1/enrollments/{eid}/refund-quote", json={"cause": "withdrawal", "cause_at": at},
                       headers=bearer(w.admin)).get_json()
    assert q2["paid"] == 150_000 and q2["amount"] == 75_000
    assert_api_error(w.client.post(f"/api/v1/enrollments/{eid}/refund-quote",
                                   json={"cause": "withdrawal", "cause_at": "2027-04-13T00:00:00"},
                                   headers=bearer(w.admin)), 400, "invalid_request")


def test_enr4_overdue_refunds_list_and_dashboard_panel(w, app, client, users):
    """ENR-4: a refund not paid by the end of its 5th day is overdue: listed by the API and
    on the admin's home page; paying it clears it."""
    _cid, eid = _enrolled_paid(w, paid=300_000)
    cause = kst(2027, 4, 1, 10)
    r = w.client.post(f"/api/v1/enrollments/{eid}/refunds", json={"cause": "military", "cause_at": cause.isoformat()},
                      headers=bearer(w.admin))
    refund = r.get_json()
    assert refund["due_on"] == "2027-04-06"
    w.at(kst(2027, 4, 6, 23, 59, 59))
    w.admin = users.login(client, "admin1")
    assert w.client.get("/api/v1/refunds?overdue=true", headers=bearer(w.admin)).get_json()["refunds"] == []
    w.at(kst(2027, 4, 7, 0, 0, 0))
    w.admin = users.login(client, "admin1")
    rows = w.client.get("/api/v1/refunds?overdue=true", headers=bearer(w.admin)).get_json()["refunds"]
    assert [x["id"] for x in rows] == [refund["id"]] and rows[0]["overdue"] is True
    # The admin's home page panel (cookie session through the login page flow).
    from test_registration_pages import page_login

    pages = app.test_client()
    page_login(pages, users, "admin1")
    html = pages.get("/").get_data(as_text=True)
    assert 'data-testid="overdue-refunds"' in html and f'data-refund-id="{refund["id"]}"' in html
    csv_text = pages.get("/admin/refunds.csv").get_data(as_text=True)
    assert csv_text.startswith("\ufeff학습자,") and ",Y" in csv_text.splitlines()[1]
    w.admin = users.login(client, "admin1")  # the page login ended the API session (one session)
    r = w.client.post(f"/api/v1/refunds/{refund['id']}/paid", json={"method": "transfer"}, headers=bearer(w.admin))
    assert r.status_code == 200 and r.get_json()["overdue"] is False
    assert w.client.get("/api/v1/refunds?overdue=true", headers=bearer(w.admin)).get_json()["refunds"] == []
    assert_api_error(w.client.post(f"/api/v1/refunds/{refund['id']}/paid", json={"method": "transfer"},
                                   headers=bearer(w.admin)), 409, "already_refunded")


def test_crs14_cancellation_refunds_in_full(w, app):
    """CRS-14 / ENR-4: cancelling a course refunds what each learner paid, in full."""
    cid, eid = _enrolled_paid(w, paid=120_000, fee=300_000)
    r = w.client.post(f"/api/v1/courses/{cid}/cancel", json={"reason": "수강인원 미달"}, headers=bearer(w.admin))
    assert r.status_code == 200 and r.get_json()["refunds"] == 1
    body = w.client.get(f"/api/v1/enrollments/{eid}/payments", headers=bearer(w.admin)).get_json()
    assert [(x["row"], x["amount"]) for x in body["refunds"]] == [("course_cancelled", 120_000)]
