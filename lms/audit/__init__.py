"""Evidence: the access log (REC-1, REC-3), the inspectors' log search, portal and exports
(REC-3, REC-6)."""

# Blueprint modules besides api.py and views.py (see lms.create_app).
BLUEPRINT_MODULES = ("logs_api", "portal")
