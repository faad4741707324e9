"""The baseline of bench_me.py: a bare Flask app answering a small JSON object.

Served by gunicorn with exactly the settings the LMS gets in the same run, so the ratio
LMS / bare measures what the LMS request path costs on top of Flask + gunicorn.
"""
import gc

from flask import Flask

app = Flask(__name__)


@app.get("/me")
def me():
    # About the size of the LMS's GET /api/v1/me answer.
    return {"id": 1, "username": "bench-learner", "role": "learner", "name": "홍길동",
            "disability": False, "institution_id": 1}


gc.freeze()  # as wsgi.py does for the LMS: the same server settings for both
