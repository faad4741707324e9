"""Item banks, exams, attempts, scoring, item analysis, make-up exams (EXM-1…13)."""

# Blueprint modules besides api.py and views.py (see lms.create_app).
BLUEPRINT_MODULES = ("item_api", "exam_api", "exam_pages")
