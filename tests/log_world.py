"""Two institutions with users, a course each, classes, lessons, viewing sessions and
events, exam evidence and access-log rows — inserted directly (the evidence as the live
paths leave it), for the inspectors' search, exports and portal (REC-3, REC-6)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from conftest import set_clock
from lms.clock import KST

STARTS = date(2026, 9, 1)  # week 1 of course A: 2026-09-01 00:00 KST … 09-08 00:00 KST
NOW = datetime(2026, 10, 20, 10, 0, tzinfo=KST)  # the clock of the tests: after every row
WEEK1 = datetime(2026, 9, 1, 0, 0, tzinfo=KST)
WEEK2 = WEEK1 + timedelta(days=7)
LESSON_TITLE = "1주차: 데이터베이스의 이해"
ACCESS_ROWS = 60  # access rows of lea1 (30 in week 1, 30 in week 2)


class LogWorld:
    def __init__(self, app, users):
        from lms import clock
        from lms.attendance.models import LessonView, ViewEvent
        from lms.audit.models import AccessLog
        from lms.auth.models import Institution, User
        from lms.content.models import Course, Lesson, Section
        from lms.db import db
        from lms.enrolment.models import Enrollment
        from lms.exams.models import AttemptEvent, Exam

        set_clock(app, NOW)
        self.app, self.users = app, users
        self.ids: dict[str, int] = {}
        for name, role in (("adm", "admin"), ("insp", "inspector"), ("lea1", "learner"), ("lea2", "learner"),
                           ("prof", "instructor"), ("ta1", "ta")):
            self.ids[name] = users.create(name, role, name="김학습" if role == "learner" else "홍길동")
        with app.app_context():
            now = clock.now()
            inst_a = db.session.scalar(db.select(User.institution_id).where(User.id == self.ids["adm"]))
            inst_b = Institution(code="other", name="다른 교육원", created_at=now)
            db.session.add(inst_b)
            db.session.commit()
            self.inst_a, self.inst_b = inst_a, inst_b.id
        for name, role in (("inspb", "inspector"), ("leab", "learner")):
            self.ids[name] = users.create(name, role, institution_id=self.inst_b)
        with app.app_context():
            def course(inst, code, title):
                c = Course(institution_id=inst, code=code, title=title, credits=3, starts_on=STARTS, weeks=15,
                           capacity=100, status="published", created_at=now)
                db.session.add(c)
                db.session.flush()
                return c

            ca = course(inst_a, "DB101", "데이터베이스 개론")
            cb = course(self.inst_b, "OT101", "다른 과정")
            sa1 = Section(course_id=ca.id, name="1분반")
            sa2 = Section(course_id=ca.id, name="2분반")
            db.session.add_all([sa1, sa2])
            db.session.flush()
            db.session.add_all([
                Enrollment(course_id=ca.id, section_id=sa1.id, user_id=self.ids["lea1"], created_at=now),
                Enrollment(course_id=ca.id, section_id=sa2.id, user_id=self.ids["lea2"], created_at=now),
                Enrollment(course_id=cb.id, user_id=self.ids["leab"], created_at=now),
            ])

            def lesson(c, week, title):
                opens = datetime.combine(STARTS + timedelta(days=7 * (week - 1)), datetime.min.time(), tzinfo=KST)
                row = Lesson(course_id=c.id, week=week, title=title, kind="video", duration_seconds=1500,
                             opens_at=opens, attendance_deadline=opens + timedelta(days=14), created_at=now)
                db.session.add(row)
                db.session.flush()
                return row

            la1 = lesson(ca, 1, LESSON_TITLE)
            la2 = lesson(ca, 2, "2주차: 관계형 모델")
            lb1 = lesson(cb, 1, "다른 과정 1주차")
            self.course_a, self.course_b = ca.id, cb.id
            self.section_a1, self.section_a2 = sa1.id, sa2.id
            self.lesson_a1, self.lesson_a2 = la1.id, la2.id

            def view(learner, les, c, start, ip):
                v = LessonView(learner_id=self.ids[learner], lesson_id=les.id, course_id=c.id, started_at=start,
                               ended_at=start + timedelta(minutes=25), end_reason="ended", ip=ip, device="dev-1",
                               credited_seconds=1500.0, last_heartbeat_at=start + timedelta(minutes=25))
                db.session.add(v)
                db.session.flush()
                for n, kind in enumerate(("start", "heartbeat", "heartbeat", "end")):
                    db.session.add(ViewEvent(view_id=v.id, learner_id=v.learner_id, lesson_id=les.id,
                                             course_id=c.id, at=start + timedelta(minutes=8 * n), kind=kind, ip=ip,
                                             device="dev-1", claimed=[[0, 10]] if kind == "heartbeat" else None,
                                             credited=[[0, 10]] if kind == "heartbeat" else None,
                                             credited_seconds=10.0 if kind == "heartbeat" else None,
                                             detail="정상 시청" if kind == "end" else None))
                return v.id

            self.views = {
                "lea1-w1": view("lea1", la1, ca, WEEK1 + timedelta(days=1, hours=20), "10.1.2.3"),
                "lea1-w2": view("lea1", la2, ca, WEEK2 + timedelta(days=2, hours=21), "10.1.9.9"),
                "lea2-w1": view("lea2", la1, ca, WEEK1 + timedelta(days=3, hours=9), "192.168.0.7"),
                "leab-w1": view("leab", lb1, cb, WEEK1 + timedelta(days=1, hours=20), "10.1.2.3"),
            }
            ea = Exam(course_id=ca.id, title="중간고사", kind="midterm", opens_at=WEEK2, closes_at=WEEK2 + timedelta(days=3),
                      duration_minutes=60, items_per_difficulty={"easy": 1}, status="announced", created_at=now)
            eb = Exam(course_id=cb.id, title="다른 시험", kind="midterm", opens_at=WEEK2,
                      closes_at=WEEK2 + timedelta(days=3), duration_minutes=60, items_per_difficulty={"easy": 1},
                      status="announced", created_at=now)
            db.session.add_all([ea, eb])
            db.session.flush()
            self.exam_a, self.exam_b = ea.id, eb.id
            t = WEEK2 + timedelta(hours=10)
            for n, (kind, answer) in enumerate((("started", None), ("answer", "관계형 데이터베이스"),
                                                ("incident", None), ("submitted", None))):
                db.session.add(AttemptEvent(attempt_id=1, exam_id=ea.id, learner_id=self.ids["lea1"],
                                            at=t + timedelta(minutes=n), kind=kind, ip="10.1.2.3", answer=answer,
                                            detail="전체 화면 종료" if kind == "incident" else None))
            db.session.add(AttemptEvent(attempt_id=2, exam_id=eb.id, learner_id=self.ids["leab"], at=t,
                                        kind="started", ip="10.1.2.3"))
            # Access rows: lea1 every 5 hours from week 1 on (some with the course), the
            # staff, and B's learner.
            rows = []
            for n in range(ACCESS_ROWS):
                at = WEEK1 + timedelta(hours=5 * n + 1) if n < 30 else WEEK2 + timedelta(hours=5 * (n - 30) + 1)
                rows.append(AccessLog(at=at.astimezone(timezone.utc), user_id=self.ids["lea1"], username="lea1",
                                      role="learner", event="request", ip="10.1.2.3" if n % 2 else "10.1.9.9",
                                      method="GET", path=f"/courses/{ca.id}/lessons", course_id=ca.id if n % 3 else None,
                                      detail="강의 목록" if n == 0 else None))
            for name, role in (("prof", "instructor"), ("ta1", "ta"), ("lea2", "learner")):
                rows.append(AccessLog(at=WEEK1 + timedelta(days=2), user_id=self.ids[name], username=name, role=role,
                                      event="login", ip="172.16.0.1"))
            rows.append(AccessLog(at=WEEK1 + timedelta(days=2), user_id=self.ids["leab"], username="leab",
                                  role="learner", event="login", ip="10.1.2.3"))
            # Two rows at the same instant: the keyset order breaks the tie by id.
            same = WEEK1 + timedelta(days=3)
            rows += [AccessLog(at=same, user_id=self.ids["lea2"], username="lea2", role="learner", event="request",
                               ip="192.168.0.7") for _ in range(2)]
            db.session.add_all(rows)
            db.session.commit()
            db.session.remove()

    def token(self, client, name: str) -> str:
        return self.users.login(client, name)
