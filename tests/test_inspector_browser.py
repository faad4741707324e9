"""The inspectors' portal in a real browser (headless Chromium, Playwright) against the app on
a real socket (REC-3, REC-6): an inspector logs in with password and OTP, opens the portal
from the dashboard, filters one learner's week of viewing records, pages, and downloads
the CSV — exactly the filtered rows, UTF-8 with BOM, Korean intact; the search and the
export are in the access log."""
from __future__ import annotations

import csv
import io
import os
import re

import pytest
from playwright.sync_api import expect

from conftest import access_log
from log_world import LESSON_TITLE, LogWorld

pytestmark = pytest.mark.browser

SCREENSHOT_DIR = os.environ.get("LMS_SCREENSHOT_DIR", "/tmp")


def test_rec3_rec6_inspector_filters_a_learners_week_and_downloads_the_csv(app, users, browser, live_server):
    world = LogWorld(app, users)
    ctx = browser.new_context(base_url=live_server.url, locale="ko-KR", accept_downloads=True,
                              viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto("/login")
    page.locator("input[name=username]").fill("insp")
    page.locator("input[name=password]").fill(users.passwords["insp"])
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login/otp$"))
    page.locator("input[name=code]").fill(users.code("insp"))
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_test_id("dashboard")).to_be_visible()

    page.get_by_role("link", name="기록 열람 (점검)").click()
    expect(page.get_by_test_id("portal-home")).to_be_visible()
    expect(page.get_by_test_id("portal-courses")).to_contain_text("데이터베이스 개론")
    expect(page.get_by_test_id("portal-courses")).not_to_contain_text("다른 과정")
    page.get_by_test_id("portal-link-views").click()

    page.get_by_test_id("f-username").fill("lea1")
    page.get_by_test_id("f-course").select_option(str(world.course_a))
    page.get_by_test_id("f-week").fill("1")
    page.get_by_test_id("search-button").click()
    results = page.get_by_test_id("log-results")
    expect(results).to_be_visible()
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-row-id", str(world.views["lea1-w1"]))
    expect(rows.first).to_contain_text(LESSON_TITLE)
    expect(rows.first).to_contain_text("2026-09-02 20:00:00")
    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "inspector_portal_views.png"), full_page=True)

    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    download = info.value
    assert download.suggested_filename.startswith("views-log-") and download.suggested_filename.endswith(".csv")
    body = open(download.path(), "rb").read()
    assert body.startswith(b"\xef\xbb\xbf")
    data = list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline="")))
    assert data[0][:3] == ["번호", "학습자 번호", "아이디"]
    assert len(data) == 2 and data[1][0] == str(world.views["lea1-w1"])
    assert data[1][data[0].index("차시명")] == LESSON_TITLE
    assert data[1][data[0].index("시작")] == "2026-09-02 20:00:00"

    # The access-log search of lea1 pages by cursor: next, then back.
    page.goto(f"/inspect/access?run=1&username=lea1")
    first_ids = page.get_by_test_id("log-results").locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.rowId)")
    assert len(first_ids) == 50
    page.get_by_test_id("page-next").click()
    expect(page.get_by_test_id("log-results").locator("tbody tr")).to_have_count(10)
    page.get_by_test_id("page-prev").click()
    expect(page.get_by_test_id("log-results").locator("tbody tr")).to_have_count(50)
    assert page.get_by_test_id("log-results").locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.rowId)") == first_ids

    lea1 = world.ids["lea1"]
    searches = [r["detail"] for r in access_log(app, "inspector_search")]
    assert searches[0] == f"views learner_id={lea1} course_id={world.course_a} week=1"
    assert searches[1:] == [f"access user_id={lea1}"] * 3
    assert [r["detail"] for r in access_log(app, "inspector_export")] == \
        [f"views learner_id={lea1} course_id={world.course_a} week=1 format=csv"]
    assert errors == []
    ctx.close()
