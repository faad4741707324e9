"""Proctoring (EXM-8, EXM-9): duplicate IP/device checks, Safe Exam Browser, incidents,
the exam pages."""

# Blueprint modules besides api.py and views.py (see lms.create_app).
BLUEPRINT_MODULES = ("exam_views", "copy_api")
