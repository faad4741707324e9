"""The compliance report's grading and registration checks, wired to lms.grading and
lms.enrolment: GRD-1…6, ATT-6, ENR-1, ENR-4, ENR-5 — each pure check at its pass/fail
edge, then gathered from real courses (grades proposed and finalised through the API;
fees, payments, refunds and the unpaid-cancellation job)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from conftest import bearer, set_clock
from lms.audit import compliance_rules as cr
from lms.clock import KST

STARTS = date(2027, 3, 2)  # ends 2027-06-14; objections until 2027-06-28 (closes 06-29 00:00 KST)
OBJ_CLOSES = datetime(2027, 6, 29, tzinfo=KST)
FIN_DUE = datetime(2027, 7, 6, tzinfo=KST)
DEADLINE = datetime(2027, 3, 2, tzinfo=KST)  # ENR-1: 00:00 KST of the start date
NOW = datetime(2027, 7, 10, tzinfo=KST)
SEC = timedelta(seconds=1)


def kst(*a) -> datetime:
    return datetime(*a, tzinfo=KST)


def facts(**over) -> cr.CourseFacts:
    f = cr.CourseFacts(course_id=1, code="C1", title="과정", credits=3, weeks=15, starts_on=STARTS, capacity=100,
                       accredited_capacity=None, practice=False, status="published")
    for k, v in over.items():
        setattr(f, k, v)
    return f


def verdict(rule, f, now=NOW) -> cr.Verdict:
    return cr.CHECKS[rule](f, now)


def rows(*grades, fixed=None) -> list[cr.GradeRow]:
    return [cr.GradeRow(learner=f"s{i:02d}", score=90.0, grade=g, fixed_by=tuple((fixed or {}).get(i, ())))
            for i, g in enumerate(grades)]


def graded(rows_, *, scheme="relative", finalized=OBJ_CLOSES + timedelta(days=1), objections=()):
    return cr.GradingFacts(scheme=scheme, proposed_at=OBJ_CLOSES - timedelta(days=20), finalized_at=finalized,
                           rows=list(rows_), objections=list(objections))


def dist(a, b, c) -> list[str]:
    return ["A0"] * a + ["B0"] * b + ["C0"] * c


# --- GRD-1 ------------------------------------------------------------------------------------------

def test_grd_1_weights_attendance_20_pass_21_fail_and_sum_100():
    """GRD-1: attendance at most 20% and weights adding up to 100."""
    assert verdict("GRD-1", facts(grade_weights={"exams": 80, "attendance": 20})).status == cr.PASS
    v = verdict("GRD-1", facts(grade_weights={"exams": 79, "attendance": 21}))
    assert v.status == cr.FAIL and "20%" in v.summary
    assert verdict("GRD-1", facts(grade_weights={"exams": 70, "attendance": 20})).status == cr.FAIL  # 90
    assert verdict("GRD-1", facts(grade_weights={"exams": 100})).status == cr.PASS
    assert verdict("GRD-1", facts()).status == cr.NA


# --- GRD-2 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, c, status", [
    (2, 3, 5, cr.PASS),  # 20 / 30 / 50 %: every bound inclusive
    (3, 4, 3, cr.PASS),  # 30 / 40 / 30 %
    (1, 4, 5, cr.FAIL),  # A 10%
    (4, 3, 3, cr.FAIL),  # A 40%
])
def test_grd_2_finalised_relative_distribution_edges(a, b, c, status):
    """GRD-2: the finalised relative distribution must keep A 20–30%, B 30–40%, C- 30–50%."""
    v = verdict("GRD-2", facts(grading=graded(rows(*dist(a, b, c)))))
    assert v.status == status, v


def test_grd_2_at_19_9_vs_20_percent_with_fixed_f_outside_the_head_count():
    """GRD-2: A 199 of 1000 (19.9%) fails, 200 (20%) passes; learners given F by ATT-6
    are outside the head count."""
    v = verdict("GRD-2", facts(grading=graded(rows(*dist(199, 350, 451)))))
    assert v.status == cr.FAIL and v.evidence["shares"]["A"] == 19.9
    assert verdict("GRD-2", facts(grading=graded(rows(*dist(200, 350, 450))))).status == cr.PASS
    with_f = rows(*(dist(2, 3, 5) + ["F", "F"]), fixed={10: ("ATT-6",), 11: ("GRD-3",)})
    assert verdict("GRD-2", facts(grading=graded(with_f))).status == cr.PASS


def test_grd_2_exempt_classes_are_noted_and_checked():
    """GRD-2: absolute grading with 9 learners is an exemption (pass, noted); with 10 it is
    a breach; P/F only for practice courses; before finalisation: not applicable."""
    v = verdict("GRD-2", facts(grading=graded(rows(*(["A+"] * 9)), scheme="absolute")))
    assert v.status == cr.PASS and v.evidence["exempt"] is True and "10명" in v.summary
    assert verdict("GRD-2", facts(grading=graded(rows(*(["A+"] * 10)), scheme="absolute"))).status == cr.FAIL
    pf = graded(rows(*(["P"] * 12)), scheme="pass_fail")
    assert verdict("GRD-2", facts(grading=pf)).status == cr.FAIL
    assert verdict("GRD-2", facts(grading=pf, practice=True)).status == cr.PASS
    v = verdict("GRD-2", facts(grading=graded(rows(*dist(4, 3, 3)), finalized=None)))
    assert v.status == cr.NA and v.evidence["problems"]
    assert verdict("GRD-2", facts()).status == cr.NA


# --- GRD-3 / ATT-6 ---------------------------------------------------------------------------------

def test_grd_3_below_80_or_both_regular_exams_missed_must_be_f():
    """GRD-3 (and ATT-6): a learner under 80% attendance or who missed both regular exams
    must have F (or no grade after a cheating finding)."""
    ok = graded([cr.GradeRow("low", 95.0, "F", ("ATT-6",)), cr.GradeRow("away", 50.0, "F", ("GRD-3",)),
                 cr.GradeRow("ok", 91.0, "A0")])
    f = facts(grading=ok, learners_below_minimum=[("low", 79.9)], missing_regular_exams=["away"], regular_exams=2)
    assert verdict("GRD-3", f).status == cr.PASS and verdict("ATT-6", f).status == cr.PASS
    bad = graded([cr.GradeRow("low", 95.0, "A+"), cr.GradeRow("away", 50.0, "F"), cr.GradeRow("ok", 91.0, "A0")])
    f = facts(grading=bad, learners_below_minimum=[("low", 79.9)], missing_regular_exams=["away"], regular_exams=2)
    v = verdict("GRD-3", f)
    assert v.status == cr.FAIL and v.evidence["wrong"] == [{"learner": "low", "grade": "A+"}]
    assert verdict("ATT-6", f).status == cr.FAIL
    away = graded([cr.GradeRow("away", 50.0, "D0")])
    assert verdict("GRD-3", facts(grading=away, missing_regular_exams=["away"], regular_exams=2)).status == cr.FAIL
    # A course without regular exams: nobody "missed both".
    assert verdict("GRD-3", facts(grading=away, missing_regular_exams=["away"], regular_exams=0)).status == cr.PASS
    # No grade after a cheating finding (EXM-13) counts as not passing.
    cheat = graded([cr.GradeRow("low", 95.0, None, ("EXM-13",))])
    assert verdict("GRD-3", facts(grading=cheat, learners_below_minimum=[("low", 50.0)])).status == cr.PASS


# --- GRD-4 / GRD-5 ---------------------------------------------------------------------------------

def test_grd_4_absolute_grades_follow_the_table_at_95_and_94_99():
    """GRD-4: under absolute grading 95 → A+, 94.99 → A0, 60 → D0, 59.99 → F (EXM-11 cap
    respected); a grade outside the table fails."""
    good = [cr.GradeRow("a", 95.0, "A+"), cr.GradeRow("b", 94.99, "A0"), cr.GradeRow("c", 60.0, "D0"),
            cr.GradeRow("d", 59.99, "F"), cr.GradeRow("e", 97.0, "B+", cap="B+")]
    v = verdict("GRD-4", facts(grading=graded(good, scheme="absolute")))
    assert v.status == cr.PASS and v.evidence["points"]["a"] == 4.5 and v.evidence["points"]["c"] == 1.0
    bad = good[:1] + [cr.GradeRow("b", 94.99, "A+")]
    v = verdict("GRD-4", facts(grading=graded(bad, scheme="absolute")))
    assert v.status == cr.FAIL and v.evidence["wrong"] == [{"learner": "b", "score": 94.99, "grade": "A+",
                                                            "expected": "A0"}]
    assert verdict("GRD-4", facts(grading=graded([cr.GradeRow("x", 80.0, "Z9")]))).status == cr.FAIL


def test_grd_5_pass_at_d0_not_d_minus_and_p_at_60():
    """GRD-5: a completed registration needs D0 or above; P needs a score of 60."""
    ok = [cr.GradeRow("d0", 60.0, "D0", enrollment_status="completed"), cr.GradeRow("f", 40.0, "F")]
    v = verdict("GRD-5", facts(grading=graded(ok, scheme="absolute")))
    assert v.status == cr.PASS and v.evidence["passed"] == 1
    bad = [cr.GradeRow("f", 59.0, "F", enrollment_status="completed")]
    assert verdict("GRD-5", facts(grading=graded(bad, scheme="absolute"))).status == cr.FAIL
    pf_ok = [cr.GradeRow("p", 60.0, "P"), cr.GradeRow("np", 59.99, "NP")]
    assert verdict("GRD-5", facts(grading=graded(pf_ok, scheme="pass_fail"), practice=True)).status == cr.PASS
    pf_bad = [cr.GradeRow("p", 59.99, "P")]
    assert verdict("GRD-5", facts(grading=graded(pf_bad, scheme="pass_fail"), practice=True)).status == cr.FAIL


# --- GRD-6 ------------------------------------------------------------------------------------------

def test_grd_6_finalised_inside_the_window_edges():
    """GRD-6: finalised from the end of the objection period (2027-06-29 00:00 KST) to
    before its 7-day deadline (2027-07-06 00:00 KST); not before, not at/after."""
    r = rows("A0")
    assert verdict("GRD-6", facts(grading=graded(r, finalized=OBJ_CLOSES), enrolled=1)).status == cr.PASS
    assert verdict("GRD-6", facts(grading=graded(r, finalized=FIN_DUE - SEC), enrolled=1)).status == cr.PASS
    assert verdict("GRD-6", facts(grading=graded(r, finalized=OBJ_CLOSES - SEC), enrolled=1)).status == cr.FAIL
    assert verdict("GRD-6", facts(grading=graded(r, finalized=FIN_DUE), enrolled=1)).status == cr.FAIL
    # Not finalised: pending before the deadline, a breach from it.
    assert verdict("GRD-6", facts(grading=graded(r, finalized=None), enrolled=1), FIN_DUE - SEC).status == cr.NA
    assert verdict("GRD-6", facts(grading=graded(r, finalized=None), enrolled=1), FIN_DUE).status == cr.FAIL
    assert verdict("GRD-6", facts(enrolled=1), FIN_DUE).status == cr.FAIL  # learners, never graded
    assert verdict("GRD-6", facts(enrolled=0), FIN_DUE).status == cr.NA


def test_grd_6_objections_answered_by_day_14():
    """GRD-6: an objection answered at 23:59:59 of day 14 is in time; at 00:00:00 of day 15
    (or never) it is not."""
    obj = kst(2027, 6, 20)
    on_time = graded(rows("A0"), objections=[(1, "s00", obj, OBJ_CLOSES - SEC)])
    assert verdict("GRD-6", facts(grading=on_time, enrolled=1)).status == cr.PASS
    late = graded(rows("A0"), objections=[(1, "s00", obj, OBJ_CLOSES)])
    v = verdict("GRD-6", facts(grading=late, enrolled=1))
    assert v.status == cr.FAIL and v.evidence["late_objections"][0]["id"] == 1
    never = graded(rows("A0"), objections=[(1, "s00", obj, None)])
    assert verdict("GRD-6", facts(grading=never, enrolled=1)).status == cr.FAIL


# --- ENR-1 / ENR-4 / ENR-5 -------------------------------------------------------------------------

def reg(**over) -> cr.RegistrationFact:
    r = cr.RegistrationFact(learner="lea", status="active", kind="regular", registered_at=DEADLINE - SEC)
    return replace(r, **over)


def test_enr_1_registration_after_the_deadline_needs_a_late_right_or_documented_override():
    """ENR-1: at 23:59:59 the day before a regular registration is fine; at 00:00:00 of the
    start date only a late registration (until start + 14 days) or an override with a
    recorded reason is."""
    assert verdict("ENR-1", facts(registrations=[reg()])).status == cr.PASS
    assert verdict("ENR-1", facts(registrations=[reg(registered_at=DEADLINE)])).status == cr.FAIL
    late_ok = reg(kind="late", registered_at=DEADLINE + timedelta(days=14), reason="폐강 (CRS-14)")
    assert verdict("ENR-1", facts(registrations=[late_ok])).status == cr.PASS
    late_bad = replace(late_ok, registered_at=DEADLINE + timedelta(days=14) + SEC)
    assert verdict("ENR-1", facts(registrations=[late_bad])).status == cr.FAIL
    ovr = reg(kind="admin_override", registered_at=DEADLINE + timedelta(days=30), reason="전산 오류 정정 (민원 14호)")
    v = verdict("ENR-1", facts(registrations=[ovr]))
    assert v.status == cr.PASS and v.evidence["overrides"] == [{"learner": "lea", "reason": "전산 오류 정정 (민원 14호)"}]
    bare = replace(ovr, reason="관리자 직권 등록 (등록 마감 후, 사유 미기재)")
    assert verdict("ENR-1", facts(registrations=[bare])).status == cr.FAIL
    assert verdict("ENR-1", facts(registrations=[])).status == cr.NA


def test_enr_1_unpaid_at_the_payment_deadline():
    """ENR-1: paid in full before 00:00 KST of the start date passes; a registration still
    active and unpaid at that instant fails; cancelled by the job it passes; fee 0, a
    waiver and an override are not unpaid."""
    paid = reg(fee=300_000, paid_by_deadline=300_000)
    assert verdict("ENR-1", facts(registrations=[paid]), DEADLINE).status == cr.PASS
    unpaid = reg(fee=300_000, paid_by_deadline=299_999)
    assert verdict("ENR-1", facts(registrations=[unpaid]), DEADLINE - SEC).status == cr.PASS  # not yet due
    v = verdict("ENR-1", facts(registrations=[unpaid]), DEADLINE)
    assert v.status == cr.FAIL and "미납" in v.evidence["problems"][0]["problems"][0]
    cancelled = replace(unpaid, status="cancelled", cancelled_at=DEADLINE + timedelta(minutes=5))
    v = verdict("ENR-1", facts(registrations=[cancelled]), NOW)
    assert v.status == cr.PASS and v.evidence["unpaid_cancelled"] == 1
    for ok in (reg(fee=0), reg(fee=300_000, waived=True), reg(fee=None),
               reg(fee=300_000, kind="admin_override", registered_at=DEADLINE + SEC, reason="사유 있음")):
        assert verdict("ENR-1", facts(registrations=[ok]), NOW).status == cr.PASS, ok


def test_enr_4_refunds_paid_within_5_days():
    """ENR-4: a refund due on 2027-04-06 paid that day passes; paid on the 7th, or unpaid
    at 00:00 of the 7th, fails; unpaid on the 6th is still in time."""
    due = date(2027, 4, 6)
    r = cr.RefundFact(id=1, learner="lea", cause="withdrawal", amount=1000, due_on=due,
                      refunded_at=kst(2027, 4, 6, 23, 59, 59))
    assert verdict("ENR-4", facts(refunds=[r])).status == cr.PASS
    assert verdict("ENR-4", facts(refunds=[replace(r, refunded_at=kst(2027, 4, 7))])).status == cr.FAIL
    open_ = replace(r, refunded_at=None)
    assert verdict("ENR-4", facts(refunds=[open_]), kst(2027, 4, 6, 23, 59, 59)).status == cr.PASS
    assert verdict("ENR-4", facts(refunds=[open_]), kst(2027, 4, 7)).status == cr.FAIL
    assert verdict("ENR-4", facts(refunds=[])).status == cr.NA


def test_enr_5_register_within_3_weeks_of_the_start():
    """ENR-5: an entry created by start + 3 weeks (2027-03-23 00:00 KST) passes; later (or
    missing after it) fails; a registration made after the 3 weeks is due with it."""
    due = kst(2027, 3, 23)
    assert verdict("ENR-5", facts(registrations=[reg(register_entry_at=due)])).status == cr.PASS
    assert verdict("ENR-5", facts(registrations=[reg(register_entry_at=due + SEC)])).status == cr.FAIL
    assert verdict("ENR-5", facts(registrations=[reg()]), due).status == cr.PASS  # none yet, not yet due
    assert verdict("ENR-5", facts(registrations=[reg()]), due + SEC).status == cr.FAIL
    later = reg(kind="admin_override", registered_at=due + timedelta(days=2), register_entry_at=due + timedelta(days=2))
    assert verdict("ENR-5", facts(registrations=[later])).status == cr.PASS


# --- gathered from real data -----------------------------------------------------------------------

def _report(app, cid, now) -> dict:
    from lms.audit import compliance
    from lms.content.models import Course
    from lms.db import db

    with app.app_context():
        course = db.session.get(Course, cid)
        out = {v.rule: v for v in cr.evaluate(compliance.gather(course, now), now)}
        db.session.remove()
    return out


def test_gathered_grading_checks_after_finalising_ten_learners(app, client, users):
    """GRD-1/2/3/4/5/6 and ATT-6 gathered from a course graded through the API: 10
    relatively graded learners + one F for attendance, finalised on the first allowed
    day; then a grade changed behind the application's back is caught (GRD-3, ATT-6)."""
    from test_grading_api import OBJECTIONS_CLOSE, Course

    c = Course(app, client, users, 10)
    for k in range(10):
        c.score(f"s{k:02d}", 95 - 3 * k)
    c.add("low", attended=(0, 1))  # 79.9%: F by ATT-6
    c.score("low", 100)
    c.at(OBJECTIONS_CLOSE - timedelta(days=14))
    r = client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph())
    assert r.status_code == 200, r.get_json()
    c.at(OBJECTIONS_CLOSE)
    r = client.post(f"/api/v1/courses/{c.cid}/grades/finalize", headers=c.ph())
    assert r.status_code == 200, r.get_json()
    rep = _report(app, c.cid, OBJECTIONS_CLOSE + timedelta(hours=1))
    assert rep["GRD-1"].status == cr.PASS and rep["GRD-1"].evidence["weights"] == {"assignments": 80,
                                                                                  "attendance": 20}
    assert rep["GRD-2"].status == cr.PASS and rep["GRD-2"].evidence["class_size"] == 10
    for rule in ("GRD-3", "GRD-4", "GRD-5", "GRD-6", "ATT-6", "ENR-5"):
        assert rep[rule].status == cr.PASS, (rule, rep[rule])
    # The same through the API, the HTML page and the stored PDF (evidence serialises).
    c.at(OBJECTIONS_CLOSE + timedelta(hours=1))
    body = client.get(f"/api/v1/courses/{c.cid}/compliance", headers=c.ah()).get_json()
    by_rule = {v["rule"]: v for v in body["verdicts"]}
    assert by_rule["GRD-2"]["status"] == "pass" and by_rule["GRD-2"]["evidence"]["counts"]["A"] >= 2
    r = client.post(f"/api/v1/courses/{c.cid}/compliance/reports", headers=c.ah())
    assert r.status_code == 201, r.get_json()
    from lms.db import db
    from lms.grading.models import CourseGrade

    with app.app_context():
        g = db.session.scalar(select(CourseGrade).where(CourseGrade.learner_id == c.ids["low"]))
        g.grade = "D0"
        db.session.commit()
        db.session.remove()
    rep = _report(app, c.cid, OBJECTIONS_CLOSE + timedelta(hours=1))
    assert rep["GRD-3"].status == cr.FAIL and rep["ATT-6"].status == cr.FAIL
    assert rep["GRD-3"].evidence["wrong"] == [{"learner": "low", "grade": "D0"}]


def test_gathered_registration_checks_fees_refunds_and_the_unpaid_job(app, client, users):
    """ENR-1/ENR-4 gathered: an unpaid registration still active at the deadline fails ENR-1
    until the job cancels it; a refund left unpaid past its 5th day fails ENR-4."""
    from lms.db import db
    from lms.enrolment.fees import cancel_unpaid
    from test_registration import START, World

    w = World(app, client, users)
    cid = w.course()
    assert w.client.put(f"/api/v1/courses/{cid}/fee", json={"amount": 300_000},
                        headers=bearer(w.admin)).status_code == 200
    paid = w.admin_enrol(w.learner("paid"), cid).get_json()["id"]
    w.admin_enrol(w.learner("nopay"), cid)
    assert w.client.post(f"/api/v1/enrollments/{paid}/payments", json={"amount": 300_000, "method": "card"},
                         headers=bearer(w.admin)).status_code == 201
    r = w.client.post(f"/api/v1/enrollments/{paid}/refunds",
                      json={"cause": "overpayment", "cause_at": kst(2027, 2, 1).isoformat(), "overpaid": 1000},
                      headers=bearer(w.admin))
    assert r.status_code == 201 and r.get_json()["due_on"] == "2027-02-06"
    rep = _report(app, cid, kst(2027, 2, 6, 23, 59, 59))
    assert rep["ENR-1"].status == cr.PASS and rep["ENR-4"].status == cr.PASS
    rep = _report(app, cid, DEADLINE)
    assert rep["ENR-4"].status == cr.FAIL  # the 1,000 won were never paid back
    v = rep["ENR-1"]
    assert v.status == cr.FAIL and [p["learner"] for p in v.evidence["problems"]] == ["u_nopay"]
    set_clock(app, DEADLINE)
    with app.app_context():
        assert cancel_unpaid()["cancelled"] == 1
        db.session.remove()
    rep = _report(app, cid, DEADLINE + timedelta(minutes=10))
    assert rep["ENR-1"].status == cr.PASS and rep["ENR-1"].evidence["unpaid_cancelled"] == 1
    assert START == DEADLINE.date()
