"""Evidence: the access log (REC-1, REC-3) and, later, the other append-only stores."""

# Blueprint modules besides api.py and views.py (see lms.create_app).
BLUEPRINT_MODULES = ("compliance_api", "compliance_pages", "proxy_api", "proxy_pages",
                     "complaints_api", "complaints_pages")
