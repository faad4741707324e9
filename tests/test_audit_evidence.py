"""The evidence store (REC-1, REC-3): chained rows, daily digests, verification naming the
first broken row, and retention (REC-1, REC-2) with its ledger and PostgreSQL partitions."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, text, update

from conftest import TEST_DB, set_clock

KST = ZoneInfo("Asia/Seoul")
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=KST)  # a Tuesday morning, KST
DAY0 = date(2026, 3, 10)


def _access(n: int, detail: str = "req") -> list[int]:
    from lms.audit.models import AccessLog
    from lms.audit.service import log_access
    from lms.db import db

    for i in range(n):
        log_access("request", username=f"learner{i}", detail=f"{detail} {i} 한글")
    return db.session.scalars(select(AccessLog.id).order_by(AccessLog.id.desc()).limit(n)).all()[::-1]


def _view_event(kind: str = "heartbeat") -> None:
    from lms import clock
    from lms.attendance.models import ViewEvent
    from lms.db import db

    db.session.execute(ViewEvent.__table__.insert(), {
        "view_id": 1, "learner_id": 7, "lesson_id": 3, "course_id": 2, "at": clock.now(), "kind": kind,
        "ip": "10.0.0.7", "claimed": [[0, 30.5]], "credited": [[0, 30.5]], "credited_seconds": 30.5,
        "excess_seconds": 0.0})
    db.session.commit()


def _attempt_event(kind: str = "answer") -> None:
    from lms import clock
    from lms.db import db
    from lms.exams.models import AttemptEvent

    db.session.execute(AttemptEvent.__table__.insert(), {
        "attempt_id": 4, "exam_id": 5, "learner_id": 7, "at": clock.now(), "kind": kind,
        "ip": "10.0.0.7", "answer": {"choice": [2, 1], "text": "답안"}})
    db.session.commit()


def _seal(app, when: datetime) -> dict:
    from lms.audit.chain import seal

    set_clock(app, when)
    return seal()


def _verify(frm: date, to: date):
    from lms.audit.chain import verify

    return verify(frm, to)


@pytest.fixture
def day0(app, ctx):
    """Two KST days of evidence in every table, sealed and closed: day 0 (5 access rows, 2
    view events, 2 attempt events, 1 admin action), day 1 (2 access rows)."""
    from lms.audit.service import record_admin_action
    from lms.db import db

    set_clock(app, T0)
    ids = _access(5)
    _view_event("start")
    _view_event()
    _attempt_event("started")
    _attempt_event()
    record_admin_action("course", 2, "update", before={"title": "옛 제목"}, after={"title": "새 제목"})
    db.session.commit()
    set_clock(app, T0 + timedelta(days=1))
    ids += _access(2, "next day")
    out = _seal(app, T0 + timedelta(days=2, minutes=5))
    assert out["access_log"]["linked"] == 7 and out["view_event"]["linked"] == 2
    return ids


def test_rec1_sealed_chains_and_digests_verify_clean(app, day0):
    """REC-1/REC-3: every row is linked once, every closed day (empty ones too) has a
    digest, and verify recomputes all of it without a break."""
    from lms.audit.models import EvidenceChain, EvidenceDigest
    from lms.db import db

    assert db.session.scalar(select(func.count()).select_from(EvidenceChain)) == 7 + 2 + 2 + 1
    days = db.session.execute(select(EvidenceDigest.tbl, EvidenceDigest.day, EvidenceDigest.row_count)
                              .order_by(EvidenceDigest.tbl, EvidenceDigest.day)).all()
    assert ("access_log", DAY0, 5) in days and ("access_log", DAY0 + timedelta(days=1), 2) in days
    assert ("view_event", DAY0 + timedelta(days=1), 0) in days  # empty day digested too
    report = _verify(DAY0, DAY0 + timedelta(days=1))
    assert report.ok, report.first_break
    by = {t.tbl: t for t in report.tables}
    assert by["access_log"].rows == 7 and by["view_event"].rows == 2 and by["admin_action"].rows == 1
    # sealing again adds nothing
    out = _seal(app, T0 + timedelta(days=2, minutes=10))
    assert all(v["linked"] == 0 and v["closed_days"] == 0 for v in out.values())


def test_rec1_edited_row_is_found_and_the_first_one_named(app, day0):
    from lms.audit.models import AccessLog
    from lms.db import db

    db.session.execute(update(AccessLog).where(AccessLog.id.in_([day0[2], day0[4]])).values(ip="6.6.6.6"))
    db.session.commit()
    report = _verify(DAY0, DAY0 + timedelta(days=1))
    assert not report.ok
    b = report.first_break
    assert (b.tbl, b.row_id, b.reason, b.day) == ("access_log", day0[2], "edited", DAY0)


def test_rec1_edited_json_evidence_in_exam_log_is_found(app, day0):
    from lms.db import db
    from lms.exams.models import AttemptEvent

    first = db.session.scalar(select(func.min(AttemptEvent.id)))
    db.session.execute(update(AttemptEvent).where(AttemptEvent.id == first + 1).values(answer={"choice": [1]}))
    db.session.commit()
    b = _verify(DAY0, DAY0).first_break
    assert (b.tbl, b.row_id, b.reason) == ("attempt_event", first + 1, "edited")


def test_rec1_deleted_row_is_found(app, day0):
    from lms.audit.models import AccessLog
    from lms.db import db

    db.session.execute(delete(AccessLog).where(AccessLog.id == day0[1]))
    db.session.commit()
    b = _verify(DAY0, DAY0).first_break
    assert (b.tbl, b.row_id, b.reason) == ("access_log", day0[1], "deleted")


def test_rec1_row_moved_to_another_day_is_found(app, day0):
    from lms.audit.models import AccessLog
    from lms.db import db

    db.session.execute(update(AccessLog).where(AccessLog.id == day0[3]).values(at=T0 + timedelta(days=1)))
    db.session.commit()
    b = _verify(DAY0, DAY0 + timedelta(days=1)).first_break
    assert (b.tbl, b.row_id, b.day) == ("access_log", day0[3], DAY0)


def test_rec1_inserted_row_is_found_even_when_sealing_runs_again(app, day0):
    """A row dated into a closed day (inserted after sealing) is never linked by later
    sealing runs and verify names it."""
    from lms.audit.models import AccessLog
    from lms.db import db

    db.session.execute(AccessLog.__table__.insert(), {"at": T0 + timedelta(minutes=30), "event": "login",
                                                      "username": "intruder"})
    db.session.commit()
    new_id = db.session.scalar(select(func.max(AccessLog.id)))
    out = _seal(app, T0 + timedelta(days=3))
    assert out["access_log"]["skipped"] == 1
    b = _verify(DAY0, DAY0 + timedelta(days=1)).first_break
    assert (b.tbl, b.row_id, b.reason) == ("access_log", new_id, "inserted")


def test_rec1_rows_not_yet_sealed_are_pending_not_broken(app, ctx):
    set_clock(app, T0)
    _access(3)
    report = _verify(DAY0, DAY0)
    assert report.ok and {t.tbl: t.pending for t in report.tables}["access_log"] == 3
    out = _seal(app, T0 + timedelta(seconds=30))  # younger than the sealing lag: not yet
    assert out["access_log"]["linked"] == 0
    out = _seal(app, T0 + timedelta(seconds=90))
    assert out["access_log"]["linked"] == 3
    report = _verify(DAY0, DAY0)
    assert report.ok and {t.tbl: t.rows for t in report.tables}["access_log"] == 3


def test_rec1_daily_digest_detects_a_dropped_day(app, ctx):
    """Rows, links and digest of a whole middle day removed: the digest series breaks."""
    from lms.audit.models import AccessLog, EvidenceChain, EvidenceDigest
    from lms.db import db

    for d in range(3):
        set_clock(app, T0 + timedelta(days=d))
        _access(2)
    _seal(app, T0 + timedelta(days=4))
    day1 = DAY0 + timedelta(days=1)
    start = datetime(2026, 3, 11, tzinfo=KST)
    db.session.execute(delete(AccessLog).where(AccessLog.at >= start, AccessLog.at < start + timedelta(days=1)))
    db.session.execute(delete(EvidenceChain).where(EvidenceChain.tbl == "access_log", EvidenceChain.day == day1))
    db.session.execute(delete(EvidenceDigest).where(EvidenceDigest.tbl == "access_log", EvidenceDigest.day == day1))
    db.session.commit()
    b = _verify(DAY0, DAY0 + timedelta(days=2)).first_break
    assert (b.tbl, b.day, b.reason) == ("access_log", day1, "missing_digest")


def test_rec1_day_emptied_with_its_links_is_caught_by_the_digest(app, ctx):
    from lms.audit.models import AccessLog, EvidenceChain
    from lms.db import db

    set_clock(app, T0)
    ids = _access(3)
    _seal(app, T0 + timedelta(days=2))
    db.session.execute(delete(AccessLog))
    db.session.execute(delete(EvidenceChain).where(EvidenceChain.tbl == "access_log"))
    db.session.commit()
    b = _verify(DAY0, DAY0).first_break
    assert (b.tbl, b.reason, b.row_id) == ("access_log", "digest_mismatch", ids[-1])


def test_rec1_altered_link_is_found(app, day0):
    from lms.audit.models import EvidenceChain
    from lms.db import db

    db.session.execute(update(EvidenceChain).where(EvidenceChain.tbl == "access_log",
                                                   EvidenceChain.row_id == day0[1]).values(link="0" * 64))
    db.session.commit()
    b = _verify(DAY0, DAY0).first_break
    assert (b.row_id, b.reason) == (day0[1], "link_altered")


def test_rec1_verify_cli_exit_code_and_first_broken_row(app, day0):
    from lms.audit.models import AccessLog
    from lms.db import db

    runner = app.test_cli_runner()
    ok = runner.invoke(args=["lms", "audit", "verify", "--from", "2026-03-10", "--to", "2026-03-11"])
    assert ok.exit_code == 0, ok.output
    assert "access_log: ok" in ok.output
    db.session.execute(update(AccessLog).where(AccessLog.id == day0[0]).values(detail="forged"))
    db.session.commit()
    bad = runner.invoke(args=["lms", "audit", "verify", "--from", "2026-03-10", "--to", "2026-03-11"])
    assert bad.exit_code == 1
    assert f"access_log 2026-03-10 row {day0[0]} [edited]" in bad.output
    wrong = runner.invoke(args=["lms", "audit", "verify", "--from", "2026-13-01"])
    assert wrong.exit_code == 2


def test_admin_action_recorded_in_the_same_transaction(app, ctx):
    """A rolled-back change leaves no admin_action row; a committed one leaves one."""
    from lms.audit.models import AdminAction
    from lms.audit.service import record_admin_action
    from lms.db import db

    set_clock(app, T0)
    record_admin_action("user", 9, "lock", before={"locked": False}, after={"locked": True})
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AdminAction)) == 0
    record_admin_action("user", 9, "lock", before={"locked": False}, after={"locked": True}, detail="사유")
    db.session.commit()
    row = db.session.scalars(select(AdminAction)).one()
    assert (row.entity, row.entity_id, row.action, row.after, row.detail) == ("user", 9, "lock", {"locked": True}, "사유")


# --- retention (REC-1, REC-2) -------------------------------------------------------

R0 = datetime(2021, 3, 10, 12, 0, 0, tzinfo=KST)


def _evidence_at_r0(app, users):
    """Access row at R0, view and attempt events at R0 + 2 s, a learner and the chain."""
    from lms.db import db

    users.create("register1", "learner", name="김학생")
    set_clock(app, R0)
    _access(1)
    set_clock(app, R0 + timedelta(seconds=2))
    _view_event()
    _attempt_event()
    set_clock(app, R0 + timedelta(days=40))
    _access(1, "later")
    _seal(app, R0 + timedelta(days=41))
    db.session.remove()


def _counts():
    from lms.attendance.models import ViewEvent
    from lms.audit.models import AccessLog
    from lms.auth.models import User
    from lms.db import db
    from lms.exams.models import AttemptEvent

    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
            for m in (AccessLog, ViewEvent, AttemptEvent, User)}


def test_rec1_retention_keeps_rows_at_five_years_minus_one_second(app, ctx, users):
    from lms.audit import retention
    from lms.audit.models import RetentionLedger
    from lms.db import db

    _evidence_at_r0(app, users)
    set_clock(app, R0 + (datetime(2026, 3, 10, 12, tzinfo=KST) - R0) - timedelta(seconds=1))
    out = retention.run()
    assert all(t["rows"] == 0 for t in out["tables"])
    assert _counts() == {"access_log": 2, "view_event": 1, "attempt_event": 1, "user_account": 1}
    ledger = db.session.scalars(select(RetentionLedger)).all()
    assert len(ledger) == 3 and all(r.row_count == 0 and r.retention_years == 5 for r in ledger)


def test_rec1_rec2_retention_removes_rows_at_five_years_plus_one_second(app, ctx, users):
    """At 5 years + 1 s after R0 the R0 access row goes; the events 2 s later stay; the
    learner (register, REC-2) stays; the ledger records the period, count and digest."""
    from lms.audit import retention
    from lms.audit.models import AccessLog, RetentionLedger
    from lms.db import db

    _evidence_at_r0(app, users)
    set_clock(app, datetime(2026, 3, 10, 12, 0, 1, tzinfo=KST))
    out = retention.run()
    assert {t["tbl"]: t["rows"] for t in out["tables"]} == {"access_log": 1, "view_event": 0, "attempt_event": 0}
    assert _counts() == {"access_log": 1, "view_event": 1, "attempt_event": 1, "user_account": 1}
    assert db.session.scalar(select(AccessLog.detail)) == "later 0 한글"
    row = db.session.scalars(select(RetentionLedger).where(RetentionLedger.tbl == "access_log")).one()
    assert row.row_count == 1 and timedelta(0) <= row.period_from - R0 < timedelta(seconds=1)
    assert row.period_to == row.period_from
    assert len(row.digest) == 64
    # two seconds later the events go too; the ledger grows by one row per table and run
    set_clock(app, datetime(2026, 3, 10, 12, 0, 3, tzinfo=KST))
    out = retention.run()
    assert {t["tbl"]: t["rows"] for t in out["tables"]} == {"access_log": 0, "view_event": 1, "attempt_event": 1}
    assert _counts() == {"access_log": 1, "view_event": 0, "attempt_event": 0, "user_account": 1}
    assert db.session.scalar(select(func.count()).select_from(RetentionLedger)) == 6
    # the chain still verifies: removed rows are accounted for by the ledger
    from lms.audit.chain import verify

    report = verify(date(2021, 3, 9), date(2021, 4, 20))
    assert report.ok, report.first_break


def test_rec1_retention_dry_run_removes_nothing_and_writes_no_ledger(app, ctx, users):
    from lms.audit import retention
    from lms.audit.models import RetentionLedger
    from lms.db import db

    _evidence_at_r0(app, users)
    set_clock(app, datetime(2026, 6, 1, tzinfo=KST))
    before = _counts()
    out = retention.run(dry_run=True)
    assert out["dry_run"] and {t["tbl"]: t["rows"] for t in out["tables"]} == {
        "access_log": 2, "view_event": 1, "attempt_event": 1}
    assert _counts() == before
    assert db.session.scalar(select(func.count()).select_from(RetentionLedger)) == 0
    runner = app.test_cli_runner()
    res = runner.invoke(args=["lms", "audit", "retention", "--dry-run"])
    assert res.exit_code == 0 and "DRY RUN" in res.output and "access_log: 2 row(s)" in res.output
    assert _counts() == before


def test_rec1_retention_years_only_upward(app):
    from config import load_config
    from lms.audit import rules

    with pytest.raises(ValueError):
        rules.retention_years(4)
    assert rules.retention_years(7) == 7
    now = datetime(2030, 1, 1, tzinfo=KST)
    assert rules.retention_cutoff(now, 7) == datetime(2023, 1, 1, tzinfo=KST)
    assert rules.retention_cutoff(datetime(2028, 2, 29, 9, tzinfo=KST)) == datetime(2023, 2, 28, 9, tzinfo=KST)
    import os

    old = os.environ.get("LMS_RETENTION_YEARS")
    os.environ["LMS_RETENTION_YEARS"] = "4"
    try:
        cfg = load_config("testing")
        with pytest.raises(RuntimeError, match="REC-1"):
            cfg.validate()
    finally:
        if old is None:
            del os.environ["LMS_RETENTION_YEARS"]
        else:
            os.environ["LMS_RETENTION_YEARS"] = old
    with app.app_context():
        app.config["RETENTION_YEARS"] = 3
        try:
            from lms.audit import retention

            with pytest.raises(ValueError):
                retention.run(dry_run=True)
        finally:
            app.config["RETENTION_YEARS"] = 5


def test_rec1_retention_drops_whole_expired_month_partitions(app, ctx):
    """PostgreSQL: an expired month is removed by dropping its partition (rows in the
    straddling month are deleted one by one); SQLite has plain tables and deletes."""
    from lms.audit import partitions, retention
    from lms.audit.models import AccessLog, RetentionLedger
    from lms.db import db

    set_clock(app, datetime(2021, 1, 15, 9, tzinfo=KST))
    created = partitions.ensure_ahead(datetime(2021, 1, 15, tzinfo=KST), months_ahead=2)
    _access(3)  # January 2021
    set_clock(app, datetime(2021, 3, 5, 9, tzinfo=KST))
    _access(2)  # March 2021 (the month straddling the cutoff below)
    _seal(app, datetime(2021, 3, 8, tzinfo=KST))
    set_clock(app, datetime(2026, 3, 5, 9, 0, 1, tzinfo=KST))
    out = retention.run()
    access = {t["tbl"]: t for t in out["tables"]}["access_log"]
    assert access["rows"] == 5
    assert db.session.scalar(select(func.count()).select_from(AccessLog)) == 0
    row = db.session.scalars(select(RetentionLedger).where(RetentionLedger.tbl == "access_log")).one()
    if TEST_DB == "postgresql":
        assert "access_log_p202101" in created
        assert "drop partitions access_log_p202101" in access["method"]
        assert "delete in batches" in access["method"]  # the March rows
        left = partitions.month_partitions("access_log")
        assert date(2021, 1, 1) not in left and date(2021, 3, 1) in left
        assert "evidence_chain_p202101" in out["chain_partitions_dropped"]
        n = db.session.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'evidence_partitions' "
                                   "AND tablename = 'access_log_p202101'"))
        assert n == 0
    else:
        assert created == [] and partitions.month_partitions("access_log") == {}
        assert access["method"] == "delete in batches"
    assert row.row_count == 5 and row.method == access["method"]


def test_partition_created_late_takes_its_rows_from_the_default_partition(app, ctx):
    from lms.audit import partitions
    from lms.audit.models import AccessLog
    from lms.db import db

    set_clock(app, datetime(2027, 5, 20, tzinfo=KST))
    ids = _access(2)
    created = partitions.ensure_ahead(datetime(2027, 5, 1, tzinfo=KST), months_ahead=0)
    assert db.session.scalars(select(AccessLog.id).order_by(AccessLog.id)).all() == ids
    if TEST_DB == "postgresql":
        assert "access_log_p202705" in created
        assert partitions.partition_count("access_log_p202705") == 2
        assert partitions.partition_count("access_log_default") == 0
    else:
        assert created == []


# --- admin actions from the services, and the verification page ------------------------

def test_admin_actions_recorded_by_the_services_with_actor_and_ip(app, client, users, admin_token):
    """Locking a user through the API records who (admin, role), what (user id, lock),
    before/after and the IP in admin_action, committed with the change."""
    from conftest import bearer
    from lms.audit.models import AdminAction
    from lms.db import db

    learner_id = users.create("lockme", "learner")
    r = client.post(f"/api/v1/users/{learner_id}/lock", json={"reason": "비정상 접속"}, headers=bearer(admin_token))
    assert r.status_code == 200, r.get_json()
    with app.app_context():
        rows = db.session.scalars(select(AdminAction).where(AdminAction.entity == "user",
                                                            AdminAction.entity_id == learner_id)).all()
        actions = [(a.action, a.actor_username, a.actor_role) for a in rows]
        assert ("create", None, None) in actions  # created by the test helper, outside a request
        lock = [a for a in rows if a.action == "lock"][0]
        assert (lock.actor_username, lock.actor_role, lock.ip) == ("admin1", "admin", "127.0.0.1")
        assert lock.before == {"locked": False} and lock.after == {"locked": True, "reason": "비정상 접속"}
        db.session.remove()


def test_rec1_verify_page_shows_the_first_broken_row(app, client, users):
    """Admins and inspectors see the verification; learners get 403."""
    import re

    from lms.audit.models import AccessLog
    from lms.db import db

    users.create("auditadmin", "admin", name="감사 관리자")
    users.create("auditlearner", "learner")
    with app.app_context():
        set_clock(app, T0)
        ids = _access(4)
        _seal(app, T0 + timedelta(days=2))
        db.session.remove()

    def web_login(username):
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = client.post("/login", data={"csrf_token": token, "username": username,
                                        "password": users.passwords[username]})
        assert r.status_code == 302
        page = client.get("/login/otp").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/login/otp", data={"csrf_token": token, "code": users.code(username)}).status_code == 302

    web_login("auditlearner")
    assert client.get("/audit/verify").status_code == 403
    client.post("/logout")
    web_login("auditadmin")
    r = client.get("/audit/verify?run=1&from=2026-03-10&to=2026-03-11")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-ok="true"' in html and "모든 체인과 일별 요약이 일치합니다" in html
    with app.app_context():
        db.session.execute(delete(AccessLog).where(AccessLog.id == ids[2]))
        db.session.commit()
        db.session.remove()
    html = client.get("/audit/verify?run=1&from=2026-03-10&to=2026-03-11").get_data(as_text=True)
    assert 'data-ok="false"' in html and f"#{ids[2]}" in html and "삭제" in html
    r = client.get("/audit/verify?run=1&from=2026-01-01&to=2026-03-11")
    assert r.status_code == 400 and "최대 31일" in r.get_data(as_text=True)
    assert client.get("/audit/verify?run=1&from=2026-02-30").status_code == 400


def test_month_partitions_follow_kst_month_boundaries(app, ctx):
    """A row at 23:59:59 KST on the last day of a month belongs to that month's partition,
    one at 00:00:00 KST on the 1st to the next (so dropping a month never takes a row of
    the next one)."""
    from lms.audit import partitions
    from lms.audit.models import AccessLog
    from lms.db import db

    created = partitions.ensure_ahead(datetime(2021, 1, 10, tzinfo=KST), months_ahead=1)
    set_clock(app, datetime(2021, 1, 31, 23, 59, 59, tzinfo=KST))
    _access(1)
    set_clock(app, datetime(2021, 2, 1, 0, 0, 0, tzinfo=KST))
    _access(1)
    assert db.session.scalar(select(func.count()).select_from(AccessLog)) == 2
    if TEST_DB == "postgresql":
        assert {"access_log_p202101", "access_log_p202102"} <= set(created)
        assert partitions.partition_count("access_log_p202101") == 1
        assert partitions.partition_count("access_log_p202102") == 1
        assert partitions.partition_count("access_log_default") == 0
    else:
        assert created == []


def test_rec1_sealing_partitions_and_retention_are_scheduled_jobs(app, ctx):
    """The scheduler runs sealing every minute and partitions/retention daily; each job
    works when the worker calls it."""
    from lms.audit import jobs
    from lms.audit.models import EvidenceChain, RetentionLedger
    from lms.db import db
    from lms.jobs import periodic_jobs

    scheduled = {f: i for f, i in periodic_jobs()}
    assert scheduled[jobs.seal_evidence] == 60
    assert scheduled[jobs.create_partitions] == 86400 and scheduled[jobs.run_retention] == 86400
    set_clock(app, T0)
    _access(2)
    set_clock(app, T0 + timedelta(minutes=2))
    assert jobs.seal_evidence()["access_log"]["linked"] == 2
    assert db.session.scalar(select(func.count()).select_from(EvidenceChain)) == 2
    created = jobs.create_partitions()
    assert (len(created) == 4 * 4) if TEST_DB == "postgresql" else created == []
    jobs.run_retention()
    assert db.session.scalar(select(func.count()).select_from(RetentionLedger)) == 3
