"""Periodic jobs of exams (run by ``flask lms scheduler`` through the RQ worker)."""
from __future__ import annotations

import importlib
import logging

from sqlalchemy import select

from lms import clock
from lms.db import db
from lms.exams.models import Exam
from lms.exams.service import submit_overdue

log = logging.getLogger(__name__)

# What runs once an exam's window has closed, in order: (module, function(exam_id)).
AFTER_CLOSE = (
    ("lms.proctoring.copydetect", "run_copy_detection"),  # EXM-9 copied-answer detection
    ("lms.exams.analysis", "analyse_exam"),  # EXM-5 item analysis (regular exams)
)


def process_closed_exams(limit: int = 20) -> int:
    """Exams whose window has closed and that were not processed yet: close overdue
    attempts, then run every step of ``AFTER_CLOSE``; mark the exam processed."""
    now = clock.now()
    ids = list(db.session.scalars(select(Exam.id).where(Exam.closes_at <= now, Exam.processed_at.is_(None),
                                                        Exam.announced_at.is_not(None))
                                  .order_by(Exam.closes_at).limit(limit)))
    db.session.rollback()
    if ids:
        submit_overdue()
    for exam_id in ids:
        for module, name in AFTER_CLOSE:
            try:
                func = getattr(importlib.import_module(module), name)
            except (ModuleNotFoundError, AttributeError):
                continue
            func(exam_id)
        exam = db.session.get(Exam, exam_id)
        exam.processed_at = clock.now()
        if exam.status == "announced":
            exam.status = "closed"
        db.session.commit()
    return len(ids)


# EXM-4/EXM-10: attempts past their deadline are submitted within 30 s; closed exams
# get copied-answer detection and item analysis within a minute.
PERIODIC = [(submit_overdue, 30), (process_closed_exams, 60)]
