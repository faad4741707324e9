"""REC-5 and REC-6 in a real browser (headless Chromium, Playwright) against the app on a
real socket: a learner files an attendance complaint from the dashboard, the course's TA
answers it, the learner sees the answer with its time; an inspector reads the thread
(read-only) and opens the course's compliance report and keeps its PDF."""
from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from test_complaints import World
from test_exam_browser import browser_login, new_page

pytestmark = pytest.mark.browser

SCREENSHOT_DIR = os.environ.get("LMS_SCREENSHOT_DIR", "/tmp")


def test_rec5_learner_files_a_complaint_staff_answer_inspector_reads(app, client, users, browser, live_server):
    w = World(app, client, users)
    ctx, page = new_page(browser, live_server)
    browser_login(page, users, "lea")
    page.get_by_role("link", name="신문고·1:1 상담").click()
    page.get_by_test_id("new-complaint").click()
    page.locator("select[name=kind]").select_option("attendance")
    page.locator("select[name=course_id]").select_option(str(w.cid))
    page.locator("input[name=subject]").fill("3주차 2차시 출석 누락")
    page.locator("textarea[name=body]").fill("끝까지 시청했는데 결석으로 표시됩니다.")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/complaints/\d+$"))
    expect(page.get_by_test_id("complaint-status")).to_have_attribute("data-status", "open")
    url = page.url
    ctx.close()

    ctx, ta = new_page(browser, live_server)
    browser_login(ta, users, "ta1")
    ta.goto("/complaints")
    ta.get_by_role("link", name="3주차 2차시 출석 누락").click()
    ta.locator("[data-testid=reply-form] textarea[name=body]").fill("시청 기록을 확인하여 출석으로 정정될 예정입니다.")
    ta.locator("[data-testid=reply-form] button[type=submit]").click()
    expect(ta.get_by_test_id("complaint-status")).to_have_attribute("data-status", "answered")
    ctx.close()

    ctx, page = new_page(browser, live_server)
    browser_login(page, users, "lea")
    page.goto(url)
    msgs = page.locator("[data-testid=messages] li")
    expect(msgs).to_have_count(2)
    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "complaint-thread.png"))
    expect(msgs.nth(1)).to_have_attribute("data-role", "ta")
    expect(msgs.nth(1)).to_contain_text("출석으로 정정될 예정")
    expect(msgs.nth(1).locator("time")).to_have_attribute("datetime", re.compile(r"^2027-03-10T"))
    ctx.close()

    ctx, insp = new_page(browser, live_server)
    browser_login(insp, users, "insp")
    insp.goto(url)
    expect(insp.get_by_test_id("messages").locator("li")).to_have_count(2)
    expect(insp.get_by_test_id("reply-form")).to_have_count(0)
    insp.goto("/")
    insp.get_by_role("link", name="운영 점검 보고서").click()
    insp.locator(f"a[data-course-id='{w.cid}']").click()
    expect(insp.locator("[data-testid=verdicts] tbody tr")).to_have_count(60)
    expect(insp.locator("tr[data-rule='REC-5']")).to_have_attribute("data-status", "pass")
    insp.screenshot(path=os.path.join(SCREENSHOT_DIR, "compliance-report.png"), full_page=False)
    insp.get_by_test_id("make-pdf").click()
    expect(insp.get_by_test_id("stored-reports").locator("li")).to_have_count(1)
    with insp.expect_download() as dl:
        insp.get_by_test_id("stored-reports").locator("a").first.click()
    path = dl.value.path()
    assert open(path, "rb").read(5) == b"%PDF-"
    assert not insp.js_errors and not page.js_errors
    ctx.close()
