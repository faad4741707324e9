"""Proxy-attendance detection and the compliance report over a large course (issue 6,
items 4–5), on a fresh PostgreSQL database.

    .venv/bin/python bench/bench_proxy.py [--learners 800] [--views 120] [--ips 40000]

Generates one course with ``--learners`` learners, each with ``--views`` lesson views spread
over 15 weeks from addresses drawn out of a pool of ``--ips`` (so some different learners
share an address by chance), plus 50 planted overlapping pairs; then times the SQL overlap
search (``shared_views``), the whole proxy report and the compliance report, and prints the
figures (rows, seconds, findings) as one JSON line. Nothing is asserted: the figures go to
docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BenchDatabase, log, machine_info  # noqa: E402


def generate(app, learners: int, views: int, ips: int, seed: int = 7) -> dict:
    from sqlalchemy import insert

    from lms.attendance.models import LessonView
    from lms.auth.models import Institution, User
    from lms.content.models import Course, Lesson
    from lms.db import db
    from lms.enrolment.models import Enrollment

    rnd = random.Random(seed)
    now = datetime(2027, 3, 1, tzinfo=timezone.utc)
    with app.app_context():
        inst = Institution(code="BENCH", name="벤치 기관", created_at=now)
        db.session.add(inst)
        db.session.flush()
        course = Course(institution_id=inst.id, code="PX", title="대리출석 벤치", credits=3,
                        starts_on=date(2027, 3, 2), weeks=15, capacity=800, status="published", created_at=now)
        db.session.add(course)
        db.session.flush()
        lessons = []
        for w in range(1, 16):
            for p in range(2):
                lesson = Lesson(course_id=course.id, week=w, position=p + 1, title=f"{w}-{p}", kind="video",
                                duration_seconds=1500, opens_at=now + timedelta(days=7 * (w - 1)),
                                attendance_deadline=now + timedelta(days=7 * (w - 1) + 14), created_at=now)
                db.session.add(lesson)
                lessons.append(lesson)
        db.session.flush()
        lesson_ids = [l.id for l in lessons]
        db.session.execute(insert(User), [
            {"institution_id": inst.id, "username": f"b{i}", "password_hash": "x", "role": "learner",
             "otp_secret": "x", "created_at": now} for i in range(learners)])
        from sqlalchemy import select

        uids = list(db.session.scalars(select(User.id).where(User.institution_id == inst.id)))
        db.session.execute(insert(Enrollment), [{"course_id": course.id, "user_id": u, "status": "active",
                                                 "created_at": now} for u in uids])
        pool = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(ips)]
        rows = []
        for u in uids:
            for _ in range(views):
                start = now + timedelta(seconds=rnd.randrange(15 * 7 * 86400))
                rows.append({"learner_id": u, "lesson_id": rnd.choice(lesson_ids), "course_id": course.id,
                             "started_at": start, "ended_at": start + timedelta(seconds=rnd.randrange(60, 1800)),
                             "ip": rnd.choice(pool), "device": None, "credited_seconds": 0.0,
                             "suspicious_excess_seconds": 0.0, "position_seconds": 0.0,
                             "played_since_challenge": 0.0})
        for k in range(50):  # planted: two learners, one address, overlapping
            a, b = rnd.sample(uids, 2)
            start = now + timedelta(days=rnd.randrange(100), seconds=k)
            for u, off in ((a, 0), (b, 300)):
                rows.append({"learner_id": u, "lesson_id": lesson_ids[0], "course_id": course.id,
                             "started_at": start + timedelta(seconds=off),
                             "ended_at": start + timedelta(seconds=off + 1200), "ip": f"192.168.{k}.1",
                             "device": None, "credited_seconds": 0.0, "suspicious_excess_seconds": 0.0,
                             "position_seconds": 0.0, "played_since_challenge": 0.0})
        for i in range(0, len(rows), 20000):
            db.session.execute(insert(LessonView), rows[i:i + 20000])
        db.session.commit()
        db.session.execute(__import__("sqlalchemy").text("ANALYZE lesson_view"))
        db.session.commit()
        return {"course_id": course.id, "views": len(rows)}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=800)
    ap.add_argument("--views", type=int, default=120)
    ap.add_argument("--ips", type=int, default=40000)
    args = ap.parse_args()
    with BenchDatabase("proxy") as bdb:
        from lms import create_app

        app = create_app()
        log(f"generating {args.learners} learners × {args.views} views")
        info, gen_s = timed(lambda: generate(app, args.learners, args.views, args.ips))
        from lms.audit import compliance, proxy
        from lms.auth.models import User
        from lms.content.models import Course
        from lms.db import db

        with app.test_request_context():
            course = db.session.get(Course, info["course_id"])
            viewer = User(id=0, role="admin", institution_id=course.institution_id, username="bench")
            shared, s_views = timed(lambda: proxy.shared_views(course))
            rep, s_report = timed(lambda: proxy.report(course, viewer))
            comp, s_comp = timed(lambda: compliance.build(course))
        planted = sum(1 for f in shared if f["value"].startswith("192.168."))
        print(json.dumps({
            "benchmark": "proxy_detection", "database": bdb.version, "machine": machine_info(bdb.version),
            "views": info["views"], "generate_s": round(gen_s, 2),
            "shared_views_s": round(s_views, 3), "shared_view_findings": len(shared), "planted_found": planted,
            "proxy_report_s": round(s_report, 3), "compliance_report_s": round(s_comp, 3),
            "compliance_counts": comp["counts"]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
