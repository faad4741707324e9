"""Profile one authenticated ``GET /api/v1/me`` in process: CPU per request and
PostgreSQL round trips per request, with a cProfile top list.

    .venv/bin/python bench/profile_me.py [-n 3000] [--top 25] [--path /api/v1/me]

CPU time (``time.process_time`` of this process, which runs the app through Flask's test
client) is robust to other load on the machine, unlike wall-clock figures; it leaves out
PostgreSQL's own CPU, which ``bench_me.py`` measures under gunicorn. A fresh PostgreSQL
database is made and dropped (see ``common.BenchDatabase``).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BenchDatabase, log  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3000, help="requests measured")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--path", default="/api/v1/me")
    ap.add_argument("--no-auth", action="store_true", help="send no token (a public path)")
    args = ap.parse_args(argv)

    with BenchDatabase("profme") as bdb:
        import pyotp
        from sqlalchemy import event

        from lms import create_app
        from lms.auth import service
        from lms.db import db

        app = create_app()
        with app.app_context():
            user = service.create_user(username="prof.learner", password="Bench-pass-2026!",
                                       role="learner", name="홍길동")
            db.session.commit()
            secret = user.otp_secret
            db.session.remove()
        client = app.test_client()
        env = {"REMOTE_ADDR": "127.0.0.9"}
        r = client.post("/api/v1/auth/login", json={"username": "prof.learner",
                                                    "password": "Bench-pass-2026!"}, environ_base=env)
        ticket = r.get_json()["ticket"]
        r = client.post("/api/v1/auth/otp", json={"ticket": ticket, "code": pyotp.TOTP(secret).now()},
                        environ_base=env)
        token = r.get_json()["token"]
        headers = {"X-LMS-Device": "bench-device"}
        if not args.no_auth:
            headers["Authorization"] = f"Bearer {token}"

        statements = [0]
        with app.app_context():
            engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_a, **_k):
            statements[0] += 1

        for _ in range(300):  # warm-up: statement caches, prepared statements, imports
            assert client.get(args.path, headers=headers, environ_base=env).status_code == 200
        statements[0] = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.n):
            resp = client.get(args.path, headers=headers, environ_base=env)
            if resp.status_code != 200:
                raise SystemExit(f"{args.path} answered {resp.status_code}: {resp.get_data(as_text=True)}")
        cpu = time.process_time() - c0
        wall = time.perf_counter() - t0
        per = statements[0] / args.n
        prof = cProfile.Profile(time.process_time)  # CPU time, not waiting for PostgreSQL
        prof.enable()
        for _ in range(min(args.n, 1000)):
            client.get(args.path, headers=headers, environ_base=env)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
        log(f"{args.path}: {args.n} requests, CPU {cpu / args.n * 1000:.3f} ms/request "
            f"(wall {wall / args.n * 1000:.3f} ms), SQLAlchemy statements {per:.2f}/request")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
