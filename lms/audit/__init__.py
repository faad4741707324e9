"""Evidence (REC-1, REC-3): the access log, admin actions, the chain and daily digests
that make every evidence table tamper-evident, retention and its ledger (REC-1, REC-2);
the inspectors' log search, portal and exports (REC-3, REC-6); compliance reports,
proxy-attendance detection and the complaint channels (REC-5, REC-6)."""

# Blueprint modules besides api.py and views.py (see lms.create_app).
BLUEPRINT_MODULES = ("verify_views", "logs_api", "portal", "compliance_api", "compliance_pages", "proxy_api",
                     "proxy_pages", "complaints_api", "complaints_pages")
