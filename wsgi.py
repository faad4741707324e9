"""WSGI entry point: ``gunicorn wsgi:app`` / ``flask --app wsgi ...``."""
from lms import create_app

app = create_app()
