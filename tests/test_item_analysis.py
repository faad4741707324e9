"""Item analysis (EXM-5) on a constructed set of attempts: correct rates, discrimination
(top vs bottom 27%), times drawn and answered, flagging exactly at the configurable bounds,
quizzes skipped, the after-close job running it, recomputation; the bank's replacement
report; access and the pages."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import assert_api_error, set_clock
from exam_world import CLOSES, OPENS, T0, ExamWorld, item_body
from test_board import web_login

pytestmark = pytest.mark.usefixtures("app")

AFTER = CLOSES + timedelta(minutes=5)
N = 10  # learners; the groups are round(10 × 27%) = 3 each: learners 0–2 and 7–9
# Which learners answer each item right (learner i's total rises with i: item F decides it).
RIGHT = {
    "A": set(range(5, 10)),  # 50%, discrimination 1 − 0 = 1.0
    "B": set(range(10)),  # 100%: too easy; discrimination 0
    "C": {0, 1, 9},  # 30%, discrimination 1/3 − 2/3 < 0: does not discriminate
    "D": set(),  # 0%: too hard
    "G": set(range(1, 10)),  # exactly 90% (the upper bound), discrimination 1 − 2/3
    "H": {7, 8},  # exactly 20% (the lower bound), discrimination 2/3 − 0
}
BLANK = {"D": {0, 1, 2, 3}}  # left unanswered


@pytest.fixture
def w(app, client, users):
    return ExamWorld(app, client, users, learners=())


def add_item(w: ExamWorld, **over) -> int:
    body = {**item_body("easy"), **over}
    r = w.client.post(f"/api/v1/courses/{w.cid}/items", json=body, headers=w.ah())
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def construct(app, w: ExamWorld, exam_id: int, items: dict[str, int], *, unsubmitted: int = 1) -> None:
    """N submitted attempts (learner i gets item F's 1000 points × i/9, so totals rise with
    i) answering as RIGHT says, and ``unsubmitted`` attempts that are left out."""
    from lms.db import db
    from lms.exams.models import Attempt, AttemptItem, ItemVersion

    names = [f"an{i}" for i in range(N + unsubmitted)]
    uids = [w.users.create(n) for n in names]
    with app.app_context():
        versions = {iid: db.session.scalar(select(ItemVersion).where(ItemVersion.item_id == iid)) for iid in items.values()}
        for i, uid in enumerate(uids):
            start = OPENS + timedelta(minutes=i)
            a = Attempt(exam_id=exam_id, learner_id=uid, started_at=start, deadline=start + timedelta(minutes=60),
                        submitted_at=start + timedelta(minutes=30) if i < N else None,
                        submit_reason="learner" if i < N else None, seed=f"seed{i}")
            db.session.add(a)
            db.session.flush()
            for pos, (key, iid) in enumerate(sorted(items.items()), 1):
                v = versions[iid]
                if key == "F":
                    awarded, answer = v.points * i / 9, 0
                else:
                    right = i in RIGHT[key]
                    awarded = v.points if right else 0.0
                    answer = None if i in BLANK.get(key, ()) else (v.answer if right else (v.answer + 1) % 4)
                db.session.add(AttemptItem(attempt_id=a.id, item_id=iid, item_version_id=v.id, position=pos,
                                           answer=answer, awarded=awarded if i < N else None))
        db.session.commit()
        db.session.remove()


def bank_items(w: ExamWorld) -> dict[str, int]:
    easy, medium, hard = (w.item_ids[lv] for lv in ("easy", "medium", "hard"))
    return {"A": easy[0], "B": easy[1], "C": medium[0], "D": medium[1], "G": hard[0], "H": hard[1]}


def analysis_rows(app, exam_id: int) -> dict[int, object]:
    from lms.db import db
    from lms.exams.models import ItemAnalysis

    with app.app_context():
        rows = {r.item_id: r for r in db.session.scalars(select(ItemAnalysis).where(ItemAnalysis.exam_id == exam_id))}
        for r in rows.values():
            db.session.expunge(r)
        db.session.remove()
    return rows


def test_rates_discrimination_and_flags_at_the_bounds(w, app):
    items = {**bank_items(w), "F": add_item(w, points=1000)}
    exam = w.exam()
    construct(app, w, exam["id"], items)
    set_clock(app, AFTER)
    with app.app_context():
        from lms.exams.analysis import analyse_exam

        assert analyse_exam(exam["id"]) == 7
    rows = analysis_rows(app, exam["id"])
    by = {k: rows[iid] for k, iid in items.items()}
    assert all(r.drawn == N for r in by.values())  # the unsubmitted attempt is left out
    assert by["D"].answered == N - 4 and by["A"].answered == N
    assert by["A"].correct_rate == 0.5 and by["A"].discrimination == 1.0 and not by["A"].flagged
    assert by["B"].correct_rate == 1.0 and by["B"].discrimination == 0.0 and by["B"].flagged
    assert "above 90%" in by["B"].flag_reason and "discrimination" in by["B"].flag_reason
    assert by["C"].correct_rate == 0.3 and by["C"].discrimination == pytest.approx(-1 / 3, abs=1e-6)
    assert by["C"].flagged and by["C"].flag_reason.startswith("discrimination")
    assert by["D"].correct_rate == 0.0 and by["D"].flagged and "below 20%" in by["D"].flag_reason
    # Exactly at the bounds: not flagged.
    assert by["G"].correct_rate == 0.9 and by["G"].discrimination == pytest.approx(1 / 3, abs=1e-6)
    assert by["H"].correct_rate == 0.2 and by["H"].discrimination == pytest.approx(2 / 3, abs=1e-6)
    assert not by["G"].flagged and not by["H"].flagged
    assert by["F"].correct_rate == pytest.approx(0.5) and by["F"].discrimination == pytest.approx(7 / 9, abs=1e-6)


def test_bounds_are_configurable_and_recomputing_replaces_the_rows(w, app, monkeypatch):
    items = {**bank_items(w), "F": add_item(w, points=1000)}
    exam = w.exam()
    construct(app, w, exam["id"], items)
    set_clock(app, AFTER)
    from lms.exams.analysis import analyse_exam

    with app.app_context():
        analyse_exam(exam["id"])
    first = analysis_rows(app, exam["id"])
    monkeypatch.setitem(app.config, "EXAM_ITEM_MAX_RATE", 0.89)
    monkeypatch.setitem(app.config, "EXAM_ITEM_MIN_RATE", 0.21)
    monkeypatch.setitem(app.config, "EXAM_ITEM_MIN_DISCRIMINATION", 0.34)
    with app.app_context():
        analyse_exam(exam["id"])
    again = analysis_rows(app, exam["id"])
    assert {k: r.id for k, r in again.items()} == {k: r.id for k, r in first.items()}  # updated in place
    g, h = again[items["G"]], again[items["H"]]
    assert g.flagged and "above 89%" in g.flag_reason and "discrimination 0.33 below 0.34" in g.flag_reason
    assert h.flagged and "below 21%" in h.flag_reason
    assert not again[items["A"]].flagged


def test_quizzes_are_skipped_and_the_after_close_job_runs_the_analysis(w, app):
    items = {**bank_items(w), "F": add_item(w, points=1000)}
    exam = w.exam()
    quiz = w.exam(title="퀴즈", kind="quiz")
    construct(app, w, exam["id"], items)
    from lms.db import db
    from lms.exams.models import Attempt, AttemptItem, Exam

    with app.app_context():  # the same answers in the quiz
        for a in db.session.scalars(select(Attempt).where(Attempt.exam_id == exam["id"])).all():
            q = Attempt(exam_id=quiz["id"], learner_id=a.learner_id, started_at=a.started_at, deadline=a.deadline,
                        submitted_at=a.submitted_at, seed=a.seed)
            db.session.add(q)
            db.session.flush()
            for ai in db.session.scalars(select(AttemptItem).where(AttemptItem.attempt_id == a.id)).all():
                db.session.add(AttemptItem(attempt_id=q.id, item_id=ai.item_id, item_version_id=ai.item_version_id,
                                           position=ai.position, answer=ai.answer, awarded=ai.awarded))
        db.session.commit()
        db.session.remove()
    set_clock(app, CLOSES - timedelta(seconds=5))
    with app.app_context():
        from lms.exams.analysis import analyse_exam
        from lms.exams.jobs import process_closed_exams

        assert process_closed_exams() == 0  # still open
        assert analyse_exam(quiz["id"]) == 0
        set_clock(app, AFTER)
        assert process_closed_exams() == 2
        assert db.session.get(Exam, exam["id"]).processed_at is not None
        db.session.remove()
    assert len(analysis_rows(app, exam["id"])) == 7
    assert analysis_rows(app, quiz["id"]) == {}


def test_api_and_access(w, app, users):
    items = {**bank_items(w), "F": add_item(w, points=1000)}
    exam = w.exam()
    construct(app, w, exam["id"], items)
    users.create("ta1", "ta")
    users.create("insp", "inspector")
    from exam_world import users_id

    assert w.client.post(f"/api/v1/courses/{w.cid}/staff", json={"user_id": users_id(app, "ta1"), "role": "ta"},
                         headers=w.ah()).status_code == 201
    w.tokens.update(ta1=users.login(w.client, "ta1"), insp=users.login(w.client, "insp"),
                    an0=users.login(w.client, "an0"))
    prof = {"Authorization": f"Bearer {w.prof}"}
    # Before the close: nothing yet, and no recomputation.
    r = w.client.get(f"/api/v1/exams/{exam['id']}/item-analysis", headers=prof)
    assert r.status_code == 200 and r.get_json()["items"] == [] and r.get_json()["closed"] is False
    assert_api_error(w.client.post(f"/api/v1/exams/{exam['id']}/item-analysis", headers=prof), 409, "exam_not_closed")
    w.goto(AFTER)
    prof = {"Authorization": f"Bearer {w.prof}"}
    r = w.client.post(f"/api/v1/exams/{exam['id']}/item-analysis", headers=prof)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["flagged"] == 3 and [x["flagged"] for x in body["items"]][:3] == [True] * 3  # flagged first
    assert body["bounds"] == {"min_rate": 0.2, "max_rate": 0.9, "min_discrimination": 0.1}
    b = next(x for x in body["items"] if x["item_id"] == items["B"])
    assert b["drawn"] == N and b["correct_rate"] == 1.0 and b["active"] is True and b["replaced_by"] is None
    for name in ("ta1", "insp"):
        assert w.client.get(f"/api/v1/exams/{exam['id']}/item-analysis", headers=w.h(name)).status_code == 200
        assert_api_error(w.client.post(f"/api/v1/exams/{exam['id']}/item-analysis", headers=w.h(name)),
                         403, "forbidden")
    assert_api_error(w.client.get(f"/api/v1/exams/{exam['id']}/item-analysis", headers=w.h("an0")), 403, "forbidden")
    quiz = w.client.post(f"/api/v1/courses/{w.cid}/exams", headers=w.ah(), json={
        "title": "퀴즈", "kind": "quiz", "opens_at": (AFTER + timedelta(days=15)).isoformat(),
        "closes_at": (AFTER + timedelta(days=16)).isoformat(), "duration_minutes": 30,
        "items_per_difficulty": {"easy": 1, "medium": 1, "hard": 1}}).get_json()
    assert_api_error(w.client.post(f"/api/v1/exams/{quiz['id']}/item-analysis", headers=prof), 409,
                     "not_a_regular_exam")

    # The page: flagged items highlighted, with a link to replace them in the bank.
    page = app.test_client()
    web_login(page, users, "prof")
    html = page.get(f"/exams/{exam['id']}/item-analysis").get_data(as_text=True)
    assert f'data-item-id="{items["B"]}" data-flagged="true" class="flagged at-risk"' in html
    assert f'/courses/{w.cid}/items/{items["B"]}' in html and "교체하기" in html
    assert f'data-item-id="{items["A"]}" data-flagged="false"' in html
    html = page.get(f"/courses/{w.cid}/item-analysis").get_data(as_text=True)
    assert f'data-exam-id="{exam["id"]}"' in html and "문항 은행 교체 현황" in html


# --- the bank's replacement report ---------------------------------------------------------------

def test_bank_report_counts_replacements_since_the_last_term(w, app):
    prof = {"Authorization": f"Bearer {w.prof}"}
    easy, hard = w.item_ids["easy"], w.item_ids["hard"]
    # Without a previous course of the same code the period starts with this course
    # (2027-03-02 00:00 KST); the bank was filled at T0 (08:59 KST), after that.
    r = w.client.get(f"/api/v1/courses/{w.cid}/bank-report", headers=prof)
    body = r.get_json()
    assert r.status_code == 200 and body["basis"] == "course_start"
    assert body["since"] == "2027-03-02T00:00:00+09:00"
    assert body["total"]["at_start"] == 0 and body["total"]["added"] == 18 and body["total"]["replaced_share"] is None
    # A week later: two easy items are replaced, a hard one retired.
    w.goto(T0 + timedelta(days=7))
    prof = {"Authorization": f"Bearer {w.prof}"}
    for iid in easy[:2]:
        r = w.client.post(f"/api/v1/items/{iid}/replace", json=item_body("easy", n=9), headers=prof)
        assert r.status_code in (200, 201), r.get_json()
    assert w.client.post(f"/api/v1/items/{hard[0]}/retire", headers=prof).status_code == 200
    r = w.client.get(f"/api/v1/courses/{w.cid}/bank-report?since=2027-03-05", headers=prof)
    body = r.get_json()
    assert body["basis"] == "given" and body["since"] == "2027-03-05T00:00:00+09:00"
    levels = {x["difficulty"]: x for x in body["levels"]}
    assert levels["easy"] == {"difficulty": "easy", "at_start": 6, "retired": 2, "replaced": 2, "replacements": 2,
                              "added": 2, "at_end": 6, "replaced_share": round(2 / 6, 4)}
    assert levels["hard"]["retired"] == 1 and levels["hard"]["replacements"] == 0 and levels["hard"]["at_end"] == 5
    assert levels["medium"]["replaced_share"] == 0.0
    assert body["total"]["at_start"] == 18 and body["total"]["replaced"] == 3
    # A period that ended before the replacements: nothing replaced.
    r = w.client.get(f"/api/v1/courses/{w.cid}/bank-report?since=2027-03-05&until=2027-03-08", headers=prof)
    assert r.get_json()["total"]["replaced"] == 0 and r.get_json()["until"] == "2027-03-09T00:00:00+09:00"
    # Bad periods are 400.
    for q in ("since=2027-03-10&until=2027-03-05", "since=yesterday", "until=2027-13-01", "since=2027-03-05T00:00",
              "until=9999-12-31", "since=0001-01-01T00:00:00%2B14:00"):
        assert_api_error(w.client.get(f"/api/v1/courses/{w.cid}/bank-report?{q}", headers=prof), 400, "invalid_request")

