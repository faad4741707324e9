"""The compliance report (issue 6, item 4; REC-6): every rule of RULES.md gets a verdict;
each check at its pass/fail edge (pure, over ``CourseFacts``); the report gathered from a
real course; the PDF kept as evidence with its SHA-256 and holding the rule IDs; who may
see it."""
from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from conftest import assert_api_error, bearer, set_clock
from exam_world import CLOSES, OPENS, ExamWorld, users_id
from lms.audit import compliance_rules as cr
from lms.clock import KST
from lms.content.rules import LessonFacts

STARTS = date(2027, 3, 2)


def kst(*a) -> datetime:
    return datetime(*a, tzinfo=KST)


def lessons(weeks=15, per_week=2, seconds=25 * 60, intro=True) -> list[LessonFacts]:
    out, n = [], 0
    for w in range(1, weeks + 1):
        for p in range(per_week):
            n += 1
            out.append(LessonFacts(id=n, week=w, title=f"{w}-{p}", kind="video", duration_seconds=seconds,
                                   frames=None, instructor_intro=intro and w == 1 and p == 0))
    return out


def facts(**over) -> cr.CourseFacts:
    f = cr.CourseFacts(course_id=1, code="C1", title="과정", credits=2, weeks=15, starts_on=STARTS, capacity=100,
                       accredited_capacity=None, practice=False, status="published")
    f.lessons = lessons()
    for k, v in over.items():
        setattr(f, k, v)
    return f


NOW = kst(2027, 7, 1)


def verdict(rule, f, now=NOW) -> cr.Verdict:
    return cr.CHECKS[rule](f, now)


def exam_fact(**over) -> cr.ExamFact:
    e = cr.ExamFact(id=1, title="중간고사", kind="midterm", opens_at=OPENS, closes_at=CLOSES, duration_minutes=60,
                    items_per_difficulty={"easy": 2, "medium": 2, "hard": 2}, announced_at=OPENS - timedelta(days=14),
                    levels=("easy", "medium", "hard"), bank_at_open={"easy": 6, "medium": 6, "hard": 6}, period=None)
    return replace(e, **over)


# --- every rule -----------------------------------------------------------------------------------

def test_every_rule_of_rules_md_has_a_verdict():
    """All 60 rule IDs of RULES.md: a check, or a reason why data cannot show it."""
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[2] / "shared" / "RULES.md").read_text()
    ids = sorted(set(re.findall(r"^\| ((?:CRS|ENR|ATT|EXM|GRD|REC|SYS)-\d+) \|", text, re.M)))
    assert len(ids) == 60
    assert sorted(cr.ALL_RULES) == ids
    verdicts = cr.evaluate(facts(), NOW)
    assert [v.rule for v in verdicts] == list(cr.ALL_RULES)
    assert all(v.status in cr.STATUSES and v.summary for v in verdicts)
    for rule in ("CRS-6", "CRS-13", "ENR-6", "SYS-1", "SYS-2", "SYS-3"):
        assert next(v for v in verdicts if v.rule == rule).status == cr.NOT_CHECKABLE


# --- content (CRS-1…5) ---------------------------------------------------------------------------------

def test_crs_1_fifteen_weeks_edge():
    assert verdict("CRS-1", facts(weeks=15)).status == cr.PASS
    assert verdict("CRS-1", facts(weeks=14, lessons=lessons(14))).status == cr.FAIL


def test_crs_2_units_edge():
    """CRS-2: 2 credits need 30 units; 30 lessons of exactly 25 minutes pass, 24:59 fails."""
    assert verdict("CRS-2", facts()).status == cr.PASS
    v = verdict("CRS-2", facts(lessons=lessons(seconds=25 * 60 - 1)))
    assert v.status == cr.FAIL and v.evidence["units"] == 0


def test_crs_3_and_crs_4_and_crs_5_edges():
    assert verdict("CRS-3", facts()).status == cr.PASS
    short = lessons()
    short[3] = replace(short[3], duration_seconds=25 * 60 - 1)
    v = verdict("CRS-3", facts(lessons=short))
    assert v.status == cr.FAIL and v.evidence["short_lessons"] == [4]
    thin = [l for l in lessons() if not (l.week == 7 and l.title.endswith("-1"))]
    v = verdict("CRS-4", facts(lessons=thin))
    assert v.status == cr.FAIL and v.evidence["weeks"] == [7]
    assert verdict("CRS-4", facts()).status == cr.PASS
    assert verdict("CRS-5", facts()).status == cr.PASS
    assert verdict("CRS-5", facts(lessons=lessons(intro=False))).status == cr.FAIL


def test_crs_7_capacity_edges():
    """CRS-7: a class of 200 passes, 201 fails; an instructor with 201 learners fails."""
    ok = facts(sections=[(1, "1", 200, 200)], enrolled=200, capacity=200, instructor_loads={"prof": 200})
    assert verdict("CRS-7", ok).status == cr.PASS
    assert verdict("CRS-7", replace(ok, sections=[(1, "1", 200, 201)], enrolled=201, capacity=800)).status == cr.FAIL
    assert verdict("CRS-7", replace(ok, instructor_loads={"prof": 201})).status == cr.FAIL
    assert verdict("CRS-7", replace(ok, capacity=801)).status == cr.FAIL


def test_crs_8_one_ta_per_thousand():
    assert verdict("CRS-8", facts(institution_tas=1, institution_capacity=1000)).status == cr.PASS
    assert verdict("CRS-8", facts(institution_tas=1, institution_capacity=1001)).status == cr.FAIL
    assert verdict("CRS-8", facts(institution_tas=0, institution_capacity=10)).status == cr.FAIL


def test_crs_10_staff_who_missed_a_week():
    f = facts(staff=[(1, "prof", ["instructor"])], weeks_checked=[1, 2], staff_missing={1: [], 2: []})
    assert verdict("CRS-10", f).status == cr.PASS
    v = verdict("CRS-10", replace(f, staff_missing={1: [], 2: ["prof"]}))
    assert v.status == cr.FAIL and v.evidence["missed"] == {"2": ["prof"]} and "2주차 prof" in v.summary
    assert verdict("CRS-10", facts(weeks_checked=[])).status == cr.NA


def test_crs_12_syllabus_fields():
    full = {"instructor_name": "김", "goals": "g", "textbook": "t", "method": "m", "evaluation": {"exam": 80},
            "weekly_topics": [f"{i}" for i in range(15)], "exam_periods": {"midterm": [1, 2], "final": [3, 4]}}
    assert verdict("CRS-12", facts(syllabus=full)).status == cr.PASS
    assert verdict("CRS-12", facts(syllabus={**full, "textbook": ""})).status == cr.FAIL
    assert verdict("CRS-12", facts(syllabus={**full, "weekly_topics": ["x"] * 14})).status == cr.FAIL
    assert verdict("CRS-12", facts(syllabus=None)).status == cr.FAIL
    late = facts(syllabus=full, published_at=kst(2027, 2, 1), syllabus_updated_at=kst(2027, 2, 1, 0, 0, 1))
    assert verdict("CRS-12", late).status == cr.FAIL


# --- enrolment (ENR-1…3) -------------------------------------------------------------------------------

def test_enr_3_credit_caps_by_course_end_date():
    """ENR-3: 24 credits in a half pass, 25 fail; 42 a year pass, 43 fail; Feb belongs to
    the previous year's second half."""
    assert cr.credit_cap_excess([(date(2027, 8, 31), 12), (date(2027, 3, 1), 12)]) == []
    assert cr.credit_cap_excess([(date(2027, 8, 31), 13), (date(2027, 3, 1), 12)]) == [("2027-1", 25, 24)]
    assert cr.credit_periods(date(2028, 2, 29)) == ("2027", "2027-2")
    year = [(date(2027, 6, 1), 21), (date(2028, 1, 10), 21)]
    assert cr.credit_cap_excess(year) == []
    assert cr.credit_cap_excess(year + [(date(2028, 2, 1), 1)]) == [("2027", 43, 42)]
    assert verdict("ENR-3", facts(credit_over_cap=None)).status == cr.NA
    assert verdict("ENR-3", facts(credit_over_cap=[])).status == cr.PASS
    assert verdict("ENR-3", facts(credit_over_cap=[("lea", "2027-1", 25, 24)])).status == cr.FAIL


def test_enr_1_and_enr_2():
    assert verdict("ENR-1", facts(enrolled=3, enrolments_late=["a"])).status == cr.PASS
    assert verdict("ENR-1", facts(enrolled=3, enrolments_after_late_limit=["b"])).status == cr.FAIL
    assert verdict("ENR-2", facts(enrolled=3)).status == cr.PASS
    assert verdict("ENR-2", facts(enrolled=3, consents_missing=["c"])).status == cr.FAIL
    assert verdict("ENR-2", facts(enrolled=0)).status == cr.NA


# --- attendance (ATT-1…9) -------------------------------------------------------------------------------

def test_att_1_and_att_2_settled_by_the_system():
    f = facts(progress_counts={"attended": 3, "absent": 1})
    v = verdict("ATT-2", f)
    assert v.status == cr.PASS and v.evidence["manual_edit_path"] is False
    assert verdict("ATT-2", replace(f, unsettled_past_deadline=[9])).status == cr.FAIL
    assert verdict("ATT-1", f).status == cr.PASS
    assert verdict("ATT-1", replace(f, attended_late=[4])).status == cr.FAIL
    assert verdict("ATT-1", replace(f, attended_incomplete=[5])).status == cr.FAIL
    assert verdict("ATT-1", facts()).status == cr.NA


def test_att_5_excused_share_edge():
    """ATT-5: exactly 20% excused is allowed; one unit more is not."""
    assert cr.excused_over(6, 30) is False
    assert cr.excused_over(7, 30) is True
    assert verdict("ATT-5", facts()).status == cr.PASS
    assert verdict("ATT-5", facts(excused_over_cap=[("lea", 7, 30)])).status == cr.FAIL


def test_att_7_scale_and_att_9_record():
    assert verdict("ATT-7", facts()).status == cr.PASS
    assert verdict("ATT-7", facts(scale_problems=["points above 20"])).status == cr.FAIL
    assert verdict("ATT-9", facts(record_state="not_due")).status == cr.NA
    assert verdict("ATT-9", facts(record_state="on_time")).status == cr.PASS
    assert verdict("ATT-9", facts(record_state="overdue")).status == cr.FAIL
    assert verdict("ATT-9", facts(record_state="late", record_submitted_at=NOW)).status == cr.FAIL


def test_att_4_heartbeats_and_att_6_8_without_grades():
    assert verdict("ATT-4", facts(views=2, heartbeats=10)).status == cr.PASS
    assert verdict("ATT-4", facts(views=2, heartbeats=0)).status == cr.FAIL
    v = verdict("ATT-6", facts(learners_below_minimum=[("lea", 79.9)]))
    assert v.status == cr.NA and v.evidence["below_80"] == [{"learner": "lea", "rate": 79.9}]
    assert verdict("ATT-8", facts()).status == cr.NA
    assert verdict("ATT-8", facts(enlisted=[("lea", True, 90.0)])).status == cr.PASS


# --- exams (EXM-1…13) --------------------------------------------------------------------------------

def test_exm_5_bank_size_at_each_exam_edge():
    """EXM-5: 3× the drawn items per level at the opening: 6 for 2 passes, 5 fails."""
    assert verdict("EXM-5", facts(exams=[exam_fact()])).status == cr.PASS
    v = verdict("EXM-5", facts(exams=[exam_fact(bank_at_open={"easy": 6, "medium": 5, "hard": 6})]))
    assert v.status == cr.FAIL and v.evidence["exams"][0]["bank_at_open"]["medium"] == 5
    assert verdict("EXM-5", facts()).status == cr.NA


def test_exm_7_announcement_dates_edge():
    """EXM-7: announced exactly 14 days before the start passes; one second later fails;
    never announced fails."""
    assert verdict("EXM-7", facts(exams=[exam_fact()])).status == cr.PASS
    late = exam_fact(announced_at=OPENS - timedelta(days=14) + timedelta(seconds=1))
    v = verdict("EXM-7", facts(exams=[late]))
    assert v.status == cr.FAIL and "중간고사" in v.summary
    assert verdict("EXM-7", facts(exams=[exam_fact(announced_at=None)])).status == cr.FAIL


def test_exm_2_3_4_edges():
    assert verdict("EXM-2", facts(exams=[exam_fact()])).status == cr.PASS
    assert verdict("EXM-2", facts(exams=[exam_fact(closes_at=OPENS + timedelta(days=4))])).status == cr.FAIL
    assert verdict("EXM-3", facts(exams=[exam_fact(items_per_difficulty={"easy": 2, "medium": 2})])).status == cr.FAIL
    assert verdict("EXM-4", facts(exams=[exam_fact(duration_minutes=60)])).status == cr.PASS
    assert verdict("EXM-4", facts(exams=[exam_fact(duration_minutes=61)])).status == cr.FAIL


def test_exm_8_9_10_evidence_presence():
    ok = exam_fact(attempts=2, attempts_with_start=2, blocked_events=1)
    assert verdict("EXM-8", facts(exams=[ok])).status == cr.PASS
    assert verdict("EXM-8", facts(exams=[replace(ok, attempts_with_start=1)])).status == cr.FAIL
    v = verdict("EXM-9", facts(exams=[ok]))
    assert v.status == cr.PASS and v.evidence["blocked"] == 1
    assert verdict("EXM-9", facts(exams=[replace(ok, shared_addresses=[(1, 2, "ip", "10.0.0.1")])])).status == cr.FAIL
    assert verdict("EXM-10", facts(exams=[ok])).status == cr.PASS
    assert verdict("EXM-10", facts(exams=[replace(ok, attempts_missing_evidence=[2])])).status == cr.FAIL
    assert verdict("EXM-8", facts(exams=[exam_fact()])).status == cr.NA


def test_exm_11_makeup_window_edge():
    """EXM-11: a window closing exactly 5 days after the approval passes; one second more fails."""
    approved = kst(2027, 4, 1, 10, 0)
    ok = cr.MakeupFact(id=1, learner_id=1, status="approved", decided_at=approved, window_opens_at=approved,
                       window_closes_at=approved + timedelta(days=5), attempt_started_at=approved + timedelta(days=1))
    assert verdict("EXM-11", facts(makeups=[ok])).status == cr.PASS
    assert verdict("EXM-11", facts(makeups=[replace(ok, window_closes_at=ok.window_closes_at + timedelta(seconds=1))])
                   ).status == cr.FAIL
    assert verdict("EXM-11", facts(makeups=[replace(ok, attempt_started_at=ok.window_closes_at)])).status == cr.FAIL
    assert verdict("EXM-11", facts()).status == cr.NA


def test_exm_13_findings():
    assert verdict("EXM-13", facts()).status == cr.NA
    assert verdict("EXM-13", facts(findings=[(1, "lea", "proxy_exam", 3, True)])).status == cr.PASS
    assert verdict("EXM-13", facts(findings=[(1, "lea", "proxy_exam", 3, False)])).status == cr.FAIL


def test_grading_rules_without_grades_are_not_applicable():
    """GRD-1…6: "not applicable: no data" while nothing was gathered or graded (the wired
    checks are tested at their edges in test_compliance_grading.py)."""
    for rule in ("GRD-1", "GRD-2", "GRD-3", "GRD-4", "GRD-5", "GRD-6"):
        v = verdict(rule, facts())
        assert v.status == cr.NA and "데이터 없음" in v.summary


def test_rec_1_access_log_coverage_and_rec_5():
    assert verdict("REC-1", facts(views=3)).status == cr.PASS
    assert verdict("REC-1", facts(views=3, views_missing_ip=[2])).status == cr.FAIL
    assert verdict("REC-1", facts(views=3, views_without_end=[2])).status == cr.FAIL
    assert verdict("REC-1", facts(staff=[(1, "p", ["ta"])], weeks_checked=[1], staff_access_rows=0)).status == cr.FAIL
    assert verdict("REC-5", facts(complaints=None)).status == cr.FAIL
    assert verdict("REC-5", facts(complaints={"total": 1, "open": 1, "answered": 0, "closed": 0,
                                              "unanswered_oldest": None})).status == cr.PASS


def test_term_of():
    assert cr.term_of(date(2027, 3, 1)) == "2027-1"
    assert cr.term_of(date(2027, 8, 31)) == "2027-1"
    assert cr.term_of(date(2027, 9, 1)) == "2027-2"
    assert cr.term_of(date(2028, 2, 29)) == "2027-2"


# --- from the database ------------------------------------------------------------------------------

def _pdf_text(pdf: bytes) -> str:
    """The text operators of the PDF's content streams (ASCII85 and Flate decoded)."""
    import base64

    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        data = m.group(1).strip()
        if data.endswith(b"~>"):
            data = base64.a85decode(data[:-2].replace(b"\n", b"").replace(b"\r", b""))
        try:
            data = zlib.decompress(data)
        except zlib.error:
            pass
        out.append(data.decode("latin-1"))
    return "\n".join(out)


@pytest.fixture
def world(app, client, users):
    w = ExamWorld(app, client, users, learners=("lea", "leb"))
    w.exam_id = w.exam()["id"]
    users.create("insp", "inspector", name="점검자")
    users.create("ta1", "ta", name="조교")
    return w


def by_rule(report) -> dict:
    return {v["rule"]: v for v in report["verdicts"]}


def test_report_from_a_real_course(world, app, client, users):
    """EXM-5/EXM-7 from the exam as defined; ENR-2 consent missing; inspector reads it."""
    insp = users.login(client, "insp")
    r = client.get(f"/api/v1/courses/{world.cid}/compliance", headers=bearer(insp))
    assert r.status_code == 200, r.get_json()
    rep = r.get_json()
    assert len(rep["verdicts"]) == 60 and rep["term"] == "2027-1"
    v = by_rule(rep)
    assert v["EXM-5"]["status"] == "pass"
    assert v["EXM-5"]["evidence"]["exams"][0]["bank_at_open"] == {"easy": 6, "medium": 6, "hard": 6}
    assert v["EXM-7"]["status"] == "pass"
    assert v["ENR-2"]["status"] == "fail"  # enrolled by the admin, no consent recorded
    assert v["CRS-1"]["status"] == "pass"
    assert v["CRS-3"]["status"] == "fail"  # no lessons
    assert v["ATT-2"]["status"] == "na"
    assert sum(rep["counts"].values()) == 60


def test_bank_size_counts_items_created_before_and_not_retired_before_opening(world, app, client):
    """EXM-5: an item retired before the opening does not count; one retired after does."""
    from lms import clock
    from lms.audit import compliance
    from lms.db import db
    from lms.exams.models import Item

    with app.app_context():
        ids = world.item_ids["medium"]
        db.session.get(Item, ids[0]).retired_at = OPENS - timedelta(seconds=1)
        db.session.get(Item, ids[1]).retired_at = OPENS
        late = db.session.get(Item, ids[2])
        late.created_at = OPENS  # created at the opening: not before it
        db.session.commit()
        assert compliance.bank_at(world.cid, OPENS) == {"easy": 6, "medium": 4, "hard": 6}
        from lms.content.models import Course

        rep = compliance.build(db.session.get(Course, world.cid), clock.now())
        v = by_rule(rep)["EXM-5"]
        assert v["status"] == "fail" and v["evidence"]["exams"][0]["bank_at_open"]["medium"] == 4


def test_crs_10_from_the_access_log(world, app, client, users):
    """CRS-10: a TA assigned but never accessing the course fails week 1 once it ended;
    the instructor who did access passes."""
    r = client.post(f"/api/v1/courses/{world.cid}/staff", json={"user_id": users_id(app, "ta1"), "role": "ta"},
                    headers=world.ah())
    assert r.status_code == 201
    set_clock(app, kst(2027, 3, 5, 10))
    prof = users.login(client, "prof")
    assert client.get(f"/api/v1/courses/{world.cid}", headers=bearer(prof)).status_code == 200
    set_clock(app, kst(2027, 3, 9, 0, 0, 1))  # week 1 (Mar 2 – Mar 8) is over
    admin = users.login(client, "admin1")
    rep = client.get(f"/api/v1/courses/{world.cid}/compliance", headers=bearer(admin)).get_json()
    v = by_rule(rep)["CRS-10"]
    assert v["status"] == "fail" and v["evidence"]["missed"] == {"1": ["ta1"]}


def test_pdf_is_stored_with_its_sha256_and_holds_the_rule_ids(world, app, client, users):
    insp = users.login(client, "insp")
    r = client.post(f"/api/v1/courses/{world.cid}/compliance/reports", headers=bearer(insp))
    assert r.status_code == 201, r.get_json()
    meta = r.get_json()
    r = client.get(f"/api/v1/compliance-reports/{meta['id']}/pdf", headers=bearer(insp))
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    pdf = r.get_data()
    assert pdf.startswith(b"%PDF-")
    assert hashlib.sha256(pdf).hexdigest() == meta["pdf_sha256"] == r.headers["X-Content-SHA256"]
    assert meta["pdf_size"] == len(pdf)
    text = _pdf_text(pdf)
    for rule in ("CRS-10", "ATT-2", "EXM-5", "EXM-7", "ENR-3", "GRD-2", "REC-5", "SYS-3"):
        assert f"({rule})" in text, rule
    assert b"HYSMyeongJo-Medium" in pdf  # the Korean CID font
    assert b"/Title (Compliance report EXM101 2027-1)" in pdf  # course and term
    listed = client.get(f"/api/v1/courses/{world.cid}/compliance/reports", headers=bearer(insp)).get_json()
    assert [x["id"] for x in listed["reports"]] == [meta["id"]]


def test_who_may_see_the_report(world, app, client, users):
    """Admins and inspectors of the institution; staff and learners 403; another
    institution's inspector 404."""
    assert_api_error(client.get(f"/api/v1/courses/{world.cid}/compliance", headers=world.h("lea")), 403, "forbidden")
    assert_api_error(client.get(f"/api/v1/courses/{world.cid}/compliance", headers=bearer(world.prof)),
                     403, "forbidden")
    with app.app_context():
        from lms import clock
        from lms.auth.models import Institution
        from lms.db import db

        other = Institution(code="OTHER", name="다른 기관", created_at=clock.now())
        db.session.add(other)
        db.session.commit()
        oid = other.id
    users.create("insp2", "inspector", institution_id=oid)
    tok = users.login(client, "insp2")
    assert_api_error(client.get(f"/api/v1/courses/{world.cid}/compliance", headers=bearer(tok)), 404, "not_found")
    assert_api_error(client.post(f"/api/v1/courses/{world.cid}/compliance/reports", headers=bearer(tok)),
                     404, "not_found")


def test_compliance_pages(world, app, users):
    """The index lists the course under its term; the course page shows all 60 rules and
    keeps a PDF; a learner gets the 403 page."""
    from audit_world import csrf_from, web_login

    c = app.test_client()
    web_login(c, users, "insp")
    html = c.get("/audit/compliance?term=2027-1").get_data(as_text=True)
    assert f'data-course-id="{world.cid}"' in html
    assert f'data-course-id="{world.cid}"' not in c.get("/audit/compliance?term=2026-2").get_data(as_text=True)
    r = c.get(f"/audit/compliance/courses/{world.cid}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert len(re.findall(r'<tr data-rule="', html)) == 60
    assert 'data-rule="CRS-10"' in html and 'data-rule="EXM-7" data-status="pass"' in html
    r = c.post(f"/audit/compliance/courses/{world.cid}", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 303
    html = c.get(f"/audit/compliance/courses/{world.cid}").get_data(as_text=True)
    m = re.search(r'href="(/audit/compliance/reports/(\d+)\.pdf)"', html)
    assert m
    pdf = c.get(m.group(1))
    assert pdf.status_code == 200 and pdf.get_data().startswith(b"%PDF-")
    assert hashlib.sha256(pdf.get_data()).hexdigest() in html
    learner = app.test_client()
    web_login(learner, users, "lea")
    assert learner.get(f"/audit/compliance/courses/{world.cid}").status_code == 403


def test_term_listing(world, app, client, users):
    insp = users.login(client, "insp")
    r = client.get("/api/v1/compliance/courses?term=2027-1", headers=bearer(insp))
    assert r.status_code == 200
    assert [(c["id"], c["term"], c["latest_report"]) for c in r.get_json()["courses"]] == [(world.cid, "2027-1", None)]
    assert client.get("/api/v1/compliance/courses?term=2027-2", headers=bearer(insp)).get_json()["courses"] == []
    assert_api_error(client.get("/api/v1/compliance/courses?term=2027-3", headers=bearer(insp)), 400,
                     "invalid_request")
    assert_api_error(client.get("/api/v1/compliance/courses", headers=world.h("lea")), 403, "forbidden")
