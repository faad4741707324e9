"""Users API (admin): creation, roles, encrypted personal data (REC-4), search, lock,
authenticator reset, institution boundaries."""
from __future__ import annotations

import re

import pyotp
import pytest
from conftest import access_log, assert_api_error, bearer, table_counts
from sqlalchemy import text

NEW = {"username": "kim01", "password": "long-enough-pw-1", "role": "learner", "name": "김민지"}


def create(client, token, **fields):
    return client.post("/api/v1/users", json={**NEW, **fields}, headers=bearer(token))


def raw_user_columns(app, user_id) -> dict:
    """The stored bytes of the personal-data columns, read past the ORM."""
    from lms.db import db

    with app.app_context():
        row = db.session.execute(
            text("SELECT name, phone, email, birth_date, otp_secret, username FROM user_account WHERE id = :id"),
            {"id": user_id}).mappings().one()
        out = {k: (bytes(v) if isinstance(v, (bytes, memoryview)) else v) for k, v in row.items()}
        db.session.remove()
    return out


def make_institution(app, code="other") -> int:
    from lms import clock
    from lms.auth.models import Institution
    from lms.db import db

    with app.app_context():
        inst = Institution(code=code, name="다른 평생교육원", created_at=clock.now())
        db.session.add(inst)
        db.session.commit()
        return inst.id


# --- creation -------------------------------------------------------------------------

def test_create_user(app, client, users, admin_token):
    """POST /users answers 201 {id, username, role, otp_secret}; the secret provisions a
    working authenticator; it is shown once (never again)."""
    r = create(client, admin_token)
    assert r.status_code == 201
    body = r.get_json()
    assert set(body) == {"id", "username", "role", "otp_secret"}
    assert body["username"] == "kim01" and body["role"] == "learner"
    assert re.fullmatch(r"[A-Z2-7]{32}", body["otp_secret"])
    assert "password" not in r.get_data(as_text=True)

    users.secrets["kim01"], users.passwords["kim01"] = body["otp_secret"], NEW["password"]
    token = users.login(client, "kim01")
    me = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert me["id"] == body["id"] and me["name"] == "김민지" and me["disability"] is False

    shown = client.get(f"/api/v1/users/{body['id']}", headers=bearer(admin_token))
    assert shown.status_code == 200
    assert "otp_secret" not in shown.get_json()
    assert body["otp_secret"] not in shown.get_data(as_text=True)
    listed = client.get("/api/v1/users", headers=bearer(admin_token)).get_data(as_text=True)
    assert body["otp_secret"] not in listed
    actions = access_log(app, "admin_action")
    assert any(f"create user {body['id']}" in (a["detail"] or "") for a in actions)


def test_every_role_can_be_created(client, admin_token):
    for role in ("learner", "instructor", "ta", "admin", "inspector"):
        r = create(client, admin_token, username=f"user-{role}", role=role)
        assert r.status_code == 201 and r.get_json()["role"] == role


def test_disability_flag_is_stored(client, users, admin_token):
    """EXM-4: disability=true (the 90-minute exam limit) is stored and read back."""
    r = create(client, admin_token, username="lee02", disability=True)
    assert r.status_code == 201
    uid = r.get_json()["id"]
    assert client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()["disability"] is True
    r = create(client, admin_token, username="park03")
    assert client.get(f"/api/v1/users/{r.get_json()['id']}", headers=bearer(admin_token)).get_json()["disability"] is False


def test_non_admin_is_forbidden(app, client, users):
    """Only admins manage users: others get 403 forbidden, before their input is even
    read; nothing is written."""
    for role in ("learner", "instructor", "ta", "inspector"):
        users.create(f"{role}-x", role)
        token = users.login(client, f"{role}-x")
        before = table_counts(app)["user_account"]
        assert_api_error(create(client, token, username=f"new-{role}"), 403, "forbidden")
        assert_api_error(client.post("/api/v1/users", json={"bad": 1}, headers=bearer(token)), 403, "forbidden")
        assert_api_error(client.get("/api/v1/users", headers=bearer(token)), 403, "forbidden")
        assert_api_error(client.post("/api/v1/users/1/lock", headers=bearer(token)), 403, "forbidden")
        assert table_counts(app)["user_account"] == before


def test_no_token_is_401(app, client):
    for r in (client.post("/api/v1/users", json=NEW), client.post("/api/v1/users", json=[]),
              client.get("/api/v1/users"), client.get("/api/v1/users/1"),
              client.post("/api/v1/users/1/reset-otp")):
        err = assert_api_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), err
    assert table_counts(app)["user_account"] == 0


def test_duplicate_username_is_409(app, client, admin_token):
    assert create(client, admin_token).status_code == 201
    before = table_counts(app)
    assert_api_error(create(client, admin_token, name="다른사람"), 409, "username_taken")
    assert table_counts(app)["user_account"] == before["user_account"]


INVALID = [
    {"role": "superuser"}, {"role": "Admin"}, {"role": ""}, {"role": None},
    {"password": "short1"}, {"password": "xxkim01xxyy"},
    {"username": "ab"}, {"username": "has space"}, {"username": "kim/01"}, {"username": "x" * 65},
    {"name": ""}, {"email": "not-an-email"}, {"birth_date": "2001-13-01"},
    {"expires_at": "2027-03-02T09:00:00"},
]


def test_invalid_fields_are_400(app, client, admin_token):
    """Invalid role, weak password, bad username, e-mail, date or naive time: 400
    invalid_request and nothing written."""
    before = table_counts(app)
    for fields in INVALID:
        err = assert_api_error(create(client, admin_token, **fields), 400, "invalid_request")
        assert err["message"], fields
    after = table_counts(app)
    assert after["user_account"] == before["user_account"]
    assert after["institution"] == before["institution"]


# --- REC-4 ------------------------------------------------------------------------------

def test_personal_data_is_encrypted_at_rest(app, client, admin_token):
    """REC-4: name, phone, e-mail, birth date (and the OTP secret) are stored encrypted:
    the raw column bytes do not contain the plaintext, and decryption gives it back."""
    from lms.crypto import decrypt

    r = create(client, admin_token, name="홍길동전", phone="010-1234-5678", email="hong@example.kr",
               birth_date="1990-05-17")
    assert r.status_code == 201
    uid, secret = r.get_json()["id"], r.get_json()["otp_secret"]
    raw = raw_user_columns(app, uid)
    plain = {"name": "홍길동전", "phone": "010-1234-5678", "email": "hong@example.kr",
             "birth_date": "1990-05-17", "otp_secret": secret}
    with app.app_context():
        for col, value in plain.items():
            stored = raw[col]
            assert isinstance(stored, bytes), (col, type(stored))
            assert value.encode("utf-8") not in stored, col
            assert decrypt(stored) == value, col
    # The username stays searchable, in clear.
    assert raw["username"] == "kim01"
    # Equal plaintexts do not give equal ciphertexts (no dictionary attack on names).
    r2 = create(client, admin_token, username="hong02", name="홍길동전")
    assert raw_user_columns(app, r2.get_json()["id"])["name"] != raw["name"]


def test_personal_data_survives_key_rotation(app, client, admin_token, monkeypatch):
    """REC-4: with LMS_DATA_KEY="new,old" old rows still decrypt and new rows use the new
    key; a key that is not listed cannot read them (an error, never garbage)."""
    from cryptography.fernet import Fernet

    from lms.crypto import decrypt

    old = app.config["DATA_KEY"]
    uid_old = create(client, admin_token).get_json()["id"]
    new = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "DATA_KEY", f"{new},{old}")
    shown = client.get(f"/api/v1/users/{uid_old}", headers=bearer(admin_token)).get_json()
    assert shown["name"] == "김민지"
    uid_new = create(client, admin_token, username="lee02", name="이서연").get_json()["id"]
    raw_new = raw_user_columns(app, uid_new)["name"]
    with app.app_context():
        monkeypatch.setitem(app.config, "DATA_KEY", new)
        assert decrypt(raw_new) == "이서연"
        monkeypatch.setitem(app.config, "DATA_KEY", old)
        with pytest.raises(RuntimeError):
            decrypt(raw_new)


# --- search -------------------------------------------------------------------------------

def test_search_users(client, users, admin_token):
    """Usernames are searchable (substring, any case; % and _ are literal); role filter;
    keyset paging with ``next``."""
    for name, role in (("kim_01", "learner"), ("kimx01", "learner"), ("KIMchi9", "instructor"),
                       ("lee_02", "ta")):
        assert create(client, admin_token, username=name, role=role).status_code == 201

    def names(query):
        r = client.get(f"/api/v1/users{query}", headers=bearer(admin_token))
        assert r.status_code == 200, r.get_json()
        return [u["username"] for u in r.get_json()["users"]]

    assert names("?q=kim") == ["kim_01", "kimx01", "KIMchi9"]
    assert names("?q=KIM_") == ["kim_01"]
    assert names("?q=%25") == []
    assert names("?q=_0") == ["kim_01", "lee_02"]
    assert names("?role=instructor") == ["KIMchi9"]
    assert names("?q=kim&role=learner") == ["kim_01", "kimx01"]
    assert names("?q=nobody") == []

    page = client.get("/api/v1/users?limit=2", headers=bearer(admin_token)).get_json()
    assert len(page["users"]) == 2 and page["next"] == page["users"][-1]["id"]
    rest = client.get(f"/api/v1/users?limit=2&after={page['next']}", headers=bearer(admin_token)).get_json()
    page3 = client.get(f"/api/v1/users?limit=2&after={rest['next']}", headers=bearer(admin_token)).get_json()
    seen = [u["username"] for u in page["users"] + rest["users"] + page3["users"]]
    assert seen == ["admin1", "kim_01", "kimx01", "KIMchi9", "lee_02"]
    assert page3["next"] is None


# --- lock, unlock, reset ----------------------------------------------------------------

def test_lock_and_unlock(app, client, users, admin_token):
    uid = users.create("kim01")
    r = client.post(f"/api/v1/users/{uid}/lock", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.get_json()["locked"] is True and r.get_json()["locked_reason"] is None
    r = client.post(f"/api/v1/users/{uid}/unlock", headers=bearer(admin_token))
    assert r.get_json()["locked"] is False
    details = [a["detail"] for a in access_log(app, "admin_action")]
    assert f"lock user {uid}" in details and f"unlock user {uid}" in details


def test_reset_otp(app, client, users, admin_token):
    """A new authenticator secret: otp_enrolled false again, old codes stop working,
    the new secret works."""
    uid = users.create("kim01")
    users.login(client, "kim01")
    old = users.secrets["kim01"]
    r = client.post(f"/api/v1/users/{uid}/reset-otp", headers=bearer(admin_token))
    assert r.status_code == 200
    new = r.get_json()["otp_secret"]
    assert set(r.get_json()) == {"otp_secret"} and new != old and re.fullmatch(r"[A-Z2-7]{32}", new)
    shown = client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()
    assert shown["otp_enrolled"] is False
    ticket = client.post("/api/v1/auth/login", json={"username": "kim01", "password": users.passwords["kim01"]})
    assert ticket.get_json()["otp_enrolled"] is False
    ticket = ticket.get_json()["ticket"]
    assert_api_error(client.post("/api/v1/auth/otp", json={"ticket": ticket, "code": pyotp.TOTP(old).now()}),
                     401, "invalid_otp")
    users.secrets["kim01"] = new
    users.login(client, "kim01")
    assert client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()["otp_enrolled"] is True


def test_other_institution_is_404(app, client, users, admin_token):
    """An admin sees and manages only their institution's users: others are 404, as are
    unknown ids."""
    other = make_institution(app)
    stranger = users.create("stranger1", institution_id=other)
    users.create("otheradmin", "admin", institution_id=other)
    for method, path in (("get", f"/api/v1/users/{stranger}"), ("post", f"/api/v1/users/{stranger}/lock"),
                         ("post", f"/api/v1/users/{stranger}/unlock"),
                         ("post", f"/api/v1/users/{stranger}/reset-otp"), ("get", "/api/v1/users/999999")):
        assert_api_error(getattr(client, method)(path, headers=bearer(admin_token)), 404, "not_found")
    names = [u["username"] for u in client.get("/api/v1/users?q=stranger", headers=bearer(admin_token))
             .get_json()["users"]]
    assert names == []
    all_names = [u["username"] for u in client.get("/api/v1/users", headers=bearer(admin_token)).get_json()["users"]]
    assert all_names == ["admin1"]
    # The stranger was not touched.
    users.login(client, "stranger1")
    # The other institution's admin creates users in their own institution.
    other_token = users.login(client, "otheradmin")
    created = create(client, other_token, username="theirs01").get_json()["id"]
    assert_api_error(client.get(f"/api/v1/users/{created}", headers=bearer(admin_token)), 404, "not_found")
    assert client.get(f"/api/v1/users/{created}", headers=bearer(other_token)).status_code == 200
