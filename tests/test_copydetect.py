"""EXM-9 copied-answer detection through the service, the JSON API and the instructor's
page. The exam and its submitted attempts are inserted directly with the models (the
exam/attempt API is not what is under test here)."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conftest import assert_api_error, bearer

COURSE = {"code": "CB-EXM9", "title": "사회복지실천론", "credits": 3, "starts_on": "2027-03-02",
          "weeks": 15, "capacity": 100}
PROMPT = "사례관리의 의의와 과정을 설명하고 지역사회 자원 연계의 중요성을 논하시오."
COPIED = ("사회복지실천에서 사례관리는 복합적인 욕구를 가진 클라이언트에게 필요한 서비스를 연결하고 조정하는 "
          "과정이다. <b>사례관리자</b>는 먼저 클라이언트의 욕구와 강점을 사정하고 & 이를 바탕으로 목표를 세운다. "
          "다음으로 지역사회의 공식적, 비공식적 자원을 찾아 연계하며 서비스 제공 과정을 점검한다.")
COPY = COPIED.replace("사례관리는", "사례 관리는").replace(". ", ".\n").replace("서비스를", "서비스 를")
SENTENCE = "지역 기관과 이웃을 잇는 일은 클라이언트가 스스로 문제를 해결할 수 있는 힘을 기르도록 돕는 핵심 과정이라고 할 수 있다."
N_LEARNERS = 12


def _filler(rng: random.Random, n: int = 70) -> str:
    syl = "가나다라마바사아자차카타파하거너더러머버서어저처커터퍼허고노도로모보소오조초코토포호구누두루무부수우주"
    parts = ["은", "는", "이", "가", "을", "를", "의", "에", ""]
    return " ".join("".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) + rng.choice(parts)
                    for _ in range(n)) + "."


@dataclass
class World:
    course_id: int
    exam_id: int
    essay_item: int
    choice_item: int
    learners: list[int]
    attempts: dict[int, int] = field(default_factory=dict)  # learner index → attempt id
    tokens: dict[str, str] = field(default_factory=dict)


def _insert_exam(app, course_id: int, learner_ids: list[int], *, closed: bool = True) -> dict:
    """An essay item and a single-choice item, an exam, one submitted attempt per learner
    (the last learner's attempt is not submitted)."""
    from lms import clock
    from lms.db import db
    from lms.exams.models import Attempt, AttemptItem, Exam, Item, ItemVersion

    rng = random.Random(9)
    with app.app_context():
        now = clock.now()
        essay = Item(course_id=course_id, current_version=1, difficulty="hard", kind="essay", active=True,
                     created_at=now)
        choice = Item(course_id=course_id, current_version=1, difficulty="easy", kind="single_choice", active=True,
                      created_at=now)
        db.session.add_all([essay, choice])
        db.session.flush()
        v_essay = ItemVersion(item_id=essay.id, version=1, difficulty="hard", kind="essay", prompt=PROMPT,
                              model_answer="모범답안", rubric="채점기준", points=10.0, created_at=now)
        v_choice = ItemVersion(item_id=choice.id, version=1, difficulty="easy", kind="single_choice",
                               prompt="사례관리의 첫 단계는?", choices=["종결", "점검", "사정", "계획"], answer=2,
                               points=2.0, created_at=now)
        closes = now - timedelta(hours=1) if closed else now + timedelta(hours=1)
        exam = Exam(course_id=course_id, title="중간고사", kind="midterm", opens_at=now - timedelta(hours=3),
                    closes_at=closes, duration_minutes=60, items_per_difficulty={"hard": 1, "easy": 1},
                    status="closed" if closed else "announced", created_at=now)
        db.session.add_all([v_essay, v_choice, exam])
        db.session.flush()
        # Essays: 0 ↔ 1 copied (re-spaced); 2 ↔ 3 share one long sentence; the rest independent;
        # the last learner (not submitted) copied too but must be ignored.
        essays = [COPIED, COPY, _filler(rng, 30) + " " + SENTENCE + " " + _filler(rng, 30),
                  _filler(rng, 50) + " " + SENTENCE] + [_filler(rng) for _ in range(len(learner_ids) - 5)] + [COPIED]
        # Single choice (key 2): 0 and 1 chose the rare wrong 3; 4 chose 0; 5 left it blank.
        choices = [3, 3, 2, 2, 0, None] + [2] * (len(learner_ids) - 6)
        attempts = {}
        for i, learner in enumerate(learner_ids):
            submitted = i < len(learner_ids) - 1
            att = Attempt(exam_id=exam.id, learner_id=learner, started_at=now - timedelta(hours=2),
                          deadline=now - timedelta(hours=1), seed=str(i),
                          submitted_at=now - timedelta(hours=1, minutes=5) if submitted else None,
                          submit_reason="learner" if submitted else None)
            db.session.add(att)
            db.session.flush()
            db.session.add_all([
                AttemptItem(attempt_id=att.id, item_id=essay.id, item_version_id=v_essay.id, position=1,
                            answer=essays[i]),
                AttemptItem(attempt_id=att.id, item_id=choice.id, item_version_id=v_choice.id, position=2,
                            choice_order=[3, 2, 1, 0], answer=choices[i]),
            ])
            attempts[i] = att.id
        db.session.commit()
        out = {"exam_id": exam.id, "essay_item": essay.id, "choice_item": choice.id, "attempts": attempts}
        db.session.remove()
        return out


@pytest.fixture
def world(app, client, users, admin_token):
    r = client.post("/api/v1/courses", json=COURSE, headers=bearer(admin_token))
    assert r.status_code == 201, r.get_json()
    course_id = r.get_json()["id"]
    users.create("inst1", "instructor", name="교수")
    users.create("inst2", "instructor", name="다른교수")
    users.create("ta1", "ta", name="조교")
    from lms.auth.models import User
    from lms.db import db

    with app.app_context():
        ids = dict(db.session.execute(select(User.username, User.id)).all())
        db.session.remove()
    for who, role in (("inst1", "instructor"), ("ta1", "ta")):
        r = client.post(f"/api/v1/courses/{course_id}/staff", json={"user_id": ids[who], "role": role},
                        headers=bearer(admin_token))
        assert r.status_code == 201, r.get_json()
    learners = [users.create(f"lrn{i:02d}", "learner") for i in range(N_LEARNERS)]
    made = _insert_exam(app, course_id, learners)
    w = World(course_id=course_id, exam_id=made["exam_id"], essay_item=made["essay_item"],
              choice_item=made["choice_item"], learners=learners, attempts=made["attempts"])
    w.tokens["admin"] = admin_token
    return w


def _token(w: World, users, client, who: str) -> str:
    if who not in w.tokens:
        w.tokens[who] = users.login(client, who)
    return w.tokens[who]


@pytest.fixture
def forget_rq_queue(app):
    """rq lists queues in a server-wide set the per-test cleanup does not reach."""
    yield
    from lms.extensions import redis_client

    with app.app_context():
        redis_client().srem("rq:queues", f"rq:queue:{app.config['RQ_QUEUE']}")


# --- service ---------------------------------------------------------------------------------

def test_exm9_run_ranks_the_copied_pair_first_with_passages(app, world):
    from lms.proctoring.copydetect import latest_report, run_copy_detection
    from lms.proctoring.similarity import normalize as norm

    w = world
    with app.app_context():
        summary = run_copy_detection(w.exam_id)
        report = latest_report(w.exam_id)
    assert summary["status"] == "done" and summary["items"] == 2
    assert summary["answers"] == 2 * (N_LEARNERS - 1) - 1  # unsubmitted attempt out, one blank choice
    assert report["run"]["id"] == summary["run_id"] and report["run"]["status"] == "done"
    pairs = report["pairs"]
    text = [p for p in pairs if p["kind"] == "text"]
    # The whole copy first, then the shared sentence; the unsubmitted copy is not there.
    assert [(p["attempt_a"], p["attempt_b"]) for p in text] == [(w.attempts[0], w.attempts[1]),
                                                                (w.attempts[2], w.attempts[3])]
    first = pairs[0]
    assert first["rank"] == 1 and first["kind"] == "text" and first["score"] >= 0.7
    assert first["learner_a"]["username"] == "lrn00" and first["learner_b"]["username"] == "lrn01"
    assert first["answer_a"] == COPIED and first["answer_b"] == COPY
    assert first["prompt"].startswith("사례관리의 의의")
    marked_a = "".join(COPIED[s:e] for s, e in first["passages"]["a"])
    marked_b = "".join(COPY[s:e] for s, e in first["passages"]["b"])
    assert norm(marked_a) == norm(marked_b) and len(norm(marked_a)) >= 0.9 * len(norm(COPIED))
    second = text[1]
    (sa, ea), = second["passages"]["a"]
    (sb, eb), = second["passages"]["b"]
    assert norm(SENTENCE) in norm(second["answer_a"][sa:ea])
    assert norm(second["answer_a"][sa:ea]) == norm(second["answer_b"][sb:eb])
    # Identical rare wrong answer to the choice item: learners 0 and 1, after the text pairs.
    obj = [p for p in pairs if p["kind"] == "objective_wrong"]
    assert [(p["attempt_a"], p["attempt_b"], p["item_id"]) for p in obj] == [
        (w.attempts[0], w.attempts[1], w.choice_item)]
    assert obj[0]["detail"]["value"] == 3 and obj[0]["detail"]["value_text"] == ["계획"]
    assert obj[0]["detail"]["chosen_by"] == 2 and obj[0]["detail"]["answered"] == N_LEARNERS - 2
    assert obj[0]["rank"] == 3


def test_exm9_rerun_makes_a_new_run_and_keeps_the_old(app, world):
    from lms.db import db
    from lms.proctoring.copydetect import latest_report, run_copy_detection
    from lms.proctoring.models import SimilarityRun, SimilarPair

    with app.app_context():
        one = run_copy_detection(world.exam_id)
        two = run_copy_detection(world.exam_id)
        assert two["run_id"] > one["run_id"]
        runs = db.session.scalars(select(SimilarityRun).order_by(SimilarityRun.id)).all()
        assert [r.status for r in runs] == ["done", "done"] and all(r.finished_at for r in runs)
        per_run = dict(db.session.execute(select(SimilarPair.run_id, func.count()).group_by(SimilarPair.run_id)).all())
        assert per_run[one["run_id"]] == per_run[two["run_id"]] == 3
        assert latest_report(world.exam_id)["run"]["id"] == two["run_id"]
        db.session.remove()


def test_exm9_failed_run_is_recorded_with_its_error(app, world, monkeypatch):
    from lms.db import db
    from lms.proctoring import similarity
    from lms.proctoring.copydetect import latest_report, run_copy_detection
    from lms.proctoring.models import SimilarityRun, SimilarPair

    def boom(*a, **kw):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(similarity, "find_copied_texts", boom)
    with app.app_context():
        with pytest.raises(RuntimeError):
            run_copy_detection(world.exam_id)
        run = db.session.scalar(select(SimilarityRun))
        assert run.status == "failed" and "simulated failure" in run.error and run.finished_at is not None
        assert db.session.scalar(select(func.count()).select_from(SimilarPair)) == 0  # nothing half-written
        report = latest_report(world.exam_id)
        assert report["run"] is None and report["latest_run"]["status"] == "failed" and report["pairs"] == []
        db.session.remove()


def test_exm9_copy_detection_job_takes_a_plain_int(app, world):
    from lms.proctoring.copydetect import copy_detection_job, latest_report

    with app.app_context():
        summary = copy_detection_job(world.exam_id)
        assert summary["text_pairs"] == 2 and summary["objective_pairs"] == 1
        assert latest_report(world.exam_id)["total"] == 3


# --- JSON API --------------------------------------------------------------------------------

def test_exm9_api_report_access(app, client, users, world):
    w = world
    url = f"/api/v1/exams/{w.exam_id}/similarity"
    r = client.get(url, headers=bearer(_token(w, users, client, "inst1")))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["run"] is None and r.get_json()["pairs"] == []
    assert client.get(url, headers=bearer(w.tokens["admin"])).status_code == 200
    for who in ("inst2", "ta1", "lrn00"):
        assert_api_error(client.get(url, headers=bearer(_token(w, users, client, who))), 403, "forbidden")
    assert_api_error(client.get("/api/v1/exams/999999/similarity", headers=bearer(w.tokens["admin"])), 404,
                     "not_found")
    assert_api_error(client.get(url), 401, "unauthorized")
    assert_api_error(client.get(url + "?limit=0", headers=bearer(w.tokens["admin"])), 400, "invalid_request")


def test_exm9_api_sync_run_for_admins_and_report(app, client, users, world):
    w = world
    run_url = f"/api/v1/exams/{w.exam_id}/similarity/run"
    inst = _token(w, users, client, "inst1")
    assert_api_error(client.post(run_url + "?sync=1", headers=bearer(inst)), 403, "forbidden")
    r = client.post(run_url + "?sync=1", headers=bearer(w.tokens["admin"]))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "done" and body["text_pairs"] == 2 and body["objective_pairs"] == 1
    r = client.get(f"/api/v1/exams/{w.exam_id}/similarity?limit=2", headers=bearer(inst))
    report = r.get_json()
    assert report["run"]["id"] == body["run_id"] and report["total"] == 3 and len(report["pairs"]) == 2
    top = report["pairs"][0]
    assert (top["learner_a"]["username"], top["learner_b"]["username"]) == ("lrn00", "lrn01")
    assert top["passages"]["a"] and top["passages"]["b"] and top["detail"]["jaccard"] >= 0.5
    for who in ("inst2", "lrn00"):
        assert_api_error(client.post(run_url, headers=bearer(_token(w, users, client, who))), 403, "forbidden")
    assert_api_error(client.post("/api/v1/exams/999999/similarity/run", headers=bearer(w.tokens["admin"])), 404,
                     "not_found")
    assert_api_error(client.post(run_url + "?sync=maybe", headers=bearer(w.tokens["admin"])), 400,
                     "invalid_request")


def test_exm9_api_run_is_queued_for_the_worker(app, client, users, world, forget_rq_queue):
    from rq import Queue

    from lms.extensions import redis_client
    from lms.proctoring.copydetect import copy_detection_job, latest_report

    w = world
    r = client.post(f"/api/v1/exams/{w.exam_id}/similarity/run", headers=bearer(_token(w, users, client, "inst1")))
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["queued"] is True and body["exam_id"] == w.exam_id
    with app.app_context():
        q = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        job = q.fetch_job(body["job_id"])
        assert job.func_name == "lms.proctoring.copydetect.copy_detection_job" and job.args == (w.exam_id,)
        # What the worker does with it (inside an app context).
        copy_detection_job(*job.args)
        assert latest_report(w.exam_id)["total"] == 3


def test_exm9_run_refused_while_the_exam_is_open(app, client, users, world):
    w = world
    other = [users.create(f"late{i}", "learner") for i in range(3)]
    made = _insert_exam(app, w.course_id, other, closed=False)
    r = client.post(f"/api/v1/exams/{made['exam_id']}/similarity/run", headers=bearer(w.tokens["admin"]))
    assert_api_error(r, 409, "exam_not_closed")


# --- page ------------------------------------------------------------------------------------

def _csrf(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, "no csrf_token on the page"
    return m.group(1)


def _web_login(client, users, username):
    page = client.get("/login")
    r = client.post("/login", data={"csrf_token": _csrf(page), "username": username,
                                    "password": users.passwords[username]})
    assert r.status_code == 302
    page = client.get("/login/otp")
    r = client.post("/login/otp", data={"csrf_token": _csrf(page), "code": users.code(username)})
    assert r.status_code == 302


def test_exm9_page_shows_pairs_side_by_side_marked_and_escaped(app, users, world, forget_rq_queue):
    from lms.proctoring.copydetect import run_copy_detection

    w = world
    web = app.test_client()
    _web_login(web, users, "inst1")
    page = web.get(f"/exams/{w.exam_id}/similarity")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "복사 답안 검사" in html and 'data-testid="no-run"' in html

    with app.app_context():
        run_copy_detection(w.exam_id)
    html = web.get(f"/exams/{w.exam_id}/similarity").get_data(as_text=True)
    first = re.search(r'<article class="pair" data-pair-id="\d+" data-rank="1" data-kind="text">(.*?)</article>',
                      html, re.S)
    assert first, html
    block = first.group(1)
    assert "lrn00" in block and "lrn01" in block
    a = re.search(r'<td data-side="a">(.*?)</td>', block, re.S).group(1)
    b = re.search(r'<td data-side="b">(.*?)</td>', block, re.S).group(1)
    assert "<mark>" in a and "<mark>" in b
    # Answer text is escaped; the only markup is <mark> and the line breaks.
    assert "&lt;b&gt;사례관리자&lt;/b&gt;" in a and "<b>" not in html.split('data-testid="text-pairs"')[1]
    assert "&amp;" in a
    assert set(re.findall(r"<(/?\w+)", a + b)) <= {"mark", "/mark", "br"}
    assert "<br>" in b  # the copy's line breaks are kept
    assert 'data-kind="objective_wrong"' in html and "계획" in html

    # "Run again" queues a job and comes back to the page.
    r = web.post(f"/exams/{w.exam_id}/similarity/run", data={"csrf_token": _csrf(web.get(
        f"/exams/{w.exam_id}/similarity"))})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/exams/{w.exam_id}/similarity")
    # Without the CSRF token the form is refused.
    assert web.post(f"/exams/{w.exam_id}/similarity/run").status_code in (400, 403)


def test_exm9_page_access(app, users, world):
    w = world
    learner = app.test_client()
    _web_login(learner, users, "lrn00")
    r = learner.get(f"/exams/{w.exam_id}/similarity")
    assert r.status_code == 403 and "text/html" in r.content_type
    other = app.test_client()
    _web_login(other, users, "inst2")
    assert other.get(f"/exams/{w.exam_id}/similarity").status_code == 403
    assert other.get("/exams/999999/similarity").status_code == 404
    anonymous = app.test_client()
    r = anonymous.get(f"/exams/{w.exam_id}/similarity")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
