"""The review app: a Flask app factory and its routes.

Every route needs a signed-in staff member except the login page, static files
and /health: ``before_request`` enforces it for every endpoint, including any
added later (tests/review/test_routes.py enumerates them). Signed out, pages
redirect to the login page and exports answer 401. Every state change is a POST
with the session's CSRF token (a GET is 405). Viewers read and review (mark an
escalation handled, tag, add notes); admins also export, manage users, purge and
read the audit log.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional
from urllib.parse import urlencode, urlsplit

from flask import (Flask, Response, abort, g, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import HTTPException

from review import charts, exports
from review.audit import ACTIONS, AuditLog
from review.auth import ROLES, Accounts, AuthError, same
from review.config import ReviewConfig
from review.redaction import redact, redact_id
from review.retention import RetentionError, check_days, purge
from review.store import CHECKLIST, ESCALATED, FilterError, ListFilter, Store, day_range
from review.tracker import (CHECKLIST_QUESTIONS, OUTCOME_LABELS, TrackerReader, iso,
                            notifications)

logger = logging.getLogger(__name__)

SESSION_COOKIE = "review_session"
LOGIN_CSRF_COOKIE = "review_login_csrf"
PUBLIC_ENDPOINTS = {"login", "static", "health"}
# Signed out, these answer 401 instead of redirecting to the login page.
API_ENDPOINTS = {"export_list", "export_transcripts", "export_transcript"}
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
MESSAGES = {
    "handled": "Marked as handled.",
    "reopened": "Marked as not handled.",
    "already": "Someone had already marked it as handled.",
    "tagged": "Tag added.",
    "already_tagged": "It already had that tag.",
    "untagged": "Tag removed.",
    "noted": "Note added.",
    "signed_out": "You have signed out.",
    "expired": "Your session has ended. Please sign in again.",
    "password": "Your password has been changed.",
    "user_saved": "Saved.",
}
TAG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_ ")
MAX_NOTE = 4000
TRANSCRIPT_EXPORT_LIMIT = 20_000


class TrustedProxy:
    """WSGI middleware: takes X-Forwarded-For/-Proto only from the configured proxy addresses."""

    def __init__(self, app: Callable, proxies: frozenset) -> None:
        self.app = app
        self.proxies = proxies

    def __call__(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        if self.proxies and environ.get("REMOTE_ADDR") in self.proxies:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                environ["REMOTE_ADDR"] = forwarded.split(",")[-1].strip()[:64]
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)


def _safe_next(target: Optional[str]) -> str:
    """A local path to go back to after signing in; anything else becomes '/'.

    Control characters and spaces are refused outright: browsers drop tabs and newlines
    from a URL, so "/<tab>/evil.example" would become "//evil.example", another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7f for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def create_app(config: Optional[ReviewConfig] = None) -> Flask:
    config = config or ReviewConfig.from_env()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    app.jinja_env.autoescape = True  # every template, whatever its extension
    reader = TrackerReader(config.tracker_url)
    store = Store(config.database_url, reader)
    accounts = Accounts(store.engine, idle_seconds=config.idle_minutes * 60,
                        absolute_seconds=config.session_hours * 3600,
                        limit_account=config.login_limit_account, limit_ip=config.login_limit_ip,
                        window_seconds=config.login_window_minutes * 60)
    audit = AuditLog(store.engine)
    app.extensions["review"] = {"config": config, "store": store, "accounts": accounts, "audit": audit}
    app.wsgi_app = TrustedProxy(app.wsgi_app, config.trusted_proxies)  # type: ignore[method-assign]

    # -- template helpers ----------------------------------------------------

    @app.template_filter("r")
    def redact_filter(value: Any) -> Any:
        return redact(value, config.redact_contacts)

    @app.template_filter("rid")
    def redact_id_filter(value: Any) -> Any:
        return redact_id(value or "", config.redact_contacts)

    @app.template_filter("when")
    def when_filter(ts: Optional[float]) -> str:
        if ts is None:
            return ""
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

    @app.template_filter("conf")
    def conf_filter(value: Optional[float]) -> str:
        return "" if value is None else f"{value:.2f}"

    @app.template_filter("pct")
    def pct_filter(value: float) -> str:
        return f"{value * 100:.1f}%"

    @app.context_processor
    def helpers() -> Dict[str, Any]:
        session = getattr(g, "session", None)
        return {
            "user": session.user if session else None,
            "csrf_token": session.csrf_token if session else "",
            "redacting": config.redact_contacts,
            "outcome_labels": OUTCOME_LABELS,
            "low_confidence": config.low_confidence,
        }

    # -- sign-in required everywhere -----------------------------------------

    def secure_request() -> bool:
        return config.secure_cookies or request.is_secure

    def client_ip() -> str:
        return (request.remote_addr or "?")[:64]

    @app.before_request
    def require_sign_in() -> Optional[Response]:
        g.session = None
        endpoint = request.endpoint
        if endpoint in PUBLIC_ENDPOINTS:
            return None
        session = accounts.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if endpoint in API_ENDPOINTS or request.accept_mimetypes.best == "application/json":
                return Response("Sign in required.\n", status=401, mimetype="text/plain")
            target = _return_path() if request.method == "GET" else "/"
            expired = "&msg=expired" if request.cookies.get(SESSION_COOKIE) else ""
            return redirect(url_for("login") + "?next=" + _quote(_safe_next(target.rstrip("?"))) + expired)
        g.session = session
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if not same(request.form.get("csrf_token"), session.csrf_token):
                abort(403, description="The form was out of date or not sent from this app (CSRF check). "
                                       "Go back, reload the page and try again.")
        return None

    def admin_only(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not g.session.user.is_admin:
                abort(403, description="Only an admin can do this.")
            return view(*args, **kwargs)
        wrapper.required_role = "admin"  # type: ignore[attr-defined]
        return wrapper

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        if secure_request():
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        response.headers.pop("Server", None)
        return response

    def set_cookie(response: Response, name: str, value: str, max_age: Optional[int] = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                            samesite="Strict", secure=secure_request())

    # -- errors: clear pages, never a stack trace ----------------------------

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if request.endpoint in API_ENDPOINTS and error.code in (400, 403, 404):
            return Response(f"{error.description}\n", status=error.code, mimetype="text/plain")
        response = render_template("error.html", code=error.code, title=error.name,
                                   description=error.description), error.code
        return response

    @app.errorhandler(FilterError)
    def filter_error(error: FilterError) -> Any:
        return render_template("error.html", code=400, title="Bad filter",
                               description=str(error), back=url_for("conversations")), 400

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        logger.error("Unexpected error on %s %s: %s", request.method, request.endpoint,
                     type(error).__name__)
        logger.debug("Details", exc_info=error)
        return render_template("error.html", code=500, title="Something went wrong",
                               description="The error was logged. Please try again."), 500

    # -- public --------------------------------------------------------------

    @app.get("/health")
    def health() -> Response:
        return Response(json.dumps({"status": "ok"}), mimetype="application/json")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        next_url = _safe_next(request.values.get("next"))
        token = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not token or len(token) > 100:
            token = secrets.token_urlsafe(32)
        message = MESSAGES.get(request.args.get("msg", ""), "")

        def page(error: str = "", status: int = 200, username: str = "") -> Response:
            response = app.make_response((render_template(
                "login.html", login_csrf=token, next_url=next_url, error=error, message=message,
                username=username, no_users=accounts.count_users() == 0), status))
            set_cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
            return response

        if request.method == "GET":
            return page()
        if not same(request.form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)):
            return page("The sign-in form was out of date. Please try again.", 403)
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        ip = client_ip()
        known = accounts.get_user(username) if username else None
        # What was typed as a user name may be a password typed in the wrong box: an unknown
        # name is recorded as "?".
        who = known.username if known else "?"
        wait = accounts.retry_after(username, ip)
        if wait:
            audit.record(who, "login_failed", detail="rate limited", ip=ip)
            response = app.make_response((render_template("rate_limited.html", wait=wait), 429))
            response.headers["Retry-After"] = str(wait)
            return response
        user = accounts.verify(username, password) if len(password) <= 1024 else None
        if user is None:
            accounts.record_failure(username, ip)
            audit.record(who, "login_failed", ip=ip)
            logger.info("Failed sign-in from %s", ip)
            return page("Wrong user name or password, or the account is disabled.", 401, username)
        accounts.clear_failures(username)
        incoming = request.cookies.get(SESSION_COOKIE)
        if incoming:
            accounts.end_session(incoming)  # whoever was signed in in this browser is signed out
        session_token = accounts.start_session(user, ip)
        audit.record(user.username, "login", ip=ip)
        logger.info("%s signed in from %s", user.username, ip)
        response = redirect(next_url)
        set_cookie(response, SESSION_COOKIE, session_token)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    # -- signed in -----------------------------------------------------------

    @app.post("/logout")
    def logout() -> Response:
        accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
        audit.record(g.session.user.username, "logout", ip=client_ip())
        response = redirect(url_for("login", msg="signed_out"))
        response.delete_cookie(SESSION_COOKIE, path="/", samesite="Strict", httponly=True,
                               secure=secure_request())
        return response

    def refresh_summary() -> str:
        """Brings the list up to date; a message instead of an error when the store can't be read."""
        try:
            store.refresh()
        except Exception as error:  # the tracker store is down or unreadable
            logger.warning("Could not read the tracker store: %s", type(error).__name__)
            return "The tracker store could not be read just now; the list may be out of date."
        if not reader.available():
            return "The tracker store has no conversations yet (Rasa creates it on its first start)."
        return ""

    @app.get("/")
    def conversations() -> Any:
        filters = ListFilter.parse(request.args)
        warning = refresh_summary()
        page = store.list_page(filters, config.low_confidence, config.page_size)
        if filters.q:  # recorded with the filters in words, never the search text (it may be patient text)
            audit.record(g.session.user.username, "search",
                         detail=f"{filters.describe()} (page {page.page}, {page.total} found)", ip=client_ip())
        return render_template(
            "conversations.html", page=page, filters=filters, warning=warning,
            escalated_options=ESCALATED, checklist_options=CHECKLIST, all_tags=store.all_tags(),
            page_url=lambda n: url_for("conversations", **filters.params(page=n)),
            export_params=filters.params(), message=MESSAGES.get(request.args.get("msg", ""), ""))

    def load(pk: int) -> Dict[str, Any]:
        summary = store.summary_by_pk(pk)
        if summary is None:
            refresh_summary()
            summary = store.summary_by_pk(pk)
        if summary is None:
            abort(404, description="There is no such conversation (it may have been purged).")
        return summary

    @app.get("/conversations/<int:pk>")
    def conversation(pk: int) -> Any:
        refresh_summary()
        summary = load(pk)
        cid = summary["conversation_id"]
        convo = reader.conversation(cid)
        if convo is None:
            abort(404, description="This conversation is no longer in the tracker store.")
        audit.record(g.session.user.username, "view", cid, ip=client_ip())
        outbox = notifications(config.outbox_path, cid) if convo.escalated else None
        return render_template(
            "conversation.html", summary=summary, convo=convo, tags=store.tags_of([cid]).get(cid, []),
            notes=store.notes_of(cid), handled=store.handled_of(cid), outbox=outbox,
            questions=CHECKLIST_QUESTIONS, message=MESSAGES.get(request.args.get("msg", ""), ""),
            passages=_passage_titles())

    def back_to(pk: int, msg: str) -> Response:
        return redirect(url_for("conversation", pk=pk, msg=msg) + "#review")

    @app.post("/conversations/<int:pk>/handled")
    def mark_handled(pk: int) -> Response:
        summary = load(pk)
        if not summary["escalated"]:
            abort(400, description="Only an escalated conversation can be marked handled.")
        cid = summary["conversation_id"]
        if not store.mark_handled(cid, g.session.user.username):
            return back_to(pk, "already")
        audit.record(g.session.user.username, "handle", cid, ip=client_ip())
        return back_to(pk, "handled")

    @app.post("/conversations/<int:pk>/reopen")
    def reopen(pk: int) -> Response:
        cid = load(pk)["conversation_id"]
        if store.reopen(cid):
            audit.record(g.session.user.username, "reopen", cid, ip=client_ip())
        return back_to(pk, "reopened")

    def clean_tag(raw: str) -> str:
        tag = " ".join((raw or "").lower().split())
        if not tag or len(tag) > 40 or not set(tag) <= TAG_CHARS:
            abort(400, description="A tag is 1 to 40 lower-case letters, digits, spaces, - or _.")
        return tag

    @app.post("/conversations/<int:pk>/tags")
    def add_tag(pk: int) -> Response:
        cid = load(pk)["conversation_id"]
        tag = clean_tag(request.form.get("tag", ""))
        if not store.add_tag(cid, tag, g.session.user.username):
            return back_to(pk, "already_tagged")  # a double submit, or someone else just added it
        audit.record(g.session.user.username, "tag", cid, detail=f"added {tag}", ip=client_ip())
        return back_to(pk, "tagged")

    @app.post("/conversations/<int:pk>/tags/remove")
    def remove_tag(pk: int) -> Response:
        cid = load(pk)["conversation_id"]
        tag = clean_tag(request.form.get("tag", ""))
        if store.remove_tag(cid, tag):
            audit.record(g.session.user.username, "untag", cid, detail=f"removed {tag}", ip=client_ip())
        return back_to(pk, "untagged")

    @app.post("/conversations/<int:pk>/notes")
    def add_note(pk: int) -> Response:
        cid = load(pk)["conversation_id"]
        text = (request.form.get("note") or "").strip()
        if not text or len(text) > MAX_NOTE:
            abort(400, description=f"A note is 1 to {MAX_NOTE} characters.")
        store.add_note(cid, text, g.session.user.username)
        audit.record(g.session.user.username, "note", cid, ip=client_ip())
        return back_to(pk, "noted")

    @app.get("/stats")
    def stats() -> Any:
        chosen = ListFilter.parse({"from": request.args.get("from", ""), "to": request.args.get("to", "")})
        warning = refresh_summary()
        start, end = day_range(chosen.date_from, chosen.date_to, store.latest_day())
        if (end - start).days > 366:
            raise FilterError("The statistics cover at most 366 days at a time.")
        if start > end:
            raise FilterError("the date range ends before it starts")
        data = store.stats(start, end, config.low_confidence)
        days = data["days"]
        short = [(d["day"][5:], d) for d in days]
        return render_template(
            "stats.html", data=data, start=start, end=end, warning=warning,
            conversations_chart=charts.bar_chart([(k, d["conversations"]) for k, d in short],
                                                 "Conversations per day"),
            escalations_chart=charts.bar_chart([(k, d["escalations"]) for k, d in short],
                                               "Escalations per day", color=charts.ACCENT),
            fallback_chart=charts.bar_chart([(k, d["fallback_rate"]) for k, d in short],
                                            "Fallback rate per day", fmt=lambda v: f"{v * 100:.0f}%"),
            topics_chart=charts.hbar_chart(data["top_topics"], "Top topics (patient questions)"))

    # -- exports (admin) -----------------------------------------------------

    def export_response(body: Any, extension: str, name: str) -> Response:
        mimetype = "text/csv" if extension == "csv" else "application/json"
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def export_recorder(what: str, total: int) -> Callable[[List[str]], None]:
        """Audits a bulk export: one row for the request now, then one per conversation, each
        batch recorded before it is streamed (so what was sent is what the log says)."""
        actor, ip = g.session.user.username, client_ip()
        audit.record(actor, "export", None, detail=f"{what}; {total} conversation(s)", ip=ip)

        def record(conversation_ids: List[str]) -> None:
            audit.record_many(actor, "export", conversation_ids, detail=what, ip=ip)
        return record

    def check_format(fmt: str) -> str:
        if fmt not in ("csv", "json"):
            abort(404, description="Exports are .csv or .json.")
        return fmt

    @app.get("/export/conversations.<fmt>")
    @admin_only
    def export_list(fmt: str) -> Response:
        check_format(fmt)
        filters = ListFilter.parse(request.args)
        refresh_summary()
        total = store.list_page(filters, config.low_confidence, 1).total
        what = f"conversation list ({fmt}): {filters.describe()}"
        record_export = export_recorder(what, total)
        redacting = config.redact_contacts

        def records():
            batch = []
            for row in store.iter_filtered(filters, config.low_confidence):
                batch.append(row)
                if len(batch) == 200:
                    yield from _with_tags(batch)
                    batch = []
            yield from _with_tags(batch)

        def _with_tags(batch):
            if not batch:
                return
            ids = [r["conversation_id"] for r in batch]
            record_export(ids)  # before any of them is sent
            tags = store.tags_of(ids)
            for row in batch:
                yield exports.list_record(row, tags.get(row["conversation_id"], []), redacting)

        body = (exports.list_csv(records()) if fmt == "csv" else
                exports.json_array(records(), {"exported_at": iso(time.time()),
                                               "filters": filters.describe(), "count": total}))
        return export_response(_guarded(body, "conversation list"), fmt, exports.filename("conversations", fmt))

    def transcript_extra(cid: str) -> Dict[str, Any]:
        handled = store.handled_of(cid)
        return {
            "tags": store.tags_of([cid]).get(cid, []),
            "notes": [{"author": n["author"], "time": iso(n["created_at"]), "text": n["text"]}
                      for n in store.notes_of(cid)],
            "handled": ({"by": handled["handled_by"], "at": iso(handled["handled_at"])} if handled else None),
            "notifications": notifications(config.outbox_path, cid),
        }

    @app.get("/export/transcripts.<fmt>")
    @admin_only
    def export_transcripts(fmt: str) -> Response:
        check_format(fmt)
        filters = ListFilter.parse(request.args)
        refresh_summary()
        total = store.list_page(filters, config.low_confidence, 1).total
        if total > TRANSCRIPT_EXPORT_LIMIT:
            abort(400, description=f"That is {total} conversations; export at most "
                                   f"{TRANSCRIPT_EXPORT_LIMIT} transcripts at once (narrow the filters).")
        record_export = export_recorder(f"transcripts ({fmt}): {filters.describe()}", total)
        redacting = config.redact_contacts

        def convos():
            ids = []
            for row in store.iter_filtered(filters, config.low_confidence):
                ids.append(row["conversation_id"])
                if len(ids) == 100:
                    record_export(ids)
                    yield from reader.conversations(ids)
                    ids = []
            if ids:
                record_export(ids)
                yield from reader.conversations(ids)

        if fmt == "csv":
            body = exports.transcripts_csv(convos(), redacting)
        else:
            body = exports.json_array(
                (exports.transcript_record(c, transcript_extra(c.conversation_id), redacting) for c in convos()),
                {"exported_at": iso(time.time()), "filters": filters.describe(), "count": total})
        return export_response(_guarded(body, "transcripts"), fmt, exports.filename("transcripts", fmt))

    @app.get("/conversations/<int:pk>/transcript.<fmt>")
    @admin_only
    def export_transcript(pk: int, fmt: str) -> Response:
        check_format(fmt)
        cid = load(pk)["conversation_id"]
        convo = reader.conversation(cid)
        if convo is None:
            abort(404, description="This conversation is no longer in the tracker store.")
        audit.record(g.session.user.username, "export", cid, detail=f"transcript ({fmt})", ip=client_ip())
        redacting = config.redact_contacts
        if fmt == "csv":
            body = exports.transcripts_csv([convo], redacting)
        else:
            body = iter([json.dumps(exports.transcript_record(convo, transcript_extra(cid), redacting),
                                    ensure_ascii=False, default=str, indent=1)])
        return export_response(_guarded(body, "transcript"), fmt, exports.filename("transcript", fmt, pk))

    # -- account -------------------------------------------------------------

    @app.get("/account")
    def account() -> Any:
        return render_template("account.html", message=MESSAGES.get(request.args.get("msg", ""), ""))

    @app.post("/account/password")
    def change_password() -> Any:
        user = g.session.user
        current = request.form.get("current", "")
        new, again = request.form.get("new", ""), request.form.get("again", "")
        ip = client_ip()
        # Guessing the current password from a session left open counts against the same
        # limits as failed sign-ins (per account and per address).
        wait = accounts.retry_after(user.username, ip)
        if wait:
            audit.record(user.username, "password_failed", detail="rate limited", ip=ip)
            response = app.make_response((render_template(
                "account.html", error=f"Too many wrong passwords. Try again in {-(-wait // 60)} minute(s)."), 429))
            response.headers["Retry-After"] = str(wait)
            return response
        error = ""
        if len(current) > 1024 or accounts.verify(user.username, current) is None:
            accounts.record_failure(user.username, ip)
            audit.record(user.username, "password_failed", detail="wrong current password", ip=ip)
            logger.info("Wrong current password for %s from %s", user.username, ip)
            error = "The current password is wrong."
        elif new != again:
            error = "The two new passwords differ."
        else:
            try:
                accounts.set_password(user.username, new)  # ends every session of the account
            except AuthError as problem:
                error = str(problem)
        if error:
            return render_template("account.html", error=error), 400
        accounts.clear_failures(user.username)
        audit.record(user.username, "password", detail="changed own password", ip=ip)
        response = redirect(url_for("account", msg="password"))
        set_cookie(response, SESSION_COOKIE, accounts.start_session(user, client_ip()))
        return response

    # -- admin ---------------------------------------------------------------

    @app.get("/admin/users")
    @admin_only
    def users() -> Any:
        return render_template("users.html", users=accounts.list_users(), roles=ROLES,
                               message=MESSAGES.get(request.args.get("msg", ""), ""))

    @app.post("/admin/users")
    @admin_only
    def create_user() -> Any:
        username = request.form.get("username", "")
        role = request.form.get("role", "")
        password, again = request.form.get("password", ""), request.form.get("again", "")
        try:
            if password != again:
                raise AuthError("The two passwords differ.")
            created = accounts.create_user(username, password, role)
        except AuthError as error:
            return render_template("users.html", users=accounts.list_users(), roles=ROLES,
                                   error=str(error)), 400
        audit.record(g.session.user.username, "user_admin",
                     detail=f"created {created.username} ({created.role})", ip=client_ip())
        return redirect(url_for("users", msg="user_saved"))

    @app.post("/admin/users/<int:user_id>")
    @admin_only
    def update_user(user_id: int) -> Any:
        target = accounts.get_user_by_id(user_id)
        if target is None:
            abort(404, description="There is no such user.")
        action = request.form.get("action", "")
        try:
            if action == "role":
                updated = accounts.update_user(target.username, role=request.form.get("role", ""))
                detail = f"{target.username}: role {updated.role}"
            elif action in ("disable", "enable"):
                if action == "disable" and target.id == g.session.user.id:
                    raise AuthError("You can't disable your own account.")
                accounts.update_user(target.username, disabled=action == "disable")
                detail = f"{target.username}: {action}d"
            else:
                abort(400, description="Unknown change.")
        except AuthError as error:
            return render_template("users.html", users=accounts.list_users(), roles=ROLES,
                                   error=str(error)), 400
        audit.record(g.session.user.username, "user_admin", detail=detail, ip=client_ip())
        return redirect(url_for("users", msg="user_saved"))

    @app.get("/admin/audit")
    @admin_only
    def audit_page() -> Any:
        page_raw = request.args.get("page", "1")
        if not page_raw.isdigit() or int(page_raw) < 1:
            abort(400, description="page must be a whole number from 1")
        action = request.args.get("action", "")
        if action and action not in ACTIONS:
            abort(400, description="Unknown action.")
        actor = request.args.get("actor", "")[:64]
        conversation_id = request.args.get("conversation", "")[:255]
        result = audit.page(int(page_raw), 50, actor=actor, action=action,
                            conversation_id=conversation_id)
        params = {k: v for k, v in (("actor", actor), ("action", action),
                                    ("conversation", conversation_id)) if v}
        return render_template("audit.html", result=result, actions=ACTIONS, actor=actor,
                               action=action, conversation=conversation_id,
                               page_url=lambda n: url_for("audit_page", page=n, **params))

    @app.get("/admin/purge")
    @admin_only
    def purge_page() -> Any:
        return render_template("purge.html")

    @app.post("/admin/purge")
    @admin_only
    def purge_run() -> Any:
        try:
            days = check_days(request.form.get("days", ""))
        except RetentionError as error:
            return render_template("purge.html", error=str(error)), 400
        step = request.form.get("step", "preview")
        if step == "preview":
            result = purge(store, audit, days, g.session.user.username, dry_run=True, ip=client_ip(),
                           outbox_path=config.outbox_path)
            return render_template("purge.html", preview=result, days=days)
        if step != "confirm" or request.form.get("confirm", "") != "DELETE":
            return render_template("purge.html", days=days,
                                   error="Type DELETE in the box to confirm the purge."), 400
        result = purge(store, audit, days, g.session.user.username, ip=client_ip(),
                       outbox_path=config.outbox_path)
        return render_template("purge.html", done=result, days=days)

    return app


def _return_path() -> str:
    """The page a signed-out GET asked for, to come back to after signing in, less the text
    search: search terms may be patient text, and the login URL is one more place (history,
    proxy logs) they would be kept."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "q"]
    return request.path + ("?" + urlencode(args) if args else "")


class ExportInterrupted(Exception):
    """An export that failed after it had started streaming (the download is cut short)."""


def _guarded(body: Iterable[str], what: str) -> Iterator[str]:
    """Streams an export; an error on the way is logged by its type only (a database error's
    message could carry patient text) and the download is cut short rather than ending
    as if it were complete."""
    try:
        yield from body
    except Exception as error:
        logger.error("The %s export stopped part way: %s", what, type(error).__name__)
        raise ExportInterrupted(f"the {what} export stopped part way") from None


def _quote(value: str) -> str:
    from urllib.parse import quote
    return quote(value, safe="/")


def _passage_titles() -> Dict[str, str]:
    try:
        from knowledge import load_passages
        return {pid: p.title for pid, p in load_passages().items()}
    except Exception:  # the titles are a nicety
        return {}


def route_roles(app: Flask) -> Dict[str, str]:
    """Each endpoint's required role: public, viewer (any signed-in staff) or admin."""
    roles = {}
    for endpoint, view in app.view_functions.items():
        if endpoint in PUBLIC_ENDPOINTS:
            roles[endpoint] = "public"
        else:
            roles[endpoint] = getattr(view, "required_role", "viewer")
    return roles

