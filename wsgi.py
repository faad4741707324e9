"""WSGI entry point: ``gunicorn wsgi:app`` / ``flask --app wsgi ...``."""
import gc

from lms import create_app

app = create_app()

# What is loaded by now (modules, the app, its URL map, schemas: ~200,000 objects) lives as
# long as the process. Moving it to the collector's permanent generation keeps it out of
# every full (generation-2) collection, which otherwise walks all of it with the GIL held —
# ≈ 100 ms during which no thread of the worker answers (see docs/PERFORMANCE.md).
gc.freeze()
