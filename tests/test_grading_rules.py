"""Grading rules, pure (lms/grading/rules.py): GRD-1…GRD-7, ATT-6 and EXM-11 effects,
ENR-6 and CRS-15 periods — at their edges."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest

from lms.clock import KST
from lms.grading import rules

F = Fraction


@pytest.mark.parametrize("score, grade, points", [
    (100, "A+", 4.5), (95, "A+", 4.5), ("94.99", "A0", 4.0), (90, "A0", 4.0), ("89.99", "B+", 3.5),
    (85, "B+", 3.5), (80, "B0", 3.0), (75, "C+", 2.5), (70, "C0", 2.0), (65, "D+", 1.5),
    (60, "D0", 1.0), ("59.99", "F", 0), (0, "F", 0),
])
def test_grd4_table(score, grade, points):
    """GRD-4: score → grade → points, no rounding up (94.99 is an A0)."""
    s = F(score) if isinstance(score, str) else score
    assert rules.grade_for_score(s) == grade
    assert rules.points_for(grade) == F(str(points))


def test_grd5_pass_at_d0():
    """GRD-5: passed at D0 or above, or P."""
    assert rules.passed("D0") and rules.passed("A+") and rules.passed("P")
    assert not rules.passed("F") and not rules.passed("NP") and not rules.passed(None)
    assert rules.pass_fail_grade(60) == "P" and rules.pass_fail_grade(F(5999, 100)) == "NP"


def test_grd1_weighted_score_and_weights():
    """GRD-1: Σ weight × percent; attendance never above 20."""
    assert rules.weighted_score({"exams": 80, "attendance": 20}, {"exams": 90, "attendance": 100}) == 92
    assert rules.weighted_score({"exams": 50, "quizzes": 30, "attendance": 20},
                                {"exams": F(1, 3) * 100, "quizzes": 0, "attendance": 60}) == F(50, 3) + 12
    assert rules.weights_problem({"exams": 80, "attendance": 20}) is None
    assert "20" in rules.weights_problem({"exams": 79, "attendance": 21})
    assert rules.weights_problem({"exams": 70, "attendance": 20}) is not None


def test_grd3_and_att6_forced_f():
    """GRD-3: both regular exams missed → F; ATT-6: attendance below 80% → F."""
    assert rules.forced_f_reasons(attendance_below_80=False, regular_exams=2, regular_sat=0) == ["GRD-3"]
    assert rules.forced_f_reasons(attendance_below_80=False, regular_exams=2, regular_sat=1) == []
    assert rules.forced_f_reasons(attendance_below_80=True, regular_exams=2, regular_sat=2) == ["ATT-6"]
    assert rules.forced_f_reasons(attendance_below_80=False, regular_exams=0, regular_sat=0) == []


def test_exm11_make_up_caps_at_b_plus():
    """EXM-11: a make-up exam caps the grade at B+."""
    assert rules.cap_grade("A+", "B+") == "B+" and rules.cap_grade("A0", "B+") == "B+"
    assert rules.cap_grade("B+", "B+") == "B+" and rules.cap_grade("C0", "B+") == "C0"
    assert rules.cap_grade("A+", None) == "A+"
    assert rules.above_cap("A0", "B+") and not rules.above_cap("B+", "B+")
    assert rules.absolute_grade(99, "B+") == "B+"


def _grades(n, a, b):
    return ["A0"] * a + ["B0"] * b + ["C0"] * (n - a - b)


@pytest.mark.parametrize("a, ok", [(199, False), (200, True), (300, True), (301, False)])
def test_grd2_a_share_19_9_20_30_30_1(a, ok):
    """GRD-2: A 20–30% of 1000 learners: 19.9% and 30.1% break the rule, 20% and 30% hold
    (B kept at 35%, C and below take the rest: 45.1% … 35.9%, inside 30–50%)."""
    d = rules.distribution(_grades(1000, a, 350))
    assert d.ok is ok, d.problems
    assert d.counts["A"] == a
    if not ok:
        assert d.problems[0].startswith("A:")


@pytest.mark.parametrize("b, ok", [(299, False), (300, True), (400, True), (401, False)])
def test_grd2_b_share_edges(b, ok):
    """GRD-2: B 30–40% (A fixed at 25%)."""
    assert rules.distribution(_grades(1000, 250, b)).ok is ok


@pytest.mark.parametrize("c, ok", [(299, False), (300, True), (500, True), (501, False)])
def test_grd2_c_and_below_share_edges(c, ok):
    """GRD-2: C and below (F included) 30–50% (A and B as near their edges as the sum allows)."""
    a = 300 if c <= 400 else 200
    b = 1000 - a - c
    grades = ["A+"] * a + ["B+"] * b + ["D0"] * (c - 1) + ["F"]
    d = rules.distribution(grades)
    assert d.ok is ok
    assert any(p.startswith("C:") for p in d.problems) is (not ok)


def test_grd2_rounding_allowed_counts():
    """Bounds are inclusive and exact: ⌈20%·n⌉ … ⌊30%·n⌋ learners."""
    assert rules.allowed_counts(10, rules.SHARE_A) == (2, 3)
    assert rules.allowed_counts(13, rules.SHARE_A) == (3, 3)
    assert rules.allowed_counts(13, rules.SHARE_B) == (4, 5)
    assert rules.allowed_counts(13, rules.SHARE_C_BELOW) == (4, 6)
    assert rules.distribution([]).ok is False


@pytest.mark.parametrize("n", list(range(10, 80)))
def test_grd2_proposal_always_satisfies_distribution(n):
    """GRD-2: the proposal holds for every class size from 10 on (no caps)."""
    learners = [(i, F(100 - i), None) for i in range(n)]
    prop = rules.propose_relative(learners)
    assert rules.distribution(list(prop.values())).ok
    assert prop[0] == "A+"


def test_grd2_proposal_never_gives_a_to_a_capped_learner():
    """EXM-11 inside GRD-2: the best learner sat a make-up exam: B+, the A slot goes on."""
    learners = [(1, F(99), "B+")] + [(i, F(90 - i), None) for i in range(2, 12)]
    prop = rules.propose_relative(learners)
    assert prop[1] == "B+"
    assert sum(1 for g in prop.values() if g[0] == "A") == 3
    assert rules.distribution(list(prop.values())).ok


def test_grd2_nine_vs_ten_learners():
    """GRD-2: absolute grading allowed with 9 learners, not with 10 (unless practice)."""
    assert rules.absolute_allowed(9, False) and rules.default_scheme(9, False) == "absolute"
    assert not rules.absolute_allowed(10, False) and rules.default_scheme(10, False) == "relative"
    assert rules.absolute_allowed(10, True)
    assert rules.scheme_problem("absolute", 10, False)
    assert rules.scheme_problem("absolute", 9, False) is None
    assert rules.scheme_problem("pass_fail", 30, True) is None
    assert rules.scheme_problem("pass_fail", 3, False)


ENDS = date(2027, 6, 14)  # a Monday-start course's last day (15 weeks from 2027-03-02)


def test_grd6_objection_day_14_vs_day_15():
    """GRD-6: objections from the course end through its 14th day (KST)."""
    end = datetime(2027, 6, 15, 0, 0, tzinfo=KST)
    assert rules.course_end_instant(ENDS) == end
    assert not rules.objection_open(ENDS, end - timedelta(seconds=1))
    assert rules.objection_open(ENDS, end)
    day14_last = datetime(2027, 6, 28, 23, 59, 59, tzinfo=KST)
    assert rules.objection_open(ENDS, day14_last)
    assert not rules.objection_open(ENDS, day14_last + timedelta(seconds=1))  # day 15, 00:00
    assert rules.may_adjust(ENDS, day14_last) and not rules.may_adjust(ENDS, day14_last + timedelta(seconds=1))
    assert not rules.may_finalize(ENDS, day14_last) and rules.may_finalize(ENDS, day14_last + timedelta(seconds=1))


def test_grd6_final_within_7_days_and_reminder():
    due = datetime(2027, 7, 6, 0, 0, tzinfo=KST)
    assert rules.finalize_due(ENDS) == due
    assert not rules.reminder_due(ENDS, due - timedelta(days=2, seconds=1))
    assert rules.reminder_due(ENDS, due - timedelta(days=2))


def test_grd7_grade_report_due_7_days_after_finalising():
    fin = datetime(2027, 7, 1, 15, 0, tzinfo=KST)
    assert rules.nile_grades_due(fin) == datetime(2027, 7, 9, 0, 0, tzinfo=KST)


def test_enr6_status_report_before_one_fifth_of_class_time():
    """ENR-6: 15 weeks = 105 days; 1/5 is 21 days after 00:00 KST of the first day."""
    assert rules.nile_status_due(date(2027, 3, 2), ENDS) == datetime(2027, 3, 23, 0, 0, tzinfo=KST)


def test_crs15_evaluation_week():
    """CRS-15: opens at the course end, closes a week later."""
    opens, closes = rules.evaluation_window(ENDS)
    assert opens == datetime(2027, 6, 15, tzinfo=KST) and closes == datetime(2027, 6, 22, tzinfo=KST)
    assert not rules.evaluation_open(ENDS, opens - timedelta(seconds=1))
    assert rules.evaluation_open(ENDS, closes - timedelta(seconds=1))
    assert not rules.evaluation_open(ENDS, closes)
