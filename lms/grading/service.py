"""Grade computation, proposal, adjustment, objections, finalisation and corrections
(GRD-1…GRD-7 with ATT-6…8, EXM-11, EXM-13): the transactions.

Components (GRD-1, the syllabus's ``evaluation`` weights; GRD-1's default 80/20 without one):
- ``exams``: the mean, over the course's regular exams (midterm, final), of the learner's
  best submitted attempt as a percentage of its items' points (a make-up attempt counts;
  a missed exam 0);
- ``quizzes``: the same over the course's quizzes;
- ``attendance``: the ATT-7 score (of 20 points, ATT-8 for enlisted learners) as a percentage;
- ``assignments``, ``participation``: the instructor's latest recorded score (0–100,
  ``component_score``, appended with who and when); none recorded is 0.
The course score is Σ weight × percent / 100, exact; GRD-4's table applies without rounding.
Fixed grades: F for attendance below 80% (ATT-6) or both regular exams missed (GRD-3);
no grade after a cheating finding (EXM-13); these learners are outside the GRD-2
distribution and its head count. A make-up exam caps the grade at B+ (EXM-11).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from sqlalchemy import func, select

from lms import clock
from lms.attendance import reports as att_reports
from lms.attendance.rules import course_ends_on
from lms.auth.models import User
from lms.content.models import Course, StaffAssignment, Syllabus
from lms.content.service import get_course, staff_roles
from lms.db import db, lock_row
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, RuleViolation, forbidden, not_found
from lms.exams import findings, makeup
from lms.exams.models import Attempt, AttemptItem, Exam, ItemVersion
from lms.exams.rules import REGULAR_KINDS
from lms.grading import rules
from lms.grading.models import (ComponentScore, CourseGrade, GradeCorrection, GradeEvent, GradeObjection,
                                GradeSheet)

MAX_TEXT = 5000
ENROLLED = ("active", "completed")


# --- access ------------------------------------------------------------------------------

def can_read(course: Course, user: User) -> bool:
    if user.role in ("admin", "inspector"):
        return True
    return bool(staff_roles(course.id, user.id))


def can_grade(course: Course, user: User) -> bool:
    if user.role == "admin":
        return True
    return "instructor" in staff_roles(course.id, user.id)


def course_for_reader(course_id: int, user: User) -> Course:
    course = get_course(course_id, user)
    if not can_read(course, user):
        raise forbidden("only the course's staff, administrators and inspectors see the grade sheet")
    return course


def course_for_grader(course_id: int, user: User) -> Course:
    course = get_course(course_id, user)
    if not can_grade(course, user):
        raise forbidden("only the course's instructor or an administrator grades")
    return course


def ends_on(course: Course):
    return course_ends_on(course.starts_on, course.weeks)


def _text(name: str, value, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
    v = (value or "").strip() if isinstance(value, str) or value is None else None
    if v is None:
        raise ApiError(400, "invalid_request", f"{name}: a text")
    if required and not v:
        raise ApiError(400, "invalid_request", f"{name}: required")
    if len(v) > limit:
        raise ApiError(400, "invalid_request", f"{name}: at most {limit} characters")
    return v or None


# --- computation ---------------------------------------------------------------------------

@dataclass
class LearnerFacts:
    learner_id: int
    name: str
    username: str
    components: dict  # {component: percent (Fraction)}
    score: Fraction
    attendance_rate: Fraction
    attendance_points: Fraction | None
    fixed_by: list = field(default_factory=list)  # ATT-6, GRD-3, EXM-13
    cap: str | None = None
    essays_pending: bool = False

    @property
    def no_grade(self) -> bool:
        return "EXM-13" in self.fixed_by

    @property
    def forced_f(self) -> bool:
        return not self.no_grade and bool(self.fixed_by)

    @property
    def relative(self) -> bool:
        return not self.fixed_by


def weights_of(course: Course) -> dict:
    syl = db.session.scalar(select(Syllabus).where(Syllabus.course_id == course.id))
    ev = {k: v for k, v in ((syl.evaluation or {}) if syl else {}).items() if v}
    return ev or dict(rules.DEFAULT_WEIGHTS)


def enrolled_learners(course: Course) -> list[User]:
    return list(db.session.scalars(
        select(User).join(Enrollment, Enrollment.user_id == User.id)
        .where(Enrollment.course_id == course.id, Enrollment.status.in_(ENROLLED)).order_by(User.id)))


def _exam_percents(course: Course) -> tuple[dict, dict, dict]:
    """{kind: [exam ids]}, {(exam, learner): best percent}, {learner: essays pending}."""
    exams = list(db.session.scalars(select(Exam).where(Exam.course_id == course.id)))
    by_kind: dict[str, list[int]] = {}
    for e in exams:
        by_kind.setdefault(e.kind, []).append(e.id)
    best: dict[tuple[int, int], Fraction] = {}
    pending: dict[int, bool] = {}
    if not exams:
        return by_kind, best, pending
    maxima = dict(db.session.execute(
        select(AttemptItem.attempt_id, func.sum(ItemVersion.points))
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .where(Attempt.exam_id.in_([e.id for e in exams])).group_by(AttemptItem.attempt_id)).all())
    for a in db.session.scalars(select(Attempt).where(Attempt.exam_id.in_([e.id for e in exams]),
                                                      Attempt.submitted_at.is_not(None))):
        top = maxima.get(a.id) or 0
        pct = Fraction(str(a.score or 0)) * 100 / Fraction(str(top)) if top else Fraction(0)
        key = (a.exam_id, a.learner_id)
        if key not in best or pct > best[key]:
            best[key] = pct
        if a.needs_grading:
            pending[a.learner_id] = True
    return by_kind, best, pending


def _entered(course: Course) -> dict[tuple[int, str], Fraction]:
    out = {}
    for row in db.session.scalars(select(ComponentScore).where(ComponentScore.course_id == course.id)
                                  .order_by(ComponentScore.id)):
        out[(row.learner_id, row.component)] = Fraction(str(row.score))
    return out


def _mean(values: list[Fraction]) -> Fraction:
    return sum(values, Fraction(0)) / len(values) if values else Fraction(0)


def compute(course: Course) -> list[LearnerFacts]:
    """GRD-1, GRD-3, ATT-6…8, EXM-11, EXM-13 for every enrolled learner."""
    weights = weights_of(course)
    by_kind, best, pending = _exam_percents(course)
    regular = [e for k in REGULAR_KINDS for e in by_kind.get(k, [])]
    quizzes = by_kind.get("quiz", [])
    entered = _entered(course)
    out = []
    for user in enrolled_learners(course):
        att = att_reports.learner_result(course, user.id)
        att_pct = (att.score or Fraction(0)) * 100 / rules.MAX_ATTENDANCE_WEIGHT
        reg = [best.get((e, user.id), Fraction(0)) for e in regular]
        comps = {
            "exams": _mean(reg),
            "quizzes": _mean([best.get((e, user.id), Fraction(0)) for e in quizzes]),
            "assignments": entered.get((user.id, "assignments"), Fraction(0)),
            "participation": entered.get((user.id, "participation"), Fraction(0)),
            "attendance": att_pct,
        }
        comps = {k: v for k, v in comps.items() if k in weights}
        score = rules.weighted_score(weights, comps)
        sat = sum(1 for e in regular if (e, user.id) in best)
        fixed = rules.forced_f_reasons(attendance_below_80=att.f, regular_exams=len(regular), regular_sat=sat)
        if findings.learner_has_cheating_finding(course.id, user.id):
            fixed = ["EXM-13"]
        out.append(LearnerFacts(learner_id=user.id, name=user.name or "", username=user.username,
                                components=comps, score=score, attendance_rate=att.rate,
                                attendance_points=att.score, fixed_by=fixed,
                                cap=makeup.grade_cap(course.id, user.id),
                                essays_pending=bool(pending.get(user.id))))
    return out


def class_size(facts: list[LearnerFacts]) -> int:
    """GRD-2's head count: the learners graded on their score (not fixed by ATT-6, GRD-3, EXM-13)."""
    return sum(1 for f in facts if f.relative)


def fixed_grade(f: LearnerFacts) -> str | None:
    return None if f.no_grade else rules.F


def propose_grades(facts: list[LearnerFacts], scheme: str) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    free = [f for f in facts if f.relative]
    if scheme == "relative":
        out.update(rules.propose_relative([(f.learner_id, f.score, f.cap) for f in free]))
    elif scheme == "pass_fail":
        out.update({f.learner_id: rules.pass_fail_grade(f.score) for f in free})
    else:
        out.update({f.learner_id: rules.absolute_grade(f.score, f.cap) for f in free})
    for f in facts:
        if not f.relative:
            out[f.learner_id] = rules.FAIL if scheme == "pass_fail" and not f.no_grade else fixed_grade(f)
    return out


# --- the sheet ------------------------------------------------------------------------------

def find_sheet(course_id: int) -> GradeSheet | None:
    return db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == course_id))


def peek_sheet(course: Course, facts: list[LearnerFacts] | None = None) -> GradeSheet:
    """The stored sheet, or (for reading) an unsaved one with today's default scheme: the
    default follows the class size until the instructor proposes or chooses."""
    sheet = find_sheet(course.id)
    if sheet is None:
        facts = compute(course) if facts is None else facts
        sheet = GradeSheet(course_id=course.id, scheme=rules.default_scheme(class_size(facts), course.practice))
    return sheet


def get_sheet(course: Course, facts: list[LearnerFacts] | None = None) -> GradeSheet:
    """The stored sheet, created (with the default scheme of the class now) when missing."""
    sheet = find_sheet(course.id)
    if sheet is None:
        sheet = peek_sheet(course, facts)
        db.session.add(sheet)
        db.session.flush()
    return sheet


def _lock_sheet(course: Course) -> GradeSheet:
    sheet = get_sheet(course)
    return lock_row(GradeSheet, sheet.id)


def stored_grades(course_id: int) -> dict[int, CourseGrade]:
    return {g.learner_id: g for g in db.session.scalars(select(CourseGrade).where(CourseGrade.course_id == course_id))}


def _event(course_id, learner_id, actor_id, kind, before, after, score=None, reason=None, now=None) -> None:
    db.session.add(GradeEvent(course_id=course_id, learner_id=learner_id, at=now or clock.now(), actor_id=actor_id,
                              kind=kind, grade_before=before, grade_after=after, score=score, reason=reason))


def _num(x):
    if x is None:
        return None
    return round(float(x), 2)


def propose(course_id: int, actor: User) -> GradeSheet:
    """GRD-2/GRD-4: compute every learner's score and store the proposed grades (replacing
    earlier proposals and adjustments, each change appended to the history)."""
    course = course_for_grader(course_id, actor)
    now = clock.now()
    sheet = _lock_sheet(course)
    _check_open(course, sheet, now)
    store_proposal(course, sheet, actor.id, now)
    return sheet


def store_proposal(course: Course, sheet: GradeSheet, actor_id: int | None, now) -> None:
    """Compute and store the proposal of the sheet's scheme (actor None: the finalisation job)."""
    facts = compute(course)
    proposal = propose_grades(facts, sheet.scheme)
    stored = stored_grades(course.id)
    for f in facts:
        g = proposal[f.learner_id]
        row = stored.get(f.learner_id)
        if row is None:
            row = CourseGrade(course_id=course.id, learner_id=f.learner_id)
            db.session.add(row)
        before = row.grade
        row.score = _num(f.score)
        row.components = {k: _num(v) for k, v in f.components.items()}
        row.attendance_rate = float(f.attendance_rate)
        row.proposed_grade = g
        row.grade = g
        row.fixed_by = f.fixed_by or None
        row.cap = f.cap
        row.updated_at = now
        _event(course.id, f.learner_id, actor_id, "proposed", before, g, _num(f.score),
               ",".join(f.fixed_by) or None, now)
    sheet.proposed_at, sheet.proposed_by = now, actor_id


def _check_open(course: Course, sheet: GradeSheet, now) -> None:
    if sheet.finalized_at is not None:
        raise ApiError(409, "grades_finalized", "grades are final: a change needs a correction application (GRD-7)")


def set_scheme(course_id: int, actor: User, scheme: str) -> GradeSheet:
    course = course_for_grader(course_id, actor)
    sheet = _lock_sheet(course)
    _check_open(course, sheet, clock.now())
    facts = compute(course)
    problem = rules.scheme_problem(scheme, class_size(facts), course.practice)
    if problem:
        raise RuleViolation(["GRD-2"], problem)
    sheet.scheme = scheme
    return sheet


def _allowed_grade(scheme: str, grade: str) -> bool:
    return grade in ((rules.PASS, rules.FAIL) if scheme == "pass_fail" else rules.GRADES)


def adjust(course_id: int, learner_id: int, actor: User, *, grade: str, reason: str | None,
           kind: str = "adjusted") -> CourseGrade:
    """The instructor changes one proposed grade (GRD-2) until the grades are final (GRD-6;
    an objection's correction only inside the objection period). Fixed grades (ATT-6, GRD-3, EXM-13) and the make-up cap (EXM-11) hold."""
    course = course_for_grader(course_id, actor)
    sheet = _lock_sheet(course)
    now = clock.now()
    _check_open(course, sheet, now)
    row = db.session.scalar(select(CourseGrade).where(CourseGrade.course_id == course.id,
                                                      CourseGrade.learner_id == learner_id))
    if row is None:
        raise ApiError(409, "not_proposed", "propose the grades first")
    return _change(course, sheet, row, actor, grade=grade, reason=reason, kind=kind, now=now)


def _change(course, sheet, row, actor, *, grade, reason, kind, now) -> CourseGrade:
    if not _allowed_grade(sheet.scheme, grade):
        raise ApiError(400, "invalid_request", f"grade: not a grade of the {sheet.scheme} scheme")
    fixed = row.fixed_by or []
    if "EXM-13" in fixed:
        raise RuleViolation(["EXM-13"], "a cheating finding means no grade for this course")
    if fixed and grade not in (rules.F, rules.FAIL):
        raise RuleViolation(fixed, "attendance below 80% or both regular exams missed: the grade is F")
    if rules.above_cap(grade, row.cap):
        raise RuleViolation(["EXM-11"], f"a make-up exam caps the grade at {row.cap}")
    before = row.grade
    row.grade = grade
    row.updated_at = now
    _event(course.id, row.learner_id, actor.id if actor else None, kind, before, grade, row.score, reason, now)
    return row


def check_finalizable(course: Course, sheet: GradeSheet, rows: list[CourseGrade]) -> None:
    """GRD-2: the relative distribution holds; no essay waits (EXM-12)."""
    if not rows:
        raise ApiError(409, "not_proposed", "propose the grades first")
    problem = rules.scheme_problem(sheet.scheme, class_size(compute(course)), course.practice)
    if problem:
        raise RuleViolation(["GRD-2"], problem + ": choose the scheme again and propose")
    if sheet.scheme == "relative":
        dist = rules.distribution([r.grade for r in rows if not r.fixed_by])
        if not dist.ok:
            raise RuleViolation(["GRD-2"], "the grade distribution breaks relative grading: "
                                + "; ".join(dist.problems or ["no learner is graded relatively"]),
                                details={"counts": dist.counts, "allowed": dist.allowed})


def finalize(course_id: int, actor: User | None, *, course: Course | None = None) -> GradeSheet:
    """GRD-6: after the objection period the grades become final and locked."""
    if course is None:
        course = course_for_grader(course_id, actor)
    sheet = _lock_sheet(course)
    now = clock.now()
    if sheet.finalized_at is not None:
        raise ApiError(409, "grades_finalized", "grades are already final")
    if not rules.may_finalize(ends_on(course), now):
        raise RuleViolation(["GRD-6"], "learners may object until "
                            f"{clock.iso(rules.objection_closes(ends_on(course)))}: finalise after that")
    rows = list(stored_grades(course.id).values())
    check_finalizable(course, sheet, rows)
    pending = db.session.scalar(select(func.count(Attempt.id)).join(Exam, Exam.id == Attempt.exam_id)
                                .where(Exam.course_id == course.id, Attempt.needs_grading.is_(True)))
    if pending:
        raise ApiError(409, "essays_pending", f"{pending} attempts still have essays to grade")
    for r in rows:
        _event(course.id, r.learner_id, actor.id if actor else None, "finalized", r.grade, r.grade, r.score, None, now)
    sheet.finalized_at, sheet.finalized_by = now, actor.id if actor else None
    return sheet


# --- reading --------------------------------------------------------------------------------

def grade_dict(row: CourseGrade | None, f: LearnerFacts | None, names: dict | None = None) -> dict:
    if row is not None:
        grade = row.grade
        out = {"learner_id": row.learner_id, "score": row.score, "grade": grade,
               "points": _num(rules.points_for(grade)), "proposed_grade": row.proposed_grade,
               "components": row.components, "attendance_rate": row.attendance_rate,
               "fixed_by": row.fixed_by or [], "cap": row.cap}
    else:
        out = {"learner_id": f.learner_id, "score": _num(f.score), "grade": None, "points": None,
               "proposed_grade": None, "components": {k: _num(v) for k, v in f.components.items()},
               "attendance_rate": float(f.attendance_rate), "fixed_by": f.fixed_by, "cap": f.cap}
    g = out["grade"]
    out["passed"] = rules.passed(g)
    out["no_grade"] = "EXM-13" in out["fixed_by"]
    if f is not None:
        out["computed_score"] = _num(f.score)
        out["essays_pending"] = f.essays_pending
        out["name"], out["username"] = f.name, f.username
    elif names:
        u = names.get(out["learner_id"])
        out["name"], out["username"] = (u.name, u.username) if u else ("", "")
    return out


def windows(course: Course) -> dict:
    e = ends_on(course)
    return {"course_ends": clock.iso(rules.course_end_instant(e)),
            "objections_close": clock.iso(rules.objection_closes(e)),
            "finalize_due": clock.iso(rules.finalize_due(e))}


def sheet_dict(course: Course) -> dict:
    """API.md ``GET /courses/{id}/grades`` for staff: every learner, the distribution check."""
    facts = compute(course)
    sheet = peek_sheet(course, facts)
    stored = stored_grades(course.id)
    grades = [grade_dict(stored.get(f.learner_id), f) for f in facts]
    known = {f.learner_id for f in facts}
    names = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(
        [i for i in stored if i not in known])))} if set(stored) - known else {}
    grades += [grade_dict(stored[i], None, names) for i in stored if i not in known]
    rel = [g["grade"] for g in grades if g["grade"] and not g["fixed_by"]]
    dist = rules.distribution(rel)
    size = class_size(facts)
    return {
        "course_id": course.id, "grades": grades, "finalized": sheet.finalized_at is not None,
        "finalized_at": clock.iso(sheet.finalized_at), "scheme": sheet.scheme,
        "proposed_at": clock.iso(sheet.proposed_at), "weights": weights_of(course),
        "class_size": size, "practice": course.practice,
        "absolute_allowed": rules.absolute_allowed(size, course.practice),
        "distribution": {"n": dist.n, "counts": dist.counts,
                         "allowed": {b: list(v) for b, v in dist.allowed.items()},
                         "shares": {b: _num(dist.share(b) * 100) for b in dist.counts},
                         "ok": dist.ok, "problems": dist.problems, "applies": sheet.scheme == "relative"},
        **windows(course),
    }


def learner_view(course: Course, learner: User) -> dict:
    """The learner's own grade and components (GRD-6): shown from the course end."""
    now = clock.now()
    e = ends_on(course)
    visible = now >= rules.course_end_instant(e)
    sheet = db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == course.id))
    row = db.session.scalar(select(CourseGrade).where(CourseGrade.course_id == course.id,
                                                      CourseGrade.learner_id == learner.id))
    out = {"course_id": course.id, "visible": visible and row is not None,
           "finalized": bool(sheet and sheet.finalized_at), "objection_open": rules.objection_open(e, now),
           "weights": weights_of(course), **windows(course)}
    if visible and row is not None:
        d = grade_dict(row, None)
        out["grades"] = [d]
    else:
        out["grades"] = []
    out["objections"] = [objection_dict(o) for o in db.session.scalars(
        select(GradeObjection).where(GradeObjection.course_id == course.id,
                                     GradeObjection.learner_id == learner.id).order_by(GradeObjection.id))]
    return out


def grades_for(course_id: int, viewer: User) -> dict:
    course = get_course(course_id, viewer)
    if viewer.role == "learner":
        if db.session.scalar(select(Enrollment.id).where(Enrollment.course_id == course.id,
                                                         Enrollment.user_id == viewer.id)) is None:
            raise forbidden("not enrolled in this course")
        return learner_view(course, viewer)
    if not can_read(course, viewer):
        raise forbidden("not a member of this course")
    return sheet_dict(course)


def history(course_id: int, viewer: User, learner_id: int | None = None) -> list[dict]:
    course = course_for_reader(course_id, viewer)
    stmt = select(GradeEvent).where(GradeEvent.course_id == course.id)
    if learner_id is not None:
        stmt = stmt.where(GradeEvent.learner_id == learner_id)
    return [{"id": e.id, "learner_id": e.learner_id, "at": clock.iso(e.at), "actor_id": e.actor_id,
             "kind": e.kind, "grade_before": e.grade_before, "grade_after": e.grade_after,
             "score": e.score, "reason": e.reason}
            for e in db.session.scalars(stmt.order_by(GradeEvent.id))]


# --- component scores (assignments, participation) -----------------------------------------

def record_component(course_id: int, learner_id: int, actor: User, *, component: str, score: float,
                     note: str | None) -> ComponentScore:
    course = course_for_grader(course_id, actor)
    sheet = find_sheet(course.id)
    if sheet is not None and sheet.finalized_at is not None:
        raise ApiError(409, "grades_finalized", "grades are final: a change needs a correction application (GRD-7)")
    if component not in rules.ENTERED_COMPONENTS:
        raise ApiError(400, "invalid_request", f"component: one of {', '.join(rules.ENTERED_COMPONENTS)}")
    if db.session.scalar(select(Enrollment.id).where(Enrollment.course_id == course.id,
                                                     Enrollment.user_id == learner_id)) is None:
        raise not_found("learner in this course")
    row = ComponentScore(course_id=course.id, learner_id=learner_id, component=component, score=float(score),
                         note=_text("note", note, required=False), recorded_by=actor.id, recorded_at=clock.now())
    db.session.add(row)
    return row


# --- objections (GRD-6) --------------------------------------------------------------------

def objection_dict(o: GradeObjection) -> dict:
    return {"id": o.id, "course_id": o.course_id, "learner_id": o.learner_id, "message": o.message,
            "created_at": clock.iso(o.created_at), "answer": o.answer, "answered_at": clock.iso(o.answered_at),
            "grade_before": o.grade_before, "grade_after": o.grade_after}


def object_to_grade(course_id: int, learner: User, message: str) -> GradeObjection:
    """GRD-6: a learner objects within 14 days of the course end (422 GRD-6 outside)."""
    course = get_course(course_id, learner)
    if learner.role != "learner" or db.session.scalar(select(Enrollment.id).where(
            Enrollment.course_id == course.id, Enrollment.user_id == learner.id)) is None:
        raise forbidden("only a learner of the course objects to their grade")
    message = _text("message", message)
    now = clock.now()
    e = ends_on(course)
    if not rules.objection_open(e, now):
        raise RuleViolation(["GRD-6"], "objections are taken from the course end for 14 days (until "
                            f"{clock.iso(rules.objection_closes(e))})")
    row = db.session.scalar(select(CourseGrade).where(CourseGrade.course_id == course.id,
                                                      CourseGrade.learner_id == learner.id))
    o = GradeObjection(course_id=course.id, learner_id=learner.id, message=message, created_at=now,
                       grade_before=row.grade if row else None)
    db.session.add(o)
    db.session.flush()
    from lms.notify.service import notify_users

    staff = db.session.scalars(select(StaffAssignment.user_id).where(StaffAssignment.course_id == course.id,
                                                                    StaffAssignment.role == "instructor"))
    notify_users(list(staff), kind="grade_objection", subject=f"[{course.code}] 성적 이의신청",
                 body=message[:500], link=f"/courses/{course.id}/grades")
    return o


def list_objections(course_id: int, viewer: User) -> list[dict]:
    course = get_course(course_id, viewer)
    stmt = select(GradeObjection).where(GradeObjection.course_id == course.id)
    if viewer.role == "learner":
        stmt = stmt.where(GradeObjection.learner_id == viewer.id)
    elif not can_read(course, viewer):
        raise forbidden("not a member of this course")
    return [objection_dict(o) for o in db.session.scalars(stmt.order_by(GradeObjection.id))]


def answer_objection(objection_id: int, actor: User, *, answer: str, grade: str | None) -> GradeObjection:
    """GRD-6: the instructor answers and, within the period, may correct the grade."""
    o = db.session.get(GradeObjection, objection_id)
    if o is None:
        raise not_found("objection")
    course = course_for_grader(o.course_id, actor)
    o = lock_row(GradeObjection, o.id)
    if o.answered_at is not None:
        raise ApiError(409, "already_answered", "this objection is already answered")
    answer = _text("answer", answer)
    now = clock.now()
    if grade is not None:
        if not rules.may_adjust(ends_on(course), now):
            raise RuleViolation(["GRD-6"], "the objection period is over: a correction now needs a "
                                "correction application after finalisation (GRD-7)")
        adjust(course.id, o.learner_id, actor, grade=grade, reason=f"objection #{o.id}: {answer}",
               kind="objection_correction")
        o.grade_after = grade
    o.answer, o.answered_by, o.answered_at = answer, actor.id, now
    from lms.notify.service import notify_users

    notify_users([o.learner_id], kind="grade_objection_answer", subject=f"[{course.code}] 성적 이의신청 답변",
                 body=answer[:500], link=f"/my/grades/{course.id}")
    return o


# --- corrections after finalisation (GRD-7) --------------------------------------------------

def correction_dict(c: GradeCorrection) -> dict:
    return {"id": c.id, "course_id": c.course_id, "learner_id": c.learner_id, "requested_by": c.requested_by,
            "created_at": clock.iso(c.created_at), "grade_before": c.grade_before, "grade_after": c.grade_after,
            "reasons": c.reasons, "evidence": c.evidence, "status": c.status, "decided_by": c.decided_by,
            "decided_at": clock.iso(c.decided_at), "decision_comment": c.decision_comment}


def apply_correction(course_id: int, actor: User, *, learner_id: int, grade: str, reasons: str,
                     evidence: str) -> GradeCorrection:
    """GRD-7: after finalisation, the instructor applies with reasons and evidence."""
    course = course_for_grader(course_id, actor)
    sheet = find_sheet(course.id)
    if sheet is None or sheet.finalized_at is None:
        raise ApiError(409, "not_finalized", "grades are not final yet: change them on the grade sheet")
    row = db.session.scalar(select(CourseGrade).where(CourseGrade.course_id == course.id,
                                                      CourseGrade.learner_id == learner_id))
    if row is None:
        raise not_found("grade of this learner")
    if not _allowed_grade(sheet.scheme, grade):
        raise ApiError(400, "invalid_request", f"grade: not a grade of the {sheet.scheme} scheme")
    c = GradeCorrection(course_id=course.id, learner_id=learner_id, requested_by=actor.id, created_at=clock.now(),
                        grade_before=row.grade, grade_after=grade, reasons=_text("reasons", reasons),
                        evidence=_text("evidence", evidence, limit=20000), status="pending")
    db.session.add(c)
    db.session.flush()
    from lms.notify.service import notify_users

    admins = db.session.scalars(select(User.id).where(User.role == "admin",
                                                      User.institution_id == course.institution_id))
    notify_users(list(admins), kind="grade_correction", subject=f"[{course.code}] 성적 정정 신청",
                 body=c.reasons[:500], link="/grade-corrections")
    return c


def list_corrections(viewer: User, course_id: int | None = None, status: str | None = None) -> list[GradeCorrection]:
    stmt = select(GradeCorrection).join(Course, Course.id == GradeCorrection.course_id).where(
        Course.institution_id == viewer.institution_id)
    if course_id is not None:
        course = course_for_reader(course_id, viewer)
        stmt = stmt.where(GradeCorrection.course_id == course.id)
    elif viewer.role not in ("admin", "inspector"):
        stmt = stmt.where(GradeCorrection.requested_by == viewer.id)
    if status:
        stmt = stmt.where(GradeCorrection.status == status)
    return list(db.session.scalars(stmt.order_by(GradeCorrection.id.desc())))


def decide_correction(correction_id: int, actor: User, *, approve: bool, comment: str | None) -> GradeCorrection:
    """GRD-7: an administrator approves (the grade changes, the history keeps both) or rejects."""
    if actor.role != "admin":
        raise forbidden("only an administrator decides correction applications")
    c = db.session.get(GradeCorrection, correction_id)
    if c is None:
        raise not_found("correction application")
    course = get_course(c.course_id, actor)
    c = lock_row(GradeCorrection, c.id)
    if c.status != "pending":
        raise ApiError(409, "already_decided", "this application is already decided")
    now = clock.now()
    comment = _text("comment", comment, required=not approve)
    if approve:
        sheet = _lock_sheet(course)
        row = db.session.scalar(select(CourseGrade).where(CourseGrade.course_id == course.id,
                                                          CourseGrade.learner_id == c.learner_id))
        _change(course, sheet, row, actor, grade=c.grade_after,
                reason=f"correction #{c.id}: {c.reasons}", kind="correction_approved", now=now)
    c.status = "approved" if approve else "rejected"
    c.decided_by, c.decided_at, c.decision_comment = actor.id, now, comment
    from lms.notify.service import notify_users

    notify_users([c.requested_by], kind="grade_correction_decision",
                 subject=f"[{course.code}] 성적 정정 신청 {'승인' if approve else '반려'}",
                 body=comment or "", link=f"/courses/{course.id}/grades")
    return c


# --- for the learning-history certificate ------------------------------------------------------

def final_results(learner_id: int) -> list[dict]:
    """Per finalised course of the learner: course_id, code, title, credits, grade, points
    (float, None for P/NP and no grade), attendance_rate (0…1), finalized_at (aware UTC
    datetime). Current grades (approved corrections included); oldest course first."""
    rows = db.session.execute(
        select(CourseGrade, Course, GradeSheet).join(Course, Course.id == CourseGrade.course_id)
        .join(GradeSheet, GradeSheet.course_id == CourseGrade.course_id)
        .where(CourseGrade.learner_id == learner_id, GradeSheet.finalized_at.is_not(None))
        .order_by(Course.starts_on, Course.id)).all()
    return [{"course_id": c.id, "code": c.code, "title": c.title, "credits": c.credits, "grade": g.grade,
             "points": _num(rules.points_for(g.grade)), "attendance_rate": g.attendance_rate,
             "finalized_at": s.finalized_at} for g, c, s in rows]
