"""Copied-answer detection (EXM-9): the service around ``lms.proctoring.similarity``.

``run_copy_detection(exam_id)`` reads the answers of the exam's submitted attempts item by
item (one streamed query, ordered by item), lets the pure functions find suspicious pairs —
text answers (short answers and essays) by shingle similarity, identical wrong answers to
objective items (and short answers too short to compare as text) by rarity — and stores a
``SimilarityRun`` with its ``SimilarPair`` rows. The run row is committed first as
*running*; pairs and the *done* status are written in one transaction, or the run ends
*failed* with the error. A rerun makes a new run; earlier runs stay.

``latest_report(exam_id)`` is what instructors read: the latest *done* run's pairs, text
pairs first (score, highest first), then identical wrong answers (learner pairs sharing more
such items first, then rarity), with usernames, the item's prompt, both answers and the
passages to highlight. ``copy_detection_job`` is the RQ entry point (plain int argument).
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from itertools import groupby

from sqlalchemy import insert, select

from lms import clock
from lms.auth.models import User
from lms.content.service import course_for_manager
from lms.db import db
from lms.errors import ApiError, not_found
from lms.exams.models import Attempt, AttemptItem, Exam, ItemVersion
from lms.proctoring import similarity
from lms.proctoring.models import SimilarityRun, SimilarPair

log = logging.getLogger(__name__)

STAFF = ("instructor",)  # besides the institution's admins, who reads and runs the detection
TEXT_KINDS = ("short_answer", "essay")
CHOICE_KINDS = ("single_choice", "multiple_choice")
TEXT, OBJECTIVE = "text", "objective_wrong"
PROMPT_SNIPPET = 120
STREAM_ROWS = 1000
INSERT_CHUNK = 1000


# --- access ----------------------------------------------------------------------------------

def exam_for_manager(exam_id: int, user: User) -> Exam:
    """The exam for its course's instructors and the institution's admins: 404 for an
    unknown exam (or one of another institution), 403 for anyone else."""
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise not_found("exam")
    try:
        course_for_manager(exam.course_id, user, staff=STAFF)
    except ApiError as exc:
        if exc.status == 404:
            raise not_found("exam") from exc
        raise
    return exam


def exam_closed(exam: Exam, now=None) -> bool:
    """Detection compares final answers: only once the exam's window has closed."""
    now = now or clock.now()
    return exam.status == "closed" or exam.closes_at <= now


# --- the run ---------------------------------------------------------------------------------

def run_copy_detection(exam_id: int) -> dict:
    """EXM-9: compare the answers of the exam's submitted attempts, store a new run and its
    pairs, return a summary. Raises (after recording the run as failed) on an error."""
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise not_found("exam")
    started = time.monotonic()
    run = SimilarityRun(exam_id=exam.id, started_at=clock.now(), status="running", answers=0, candidate_pairs=0)
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    try:
        summary = _detect(exam.id, run_id)
        run = db.session.get(SimilarityRun, run_id)
        run.answers = summary["answers"]
        run.candidate_pairs = summary["candidate_pairs"]
        run.status = "done"
        run.finished_at = clock.now()
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.exception("copy detection of exam %s failed (run %s)", exam_id, run_id)
        failed = db.session.get(SimilarityRun, run_id)
        failed.status = "failed"
        failed.error = f"{type(exc).__name__}: {exc}"[:2000]
        failed.finished_at = clock.now()
        db.session.commit()
        raise
    summary.update(run_id=run_id, exam_id=exam_id, status="done", seconds=round(time.monotonic() - started, 3))
    return summary


def copy_detection_job(exam_id: int) -> dict:
    """RQ job (the worker provides the app context)."""
    return run_copy_detection(int(exam_id))


def _versions(exam_id: int) -> dict[int, ItemVersion]:
    """The item versions the exam's submitted attempts showed."""
    shown = (select(AttemptItem.item_version_id).join(Attempt, Attempt.id == AttemptItem.attempt_id)
             .where(Attempt.exam_id == exam_id, Attempt.submitted_at.is_not(None)).distinct())
    return {v.id: v for v in db.session.scalars(select(ItemVersion).where(ItemVersion.id.in_(shown)))}


def _answer_rows(exam_id: int):
    """(item_id, attempt_id, learner_id, item_version_id, answer) of the submitted
    attempts, ordered by item then attempt, fetched in batches."""
    stmt = (select(AttemptItem.item_id, AttemptItem.attempt_id, Attempt.learner_id, AttemptItem.item_version_id,
                   AttemptItem.answer)
            .join(Attempt, Attempt.id == AttemptItem.attempt_id)
            .where(Attempt.exam_id == exam_id, Attempt.submitted_at.is_not(None))
            .order_by(AttemptItem.item_id, AttemptItem.attempt_id)
            .execution_options(yield_per=STREAM_ROWS))
    return db.session.execute(stmt)


def _detect(exam_id: int, run_id: int) -> dict:
    versions = _versions(exam_id)
    pairs: list[dict] = []
    counts = Counter()
    for item_id, group in groupby(_answer_rows(exam_id), key=lambda r: r.item_id):
        rows = [r for r in group if not _empty(r.answer)]
        counts["items"] += 1
        counts["answers"] += len(rows)
        by_kind: dict[str, list] = defaultdict(list)
        for r in rows:
            by_kind[versions[r.item_version_id].kind].append(r)
        for kind, krows in by_kind.items():
            item_versions = {versions[r.item_version_id] for r in krows}
            if kind in TEXT_KINDS:
                short = _text_pairs(exam_id, run_id, item_id, kind, krows, item_versions, pairs, counts)
                if kind == "short_answer" and short:
                    _objective_pairs(exam_id, run_id, item_id, kind, short, versions, pairs, counts)
            elif kind in CHOICE_KINDS:
                _objective_pairs(exam_id, run_id, item_id, kind, krows, versions, pairs, counts)
    # The item stream is finished before anything is written (one transaction with the status).
    for i in range(0, len(pairs), INSERT_CHUNK):
        db.session.execute(insert(SimilarPair), pairs[i:i + INSERT_CHUNK])
    return {"items": counts["items"], "answers": counts["answers"], "candidate_pairs": counts["candidates"],
            "text_pairs": counts[TEXT], "objective_pairs": counts[OBJECTIVE],
            "skipped_short": counts["skipped"], "truncated": counts["truncated"]}


def _empty(answer) -> bool:
    return answer is None or answer == "" or answer == [] or (isinstance(answer, str) and not answer.strip())


def _text_pairs(exam_id, run_id, item_id, kind, rows, item_versions, pairs, counts) -> list:
    """Text similarity of one item's answers; returns the rows too short to compare."""
    texts = [r.answer if isinstance(r.answer, str) else json.dumps(r.answer, ensure_ascii=False) for r in rows]
    exclude = [v.prompt for v in item_versions]
    if kind == "short_answer":  # the accepted answers are shared by every correct learner
        for v in item_versions:
            keys = v.answer if isinstance(v.answer, list) else [v.answer]
            exclude.extend(k for k in keys if isinstance(k, str))
    report = similarity.find_copied_texts(texts, exclude=exclude)
    counts["candidates"] += report.candidates
    counts["skipped"] += len(report.skipped)
    counts["truncated"] += report.truncated
    for m in report.matches:
        a, b = rows[m.a], rows[m.b]
        pairs.append(_pair_row(exam_id, run_id, item_id, TEXT, a, b, m.score, m.passages, {
            "profile": report.profile, "jaccard": m.jaccard, "containment": m.containment,
            "coverage": m.coverage, "longest": m.longest}))
        counts[TEXT] += 1
    return [rows[i] for i in report.skipped]


def _objective_pairs(exam_id, run_id, item_id, kind, rows, versions, pairs, counts) -> None:
    groups = similarity.identical_wrong_answers(
        kind, ((n, r.answer, versions[r.item_version_id].answer) for n, r in enumerate(rows)))
    found = similarity.wrong_answer_pairs(groups)
    if len(found) > similarity.MAX_PAIRS_PER_ITEM:
        counts["truncated"] += len(found) - similarity.MAX_PAIRS_PER_ITEM
        found = found[:similarity.MAX_PAIRS_PER_ITEM]
    for x, y, g in found:
        pairs.append(_pair_row(exam_id, run_id, item_id, OBJECTIVE, rows[x], rows[y], g.score, None, {
            "value": similarity.display_value(g.value), "chosen_by": g.chosen_by, "answered": g.answered}))
        counts[OBJECTIVE] += 1


def _pair_row(exam_id, run_id, item_id, kind, a, b, score, passages, note) -> dict:
    if a.attempt_id > b.attempt_id:
        a, b = b, a
        if passages:
            passages = {"a": passages["b"], "b": passages["a"]}
    return {"run_id": run_id, "exam_id": exam_id, "item_id": item_id, "kind": kind, "attempt_a": a.attempt_id,
            "attempt_b": b.attempt_id, "learner_a": a.learner_id, "learner_b": b.learner_id, "score": float(score),
            "passages": passages, "note": json.dumps(note, ensure_ascii=False)}


# --- the report ------------------------------------------------------------------------------

def _run_dict(run: SimilarityRun | None, pairs: int | None = None) -> dict | None:
    if run is None:
        return None
    out = {"id": run.id, "status": run.status, "started_at": clock.iso(run.started_at),
           "finished_at": clock.iso(run.finished_at) if run.finished_at else None, "answers": run.answers,
           "candidate_pairs": run.candidate_pairs, "error": run.error}
    if pairs is not None:
        out["pairs"] = pairs
    return out


def _snippet(text: str | None, n: int = PROMPT_SNIPPET) -> str:
    s = " ".join((text or "").split())
    return s if len(s) <= n else s[:n - 1] + "…"


def _choice_text(version: ItemVersion | None, value):
    """The shown text of an objective answer (original choice indexes → choice texts)."""
    if version is None or not version.choices:
        return None
    idx = value if isinstance(value, list) else [value]
    try:
        return [version.choices[i] for i in idx if isinstance(i, int) and not isinstance(i, bool)
                and 0 <= i < len(version.choices)]
    except TypeError:
        return None


def latest_report(exam_id: int, *, limit: int | None = None) -> dict:
    """The latest done run's pairs, ranked (see the module docstring). ``latest_run`` is the
    newest run whatever its status (running, failed), for the page to say so."""
    latest = db.session.scalar(select(SimilarityRun).where(SimilarityRun.exam_id == exam_id)
                               .order_by(SimilarityRun.id.desc()).limit(1))
    run = latest if latest is not None and latest.status == "done" else db.session.scalar(
        select(SimilarityRun).where(SimilarityRun.exam_id == exam_id, SimilarityRun.status == "done")
        .order_by(SimilarityRun.id.desc()).limit(1))
    if run is None:
        return {"exam_id": exam_id, "run": None, "latest_run": _run_dict(latest), "total": 0, "pairs": []}
    rows = list(db.session.scalars(select(SimilarPair).where(SimilarPair.run_id == run.id)))
    # Identical wrong answers: how many items each learner pair shares them on.
    shared = Counter((p.attempt_a, p.attempt_b) for p in rows if p.kind == OBJECTIVE)
    rows.sort(key=lambda p: (p.kind != TEXT, -shared.get((p.attempt_a, p.attempt_b), 0), -p.score, p.id))
    total = len(rows)
    if limit is not None:
        rows = rows[:limit]

    learner_ids = {p.learner_a for p in rows} | {p.learner_b for p in rows}
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(learner_ids))).all()) \
        if learner_ids else {}
    attempt_ids = {p.attempt_a for p in rows} | {p.attempt_b for p in rows}
    item_ids = {p.item_id for p in rows}
    answers: dict[tuple[int, int], tuple] = {}
    for chunk in _chunks(sorted(attempt_ids), 500):
        for ai in db.session.execute(select(AttemptItem.attempt_id, AttemptItem.item_id, AttemptItem.answer,
                                            AttemptItem.item_version_id)
                                     .where(AttemptItem.attempt_id.in_(chunk), AttemptItem.item_id.in_(item_ids))):
            answers[(ai.attempt_id, ai.item_id)] = (ai.answer, ai.item_version_id)
    version_ids = {v for _, v in answers.values()}
    versions = {v.id: v for v in db.session.scalars(select(ItemVersion).where(ItemVersion.id.in_(version_ids)))} \
        if version_ids else {}

    out = []
    for rank, p in enumerate(rows, start=1):
        ans_a, ver_a = answers.get((p.attempt_a, p.item_id), (None, None))
        ans_b, ver_b = answers.get((p.attempt_b, p.item_id), (None, None))
        version = versions.get(ver_a) or versions.get(ver_b)
        detail = _note(p.note)
        if p.kind == OBJECTIVE:
            detail["shared_items"] = shared.get((p.attempt_a, p.attempt_b), 0)
            if version is not None and version.kind in CHOICE_KINDS:
                detail["value_text"] = _choice_text(version, detail.get("value"))
        out.append({
            "rank": rank, "id": p.id, "kind": p.kind, "item_id": p.item_id,
            "item_kind": version.kind if version else None,
            "prompt": _snippet(version.prompt if version else ""),
            "score": round(p.score, 4),
            "attempt_a": p.attempt_a, "attempt_b": p.attempt_b,
            "learner_a": {"id": p.learner_a, "username": names.get(p.learner_a)},
            "learner_b": {"id": p.learner_b, "username": names.get(p.learner_b)},
            "answer_a": ans_a, "answer_b": ans_b,
            "passages": p.passages or {"a": [], "b": []},
            "detail": detail,
        })
    return {"exam_id": exam_id, "run": _run_dict(run, total), "latest_run": _run_dict(latest), "total": total,
            "pairs": out}


def _note(note: str | None) -> dict:
    try:
        value = json.loads(note) if note else {}
    except ValueError:
        return {"note": note}
    return value if isinstance(value, dict) else {"note": value}


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
