"""Lesson videos: upload (stored under ``LMS_MEDIA_ROOT``, probed with ffprobe) and serving
(HTTP range requests, so the player can seek).

The file decides what the lesson is: its container (MP4 or WebM, the formats browsers
play) and its running time come from ``ffprobe`` reading the stored bytes, never from the
client's file name, content type or form fields. The lesson's ``duration_seconds`` is set
to the whole seconds of the file (CRS-2/CRS-3 count net running time).

Files live at ``<media root>/courses/<course_id>/lessons/<lesson_id>/<random>.<ext>``; the
database keeps the path relative to the media root.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, request, send_file
from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content import rules
from lms.content import service as content
from lms.content.models import Course, Lesson
from lms.db import db
from lms.errors import ApiError, RuleViolation, forbidden, not_found

log = logging.getLogger(__name__)

FFPROBE = "ffprobe"
PROBE_TIMEOUT_SECONDS = 60
COPY_CHUNK = 1024 * 1024
# Multipart framing around the file (boundaries, part headers) on top of the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_DURATION_SECONDS = 24 * 3600  # as the lesson API's duration_seconds

# ffprobe may only open plain files in these demuxers (no playlists, no network, no
# concat lists pointing elsewhere).
_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"


@dataclass(frozen=True)
class Container:
    media_type: str
    ext: str
    video_codecs: frozenset[str]
    audio_codecs: frozenset[str]


# What browsers play: WebM (VP8/VP9/AV1 with Vorbis/Opus) and MP4 (H.264/HEVC/AV1/VP9
# with AAC/MP3/Opus/FLAC).
WEBM = Container("video/webm", "webm", frozenset({"vp8", "vp9", "av1"}), frozenset({"vorbis", "opus"}))
MP4 = Container("video/mp4", "mp4", frozenset({"h264", "hevc", "av1", "vp9"}),
                frozenset({"aac", "mp3", "opus", "flac"}))


@dataclass(frozen=True)
class MediaInfo:
    media_type: str
    ext: str
    duration_seconds: int  # whole seconds (floor)
    duration: float  # as ffprobe read it


def invalid_media(message: str) -> ApiError:
    return ApiError(400, "invalid_media", message)


# --- probing ---------------------------------------------------------------------------

def classify(probe: dict) -> MediaInfo:
    """What ffprobe's JSON (``-show_entries format=format_name,duration:format_tags=
    major_brand:stream=codec_type,codec_name``) says the file is, or ``invalid_media``.
    Pure: plain dict in, MediaInfo out."""
    fmt = probe.get("format") or {}
    names = set(str(fmt.get("format_name") or "").split(","))
    streams = probe.get("streams") or []
    video = {str(s.get("codec_name") or "") for s in streams if s.get("codec_type") == "video"}
    audio = {str(s.get("codec_name") or "") for s in streams if s.get("codec_type") == "audio"}
    if not names - {""}:
        raise invalid_media("the file is not a video")
    if "matroska" in names or "webm" in names:
        container = WEBM
    elif "mp4" in names or "mov" in names:
        brand = str((fmt.get("tags") or {}).get("major_brand") or "").strip().lower()
        if brand == "qt":
            raise invalid_media("QuickTime (.mov) files are not supported: upload MP4 or WebM")
        container = MP4
    else:
        raise invalid_media("only MP4 and WebM videos are supported")
    if not video:
        raise invalid_media("the file has no video stream")
    bad = (video - container.video_codecs) | (audio - container.audio_codecs)
    if bad:
        raise invalid_media(f"codec(s) {', '.join(sorted(bad))} cannot be played in a {container.ext.upper()} "
                            f"file by browsers")
    try:
        duration = float(fmt.get("duration"))
    except (TypeError, ValueError):
        raise invalid_media("the video's running time cannot be read") from None
    if not math.isfinite(duration) or duration < 1:
        raise invalid_media("the video must be at least one second long")
    if duration > MAX_DURATION_SECONDS:
        raise invalid_media("the video is longer than 24 hours")
    return MediaInfo(container.media_type, container.ext, int(math.floor(duration)), duration)


def probe_file(path: Path) -> MediaInfo:
    """Run ffprobe on ``path`` (a file we wrote) and classify it."""
    cmd = [FFPROBE, "-v", "error", "-protocol_whitelist", "file", "-format_whitelist", _DEMUXERS,
           "-show_entries", "format=format_name,duration:format_tags=major_brand:stream=codec_type,codec_name",
           "-of", "json", f"file:{path}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError:
        log.error("ffprobe is not installed (apt-get install ffmpeg)")
        raise ApiError(503, "service_unavailable", "video probing is not available on this server") from None
    except subprocess.TimeoutExpired:
        raise invalid_media("the file could not be read as a video in time") from None
    if proc.returncode != 0:
        raise invalid_media("the file is not a video")
    try:
        data = json.loads(proc.stdout or b"{}")
    except ValueError:
        raise invalid_media("the file is not a video") from None
    return classify(data if isinstance(data, dict) else {})


# --- storage ---------------------------------------------------------------------------

def media_root() -> Path:
    return Path(current_app.config["MEDIA_ROOT"]).resolve()


def max_upload_bytes() -> int:
    return int(current_app.config["MAX_UPLOAD_BYTES"])


def lesson_dir(lesson: Lesson) -> Path:
    return media_root() / "courses" / str(lesson.course_id) / "lessons" / str(lesson.id)


def absolute_path(relative: str) -> Path | None:
    """The file of a stored media path, or None when it does not lie inside the media root."""
    root = media_root()
    path = (root / relative).resolve()
    if root not in path.parents:
        return None
    return path


# Endpoints that receive a video: their requests may be as large as LMS_MAX_UPLOAD_BYTES
# (every other request keeps LMS_MAX_BODY_BYTES). Registered by lms.content.views.
UPLOAD_ENDPOINTS = {"content_api.upload_lesson_media", "content_pages.lesson_media_upload",
                    "content_pages.lesson_new"}


def allow_large_uploads(endpoint, values) -> None:
    """URL-value preprocessor (it runs before any before-request hook, so before the CSRF
    check reads the form): raise this request's body limit on the upload endpoints."""
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = max_upload_bytes() + FORM_OVERHEAD_BYTES


def _save_upload(stream, dest: Path, limit: int) -> int:
    size = 0
    with dest.open("xb") as out:
        while True:
            chunk = stream.read(COPY_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "payload_too_large",
                               f"the video is larger than the limit of {limit} bytes")
            out.write(chunk)
    return size


def lesson_for_upload(lesson_id: int, user: User) -> tuple[Lesson, Course]:
    """The lesson for someone who may change its content: an admin of the institution or
    an instructor of the course (403 otherwise, 404 across institutions)."""
    lesson = content.get_lesson(lesson_id, user)
    course = content.course_for_manager(lesson.course_id, user, staff=("instructor",))
    return lesson, course


def upload_lesson_media(lesson_id: int, user: User, file) -> Lesson:
    """Store ``file`` (a werkzeug FileStorage) as the lesson's video and commit.

    Refused, with nothing stored: a frame-based lesson (409), a lesson somebody has
    already started watching (409: its credited spans are on the old timeline), a file
    over LMS_MAX_UPLOAD_BYTES (413), anything ffprobe does not read as an MP4/WebM video
    (400 ``invalid_media``), and — for a published course — a video that would break the
    content rules it was published under (422, CRS-2/CRS-3).
    """
    lesson, course = lesson_for_upload(lesson_id, user)
    if lesson.kind != rules.VIDEO:
        raise ApiError(409, "not_a_video_lesson", "this lesson is frame-based content, not a video")
    if _has_views(lesson.id):
        raise ApiError(409, "lesson_has_views",
                       "learners have already watched this lesson; its video can no longer be replaced")
    if file is None:
        raise ApiError(400, "invalid_request", "send the video as the multipart field 'file'")

    tmp_dir = media_root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"upload-{secrets.token_hex(12)}.part"
    final: Path | None = None
    try:
        size = _save_upload(file.stream, tmp, max_upload_bytes())
        if size == 0:
            raise invalid_media("the file is empty")
        info = probe_file(tmp)
        _check_published_rules(course, lesson, info.duration_seconds)
        target_dir = lesson_dir(lesson)
        target_dir.mkdir(parents=True, exist_ok=True)
        final = target_dir / f"{secrets.token_hex(16)}.{info.ext}"
        os.replace(tmp, final)
        old = lesson.media_path
        lesson.media_path = final.relative_to(media_root()).as_posix()
        lesson.media_type = info.media_type
        lesson.duration_seconds = info.duration_seconds
        _log_admin_action(user, f"lesson {lesson.id} video {lesson.media_path} "
                                f"({info.media_type}, {size} bytes, {info.duration:.3f} s)")
        db.session.commit()
    except BaseException:
        db.session.rollback()
        tmp.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
            _remove_empty_dirs(final.parent)
        raise
    if old and old != lesson.media_path:
        old_path = absolute_path(old)
        if old_path is not None:
            old_path.unlink(missing_ok=True)
    return lesson


def _has_views(lesson_id: int) -> bool:
    from lms.attendance.models import LessonView

    return db.session.scalar(select(LessonView.id).where(LessonView.lesson_id == lesson_id).limit(1)) is not None


def _check_published_rules(course: Course, lesson: Lesson, duration_seconds: int) -> None:
    """A published course keeps satisfying CRS-1…CRS-5 when a video changes its length."""
    if course.status != "published":
        return
    facts = [content.lesson_facts(l) for l in content.course_lessons(course.id)]
    facts = [rules.LessonFacts(id=f.id, week=f.week, title=f.title, kind=f.kind,
                               duration_seconds=duration_seconds if f.id == lesson.id else f.duration_seconds,
                               frames=f.frames, instructor_intro=f.instructor_intro) for f in facts]
    problems = rules.publish_problems(weeks=course.weeks, credits=course.credits, practice=course.practice,
                                      lessons=facts)
    if problems:
        raise RuleViolation(sorted({p.rule for p in problems}),
                            "the course is published and this video would break: "
                            + "; ".join(f"{p.rule}: {p.message}" for p in problems),
                            details=[p.as_dict() for p in problems])


def _log_admin_action(user: User, detail: str) -> None:
    from lms.audit.service import log_access

    log_access("admin_action", user=user, detail=detail, commit=False)


def _remove_empty_dirs(path: Path) -> None:
    root = media_root()
    while path != root and root in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


# --- serving ---------------------------------------------------------------------------

def lesson_for_playback(lesson_id: int, user: User) -> Lesson:
    """The lesson whose video ``user`` may fetch: admins and inspectors of the institution
    and the course's staff at any time; its enrolled learners once it has opened (409
    ``lesson_not_open`` before). Others get 403."""
    lesson = content.get_lesson(lesson_id, user)
    if user.role in ("admin", "inspector") or content.staff_roles(lesson.course_id, user.id):
        return lesson
    if user.role == "learner" and content.is_enrolled(lesson.course_id, user.id):
        if clock.now() < lesson.opens_at:
            raise ApiError(409, "lesson_not_open",
                           f"this lesson opens at {clock.iso(lesson.opens_at)}")
        return lesson
    raise forbidden("not enrolled in this course")


def send_lesson_media(lesson: Lesson):
    """The lesson's video with range support (206 Partial Content for ``Range``)."""
    if not lesson.media_path:
        raise not_found("video")
    path = absolute_path(lesson.media_path)
    if path is None or not path.is_file():
        log.error("lesson %s: media file %s is missing", lesson.id, lesson.media_path)
        raise not_found("video")
    resp = send_file(path, mimetype=lesson.media_type or "application/octet-stream", conditional=True,
                     etag=True, max_age=None)
    resp.headers["Accept-Ranges"] = "bytes"
    # Kept by this browser only, revalidated each time (access may be withdrawn).
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def media_dict(lesson: Lesson) -> dict:
    out = content.lesson_dict(lesson)
    out["media_type"] = lesson.media_type
    path = absolute_path(lesson.media_path) if lesson.media_path else None
    out["media_size"] = path.stat().st_size if path is not None and path.is_file() else None
    from flask import url_for

    out["media_url"] = url_for("content_pages.lesson_media", lesson_id=lesson.id) if lesson.media_path else None
    return out
