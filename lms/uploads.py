"""Evidence files uploaded with an application: excused absences (ATT-5,
``lms.attendance.excuses``) and make-up exams (EXM-11, ``lms.exams.makeup``).

A file is accepted when its extension and its own first bytes agree on PDF, JPEG or PNG
(the declared Content-Type of an upload is not trusted), it is not empty and not above the
caller's per-file limit. Files are copied into a staging folder while hashed (SHA-256),
then moved to ``LMS_MEDIA_ROOT/<folder>/<row id>/`` once the application's row has an id;
the rows and the files are kept together or not at all (REC-1)::

    with uploads.evidence_transaction("excuses", files, max_bytes) as batch:
        req = ExcuseRequest(...); db.session.add(req); db.session.flush()
        for columns in batch.place(req.id, now):
            db.session.add(ExcuseEvidence(request_id=req.id, **columns))
    # committed here; on any error rolled back and the moved files removed
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app, send_file

from lms.db import db
from lms.errors import ApiError, not_found

# Evidence kinds: the MIME type we serve it with and the file's own magic bytes.
EVIDENCE_KINDS = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
}
EXTENSIONS = {".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg", ".png": "png"}
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass
class Upload:
    """One evidence file as received: its name as the learner's system called it and a
    readable binary stream."""

    filename: str
    stream: object


@dataclass
class _Staged:
    filename: str
    kind: str
    size: int
    sha256: str
    path: Path


def media_root() -> Path:
    return Path(current_app.config["MEDIA_ROOT"])


def max_file_bytes(config_name: str) -> int:
    """The per-file limit named by ``config_name`` in the app config (10 MB by default)."""
    return int(current_app.config.get(config_name) or DEFAULT_MAX_FILE_BYTES)


def check_count(uploads: list, max_files: int, why: str) -> None:
    """400 unless there are 1…``max_files`` uploads (``why``: the rule asking for evidence)."""
    if not uploads:
        raise ApiError(400, "invalid_request", f"files: an application needs evidence ({why}): "
                                               "at least one PDF, JPEG or PNG file")
    if len(uploads) > max_files:
        raise ApiError(400, "invalid_request", f"files: at most {max_files} evidence files")


def _sniff_kind(head: bytes) -> str | None:
    for kind, (_mime, magics) in EVIDENCE_KINDS.items():
        if any(head.startswith(m) for m in magics):
            return kind
    return None


def _stage(upload: Upload, staging: Path, index: int, limit: int) -> _Staged:
    """Copy one upload into ``staging`` while hashing it; 400 when it is not an allowed
    kind (by extension and by content) or is empty or too large."""
    name = "".join(ch for ch in (upload.filename or "") if ch >= " " and ch != "\x7f")  # no NUL/controls
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    ext = os.path.splitext(name)[1].lower()
    kind = EXTENSIONS.get(ext)
    if not name or kind is None:
        raise ApiError(400, "invalid_request",
                       f"evidence file {index}: only PDF, JPEG or PNG files are accepted (.pdf, .jpg, .png)")
    digest = hashlib.sha256()
    size = 0
    head = b""
    path = staging / f"{index}.{kind}"
    with path.open("wb") as out:
        while True:
            chunk = upload.stream.read(_CHUNK)
            if not chunk:
                break
            if len(head) < 16:
                head += chunk[:16 - len(head)]
            size += len(chunk)
            if size > limit:
                raise ApiError(400, "invalid_request",
                               f"evidence file {index} is larger than {limit} bytes")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise ApiError(400, "invalid_request", f"evidence file {index} is empty")
    if _sniff_kind(head) != kind:
        raise ApiError(400, "invalid_request",
                       f"evidence file {index}: the content is not a {kind.upper()} file "
                       "(only PDF, JPEG or PNG files are accepted)")
    return _Staged(filename=name, kind=kind, size=size, sha256=digest.hexdigest(), path=path)


class EvidenceBatch:
    """The staged files of one application; ``place`` moves them under the row's id."""

    def __init__(self, folder: str, staged: list[_Staged]):
        self.folder = folder
        self.staged = staged
        self.final_dir: Path | None = None

    def place(self, owner_id: int, now: datetime) -> list[dict]:
        """Move the files to ``<folder>/<owner_id>/``; the evidence rows' columns
        (filename, stored_path, content_type, size, sha256, uploaded_at), in upload order."""
        base = media_root() / self.folder
        final_dir = base / str(owner_id)
        if final_dir.exists():
            # Left by a process that died between moving files and committing (the id was
            # never committed): keep it aside rather than mix it with this application's.
            (base / ".orphaned").mkdir(parents=True, exist_ok=True)
            os.replace(final_dir, base / ".orphaned" / f"{owner_id}-{uuid.uuid4().hex}")
        final_dir.mkdir(parents=True)
        self.final_dir = final_dir
        out = []
        for i, s in enumerate(self.staged, start=1):
            rel = Path(self.folder) / str(owner_id) / f"{i}-{s.sha256[:16]}.{s.kind}"
            os.replace(s.path, media_root() / rel)
            out.append({"filename": s.filename, "stored_path": rel.as_posix(),
                        "content_type": EVIDENCE_KINDS[s.kind][0], "size": s.size, "sha256": s.sha256,
                        "uploaded_at": now})
        return out


@contextmanager
def evidence_transaction(folder: str, uploads: list[Upload], max_bytes: int) -> Iterator[EvidenceBatch]:
    """Stage (check and hash) every upload, let the caller write its rows and ``place`` the
    files, then commit. Any error rolls the session back and removes the files."""
    staging = media_root() / folder / ".staging" / uuid.uuid4().hex
    staging.mkdir(parents=True, exist_ok=True)
    batch: EvidenceBatch | None = None
    try:
        batch = EvidenceBatch(folder, [_stage(u, staging, i, max_bytes) for i, u in enumerate(uploads, start=1)])
        yield batch
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if batch is not None and batch.final_dir is not None:
            shutil.rmtree(batch.final_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stored_file(stored_path: str) -> Path:
    """The kept file of an evidence row (404 when it is gone or points outside the root)."""
    root = media_root().resolve()
    path = (root / stored_path).resolve()
    if root not in path.parents or not path.is_file():
        raise not_found("evidence file")
    return path


def send_evidence(row) -> object:
    """An evidence row's file as a download, never cached."""
    resp = send_file(stored_file(row.stored_path), mimetype=row.content_type or "application/octet-stream",
                     as_attachment=True, download_name=row.filename, max_age=0)
    resp.headers["Cache-Control"] = "no-store"
    return resp
