"""The learner's registration page in a real browser (ENR-1…3): the syllabus is shown with
the credit totals; submitting without the consent box is stopped; with it the learner is
enrolled and lands in the course, consent recorded with time and IP (ENR-2)."""
from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.db import db
from test_board_browser import browser_login, page  # noqa: F401  (fixture)
from test_registration import World

pytestmark = pytest.mark.browser


def test_learner_registers_with_consent_in_a_browser(app, client, users, page):  # noqa: F811
    w = World(app, client, users)
    done = w.course_ending(date(2027, 7, 31), 6)
    cid = w.course()
    uid = w.learner("brw")
    assert w.admin_enrol(uid, done).status_code == 201
    browser_login(app, page, users, "u_brw", "/registration")
    expect(page).to_have_url(re.compile(r"/registration$"))
    expect(page.get_by_test_id("credit-totals")).to_contain_text("6")
    page.get_by_test_id(f"apply-{cid}").click()
    expect(page.get_by_test_id("register-page")).to_be_visible()
    expect(page.get_by_test_id("syllabus")).to_be_visible()
    expect(page.get_by_test_id("credit-now")).to_contain_text("6 / 42")
    # The checkbox is required: the browser does not submit without it.
    page.get_by_test_id("register-button").click()
    expect(page).to_have_url(re.compile(rf"/courses/{cid}/register$"))
    from lms.enrolment.models import Enrollment

    with app.app_context():
        assert db.session.scalar(select(Enrollment).where(Enrollment.course_id == cid)) is None
        db.session.remove()
    page.get_by_test_id("consent-checkbox").check()
    page.get_by_test_id("register-button").click()
    expect(page).to_have_url(re.compile(rf"/courses/{cid}$"))
    expect(page.get_by_test_id("course-page")).to_be_visible()
    expect(page.get_by_test_id("syllabus-consent")).to_have_count(0)  # consent already recorded
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.course_id == cid, Enrollment.user_id == uid))
        assert e.status == "active" and e.syllabus_consent_at is not None and e.syllabus_consent_ip == "127.0.0.1"
        db.session.remove()


def test_learner_sees_payment_state_and_deadline_in_a_browser(app, client, users, page):  # noqa: F811
    """ENR-1 in a browser: after registering for a course with a published fee the
    registration page reads "등록 미완료", 학습비 "미납" and the deadline 23:59:59 the day before."""
    from conftest import bearer

    w = World(app, client, users)
    cid = w.course()
    assert w.client.put(f"/api/v1/courses/{cid}/fee", json={"amount": 250_000},
                        headers=bearer(w.admin)).status_code == 200
    w.learner("payb")
    browser_login(app, page, users, "u_payb", f"/courses/{cid}/register")
    page.get_by_test_id("consent-checkbox").check()
    page.get_by_test_id("register-button").click()
    expect(page).to_have_url(re.compile(rf"/courses/{cid}$"))
    page.goto(page.url + "/register")
    expect(page.get_by_test_id("payment-status")).to_have_attribute("data-state", "unpaid")
    expect(page.get_by_test_id("registration-incomplete")).to_be_visible()
    expect(page.get_by_test_id("payment-state")).to_have_text("미납")
    expect(page.get_by_test_id("payment-deadline")).to_contain_text("2027-03-01 23:59:59")
    expect(page.get_by_test_id("payment-deadline")).to_contain_text("250,000")
