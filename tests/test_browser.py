"""The login pages in a real browser: headless Chromium (Playwright) against the app on a
real socket. First login with authenticator enrolment (QR code and secret), a later login
without it, an admin creating a user through the form, one ID one session (EXM-9) across
two browser contexts, and the language switch."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.auth.rules import OTP_STEP_SECONDS, otp_step
from lms.db import db

pytestmark = pytest.mark.browser

BASE32_SECRET = re.compile(r"[A-Z2-7]{32}")
SESSION_ENDED_KO = "이 계정으로 다른 곳에서 로그인하여 현재 세션이 종료되었습니다."
OTP_REFUSED_KO = "인증 코드가 올바르지 않거나 이미 사용되었습니다."


def fresh_code(app, username: str, secret: str) -> str:
    """A TOTP code of the server clock's current step that ``username`` has not used yet.
    When that step is used already, the testing clock moves to the start of the next one
    (as PUT /api/v1/testing/clock would), so the code stays valid for a whole step (and
    one more of drift) however slowly the browser types it."""
    with app.app_context():
        last = db.session.scalar(select(User.otp_last_step).where(User.username == username))
        step = otp_step(clock.now())
        if last is not None and last >= step:
            step = last + 1
            clock.set_now(datetime.fromtimestamp(step * OTP_STEP_SECONDS + 1, timezone.utc))
        return pyotp.TOTP(secret).generate_otp(step)


def db_user(app, username: str) -> User:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        db.session.expunge(user)
        return user


@pytest.fixture
def new_page(browser, live_server):
    """``new_page(locale=...)``: a page in a fresh browser context (its own cookies, as a
    second browser would have) on the live server. Contexts close after the test."""
    contexts = []

    def make(locale: str = "ko-KR"):
        ctx = browser.new_context(base_url=live_server.url, locale=locale,
                                  viewport={"width": 1280, "height": 800})
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: LMS_SCREENSHOT_DIR when set, else the test's tmp dir."""
    path = os.environ.get("LMS_SCREENSHOT_DIR") or str(tmp_path)
    os.makedirs(path, exist_ok=True)
    return path


def submit(page):
    page.locator("main form button[type=submit]").click()


def password_step(page, username: str, password: str, path: str = "/login"):
    page.goto(path)
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    submit(page)
    expect(page).to_have_url(re.compile(r"/login/otp$"))


def enter_code(page, code: str):
    page.locator("input[name=code]").fill(code)
    submit(page)


def first_login(app, page, users, username: str) -> str:
    """Password, then the enrolment page: read the secret off the page, type a code.
    Returns the secret shown."""
    password_step(page, username, users.passwords[username])
    expect(page.get_by_test_id("otp-qr")).to_be_visible()
    secret = page.get_by_test_id("otp-secret").inner_text().strip()
    enter_code(page, fresh_code(app, username, secret))
    return secret


def assert_image_rendered(page, testid: str):
    """The image loaded (a data: URI QR code the CSP must let through) and has a size."""
    loaded = page.get_by_test_id(testid).evaluate("img => img.complete && img.naturalWidth > 0")
    assert loaded is True
    box = page.get_by_test_id(testid).bounding_box()
    assert box["width"] >= 100 and box["height"] >= 100


def test_first_login_enrols_the_authenticator(app, users, new_page, shots):
    users.create("kim01", name="김학생")
    page = new_page()
    # The home page sends a visitor to the login page first.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("h1")).to_have_text("로그인")
    page.locator("input[name=username]").fill("kim01")
    page.locator("input[name=password]").fill(users.passwords["kim01"])
    submit(page)

    expect(page).to_have_url(re.compile(r"/login/otp$"))
    expect(page.locator("h1")).to_have_text("2단계 인증")
    expect(page.get_by_test_id("otp-qr")).to_be_visible()
    assert_image_rendered(page, "otp-qr")
    secret = page.get_by_test_id("otp-secret").inner_text().strip()
    assert BASE32_SECRET.fullmatch(secret), secret
    assert secret == users.secrets["kim01"]
    page.screenshot(path=os.path.join(shots, "otp-enrol.png"), full_page=True)

    enter_code(page, fresh_code(app, "kim01", secret))
    dashboard = page.locator("[data-testid=dashboard][data-role=learner]")
    expect(dashboard).to_be_visible()
    expect(dashboard.locator("h1")).to_have_text("나의 강의실")
    expect(page.get_by_test_id("who")).to_have_text("김학생 · 학습자")
    page.screenshot(path=os.path.join(shots, "dashboard-learner.png"), full_page=True)
    assert db_user(app, "kim01").otp_confirmed is True


def test_second_login_shows_no_qr_and_refuses_a_used_code(app, users, new_page):
    users.create("kim01", name="김학생")
    page = new_page()
    secret = first_login(app, page, users, "kim01")
    expect(page.locator("[data-testid=dashboard][data-role=learner]")).to_be_visible()
    used = pyotp.TOTP(secret).generate_otp(db_user(app, "kim01").otp_last_step)
    page.locator("header form button[type=submit]").click()  # 로그아웃
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash")).to_have_text("로그아웃되었습니다.")

    password_step(page, "kim01", users.passwords["kim01"])
    expect(page.locator("main")).to_contain_text("kim01 계정의 인증 앱에 표시된 6자리 코드를 입력하세요.")
    expect(page.get_by_test_id("otp-qr")).to_have_count(0)
    expect(page.get_by_test_id("otp-secret")).to_have_count(0)
    assert secret not in page.content()

    # The code of the first login cannot be used again (ATT-3, EXM-8).
    enter_code(page, used)
    expect(page.get_by_role("alert")).to_have_text(OTP_REFUSED_KO)
    expect(page).to_have_url(re.compile(r"/login/otp$"))

    enter_code(page, fresh_code(app, "kim01", secret))
    expect(page.locator("[data-testid=dashboard][data-role=learner]")).to_be_visible()


def test_admin_creates_a_user_through_the_form(app, users, new_page, shots):
    users.create("admin1", "admin", name="관리자")
    page = new_page()
    first_login(app, page, users, "admin1")
    expect(page.locator("[data-testid=dashboard][data-role=admin]")).to_be_visible()

    page.get_by_role("link", name="사용자 관리").click()
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(page.locator("h1")).to_have_text("사용자 관리")
    expect(page.locator("tr[data-username=admin1]")).to_contain_text("등록됨")

    page.get_by_role("link", name="사용자 추가").click()
    expect(page).to_have_url(re.compile(r"/admin/users/new$"))
    form = page.locator("main form")
    form.locator("input[name=username]").fill("newbie01")
    form.locator("input[name=name]").fill("새학생")
    form.locator("input[name=password]").fill("first-pass-123")
    form.locator("select[name=role]").select_option("learner")
    form.locator("input[name=disability]").check()
    submit(page)

    expect(page.get_by_role("status")).to_have_text("newbie01 사용자를 만들었습니다.")
    shown = page.get_by_test_id("new-otp-secret").inner_text().strip()
    assert BASE32_SECRET.fullmatch(shown), shown
    page.screenshot(path=os.path.join(shots, "admin-user-created.png"), full_page=True)
    created = db_user(app, "newbie01")
    assert (created.role, created.name, created.disability, created.otp_confirmed) == \
        ("learner", "새학생", True, False)
    assert created.otp_secret == shown

    # The one-time secret is not shown again on the list.
    page.get_by_role("link", name="사용자 목록").click()
    expect(page.locator("tr[data-username=newbie01]")).to_contain_text("미등록")
    assert shown not in page.content()

    # The new user enrols with that very secret on their first login.
    users.passwords["newbie01"] = "first-pass-123"
    learner = new_page()
    assert first_login(app, learner, users, "newbie01") == shown
    expect(learner.locator("[data-testid=dashboard][data-role=learner]")).to_be_visible()


def test_login_in_a_second_browser_ends_the_first_session(app, users, new_page):
    users.create("kim01", name="김학생")
    first = new_page()
    secret = first_login(app, first, users, "kim01")
    expect(first.locator("[data-testid=dashboard]")).to_be_visible()

    second = new_page()
    password_step(second, "kim01", users.passwords["kim01"])
    enter_code(second, fresh_code(app, "kim01", secret))
    expect(second.locator("[data-testid=dashboard]")).to_be_visible()

    # EXM-9: the first browser's next page is the login page with the notice.
    first.goto("/")
    expect(first).to_have_url(re.compile(r"/login\?next="))
    expect(first.locator(".flash.warning")).to_have_text(SESSION_ENDED_KO)
    expect(first.locator("h1")).to_have_text("로그인")
    expect(first.locator("[data-testid=dashboard]")).to_have_count(0)

    second.reload()
    expect(second.locator("[data-testid=dashboard][data-role=learner]")).to_be_visible()


def test_language_switch(app, users, new_page):
    users.create("kim01", name="김학생")
    page = new_page()
    page.goto("/login")
    expect(page.locator("h1")).to_have_text("로그인")
    page.get_by_role("link", name="English").click()
    expect(page).to_have_url(re.compile(r"\?lang=en$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Log in")
    expect(page).to_have_title("Log in")

    # Remembered: the next pages are English without ?lang.
    password_step(page, "kim01", users.passwords["kim01"])
    expect(page.locator("h1")).to_have_text("Two-factor authentication")
    enter_code(page, fresh_code(app, "kim01", users.secrets["kim01"]))
    expect(page.locator("[data-testid=dashboard] h1")).to_have_text("My classroom")
    expect(page.get_by_test_id("who")).to_have_text("김학생 · Learner")

    page.get_by_role("link", name="한국어").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("[data-testid=dashboard] h1")).to_have_text("나의 강의실")


def test_english_browser_gets_english_pages(new_page):
    page = new_page(locale="en-US")
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Log in")
    page.goto("/login?lang=ko")
    expect(page.locator("h1")).to_have_text("로그인")
