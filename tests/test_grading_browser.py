"""The instructor's grading page in a real browser (headless Chromium, Playwright) against
the app on a real socket (GRD-2, GRD-4, GRD-6): propose, adjust, see the distribution
check break and recover (with the rounding explained), finalise."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from conftest import set_clock
from test_grading_api import OBJECTIONS_CLOSE, Course

pytestmark = pytest.mark.browser

SCREENSHOT_DIR = os.environ.get("LMS_SCREENSHOT_DIR", "/tmp")


def test_grading_page_propose_adjust_check_finalise(app, client, users, browser, live_server):
    """GRD-2: 10 learners, relative grading; raising a C to A0 breaks the A share (4 of 10
    = 40%), finalising is refused naming GRD-2; putting it back lets it finalise (GRD-6:
    after the objection period)."""
    c = Course(app, client, users, 10)
    for k in range(10):
        c.score(f"s{k:02d}", 95 - 3 * k)
    when = OBJECTIONS_CLOSE + timedelta(hours=1)
    set_clock(app, when)

    ctx = browser.new_context(base_url=live_server.url, locale="ko-KR", viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/login?next=/courses/{c.cid}/grades")
        page.locator("input[name=username]").fill("prof")
        page.locator("input[name=password]").fill(users.passwords["prof"])
        page.locator("main form button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/login/otp$"))
        page.locator("input[name=code]").fill(users.code("prof"))
        page.locator("main form button[type=submit]").click()
        page.goto(f"/courses/{c.cid}/grades")
        expect(page.get_by_test_id("scheme")).to_have_text("상대평가")

        page.get_by_test_id("propose").click()
        expect(page.get_by_test_id("distribution-ok")).to_be_visible()
        expect(page.get_by_test_id("count-A")).to_have_text("3")
        expect(page.get_by_test_id("rounding")).to_contain_text("⌈0.2×10⌉ = 2")
        row = page.locator("tr[data-learner=s09]")
        expect(row.get_by_test_id("grade")).to_have_text(re.compile(r"^(C|D|F)"))
        expect(page.locator("tr[data-learner=s00]").get_by_test_id("grade")).to_have_text("A+")

        form = page.get_by_test_id("adjust-s09")
        form.locator("select[name=grade]").select_option("A0")
        form.locator("input[name=reason]").fill("재채점 결과")
        form.locator("button").click()
        expect(page.get_by_test_id("distribution-bad")).to_be_visible()
        expect(page.get_by_test_id("count-A")).to_have_text("4")
        expect(page.get_by_test_id("distribution-problem").first).to_contain_text("A: 10명 중 4명 (40.0%)")
        expect(page.locator("tr[data-learner=s09]").get_by_test_id("grade")).to_have_text("A0")

        page.get_by_test_id("finalize").click()
        expect(page.locator("div.flash.error")).to_contain_text("GRD-2")
        expect(page.get_by_test_id("finalized")).to_have_count(0)

        form = page.get_by_test_id("adjust-s09")
        form.locator("select[name=grade]").select_option("C0")
        form.locator("button").click()
        expect(page.get_by_test_id("distribution-ok")).to_be_visible()
        page.get_by_test_id("finalize").click()
        expect(page.get_by_test_id("finalized")).to_be_visible()
        expect(page.get_by_test_id("propose")).to_have_count(0)
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "grading-sheet.png"), full_page=True)
        assert errors == []
    finally:
        ctx.close()

    c.at(when + timedelta(minutes=10))  # staff sessions of the testing clock
    r = client.get(f"/api/v1/courses/{c.cid}/grades", headers=c.ah())
    body = r.get_json()
    assert body["finalized"] is True
    grades = {g["username"]: g["grade"] for g in body["grades"]}
    assert grades["s09"] == "C0" and grades["s00"] == "A+"
