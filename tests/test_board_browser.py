"""The TAs' live board in a real browser (CRS-11): headless Chromium against the app on a
real socket. The page shows a change of a learner's attendance made in the database within
a few polls, without a reload; sorting by a header and the attendance reminder button
(CRS-8, a cookie-authenticated JSON call with the CSRF header) work from the page."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from conftest import set_clock
from lms import clock
from lms.auth.models import User
from lms.auth.rules import OTP_STEP_SECONDS, otp_step
from lms.db import db
from test_board import NOW, SECONDS, Class_, kst

pytestmark = pytest.mark.browser

POLL_WAIT_MS = 12_000  # the test's poll interval is 1 s: a change shows within a few polls


@pytest.fixture(autouse=True)
def _course_time(app):
    set_clock(app, NOW)


def fresh_code(app, username: str) -> str:
    """A TOTP code of the server clock's current step that ``username`` has not used (the
    testing clock moves to the next step's start when this one is used)."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        step = otp_step(clock.now())
        if user.otp_last_step is not None and user.otp_last_step >= step:
            step = user.otp_last_step + 1
            clock.set_now(datetime.fromtimestamp(step * OTP_STEP_SECONDS + 1, timezone.utc))
        secret = user.otp_secret
        db.session.remove()
        return pyotp.TOTP(secret).generate_otp(step)


def browser_login(app, page, users, username: str, next_path: str):
    page.goto(f"/login?next={next_path}")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(users.passwords[username])
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login/otp$"))
    page.locator("input[name=code]").fill(fresh_code(app, username))
    page.locator("main form button[type=submit]").click()


@pytest.fixture
def page(browser, live_server):
    ctx = browser.new_context(base_url=live_server.url, locale="ko-KR", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    errors = []
    pg = ctx.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text)
          if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico") else None)
    yield pg
    ctx.close()
    assert errors == [], errors  # no script errors, no CSP refusals (the favicon's 404 aside)


def set_attended(app, course, learner, week, n):
    """What the heartbeat service writes when a lesson is covered 100% in time (ATT-1)."""
    from lms.attendance.models import LessonProgress

    with app.app_context():
        row = db.session.scalar(select(LessonProgress).where(
            LessonProgress.learner_id == course.learners[learner],
            LessonProgress.lesson_id == course.lessons[(week, n)]))
        row.status, row.covered_seconds, row.intervals = "attended", SECONDS, [[0, SECONDS]]
        row.completed_at = row.last_access_at = clock.now()
        row.last_access_ip = "203.0.113.77"
        db.session.commit()
        db.session.remove()


def test_board_updates_without_reload(app, client, users, admin_token, page):
    c = Class_(app, client, users, admin_token)
    c.add_staff("brdta")
    c.progress("lee", 3, 1, covered=600, last_access_at=kst(2027, 3, 19, 9), last_access_ip="198.51.100.4")
    board_path = f"/courses/{c.id}/board?refresh=1"
    browser_login(app, page, users, "brdta", board_path)
    expect(page).to_have_url(re.compile(rf"/courses/{c.id}/board\?refresh=1$"))
    expect(page.locator("h1")).to_contain_text("학습 현황")
    root = page.get_by_test_id("board")
    assert root.get_attribute("data-refresh-ms") == "1000"

    lee = page.get_by_test_id("board-row-brd101lee")
    expect(lee.locator('td[data-field="attended"]')).to_have_text("0")
    expect(lee.locator('td[data-field="progress"]')).to_have_text("20%")
    expect(lee.locator('td[data-field="last_access_ip"]')).to_have_text("198.51.100.4")
    # the poll runs: the time of the last refresh moves on (the server's clock)
    first = page.get_by_test_id("board-updated").inner_text()
    expect(page.get_by_test_id("board-updated")).not_to_have_text(first, timeout=POLL_WAIT_MS)
    page.evaluate("window.__boardMarker = 'same document'")

    set_attended(app, c, "lee", 3, 1)

    expect(lee.locator('td[data-field="attended"]')).to_have_text("1", timeout=POLL_WAIT_MS)
    expect(lee.locator('td[data-field="pending"]')).to_have_text("3")
    expect(lee.locator('td[data-field="progress"]')).to_have_text("50%")
    expect(lee.locator('td[data-field="last_access_ip"]')).to_have_text("203.0.113.77")
    assert page.evaluate("window.__boardMarker") == "same document"  # no reload happened
    expect(page).to_have_url(re.compile(rf"/courses/{c.id}/board\?refresh=1$"))
    if os.environ.get("LMS_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["LMS_SCREENSHOT_DIR"], "board.png"), full_page=True)


def test_sorting_and_reminder_from_the_page(app, client, users, admin_token, page):
    from lms.notify.models import Notice, OutboxEmail

    c = Class_(app, client, users, admin_token)
    c.add_staff("brdta")
    c.progress("kim", 2, 1, status="attended", covered=SECONDS, completed_at=kst(2027, 3, 10))
    browser_login(app, page, users, "brdta", f"/courses/{c.id}/board?refresh=1")
    rows = page.locator("[data-testid=board-table] tbody tr")
    expect(rows).to_have_count(3)
    names = lambda: [t.split()[0] for t in rows.locator('td[data-field="name"]').all_inner_texts()]
    assert names() == ["김철수", "박민수", "이영희"]

    # sort by 기한 임박, most at risk first (ties by name: 박 before 이), then toggle
    page.locator('button[data-sort="at_risk"]').click()
    expect(page.locator('th[data-sort-key="at_risk"]')).to_have_attribute("aria-sort", "descending")
    expect(rows.first).to_have_attribute("data-testid", "board-row-brd101park")
    expect(rows.last).to_have_attribute("data-testid", "board-row-brd101kim")
    csv_link = page.get_by_test_id("board-csv")
    expect(csv_link).to_have_attribute("href", re.compile(r"format=csv&sort=at_risk&order=desc"))
    page.locator('button[data-sort="at_risk"]').click()
    expect(page.locator('th[data-sort-key="at_risk"]')).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_have_attribute("data-testid", "board-row-brd101kim")

    # the download link answers with the CSV (session cookie)
    resp = page.request.get(csv_link.get_attribute("href"))
    assert resp.status == 200 and resp.body().startswith(b"\xef\xbb\xbf")

    page.get_by_test_id("board-remind").click()
    expect(page.get_by_test_id("board-remind-result")).to_have_text("3명에게 출석 독려 알림을 보냈습니다.")
    with app.app_context():
        assert len(db.session.scalars(select(Notice)).all()) == 3
        assert len(db.session.scalars(select(OutboxEmail)).all()) == 3
        db.session.remove()
