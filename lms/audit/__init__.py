"""Evidence (REC-1, REC-3): the access log, admin actions, the chain and daily digests
that make every evidence table tamper-evident, retention and its ledger (REC-1, REC-2)."""

# Blueprint modules besides api.py and views.py (see lms.create_app).
BLUEPRINT_MODULES = ("verify_views",)
