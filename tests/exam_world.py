"""A course with an item bank, enrolled learners and an announced exam, built through the
real API at the testing clock — shared by the exam and proctoring suites."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from conftest import bearer, set_clock
from lms.clock import KST

STARTS = date(2027, 3, 2)
T0 = datetime(2027, 3, 2, 8, 59, tzinfo=KST)  # exams announced here (the clock runs on: 1 min of slack)
OPENS = datetime(2027, 3, 16, 9, 0, tzinfo=KST)  # exactly 14 days after T0
CLOSES = OPENS + timedelta(days=3)  # 4 KST calendar days


def item_body(level: str, kind: str = "single_choice", n: int = 0) -> dict:
    if kind == "single_choice":
        return {"difficulty": level, "kind": kind, "prompt": f"{level} 문항 {n}: 옳은 것은?",
                "choices": ["가", "나", "다", "라"], "answer": n % 4, "points": 2}
    if kind == "multiple_choice":
        return {"difficulty": level, "kind": kind, "prompt": f"{level} 복수 {n}", "choices": ["A", "B", "C", "D"],
                "answer": [0, 2], "points": 3}
    if kind == "short_answer":
        return {"difficulty": level, "kind": kind, "prompt": f"{level} 단답 {n}", "answer": ["서울", "Seoul"],
                "points": 2}
    return {"difficulty": level, "kind": "essay", "prompt": f"{level} 서술 {n}", "model_answer": "모범 답안",
            "rubric": "핵심 개념 3가지 각 5점", "points": 15}


class ExamWorld:
    """Admin, instructor, learners enrolled in a 15-week course whose bank holds
    ``bank`` items per level; ``exam()`` defines an exam (announced at T0 by default)."""

    def __init__(self, app, client, users, *, learners=("lea", "leb"), bank=6, kinds=("single_choice",),
                 now=T0, disability=()):
        self.app, self.client, self.users = app, client, users
        self.now = now
        set_clock(app, now)
        users.create("admin1", "admin", name="관리자")
        self.admin = users.login(client, "admin1")
        users.create("prof", "instructor", name="김교수")
        r = client.post("/api/v1/courses", json={"code": "EXM101", "title": "시험 테스트", "credits": 3,
                                                 "starts_on": STARTS.isoformat(), "weeks": 15, "capacity": 100},
                        headers=self.ah())
        assert r.status_code == 201, r.get_json()
        self.course = r.get_json()
        self.cid = self.course["id"]
        r = client.post(f"/api/v1/courses/{self.cid}/staff", json={"user_id": users_id(app, "prof"),
                                                                   "role": "instructor"}, headers=self.ah())
        assert r.status_code == 201, r.get_json()
        self.prof = users.login(client, "prof")
        self.item_ids: dict[str, list[int]] = {}
        for level in ("easy", "medium", "hard"):
            for n in range(bank):
                kind = kinds[n % len(kinds)]
                r = client.post(f"/api/v1/courses/{self.cid}/items", json=item_body(level, kind, n),
                                headers=self.ah())
                assert r.status_code == 201, r.get_json()
                self.item_ids.setdefault(level, []).append(r.get_json()["id"])
        self.ids: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        for name in learners:
            self.add_learner(name, disability=name in disability)

    def ah(self) -> dict:
        return bearer(self.admin)

    def h(self, name: str) -> dict:
        return bearer(self.tokens[name])

    def add_learner(self, name: str, *, disability: bool = False, enrol: bool = True) -> int:
        uid = self.users.create(name, disability=disability)
        self.ids[name] = uid
        if enrol:
            r = self.client.post(f"/api/v1/courses/{self.cid}/enrollments", json={"user_id": uid},
                                 headers=self.ah())
            assert r.status_code == 201, r.get_json()
        self.tokens[name] = self.users.login(self.client, name)
        return uid

    def exam(self, **over) -> dict:
        body = {"title": "중간고사", "kind": "midterm", "opens_at": OPENS.isoformat(),
                "closes_at": CLOSES.isoformat(), "duration_minutes": 60,
                "items_per_difficulty": {"easy": 2, "medium": 2, "hard": 2}}
        body.update(over)
        set_clock(self.app, self.now)  # the world's "now", not the seconds its setting-up took
        r = self.client.post(f"/api/v1/courses/{self.cid}/exams", json=body, headers=self.ah())
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def goto(self, when: datetime, relogin: bool = True) -> None:
        """Move the testing clock; sessions idle out after 30 minutes of its time, so
        everyone logs in again (the clock is put back after, logins take no test time)."""
        set_clock(self.app, when)
        self.now = when
        if relogin:
            for name in ["admin1", "prof", *self.tokens]:
                self.relogin(name)
            set_clock(self.app, when)

    def relogin(self, name: str) -> None:
        """A fresh session (sessions idle out after 30 minutes of testing-clock time)."""
        if name == "admin1":
            self.admin = self.users.login(self.client, "admin1")
        elif name == "prof":
            self.prof = self.users.login(self.client, "prof")
        else:
            self.tokens[name] = self.users.login(self.client, name)

    def start(self, name: str, exam_id: int, **headers):
        return self.client.post(f"/api/v1/exams/{exam_id}/attempts", json={"otp": self.users.code(name)},
                                headers={**self.h(name), **headers})


def users_id(app, username: str) -> int:
    from sqlalchemy import select

    from lms.auth.models import User
    from lms.db import db

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == username))
        db.session.remove()
    return uid
