"""Staff accounts and sessions: no default password, argon2, hardened cookies, logout,
timeouts, disabled accounts, password changes, and persisted login rate limits."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from review import manage
from review.app import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from review.auth import AuthError, password_problem
from review.store import sessions, users
from tests.review.conftest import ADMIN, VIEWER, config_for, csrf_of, do_login

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cookie_header(response, name):
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "="))


def test_there_is_no_default_account(small_tracker, make_app):
    app = make_app(small_tracker, users=False)
    assert app.extensions["review"]["accounts"].count_users() == 0
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "python -m review.manage create-user" in page
    for name, password in [("admin", "admin"), ("admin", "password"), ("admin", ""), ("review", "review"),
                           ("root", "changeme")]:
        assert do_login(client, name, password).status_code == 401
    assert client.get("/").status_code == 302


def test_passwords_are_hashed_with_argon2(small_tracker, make_app):
    app = make_app(small_tracker)
    with app.extensions["review"]["store"].engine.connect() as db:
        stored = db.execute(sa.select(users.c.password_hash).where(users.c.username == ADMIN[0])).scalar()
    assert stored.startswith("$argon2id$") and ADMIN[1] not in stored


@pytest.mark.parametrize("password", ["short", "password1234", "aaaaaaaaaaaaaaaa", "alice.admin-2024-x",
                                      "123456789012", "x" * 2000])
def test_weak_passwords_are_refused(password):
    assert password_problem(password, "alice.admin") is not None


def test_reasonable_passwords_are_accepted():
    assert password_problem("correct horse battery staple", "alice") is None
    assert password_problem("Tq7!vz9#Lm2@", "alice") is None


def test_create_user_refuses_weak_password_bad_role_and_duplicates(small_tracker, make_app):
    accounts = make_app(small_tracker).extensions["review"]["accounts"]
    with pytest.raises(AuthError):
        accounts.create_user("bob", "short", "viewer")
    with pytest.raises(AuthError):
        accounts.create_user("bob", "a long enough passphrase", "superuser")
    with pytest.raises(AuthError):
        accounts.create_user(ADMIN[0].upper(), "another long passphrase", "viewer")
    with pytest.raises(AuthError):
        accounts.create_user("<script>", "another long passphrase", "viewer")


def test_the_documented_command_creates_the_first_admin(small_tracker, tmp_path):
    """`python -m review.manage create-user NAME --role admin`, as the README says, in a real process."""
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {small_tracker / 'conversations.db'}\n")
    env = dict(os.environ, PYTHONPATH=PROJECT, ENDPOINTS_FILE=str(endpoints), PYTHONWARNINGS="ignore",
               REVIEW_DATABASE_URL=f"sqlite:///{tmp_path / 'review.db'}", OUTBOX_DB=str(small_tracker / "outbox.db"))

    def run(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "review.manage", *args], cwd=PROJECT, env=env,
                              input=stdin, capture_output=True, text=True, timeout=120)

    weak = run("create-user", "first.admin", "--role", "admin", "--password-stdin", stdin="secret\n")
    assert weak.returncode == 1 and "Password refused" in weak.stderr
    made = run("create-user", "first.admin", "--role", "admin", "--password-stdin",
               stdin="a quiet river at dawn 42\n")
    assert made.returncode == 0, made.stderr
    assert "Created admin first.admin" in made.stdout
    again = run("create-user", "first.admin", "--role", "viewer", "--password-stdin", stdin="x\n")
    assert again.returncode == 1 and "already" in again.stderr
    listed = run("list-users")
    assert "first.admin" in listed.stdout and "admin" in listed.stdout


def test_cli_disable_enable_set_role(small_tracker, tmp_path, monkeypatch, capsys):
    config = config_for(small_tracker, tmp_path / "review.db")
    monkeypatch.setattr(sys, "stdin", io.StringIO("first long passphrase ok\n"))
    assert manage.main(["create-user", "carol", "--role", "admin", "--password-stdin"], config=config) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("second long passphrase ok\n"))
    assert manage.main(["create-user", "dave", "--role", "viewer", "--password-stdin"], config=config) == 0
    assert manage.main(["disable-user", "carol"], config=config) == 1  # the last active admin
    assert "no active admin" in capsys.readouterr().err
    assert manage.main(["set-role", "dave", "admin"], config=config) == 0
    assert manage.main(["disable-user", "carol"], config=config) == 0
    assert manage.main(["list-users"], config=config) == 0
    out = capsys.readouterr().out
    assert "carol" in out and "disabled" in out
    assert manage.main(["enable-user", "carol"], config=config) == 0
    assert manage.main(["disable-user", "nobody"], config=config) == 1


def test_session_cookie_is_httponly_samesite_and_secure_behind_https(small_tracker, make_app):
    app = make_app(small_tracker)
    plain = cookie_header(do_login(app.test_client(), *ADMIN), SESSION_COOKIE)
    assert "HttpOnly" in plain and "SameSite=Strict" in plain and "Secure" not in plain
    assert "Max-Age" not in plain and "Expires" not in plain  # gone when the browser closes

    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    assert "Secure" in cookie_header(page, LOGIN_CSRF_COOKIE)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    https = client.post("/login", base_url="https://localhost",
                        data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]})
    assert "Secure" in cookie_header(https, SESSION_COOKIE)
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")

    forced = make_app(small_tracker, secure_cookies=True)
    assert "Secure" in cookie_header(do_login(forced.test_client(), *ADMIN), SESSION_COOKIE)


def test_forwarded_proto_is_trusted_only_from_the_configured_proxy(small_tracker, make_app):
    proxied = make_app(small_tracker, trusted_proxies=frozenset({"10.0.0.5"}))
    client = proxied.test_client()
    token = csrf_of_login(client)
    via_proxy = client.post("/login", data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]},
                            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
                            environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert "Secure" in cookie_header(via_proxy, SESSION_COOKIE)
    audit = proxied.extensions["review"]["audit"]
    assert audit.entries(action="login")[-1]["ip"] == "203.0.113.9"

    client = proxied.test_client()
    token = csrf_of_login(client)
    spoofed = client.post("/login", data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]},
                          headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"},
                          environ_base={"REMOTE_ADDR": "192.0.2.77"})
    assert "Secure" not in cookie_header(spoofed, SESSION_COOKIE)
    assert audit.entries(action="login")[-1]["ip"] == "192.0.2.77"


def csrf_of_login(client):
    from tests.review.conftest import login_token
    return login_token(client)


def test_login_form_needs_its_csrf_token(small_tracker, make_app):
    client = make_app(small_tracker).test_client()
    client.get("/login")
    response = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 403 and client.get("/").status_code == 302
    other = make_app(small_tracker).test_client()
    response = other.post("/login", data={"csrf_token": "forged", "username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 403


def test_login_cookie_flags_of_the_login_csrf_cookie(small_tracker, make_app):
    response = make_app(small_tracker).test_client().get("/login")
    header = cookie_header(response, LOGIN_CSRF_COOKIE)
    assert "HttpOnly" in header and "SameSite=Strict" in header


def test_session_token_is_stored_only_as_a_hash(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    client = sign_in(app)
    token = client.get_cookie(SESSION_COOKIE).value
    with app.extensions["review"]["store"].engine.connect() as db:
        stored = [r[0] for r in db.execute(sa.select(sessions.c.token_hash))]
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_logout_invalidates_the_session(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    client = sign_in(app)
    token = client.get_cookie(SESSION_COOKIE).value
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302 and "msg=signed_out" in response.headers["Location"]
    replay = app.test_client()
    replay.set_cookie(SESSION_COOKIE, token)
    assert replay.get("/").status_code == 302
    assert app.extensions["review"]["audit"].entries(action="logout")


def test_login_redirects_only_to_local_pages(small_tracker, make_app):
    app = make_app(small_tracker)
    for target, expected in [("/stats", "/stats"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
                             ("/\\evil.example", "/")]:
        client = app.test_client()
        from tests.review.conftest import login_token
        token = login_token(client)
        response = client.post("/login", data={"csrf_token": token, "username": ADMIN[0],
                                               "password": ADMIN[1], "next": target})
        assert response.headers["Location"] == expected


def test_signed_out_redirect_remembers_the_page(small_tracker, make_app):
    client = make_app(small_tracker).test_client()
    location = client.get("/?escalated=yes&page=2").headers["Location"]
    assert location == "/login?next=/%3Fescalated%3Dyes%26page%3D2"


def _age_sessions(app, **columns):
    with app.extensions["review"]["store"].engine.begin() as db:
        db.execute(sessions.update().values(**columns))


def test_idle_timeout_ends_the_session(small_tracker, make_app, sign_in):
    app = make_app(small_tracker, idle_minutes=30)
    client = sign_in(app)
    _age_sessions(app, last_seen_at=time.time() - 31 * 60)
    response = client.get("/")
    assert response.status_code == 302 and "msg=expired" in response.headers["Location"]
    with app.extensions["review"]["store"].engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 0


def test_absolute_timeout_ends_an_active_session(small_tracker, make_app, sign_in):
    app = make_app(small_tracker, session_hours=12)
    client = sign_in(app)
    _age_sessions(app, created_at=time.time() - 13 * 3600, last_seen_at=time.time())
    assert client.get("/").status_code == 302


def test_disabling_an_account_ends_its_sessions_and_sign_ins(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    viewer = sign_in(app, VIEWER)
    app.extensions["review"]["accounts"].update_user(VIEWER[0], disabled=True)
    assert viewer.get("/").status_code == 302
    assert do_login(app.test_client(), *VIEWER).status_code == 401


def test_admin_manages_users_in_the_app(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    admin = sign_in(app)
    token = csrf_of(admin)
    response = admin.post("/admin/users", data={"csrf_token": token, "username": "erin", "role": "viewer",
                                                "password": "river stone lantern 77", "again": "river stone lantern 77"})
    assert response.status_code == 302
    weak = admin.post("/admin/users", data={"csrf_token": token, "username": "frank", "role": "viewer",
                                            "password": "short", "again": "short"})
    assert weak.status_code == 400 and "Password refused" in weak.get_data(as_text=True)
    accounts = app.extensions["review"]["accounts"]
    erin = accounts.get_user("erin")
    assert admin.post(f"/admin/users/{erin.id}", data={"csrf_token": token, "action": "role",
                                                      "role": "admin"}).status_code == 302
    assert accounts.get_user("erin").role == "admin"
    assert admin.post(f"/admin/users/{erin.id}", data={"csrf_token": token,
                                                      "action": "disable"}).status_code == 302
    assert accounts.get_user("erin").disabled
    me = accounts.get_user(ADMIN[0])
    refused = admin.post(f"/admin/users/{me.id}", data={"csrf_token": token, "action": "disable"})
    assert refused.status_code == 400
    details = [e["detail"] for e in app.extensions["review"]["audit"].entries(action="user_admin")]
    assert "created erin (viewer)" in details and "erin: role admin" in details and "erin: disabled" in details


def test_changing_the_password_ends_other_sessions(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    first, second = sign_in(app, VIEWER), sign_in(app, VIEWER)
    token = csrf_of(first)
    wrong = first.post("/account/password", data={"csrf_token": token, "current": "nope",
                                                   "new": "a brand new passphrase", "again": "a brand new passphrase"})
    assert wrong.status_code == 400
    done = first.post("/account/password", data={"csrf_token": token, "current": VIEWER[1],
                                                  "new": "a brand new passphrase", "again": "a brand new passphrase"})
    assert done.status_code == 302
    assert first.get("/").status_code == 200  # the browser that changed it stays signed in
    assert second.get("/").status_code == 302
    assert do_login(app.test_client(), VIEWER[0], VIEWER[1]).status_code == 401
    assert do_login(app.test_client(), VIEWER[0], "a brand new passphrase").status_code == 302


def test_failed_logins_are_limited_per_account_and_survive_a_restart(small_tracker, make_app, tmp_path):
    db = tmp_path / "persisted.db"
    app = make_app(small_tracker, app_db=db, login_limit_account=5)
    client = app.test_client()
    for _ in range(5):
        assert do_login(client, ADMIN[0], "wrong password here").status_code == 401
    limited = do_login(client, ADMIN[0], ADMIN[1])  # even the right password waits
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)
    # Another account from the same address is not locked out by this one.
    assert do_login(client, VIEWER[0], VIEWER[1]).status_code == 302

    restarted = make_app(small_tracker, app_db=db, login_limit_account=5)
    assert do_login(restarted.test_client(), ADMIN[0], ADMIN[1]).status_code == 429
    audit = restarted.extensions["review"]["audit"]
    assert len(audit.entries(action="login_failed", actor=ADMIN[0])) >= 6


def test_failed_logins_are_limited_per_ip(small_tracker, make_app):
    app = make_app(small_tracker, login_limit_ip=3, login_limit_account=50)
    client = app.test_client()
    for name in ("a1", "a2", "a3"):
        assert do_login(client, name, "whatever it is", REMOTE_ADDR="192.0.2.10").status_code == 401
    assert do_login(client, ADMIN[0], ADMIN[1], REMOTE_ADDR="192.0.2.10").status_code == 429
    assert do_login(app.test_client(), ADMIN[0], ADMIN[1], REMOTE_ADDR="192.0.2.11").status_code == 302


def test_limits_expire_after_the_window(small_tracker, make_app):
    from review.store import login_failures
    app = make_app(small_tracker, login_limit_account=2)
    client = app.test_client()
    for _ in range(2):
        do_login(client, ADMIN[0], "wrong password here")
    assert do_login(client, ADMIN[0], ADMIN[1]).status_code == 429
    with app.extensions["review"]["store"].engine.begin() as db:
        db.execute(login_failures.update().values(at=time.time() - 16 * 60))
    assert do_login(client, ADMIN[0], ADMIN[1]).status_code == 302


# -- sign-in details -----------------------------------------------------------


def test_signing_in_ends_the_session_the_browser_already_had(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    client = sign_in(app, VIEWER)
    old = client.get_cookie(SESSION_COOKIE).value
    assert do_login(client, *ADMIN).status_code == 302
    new = client.get_cookie(SESSION_COOKIE).value
    assert new != old
    replay = app.test_client()
    replay.set_cookie(SESSION_COOKIE, old)
    assert replay.get("/").status_code == 302  # the viewer's session is gone, not just replaced in the browser
    assert client.get("/admin/users").status_code == 200  # the browser is now the admin's
    with app.extensions["review"]["store"].engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 1


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(small_tracker, make_app):
    app = make_app(small_tracker)

    def attempt(name):
        response = do_login(app.test_client(), name, "not the right password at all")
        body = response.get_data(as_text=True)
        body = re.sub(r'name="csrf_token" value="[^"]+"', "TOKEN", body).replace(f'value="{name}"', 'value="NAME"')
        cookies = sorted(h.split("=")[0] for h in response.headers.getlist("Set-Cookie"))
        return response.status_code, body, cookies

    known, unknown = attempt(ADMIN[0]), attempt("nobody.here")
    assert known[0] == 401
    assert known == unknown


def test_failed_sign_ins_record_unknown_user_names_as_a_question_mark(small_tracker, make_app):
    app = make_app(small_tracker)
    audit = app.extensions["review"]["audit"]
    typed_password = "Tr0ub4dor&3 typed in the wrong box"
    do_login(app.test_client(), typed_password, "")
    do_login(app.test_client(), "no.such.person", "whatever it is")
    do_login(app.test_client(), ADMIN[0].upper(), "not the password at all")  # a known name, any case
    actors = [r["actor"] for r in audit.entries(action="login_failed")]
    assert actors == ["?", "?", ADMIN[0]]
    assert "Tr0ub4dor" not in str(audit.entries()) and "no.such.person" not in str(audit.entries())


@pytest.mark.parametrize("target", [
    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\t\t/evil.example/x",
    "//evil.example", "///evil.example", "/\\evil.example", "\t//evil.example", " //evil.example",
    "https://evil.example/", "javascript:alert(1)", "/\x00/evil.example",
])
def test_next_never_leaves_the_site(small_tracker, make_app, target):
    from urllib.parse import urlsplit

    from tests.review.conftest import login_token
    app = make_app(small_tracker)
    client = app.test_client()
    page = client.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert 'name="next" value="/"' in page
    response = client.post("/login", data={"csrf_token": login_token(client), "username": ADMIN[0],
                                           "password": ADMIN[1], "next": target})
    location = response.headers["Location"]
    as_a_browser_reads_it = re.sub(r"[\t\n\r]", "", location)
    parts = urlsplit(as_a_browser_reads_it)
    assert location == "/", location
    assert not parts.scheme and not parts.netloc


def test_next_keeps_ordinary_local_pages(small_tracker, make_app):
    from tests.review.conftest import login_token
    app = make_app(small_tracker)
    for target in ("/stats", "/?escalated=yes&page=2", "/conversations/3#review", "/%09x"):
        client = app.test_client()
        response = client.post("/login", data={"csrf_token": login_token(client), "username": ADMIN[0],
                                               "password": ADMIN[1], "next": target})
        assert response.headers["Location"] == target


def test_the_sign_in_address_never_carries_the_search_text(small_tracker, make_app):
    client = make_app(small_tracker).test_client()
    location = client.get("/?q=my+bladder+went+numb&escalated=yes&page=2").headers["Location"]
    assert location == "/login?next=/%3Fescalated%3Dyes%26page%3D2"
    assert client.get("/?q=bladder").headers["Location"] == "/login?next=/"


# -- password changes ----------------------------------------------------------


def test_wrong_current_passwords_are_limited_and_audited(small_tracker, make_app, sign_in):
    app = make_app(small_tracker, login_limit_account=3)
    client = sign_in(app, VIEWER)
    token = csrf_of(client)

    def change(current):
        return client.post("/account/password", data={"csrf_token": token, "current": current,
                                                      "new": "a brand new passphrase",
                                                      "again": "a brand new passphrase"})

    for guess in ("guess one", "guess two", "guess three"):
        assert change(guess).status_code == 400
    limited = change(VIEWER[1])  # even the right password waits now
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in limited.get_data(as_text=True)
    assert client.get("/").status_code == 200  # the session itself stays
    # The same per-account limit as signing in: guessing here doesn't get more tries there.
    assert do_login(app.test_client(), *VIEWER).status_code == 429
    accounts, audit = app.extensions["review"]["accounts"], app.extensions["review"]["audit"]
    assert accounts.verify(VIEWER[0], VIEWER[1]) is not None  # unchanged
    rows = audit.entries(action="password_failed")
    assert [(r["actor"], r["detail"]) for r in rows] == (
        [(VIEWER[0], "wrong current password")] * 3 + [(VIEWER[0], "rate limited")])
    assert "guess" not in str(audit.entries())


def test_a_successful_password_change_clears_the_failures(small_tracker, make_app, sign_in):
    app = make_app(small_tracker, login_limit_account=3)
    client = sign_in(app, VIEWER)
    token = csrf_of(client)
    form = {"csrf_token": token, "new": "a brand new passphrase", "again": "a brand new passphrase"}
    for _ in range(2):
        assert client.post("/account/password", data={**form, "current": "a wrong guess"}).status_code == 400
    assert client.post("/account/password", data={**form, "current": VIEWER[1]}).status_code == 302
    assert app.extensions["review"]["accounts"].retry_after(VIEWER[0], "127.0.0.1") == 0


# -- the database file ---------------------------------------------------------


def test_the_sqlite_database_is_readable_by_its_owner_only(small_tracker, make_app, sign_in, tmp_path):
    import stat

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    db = tmp_path / "fresh" / "review.db"
    app = make_app(small_tracker, app_db=db)
    sign_in(app).get("/")  # writes: sessions, the summary, the audit log
    assert mode(db) == 0o600
    for extra in (db.with_name("review.db-wal"), db.with_name("review.db-shm")):
        if extra.exists():
            assert mode(extra) == 0o600, extra

    # A database made by an earlier version, readable by everyone, loses that.
    old = tmp_path / "old.db"
    old.touch()
    os.chmod(old, 0o644)
    make_app(small_tracker, app_db=old, users=False)
    assert mode(old) == 0o640
