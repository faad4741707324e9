"""Lesson videos and the learner's content pages.

Upload (POST /api/v1/lessons/{id}/media): stored under LMS_MEDIA_ROOT at a path of our
choosing, running time read from the file with ffprobe (CRS-2/CRS-3 count net running
time; the form's value is not trusted), MP4/WebM only, size limit (413), non-video refused
with nothing stored. Serving (GET /lessons/{id}/media): HTTP range requests, and only to the
course's enrolled learners once the lesson is open, its staff and admins. Pages: the
learner's course page (status per lesson — pending/attended/absent/excused, ATT-1/2/5 —
progress, deadline in KST, player link), syllabus consent on first visit (ENR-2), the
player page, the admin pages.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import assert_api_error, bearer, set_clock, table_counts
from lms.clock import KST

PASSWORD = "correct-horse-9"
# A Tuesday; week w opens at 00:00 KST of STARTS_ON + 7·(w−1).
STARTS_ON = date(2027, 3, 2)
IN_WEEK_1 = datetime(2027, 3, 3, 10, 0, tzinfo=KST)
COURSE = {"code": "MM101", "title": "멀티미디어개론", "credits": 3, "starts_on": STARTS_ON.isoformat(),
          "weeks": 15, "capacity": 50}


# --- generated videos ------------------------------------------------------------------

def ffmpeg(*args: str) -> None:
    assert shutil.which("ffmpeg"), "ffmpeg is missing: apt-get install -y ffmpeg"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Short generated files: a 3.7 s VP8 WebM, a 2.4 s H.264 MP4, a WebM of 0.5 s, an AVI
    and an MP3 (the last three refused)."""
    d = tmp_path_factory.mktemp("videos")
    src = ["-f", "lavfi", "-i"]
    ffmpeg(*src, "testsrc=duration=3.7:size=160x120:rate=10", "-c:v", "libvpx", "-b:v", "50k", str(d / "a.webm"))
    ffmpeg(*src, "testsrc=duration=2.4:size=160x120:rate=10", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(d / "b.mp4"))
    ffmpeg(*src, "testsrc=duration=0.5:size=160x120:rate=10", "-c:v", "libvpx", "-b:v", "50k", str(d / "short.webm"))
    ffmpeg(*src, "testsrc=duration=2:size=160x120:rate=10", str(d / "c.avi"))
    ffmpeg(*src, "sine=duration=2", str(d / "d.mp3"))
    return {p.name: p for p in d.iterdir()}


# --- helpers ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _empty_media_root(app):
    """The media root is the run's; lesson ids restart with every test's fresh tables."""
    root = Path(app.config["MEDIA_ROOT"])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    yield

def make_course(client, token, **over) -> dict:
    r = client.post("/api/v1/courses", json={**COURSE, **over}, headers=bearer(token))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def make_lesson(client, token, course_id, week=1, title="1차시", **body) -> dict:
    if "frames" not in body:
        body.setdefault("duration_seconds", 1500)
    r = client.post(f"/api/v1/courses/{course_id}/lessons", json={"week": week, "title": title, **body},
                    headers=bearer(token))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def upload(client, token, lesson_id, path: Path | None = None, *, data: bytes | None = None,
           filename: str | None = None, content_type: str = "video/webm", extra: dict | None = None):
    payload = dict(extra or {})
    if path is not None or data is not None:
        raw = data if data is not None else path.read_bytes()
        payload["file"] = (io.BytesIO(raw), filename or (path.name if path else "video.webm"), content_type)
    return client.post(f"/api/v1/lessons/{lesson_id}/media", data=payload, headers=bearer(token),
                       content_type="multipart/form-data")


def stored_files(app) -> list[Path]:
    root = Path(app.config["MEDIA_ROOT"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def enrol(client, admin_token, course_id, user_id):
    r = client.post(f"/api/v1/courses/{course_id}/enrollments", json={"user_id": user_id},
                    headers=bearer(admin_token))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def lesson_row(app, lesson_id):
    from lms.content.models import Lesson
    from lms.db import db

    with app.app_context():
        row = db.session.get(Lesson, lesson_id)
        db.session.expunge(row)
        return row


@pytest.fixture
def admin(app, users, client):
    """An admin's token, logged in with the clock in week 1 of the course (set first: moving
    the clock later would idle the session out)."""
    set_clock(app, IN_WEEK_1)
    users.create("admin1", "admin", name="관리자")
    return users.login(client, "admin1")


class Staff(dict):
    """The course, its lesson, the admin's token, and people made on first use (password
    hashing is slow: a test makes only whom it needs). ``staff.who("prof1")`` → user id."""

    PEOPLE = {"prof1": "instructor", "ta1": "ta", "prof2": "instructor", "kim": "learner", "lee": "learner"}

    def __init__(self, users, client, **kw):
        super().__init__(**kw)
        self.users, self.client, self.ids = users, client, {}

    def who(self, name: str) -> int:
        if name not in self.ids:
            role = self.PEOPLE[name]
            self.ids[name] = self.users.create(name, role)
            cid = self["course"]["id"]
            if name in ("prof1", "ta1"):  # staff of this course
                r = self.client.post(f"/api/v1/courses/{cid}/staff", json={"user_id": self.ids[name], "role": role},
                                     headers=bearer(self["admin"]))
                assert r.status_code == 201, r.get_json()
            if name == "kim":  # enrolled by the admin
                enrol(self.client, self["admin"], cid, self.ids[name])
        return self.ids[name]

    def login(self, name: str) -> str:
        self.who(name)
        return self.users.login(self.client, name)


@pytest.fixture
def staff(users, client, admin):
    """A course with one video lesson (1500 s claimed) in week 1, the clock in week 1; its
    instructor prof1 and TA ta1, the enrolled learner kim, the outsiders prof2 and lee."""
    course = make_course(client, admin)
    lesson = make_lesson(client, admin, course["id"])
    return Staff(users, client, course=course, lesson=lesson, admin=admin)


# --- probing (pure) --------------------------------------------------------------------

def test_classify_reads_container_codecs_and_floors_duration():
    """CRS-3 counts net running time: whole seconds of the file, floor."""
    from lms.content.media import classify
    from lms.errors import ApiError

    webm = {"format": {"format_name": "matroska,webm", "duration": "1499.999"},
            "streams": [{"codec_type": "video", "codec_name": "vp9"}, {"codec_type": "audio", "codec_name": "opus"}]}
    info = classify(webm)
    assert (info.media_type, info.ext, info.duration_seconds) == ("video/webm", "webm", 1499)
    mp4 = {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "1500.0", "tags": {"major_brand": "isom"}},
           "streams": [{"codec_type": "video", "codec_name": "h264"}, {"codec_type": "audio", "codec_name": "aac"}]}
    assert classify(mp4).duration_seconds == 1500 and classify(mp4).media_type == "video/mp4"
    refused = [
        {},  # not a media file at all
        {"format": {"format_name": "avi", "duration": "3"}, "streams": [{"codec_type": "video", "codec_name": "h264"}]},
        {**mp4, "format": {**mp4["format"], "tags": {"major_brand": "qt  "}}},  # QuickTime
        {"format": webm["format"], "streams": [{"codec_type": "audio", "codec_name": "opus"}]},  # no video
        {"format": webm["format"], "streams": [{"codec_type": "video", "codec_name": "mpeg4"}]},  # mkv, not webm
        {"format": {**webm["format"], "duration": "N/A"}, "streams": webm["streams"]},
        {"format": {**webm["format"], "duration": "0.9"}, "streams": webm["streams"]},
        {"format": {**webm["format"], "duration": "nan"}, "streams": webm["streams"]},
    ]
    for probe in refused:
        with pytest.raises(ApiError) as exc:
            classify(probe)
        assert exc.value.status == 400 and exc.value.code == "invalid_media", probe


# --- upload --------------------------------------------------------------------------------

def test_upload_reads_duration_from_the_file_and_stores_it_under_the_media_root(app, client, staff, videos):
    """The lesson claimed 1500 s; the file runs 3.7 s → duration_seconds 3 (floor). The form's
    duration and the client's file name are ignored."""
    course, lesson = staff["course"], staff["lesson"]
    r = upload(client, staff["admin"], lesson["id"], videos["a.webm"], filename="../../../etc/evil.mp4",
               content_type="video/mp4", extra={"duration_seconds": "9999"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["duration_seconds"] == 3
    assert body["media_type"] == "video/webm"
    assert body["has_media"] is True and body["media_size"] == videos["a.webm"].stat().st_size
    assert body["media_url"] == f"/lessons/{lesson['id']}/media"

    row = lesson_row(app, lesson["id"])
    assert row.duration_seconds == 3 and row.media_type == "video/webm"
    assert re.fullmatch(rf"courses/{course['id']}/lessons/{lesson['id']}/[0-9a-f]{{32}}\.webm", row.media_path)
    files = stored_files(app)
    assert files == [Path(app.config["MEDIA_ROOT"]) / row.media_path]
    assert files[0].read_bytes() == videos["a.webm"].read_bytes()

    listed = client.get(f"/api/v1/courses/{course['id']}/lessons", headers=bearer(staff["admin"])).get_json()
    assert [(l["id"], l["duration_seconds"], l["has_media"]) for l in listed["lessons"]] == [(lesson["id"], 3, True)]


def test_mp4_upload_by_the_course_instructor_replaces_the_old_file(app, client, users, staff, videos):
    token = staff.login("prof1")
    assert upload(client, token, staff["lesson"]["id"], videos["a.webm"]).status_code == 201
    first = lesson_row(app, staff["lesson"]["id"]).media_path
    r = upload(client, token, staff["lesson"]["id"], videos["b.mp4"], content_type="video/mp4")
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["media_type"], r.get_json()["duration_seconds"]) == ("video/mp4", 2)
    row = lesson_row(app, staff["lesson"]["id"])
    assert row.media_path.endswith(".mp4") and row.media_path != first
    # The replaced file is gone; only the new one is stored.
    assert stored_files(app) == [Path(app.config["MEDIA_ROOT"]) / row.media_path]


@pytest.mark.parametrize("name,data", [
    ("notes.webm", b"this is not a video at all\n" * 100),
    ("c.avi", None),  # a video, but not a container browsers play
    ("d.mp3", None),  # audio only
    ("short.webm", None),  # under one second
    ("empty.webm", b""),
])
def test_non_video_is_refused_and_nothing_is_stored(app, client, staff, videos, name, data):
    before = table_counts(app)
    path = videos.get(name) if data is None else None
    r = upload(client, staff["admin"], staff["lesson"]["id"], path, data=data, filename=name)
    assert_api_error(r, 400, "invalid_media")
    assert stored_files(app) == []
    row = lesson_row(app, staff["lesson"]["id"])
    assert (row.duration_seconds, row.media_path, row.media_type) == (1500, None, None)
    after = table_counts(app)
    # Only the access log grew (the request itself is logged, REC-1).
    assert {k: v for k, v in after.items() if k != "access_log"} == \
           {k: v for k, v in before.items() if k != "access_log"}


def test_upload_over_the_size_limit_is_413_and_nothing_is_stored(app, client, staff, videos, monkeypatch):
    size = videos["a.webm"].stat().st_size
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", size - 1)
    r = upload(client, staff["admin"], staff["lesson"]["id"], videos["a.webm"])
    assert_api_error(r, 413, "payload_too_large")
    assert stored_files(app) == []
    assert lesson_row(app, staff["lesson"]["id"]).media_path is None
    # Exactly at the limit is accepted.
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", size)
    assert upload(client, staff["admin"], staff["lesson"]["id"], videos["a.webm"]).status_code == 201


def test_upload_limit_is_separate_from_the_body_limit_of_other_requests(app, client, staff, videos, monkeypatch):
    """LMS_MAX_BODY_BYTES keeps guarding every other request; an upload may be larger."""
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    assert videos["a.webm"].stat().st_size > 4096
    r = client.post(f"/api/v1/courses/{staff['course']['id']}/lessons",
                    json={"week": 1, "title": "x" * 5000, "duration_seconds": 1500}, headers=bearer(staff["admin"]))
    assert_api_error(r, 413, "payload_too_large")
    assert upload(client, staff["admin"], staff["lesson"]["id"], videos["a.webm"]).status_code == 201


def test_who_may_upload(app, client, users, staff, videos):
    lesson_id = staff["lesson"]["id"]
    for name in ("kim", "ta1"):  # a learner, the course's TA
        assert_api_error(upload(client, staff.login(name), lesson_id, videos["a.webm"]), 403, "forbidden")
    # An instructor of another course.
    assert_api_error(upload(client, staff.login("prof2"), lesson_id, videos["a.webm"]), 403, "forbidden")
    # An admin of another institution does not even see the lesson.
    from lms.auth.models import Institution
    from lms.db import db
    from lms import clock

    with app.app_context():
        inst = Institution(code="OTHER", name="다른 기관", created_at=clock.now())
        db.session.add(inst)
        db.session.commit()
        other_id = inst.id
    users.create("admin2", "admin", institution_id=other_id)
    assert_api_error(upload(client, users.login(client, "admin2"), lesson_id, videos["a.webm"]), 404, "not_found")
    assert_api_error(upload(client, staff["admin"], 999999, videos["a.webm"]), 404, "not_found")
    r = client.post(f"/api/v1/lessons/{lesson_id}/media", data={"file": (io.BytesIO(b"x"), "a.webm")},
                    content_type="multipart/form-data")
    assert r.status_code == 401
    assert stored_files(app) == []


def test_missing_file_field_and_frame_lessons(client, staff, videos):
    assert_api_error(upload(client, staff["admin"], staff["lesson"]["id"], extra={"video": "x"}), 400,
                     "invalid_request")
    frames = make_lesson(client, staff["admin"], staff["course"]["id"], title="읽기 자료", frames=20)
    assert_api_error(upload(client, staff["admin"], frames["id"], videos["a.webm"]), 409, "not_a_video_lesson")


def test_video_cannot_be_replaced_once_learners_watched(app, client, users, staff, videos):
    """Credited spans are positions on the old video's timeline (ATT-1 counts them)."""
    assert upload(client, staff["admin"], staff["lesson"]["id"], videos["a.webm"]).status_code == 201
    token = staff.login("kim")
    r = client.post(f"/api/v1/lessons/{staff['lesson']['id']}/views", headers=bearer(token))
    assert r.status_code == 201, r.get_json()
    assert_api_error(upload(client, staff["admin"], staff["lesson"]["id"], videos["b.mp4"]), 409, "lesson_has_views")
    assert lesson_row(app, staff["lesson"]["id"]).media_type == "video/webm"
    assert len(stored_files(app)) == 1


def test_published_course_keeps_its_content_rules(app, client, admin, videos):
    """CRS-3: a published course's 25-minute lesson cannot become a 3-second video."""
    admin_token = admin
    course = make_course(client, admin_token, code="PUB1")
    first = None
    for w in range(1, 16):
        for i in range(3):
            l = make_lesson(client, admin_token, course["id"], week=w, title=f"{w}-{i}",
                            instructor_intro=(w == 1 and i == 0))
            first = first or l
    assert client.post(f"/api/v1/courses/{course['id']}/publish", headers=bearer(admin_token)).status_code == 200
    r = upload(client, admin_token, first["id"], videos["a.webm"])
    err = assert_api_error(r, 422, "rule_violation")
    assert "CRS-3" in err["rules"]
    assert stored_files(app) == []
    assert lesson_row(app, first["id"]).duration_seconds == 1500


# --- serving ---------------------------------------------------------------------------

def test_range_requests(app, client, users, staff, videos):
    raw = videos["a.webm"].read_bytes()
    assert upload(client, staff["admin"], staff["lesson"]["id"], videos["a.webm"]).status_code == 201
    token = staff.login("kim")
    url = f"/lessons/{staff['lesson']['id']}/media"

    r = client.get(url, headers={**bearer(token), "Range": "bytes=0-99"})
    assert r.status_code == 206
    assert r.data == raw[:100] and len(r.data) == 100
    assert r.headers["Content-Range"] == f"bytes 0-99/{len(raw)}"
    assert r.headers["Content-Length"] == "100"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.mimetype == "video/webm"

    r = client.get(url, headers={**bearer(token), "Range": f"bytes={len(raw) - 10}-"})
    assert r.status_code == 206 and r.data == raw[-10:]
    assert r.headers["Content-Range"] == f"bytes {len(raw) - 10}-{len(raw) - 1}/{len(raw)}"

    r = client.get(url, headers={**bearer(token), "Range": f"bytes={len(raw) + 10}-"})
    assert r.status_code == 416

    r = client.get(url, headers=bearer(token))
    assert r.status_code == 200 and r.data == raw and r.mimetype == "video/webm"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_who_may_fetch_the_video(app, client, users, staff, videos):
    assert upload(client, staff["admin"], staff["lesson"]["id"], videos["a.webm"]).status_code == 201
    week2 = make_lesson(client, staff["admin"], staff["course"]["id"], week=2, title="2주차")
    assert upload(client, staff["admin"], week2["id"], videos["b.mp4"]).status_code == 201
    url = f"/lessons/{staff['lesson']['id']}/media"
    rng = {"Range": "bytes=0-9"}

    # Enrolled learner: the open lesson yes; week 2's opens at 00:00 KST on 03-09: 409 before.
    kim = staff.login("kim")
    assert client.get(url, headers={**bearer(kim), **rng}).status_code == 206
    r = client.get(f"/lessons/{week2['id']}/media", headers={**bearer(kim), **rng})
    assert r.status_code == 409
    # (Moving the clock idles sessions out: log in again after each move.)
    set_clock(app, datetime(2027, 3, 8, 23, 59, 50, tzinfo=KST))
    kim = staff.login("kim")
    assert client.get(f"/lessons/{week2['id']}/media", headers={**bearer(kim), **rng}).status_code == 409
    set_clock(app, datetime(2027, 3, 9, 0, 0, 1, tzinfo=KST))
    kim = staff.login("kim")
    assert client.get(f"/lessons/{week2['id']}/media", headers={**bearer(kim), **rng}).status_code == 206
    admin = staff["admin"] = users.login(client, "admin1")

    # A learner not enrolled; an instructor of another course: 403.
    for name in ("lee", "prof2"):
        r = client.get(url, headers={**bearer(staff.login(name)), **rng})
        assert r.status_code == 403, name
    # The course's staff and the admin: yes.
    for token in (staff.login("ta1"), staff.login("prof1"), admin):
        assert client.get(url, headers={**bearer(token), **rng}).status_code == 206
    # No session: to the login page.
    r = client.get(url)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # A lesson without a video: 404.
    bare = make_lesson(client, admin, staff["course"]["id"], title="영상 없음")
    assert client.get(f"/lessons/{bare['id']}/media", headers=bearer(admin)).status_code == 404


# --- pages -----------------------------------------------------------------------------

def page_csrf(resp) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', resp.get_data(as_text=True))
    assert m, "no csrf meta"
    return m.group(1)


def web_login(client, users, username: str):
    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.get_data(as_text=True)).group(1)
    r = client.post("/login", data={"csrf_token": token, "username": username, "password": users.passwords[username]})
    assert r.status_code == 302, r.get_data(as_text=True)
    r = client.get("/login/otp")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.get_data(as_text=True)).group(1)
    r = client.post("/login/otp", data={"csrf_token": token, "code": users.code(username)})
    assert r.status_code == 302, r.get_data(as_text=True)


def set_progress(app, learner_id, lesson_id, course_id, **values):
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        db.session.add(LessonProgress(learner_id=learner_id, lesson_id=lesson_id, course_id=course_id,
                                      intervals=[], **values))
        db.session.commit()


def lesson_cells(html: str, lesson_id: int) -> str:
    m = re.search(rf'<tr id="lesson-{lesson_id}"(.*?)</tr>', html, re.S)
    assert m, f"lesson {lesson_id} is not listed"
    return m.group(0)


def test_learner_course_page_lists_every_lesson_with_status_progress_and_kst_deadline(app, users, staff, videos):
    """ATT-1/ATT-2/ATT-5: pending (no row), attended, absent, excused; progress; the deadline
    in KST; a player link for open lessons with a video."""
    client = app.test_client()
    admin = staff["admin"]
    cid, kim = staff["course"]["id"], staff.who("kim")
    l1 = staff["lesson"]
    assert upload(client, admin, l1["id"], videos["a.webm"]).status_code == 201
    l2 = make_lesson(client, admin, cid, title="둘째")
    l3 = make_lesson(client, admin, cid, title="셋째")
    l4 = make_lesson(client, admin, cid, title="넷째")
    l5 = make_lesson(client, admin, cid, week=2, title="다음 주")
    l6 = make_lesson(client, admin, cid, week=15, title="마지막 주")
    set_progress(app, kim, l2["id"], cid, covered_seconds=1500, status="attended",
                 completed_at=datetime(2027, 3, 3, 9, 0, tzinfo=KST))
    set_progress(app, kim, l3["id"], cid, covered_seconds=300, status="absent")
    set_progress(app, kim, l4["id"], cid, covered_seconds=750, status="excused")

    web_login(client, users, "kim")
    # The dashboard links to the learner's courses.
    home = client.get("/").get_data(as_text=True)
    assert 'href="/my/courses"' in home and "내 강의" in home
    mine = client.get("/my/courses").get_data(as_text=True)
    assert f'href="/courses/{cid}"' in mine and "멀티미디어개론" in mine

    # First visit: syllabus consent (ENR-2) before any lesson can be played.
    html = client.get(f"/courses/{cid}").get_data(as_text=True)
    assert 'data-testid="syllabus-consent"' in html
    assert f'href="/lessons/{l1["id"]}/play"' not in html
    r = client.get(f"/lessons/{l1['id']}/play")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/courses/{cid}")
    r = client.post(f"/courses/{cid}/consent", data={"csrf_token": page_csrf(client.get(f"/courses/{cid}"))})
    assert r.status_code == 303
    from lms.db import db
    from lms.enrolment.models import Enrollment

    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == kim))
        assert e.syllabus_consent_at is not None and e.syllabus_consent_ip
        db.session.remove()

    html = client.get(f"/courses/{cid}").get_data(as_text=True)
    assert 'data-testid="syllabus-consent"' not in html
    row1 = lesson_cells(html, l1["id"])
    assert 'data-status="pending"' in row1 and "0:03" in row1
    assert f'href="/lessons/{l1["id"]}/play"' in row1
    # Week 1 opens 2027-03-02 00:00 KST; deadline 14 days later, shown in KST.
    assert "2027-03-02 00:00" in row1 and "2027-03-16 00:00" in row1
    row2 = lesson_cells(html, l2["id"])
    assert 'data-status="attended"' in row2 and "100%" in row2 and "출석" in row2
    row3 = lesson_cells(html, l3["id"])
    assert 'data-status="absent"' in row3 and "20%" in row3 and "결석" in row3
    row4 = lesson_cells(html, l4["id"])
    assert 'data-status="excused"' in row4 and "50%" in row4 and "공결" in row4
    row5 = lesson_cells(html, l5["id"])  # not open yet
    assert 'data-status="pending"' in row5 and "/play" not in row5 and "공개 전" in row5
    assert "2027-03-09 00:00" in row5 and "2027-03-23 00:00" in row5
    row6 = lesson_cells(html, l6["id"])  # ATT-1: last week's lessons are due by the end of that week
    assert "2027-06-15 00:00" in row6
    # Week 1's progress: (0 + 1 + 0.2 + 0.5) / 4.
    assert re.search(r'id="week-1".*?주차 진도율 42%', html, re.S)

    # Past week 1's deadline a lesson never watched shows absent (the rules at `now`).
    set_clock(app, datetime(2027, 3, 16, 0, 0, 1, tzinfo=KST))
    web_login(client, users, "kim")  # the clock's jump idled the session out
    html = client.get(f"/courses/{cid}").get_data(as_text=True)
    assert 'data-status="absent"' in lesson_cells(html, l1["id"])

    # English is available.
    html = client.get(f"/courses/{cid}?lang=en").get_data(as_text=True)
    assert 'lang="en"' in html


def test_course_page_access(app, users, staff):
    client = app.test_client()
    staff.who("lee")
    web_login(client, users, "lee")  # not enrolled
    assert client.get(f"/courses/{staff['course']['id']}").status_code == 403
    assert client.get(f"/lessons/{staff['lesson']['id']}/play").status_code == 403
    assert client.get("/courses/999999").status_code == 404


def test_player_page(app, users, staff, videos, monkeypatch):
    """The player's page: module script (no inline script, CSP), the heartbeat interval from
    the configuration, the playback-rate options up to the maximum, progress of the lesson
    and of its week, the challenge dialog."""
    client = app.test_client()
    admin = staff["admin"]
    lesson_id = staff["lesson"]["id"]
    assert upload(client, admin, lesson_id, videos["a.webm"]).status_code == 201
    week2 = make_lesson(client, admin, staff["course"]["id"], week=2, title="2주차")
    from lms.db import db
    from lms.enrolment.models import Enrollment

    kim = staff.who("kim")
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == kim))
        e.syllabus_consent_at = datetime(2027, 3, 2, tzinfo=KST)
        db.session.commit()
    monkeypatch.setitem(app.config, "PLAYER_HEARTBEAT_SECONDS", 1.5)
    monkeypatch.setitem(app.config, "MAX_PLAYBACK_RATE", 1.5)
    web_login(client, users, "kim")
    r = client.get(f"/lessons/{lesson_id}/play")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert '<script type="module" src="/static/player.js' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert 'data-heartbeat-ms="1500"' in html
    assert 'data-api-base="/api/v1"' in html and f'data-lesson-id="{lesson_id}"' in html
    assert 'data-track="1"' in html
    rates = re.findall(r'<option value="([0-9.]+)"', html)
    assert rates == ["0.75", "1.0", "1.25", "1.5"]
    assert 'data-testid="challenge"' in html and 'data-testid="lesson-progress"' in html
    assert 'data-testid="week-progress"' in html
    # Before its week, a lesson's player is refused.
    assert client.get(f"/lessons/{week2['id']}/play").status_code == 409

    # The default interval is 10 s (API.md: a heartbeat at least every 10 s).
    monkeypatch.delitem(app.config, "PLAYER_HEARTBEAT_SECONDS")
    assert 'data-heartbeat-ms="10000"' in client.get(f"/lessons/{lesson_id}/play").get_data(as_text=True)

    # Staff preview: the video directly, nothing tracked.
    staff_client = app.test_client()
    staff.who("ta1")
    web_login(staff_client, users, "ta1")
    html = staff_client.get(f"/lessons/{lesson_id}/play").get_data(as_text=True)
    assert 'data-track="0"' in html and f'src="/lessons/{lesson_id}/media"' in html


def test_player_script_is_served(client):
    r = client.get("/static/player.js")
    assert r.status_code == 200 and "javascript" in r.mimetype
    js = r.get_data(as_text=True)
    for needle in ("/heartbeat", "/challenge", "/end", "keepalive: true", "X-CSRFToken", "visibilitychange",
                   "pagehide", "seeking", "timeupdate", "ended"):
        assert needle in js, needle


def test_admin_pages_create_a_course_and_a_video_lesson_from_the_file(app, users, admin, videos):
    client = app.test_client()
    web_login(client, users, "admin1")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/admin/courses"' in home
    page = client.get("/admin/courses")
    assert page.status_code == 200
    r = client.post("/admin/courses", data={
        "csrf_token": page_csrf(page), "code": "WEB1", "title": "웹 과정", "credits": "3",
        "starts_on": "2027-03-02", "weeks": "15", "capacity": "40"})
    assert r.status_code == 303, r.get_data(as_text=True)
    course_url = r.headers["Location"]
    page = client.get(course_url)
    assert page.status_code == 200 and "웹 과정" in page.get_data(as_text=True)
    token = page_csrf(page)
    r = client.post(course_url + "/lessons/new", content_type="multipart/form-data", data={
        "csrf_token": token, "week": "1", "title": "오리엔테이션", "kind": "video", "instructor_intro": "on",
        "file": (io.BytesIO(videos["a.webm"].read_bytes()), "ori.webm", "video/webm")})
    assert r.status_code == 303
    from lms.content.models import Lesson
    from lms.db import db

    with app.app_context():
        lessons = db.session.scalars(select(Lesson)).all()
        assert [(l.title, l.duration_seconds, l.media_type, l.instructor_intro) for l in lessons] == \
               [("오리엔테이션", 3, "video/webm", True)]
        lesson_id = lessons[0].id
        db.session.remove()
    # A non-video through the form: refused with a message, no lesson, nothing stored.
    r = client.post(course_url + "/lessons/new", content_type="multipart/form-data", data={
        "csrf_token": token, "week": "1", "title": "가짜", "kind": "video",
        "file": (io.BytesIO(b"not a video"), "fake.webm", "video/webm")})
    assert r.status_code == 303
    html = client.get(course_url).get_data(as_text=True)
    assert "영상 파일이 아니거나" in html and "가짜" not in html
    assert len(stored_files(app)) == 1
    # Replacing the video through the page.
    r = client.post(f"/lessons/{lesson_id}/media/upload", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(videos["b.mp4"].read_bytes()), "b.mp4", "video/mp4")})
    assert r.status_code == 303
    assert lesson_row(app, lesson_id).media_type == "video/mp4"
    # Without the CSRF token the upload is refused.
    r = client.post(f"/lessons/{lesson_id}/media/upload", content_type="multipart/form-data", data={
        "file": (io.BytesIO(videos["a.webm"].read_bytes()), "a.webm", "video/webm")})
    assert r.status_code == 400
    assert lesson_row(app, lesson_id).media_type == "video/mp4"


def test_upload_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/lessons/{lesson_id}/media"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"]
    assert "201" in op["responses"]
