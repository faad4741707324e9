"""The baseline of bench_heartbeat.py: a bare Flask app taking a heartbeat.

Same route and same request as the LMS's ``POST /api/v1/views/{id}/heartbeat`` (JSON body
``{"segments": [[from_s, to_s], ...]}``); it parses the body and answers a JSON object of
the LMS answer's shape, touching no database. Served by gunicorn with exactly the LMS's
settings in the same run, so LMS / bare measures what authentication, verification (ATT-4)
and the durable write of the viewing log cost on top of Flask + gunicorn.
"""
from flask import Flask, abort, request

app = Flask(__name__)


@app.post("/api/v1/views/<int:view_id>/heartbeat")
def heartbeat(view_id):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("segments"), list):
        abort(400)
    played = sum(max(0.0, float(b) - float(a)) for a, b in body["segments"])
    return {"view_id": view_id, "progress": 0.25, "completed": False, "credited_seconds": played,
            "discarded_seconds": 0.0, "covered_seconds": 750, "duration_seconds": 3000,
            "status": "pending", "intervals": [[0.0, 750.0]]}
