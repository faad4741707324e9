"""Bad input never gets a 500 and never writes anything (API.md, Conventions): malformed
JSON, JSON that is not an object, wrong types, missing and unknown fields, huge bodies,
wrong content types, NUL characters, out-of-range numbers."""
from __future__ import annotations

import pytest
from conftest import assert_api_error, bearer, table_counts

GOOD_USER = {"username": "kim01", "password": "long-enough-pw-1", "role": "learner", "name": "김민지"}


@pytest.fixture
def admin(client, admin_token):
    """An admin's bearer token."""
    return admin_token


def post_raw(client, path, data, token=None, content_type="application/json"):
    headers = bearer(token) if token else {}
    return client.post(path, data=data, content_type=content_type, headers=headers)


def assert_nothing_written(app, before, *, allow=("access_log",)):
    """Row counts unchanged, except the tables in ``allow`` (the access log records the
    authenticated request itself, REC-1)."""
    after = table_counts(app)
    assert {k: v for k, v in after.items() if k not in allow} == \
           {k: v for k, v in before.items() if k not in allow}


# --- malformed and non-object JSON ----------------------------------------------------------

MALFORMED = [b"{", b'{"username": "kim01",}', b"{'username': 'kim01'}", b"nul", b"\xff\xfe{}",
             b'{"username": "kim01"', b"[1, 2", b"\x00"]


def test_malformed_json_is_400_with_a_clear_message(app, client, admin):
    before = table_counts(app)
    for body in MALFORMED:
        for path, token in (("/api/v1/users", admin), ("/api/v1/auth/login", None),
                            ("/api/v1/auth/otp", None)):
            err = assert_api_error(post_raw(client, path, body, token), 400, "invalid_request")
            assert "not valid JSON" in err["message"], (body, err)
    assert_nothing_written(app, before)


def test_deeply_nested_json_is_400(app, client, admin):
    """A JSON document nested deeper than the parser's recursion limit is bad input,
    not a crash."""
    before = table_counts(app)
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        assert_api_error(post_raw(client, "/api/v1/auth/login", body), 400, "invalid_request")
        assert_api_error(post_raw(client, "/api/v1/users", body, admin), 400, "invalid_request")
    assert_nothing_written(app, before)


@pytest.mark.parametrize("body", [b"[]", b'[{"username": "kim01"}]', b'"kim01"', b"42", b"true", b"null",
                                  b"3.5e2"])
def test_json_that_is_not_an_object_is_400(app, client, admin, body):
    before = table_counts(app)
    assert_api_error(post_raw(client, "/api/v1/users", body, admin), 400, "invalid_request")
    assert_api_error(post_raw(client, "/api/v1/auth/login", body), 400, "invalid_request")
    assert_api_error(post_raw(client, "/api/v1/auth/otp", body), 400, "invalid_request")
    assert_nothing_written(app, before)


def test_empty_body_is_400(app, client, admin):
    before = table_counts(app)
    for ct in ("application/json", None):
        r = client.post("/api/v1/users", data=b"", content_type=ct, headers=bearer(admin))
        err = assert_api_error(r, 400, "invalid_request")
        assert "username" in err["message"]
        assert_api_error(client.post("/api/v1/auth/login", data=b"", content_type=ct), 400, "invalid_request")
    assert_nothing_written(app, before)


# --- wrong types, missing and unknown fields -----------------------------------------------

WRONG = [
    {"username": 123}, {"username": None}, {"username": ["kim01"]}, {"username": {"x": 1}},
    {"password": 1234567890123}, {"role": 1}, {"name": False},
    {"disability": "yes"}, {"disability": "true"}, {"disability": 1}, {"disability": None},
    {"birth_date": 19900517}, {"expires_at": 1700000000}, {"email": ["a@b.kr"]},
]


def test_wrong_types_are_400(app, client, admin):
    """Strict types: no number for a string, no "yes"/"true"/1 for a boolean."""
    before = table_counts(app)
    for change in WRONG:
        field = next(iter(change))
        err = assert_api_error(client.post("/api/v1/users", json={**GOOD_USER, **change}, headers=bearer(admin)),
                               400, "invalid_request")
        assert field in err["message"], (change, err)
    for body in ({"username": 123, "password": "x"}, {"username": "kim01", "password": 12345678901},
                 {"username": True, "password": False}):
        assert_api_error(client.post("/api/v1/auth/login", json=body), 400, "invalid_request")
    for body in ({"ticket": 1, "code": "123456"}, {"ticket": "t", "code": 123456}, {"ticket": None, "code": None}):
        assert_api_error(client.post("/api/v1/auth/otp", json=body), 400, "invalid_request")
    assert_nothing_written(app, before)


def test_missing_fields_are_400(app, client, admin):
    before = table_counts(app)
    for field in ("username", "password", "role", "name"):
        body = {k: v for k, v in GOOD_USER.items() if k != field}
        err = assert_api_error(client.post("/api/v1/users", json=body, headers=bearer(admin)), 400, "invalid_request")
        assert field in err["message"]
    assert_api_error(client.post("/api/v1/users", json={}, headers=bearer(admin)), 400, "invalid_request")
    assert_api_error(client.post("/api/v1/auth/login", json={"username": "kim01"}), 400, "invalid_request")
    assert_api_error(client.post("/api/v1/auth/login", json={"password": "long-enough-pw-1"}), 400,
                     "invalid_request")
    assert_api_error(client.post("/api/v1/auth/otp", json={"ticket": "x"}), 400, "invalid_request")
    assert_api_error(client.post("/api/v1/auth/login", json={"username": "", "password": ""}), 400,
                     "invalid_request")
    assert_nothing_written(app, before)


def test_unknown_fields_are_400(app, client, admin):
    before = table_counts(app)
    for extra in ({"is_admin": True}, {"otp_secret": "AAAA"}, {"id": 5}, {"institution_id": 2},
                  {"Username": "kim01"}):
        err = assert_api_error(client.post("/api/v1/users", json={**GOOD_USER, **extra}, headers=bearer(admin)),
                               400, "invalid_request")
        assert next(iter(extra)) in err["message"]
    assert_api_error(client.post("/api/v1/auth/login",
                                 json={"username": "admin1", "password": "correct-horse-9", "remember": True}),
                     400, "invalid_request")
    assert_api_error(client.post("/api/v1/users/1/lock", json={"reason": "x", "until": "never"},
                                 headers=bearer(admin)), 400, "invalid_request")
    assert_nothing_written(app, before)


def test_too_long_values_are_400(app, client, admin):
    before = table_counts(app)
    for change in ({"username": "k" * 65}, {"name": "김" * 101}, {"password": "p" * 1025}, {"phone": "1" * 33}):
        assert_api_error(client.post("/api/v1/users", json={**GOOD_USER, **change}, headers=bearer(admin)),
                         400, "invalid_request")
    assert_api_error(client.post("/api/v1/auth/login", json={"username": "k" * 10_000, "password": "x"}),
                     400, "invalid_request")
    assert_api_error(client.post("/api/v1/auth/otp", json={"ticket": "t" * 257, "code": "123456"}),
                     400, "invalid_request")
    assert_nothing_written(app, before)


# --- size and content type -------------------------------------------------------------------

def test_huge_body_is_413(app, client, admin):
    """Bodies above LMS_MAX_BODY_BYTES (1 MiB) are refused with 413 before parsing."""
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    before = table_counts(app)
    big_name = "가" * (400 * 1024)  # 1.2 MB of UTF-8
    r = client.post("/api/v1/users", json={**GOOD_USER, "name": big_name}, headers=bearer(admin))
    assert_api_error(r, 413, "payload_too_large")
    r = client.post("/api/v1/auth/login", json={"username": "kim01", "password": "p" * (1024 * 1024 + 1)})
    assert_api_error(r, 413, "payload_too_large")
    r = post_raw(client, "/api/v1/auth/login", b" " * (1024 * 1024 + 10) + b"{}")
    assert_api_error(r, 413, "payload_too_large")
    assert_nothing_written(app, before)
    # Just under the limit is parsed (and refused for its content, not its size).
    r = client.post("/api/v1/auth/login", json={"username": "kim01", "password": "p" * (1024 * 1000)})
    assert_api_error(r, 400, "invalid_request")


def test_huge_body_over_a_real_socket(app, live_server):
    """413 also over a real connection that announces its length (nothing is read)."""
    import http.client

    conn = http.client.HTTPConnection(live_server.host, live_server.port, timeout=30)
    conn.putrequest("POST", "/api/v1/auth/login")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders()
    conn.send(b'{"username": "' + b"k" * 65536)
    resp = conn.getresponse()
    assert resp.status == 413
    assert b'"payload_too_large"' in resp.read()
    conn.close()


def test_wrong_content_type_is_400_or_415(app, client, admin):
    """A JSON endpoint given form data or text is refused with a 4xx (never parsed as
    something else, never a 500)."""
    before = table_counts(app)
    import json

    as_text = json.dumps(GOOD_USER).encode()
    for ct, data in (("text/plain", as_text), ("application/x-www-form-urlencoded", "username=kim01&password=x"),
                     ("multipart/form-data; boundary=xyz", b"--xyz--\r\n"), ("application/xml", b"<user/>")):
        r = client.post("/api/v1/users", data=data, content_type=ct, headers=bearer(admin))
        assert r.status_code in (400, 415), (ct, r.status_code, r.get_data(as_text=True)[:200])
        assert_api_error(r, r.status_code, "invalid_request" if r.status_code == 400 else "unsupported_media_type")
        r = client.post("/api/v1/auth/login", data=data, content_type=ct)
        assert r.status_code in (400, 415), (ct, r.status_code)
    assert_nothing_written(app, before, allow=("access_log",))


# --- characters and numbers the database cannot take ----------------------------------------

def test_nul_characters_are_not_a_500(app, client, users, admin):
    """NUL characters (which PostgreSQL text cannot hold) in JSON, query strings and paths
    are answered with a 4xx, and the request is still logged (REC-1)."""
    users.create("kim01")
    before = table_counts(app)
    r = client.post("/api/v1/auth/login", json={"username": "kim\x0001", "password": "long-enough-pw-1"})
    assert_api_error(r, 401, "invalid_credentials")
    r = client.post("/api/v1/auth/login", json={"username": "kim01", "password": "correct\x00horse-9"})
    assert_api_error(r, 401, "invalid_credentials")
    r = client.post("/api/v1/auth/otp", json={"ticket": "t\x00", "code": "12\x003456"})
    assert_api_error(r, 401, "invalid_ticket")
    r = client.post("/api/v1/users", json={**GOOD_USER, "username": "lee\x0002"}, headers=bearer(admin))
    assert_api_error(r, 400, "invalid_request")
    r = client.post("/api/v1/users", json={**GOOD_USER, "username": "lee02", "name": "이\x00서연"},
                    headers=bearer(admin))
    assert r.status_code in (201, 400), r.get_data(as_text=True)[:200]
    r = client.get("/api/v1/users?q=ki%00m", headers=bearer(admin))
    assert r.status_code in (200, 400)
    assert r.status_code != 200 or r.get_json()["users"] == []
    r = client.get("/api/v1/me%00", headers=bearer(admin))
    assert_api_error(r, 404, "not_found")
    r = client.get("/api/v1/me", headers={**bearer(admin), "User-Agent": "Evil\x00Agent"})
    assert r.status_code == 200
    after = table_counts(app)
    assert after["user_session"] == before["user_session"]
    assert after["login_ticket"] == before["login_ticket"]


def test_lone_surrogates_are_400(app, client, users, admin):
    """JSON may escape half of a UTF-16 pair ("\\ud800"); such a string is no text (it
    cannot be encoded, hashed, stored or encrypted): 400 invalid_request, not a 500.
    Proper pairs (emoji) are text and pass."""
    users.create("kim01")
    before = table_counts(app)
    lone = [
        ("/api/v1/auth/login", b'{"username": "kim\\ud80001", "password": "long-enough-pw-1"}', None),
        ("/api/v1/auth/login", b'{"username": "kim01", "password": "x\\udc00yyyyyyyyyy"}', None),
        ("/api/v1/auth/otp", b'{"ticket": "\\ud800", "code": "123456"}', None),
        ("/api/v1/users", b'{"username": "lee02", "password": "long-enough-pw-1", "role": "learner",'
                          b' "name": "\\udfff"}', admin),
    ]
    deep = b'{"username": "kim01", "password": "x", "deep": ' + b"[" * 900 + b'"\\udc00"' + b"]" * 900 + b"}"
    lone.append(("/api/v1/auth/login", deep, None))
    for path, body, token in lone:
        err = assert_api_error(post_raw(client, path, body, token), 400, "invalid_request")
        assert "not valid JSON" in err["message"]
    assert_nothing_written(app, before)
    r = post_raw(client, "/api/v1/users", b'{"username": "lee02", "password": "long-enough-pw-1", '
                                          b'"role": "learner", "name": "\\ud83d\\ude00 \xea\xb9\x80"}', admin)
    assert r.status_code == 201
    uid = r.get_json()["id"]
    assert client.get(f"/api/v1/users/{uid}", headers=bearer(admin)).get_json()["name"] == "\U0001F600 김"


def test_non_ascii_digits_are_a_wrong_code(app, client, users):
    """EXM-8: only ASCII digits make a TOTP code; other scripts' digits (which Python
    calls digits too) are a wrong code (401), never a crash."""
    users.create("kim01")
    r = client.post("/api/v1/auth/login", json={"username": "kim01", "password": users.passwords["kim01"]})
    ticket = r.get_json()["ticket"]
    for code in ("١٢٣٤٥٦", "１２３４５６", "¹²³⁴⁵⁶", "12345६"):
        assert_api_error(client.post("/api/v1/auth/otp", json={"ticket": ticket, "code": code}), 401, "invalid_otp")


def test_out_of_range_numbers_are_not_a_500(app, client, admin):
    """Ids and counts beyond any column's range are unknown (404) or invalid (400)."""
    huge = "9" * 30
    for path in (f"/api/v1/users/{huge}", f"/api/v1/users/{2**63}", f"/api/v1/users/{2**31}"):
        assert_api_error(client.get(path, headers=bearer(admin)), 404, "not_found")
        assert_api_error(client.post(path + "/lock", headers=bearer(admin)), 404, "not_found")
    for query in (f"?after={huge}", f"?limit={huge}", f"?after=-{huge}", "?limit=abc", "?after=1.5",
                  "?locked=maybe", "?role=wizard", "?limit=", "?q=" + "x" * 65):
        r = client.get(f"/api/v1/users{query}", headers=bearer(admin))
        assert r.status_code in (200, 400), (query, r.status_code)
        if r.status_code == 400:
            assert_api_error(r, 400, "invalid_request")


def test_numbers_past_the_int_digit_limit_are_400(app, client, admin):
    """A JSON number longer than Python converts to int (4,300 digits) is unusable JSON:
    400 "not valid JSON", not the ValueError's 500."""
    before = table_counts(app)
    body = b'{"username": "kim01", "limit": 1' + b"0" * 5000 + b"}"
    for path, token in (("/api/v1/users", admin), ("/api/v1/auth/login", None)):
        err = assert_api_error(post_raw(client, path, body, token), 400, "invalid_request")
        assert "not valid JSON" in err["message"], err
    assert_nothing_written(app, before)


def test_bad_clock_input_is_400(client):
    """The testing clock takes only ISO times with an offset."""
    for body in ({"now": "2027-03-02T09:00:00"}, {"now": "yesterday"}, {"now": 1700000000}, {},
                 {"now": "2027-03-02T09:00:00+09:00", "x": 1}, {"now": "9999-12-31T23:59:59-23:59"}):
        r = client.put("/api/v1/testing/clock", json=body)
        assert r.status_code in (204, 400), (body, r.status_code)
        if r.status_code == 400:
            assert_api_error(r, 400, "invalid_request")
    client.delete("/api/v1/testing/clock")


# --- methods and paths -------------------------------------------------------------------------

def test_unknown_paths_and_methods(client, admin):
    assert_api_error(client.get("/api/v1/nope"), 404, "not_found")
    assert_api_error(client.get("/api/v1/auth/login"), 405, "method_not_allowed")
    assert_api_error(client.delete("/api/v1/users", headers=bearer(admin)), 405, "method_not_allowed")
    assert_api_error(client.put("/api/v1/me", headers=bearer(admin)), 405, "method_not_allowed")
    assert_api_error(client.get("/api/v1/users/abc", headers=bearer(admin)), 404, "not_found")
    assert_api_error(client.get("/api/v1/users/-1", headers=bearer(admin)), 404, "not_found")


def test_odd_methods_are_logged_and_refused(app, client, admin):
    """REC-1: an authenticated request with an unusual, long method is logged (the method
    cut to the column's size) and refused with 405, not a 500."""
    r = client.open("/api/v1/me", method="MKCALENDARX", headers=bearer(admin))
    assert_api_error(r, 405, "method_not_allowed")
    from conftest import access_log

    assert access_log(app, "request")[-1]["method"] == "MKCALEND"


def test_admin_page_with_out_of_range_cursor(app, client, users):
    """The admin users page takes any integer cursor without failing."""
    import re

    users.create("admin1", "admin")
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin1", "password": users.passwords["admin1"], "csrf_token": csrf})
    page = client.get("/login/otp")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    assert client.post("/login/otp", data={"code": users.code("admin1"), "csrf_token": csrf}).status_code == 302
    for after in ("9" * 30, "-" + "9" * 30, str(2**31), "-5", "abc"):
        assert client.get(f"/admin/users?after={after}").status_code == 200, after
    assert client.get("/admin/users?q=a%00b").status_code == 200


def test_bad_authorization_headers(client):
    for value in ("Bearer", "Bearer ", "Bearer a b c", "bearer " + "x" * 10_000, "Token abc", "Bearer \x7f"):
        assert_api_error(client.get("/api/v1/me", headers={"Authorization": value}), 401, "unauthorized")
