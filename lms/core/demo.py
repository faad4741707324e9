"""Demo data for ``flask lms seed-demo`` (never in production): a published 15-week course
of frame-based lessons with staff and the demo learners enrolled, an item bank of every
item kind at three difficulty levels, an open quiz and an announced midterm.

The open quiz is backdated: announced 15 days ago, so the demo learners can sit an exam at
once (EXM-7 requires 14 days between announcement and start). Real exams are created
through the API, which never backdates anything.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from lms import clock
from lms.auth.models import Institution, User
from lms.content import service as content
from lms.content.models import Course
from lms.db import db
from lms.enrolment.service import enrol

COURSE_CODE = "DEMO101"

_ITEMS = {
    "easy": [
        ("single_choice", "학점은행제 원격수업에서 한 차시가 출석으로 인정되려면 진도율이 몇 %여야 합니까?",
         ["50%", "80%", "90%", "100%"], 3),
        ("single_choice", "출석 인정 기간은 차시가 열린 날부터 며칠입니까?", ["7일", "10일", "14일", "30일"], 2),
        ("short_answer", "우리나라의 수도는?", None, ["서울", "Seoul"]),
    ],
    "medium": [
        ("multiple_choice", "시험 부정행위 방지 조치로 옳은 것을 모두 고르시오.",
         ["동일 IP 응시 차단", "OTP 본인 인증", "시험 중 웹 검색 허용", "중복 로그인 차단"], [0, 1, 3]),
        ("single_choice", "온라인 시험 시간의 상한(장애 학습자 제외)은?", ["30분", "45분", "60분", "90분"], 2),
        ("short_answer", "문항은 난이도별로 최소 몇 단계에서 무작위 출제합니까? (숫자)", None, ["3", "3단계", "세 단계"]),
    ],
    "hard": [
        ("essay", "원격수업에서 대리출석을 막기 위한 방법을 두 가지 이상 서술하시오.", None, None),
        ("single_choice", "문제은행은 출제 문항 수의 최소 몇 배를 보유해야 합니까?", ["1배", "2배", "3배", "5배"], 2),
        ("multiple_choice", "접속 기록에 남겨야 하는 항목을 모두 고르시오.", ["IP", "접속 시각", "비밀번호", "사용자"],
         [0, 1, 3]),
    ],
}


def seed_course(inst: Institution, users: list[User]) -> Course | None:
    """The demo course, created once (None when it exists already)."""
    if db.session.scalar(select(Course.id).where(Course.institution_id == inst.id,
                                                 Course.code == COURSE_CODE)) is not None:
        return None
    by_role = {}
    for u in users:
        by_role.setdefault(u.role, []).append(u)
    admin = by_role["admin"][0]
    now = clock.now()
    today = clock.to_kst(now).date()
    course = content.create_course(admin, code=COURSE_CODE, title="원격교육론 (데모)", credits=3,
                                   starts_on=today - timedelta(days=7), weeks=15, capacity=200)
    for week in range(1, 16):
        for n in (1, 2):
            content.add_lesson(course, week=week, title=f"{week}주차 {n}차시", frames=24,
                               instructor_intro=week == 1 and n == 1)
    course.status = "published"
    course.published_at = now
    for u in by_role.get("instructor", []):
        content.add_staff(course, user_id=u.id, role="instructor")
    for u in by_role.get("ta", []):
        content.add_staff(course, user_id=u.id, role="ta")
    for u in by_role.get("learner", []):
        enrol(course, learner_id=u.id, actor=admin)
    _seed_bank(course, admin)
    _seed_exams(course, admin, now)
    return course


def _seed_bank(course: Course, admin: User) -> None:
    from lms.exams.items import create_item

    for level, rows in _ITEMS.items():
        for copy in range(3):  # 9 items per level: 3× the 3 a demo exam draws (EXM-5)
            for kind, prompt, choices, answer in rows:
                data = {"difficulty": level, "kind": kind, "prompt": prompt + ("" if copy == 0 else f" ({copy + 1})"),
                        "choices": choices, "answer": answer, "points": 10 if kind == "essay" else 5,
                        "tags": [f"week:{copy + 1}"]}
                if kind == "essay":
                    data.update(model_answer="OTP 재인증, 동일 IP·기기 차단, 무작위 확인 코드, 접속 기록 분석",
                                rubric="방법 하나당 5점 (최대 10점)")
                create_item(course, admin, data)


def _seed_exams(course: Course, admin: User, now) -> None:
    from lms.exams.models import Exam

    db.session.add(Exam(course_id=course.id, title="1주차 퀴즈 (데모)", kind="quiz",
                        opens_at=now - timedelta(hours=1), closes_at=now + timedelta(days=2),
                        duration_minutes=20, items_per_difficulty={"easy": 1, "medium": 1, "hard": 1},
                        announced_at=now - timedelta(days=15), status="announced", created_by=admin.id,
                        created_at=now - timedelta(days=15)))
    opens = clock.to_kst(now).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=15)
    db.session.add(Exam(course_id=course.id, title="중간고사", kind="midterm", opens_at=opens,
                        closes_at=opens + timedelta(days=3), duration_minutes=60,
                        items_per_difficulty={"easy": 2, "medium": 2, "hard": 2}, announced_at=now,
                        status="announced", created_by=admin.id, created_at=now))
    db.session.flush()
