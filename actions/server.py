"""The action server as deployed: rasa-sdk's app, on loopback, answering only calls with the shared token.

    ACTION_SERVER_TOKEN=... python -m actions.server [--host 127.0.0.1] [--port 5055]

It is rasa-sdk 3.6's own Sanic app (``rasa_sdk.endpoint.create_app`` over the
``actions`` package) with one request middleware in front:

* every request except ``GET /health`` must carry ``Authorization: Bearer <token>``
  with the shared token from ``ACTION_SERVER_TOKEN``; otherwise the answer is 401
  ``{"error": ...}``. Rasa sends it from the endpoints file
  (``action_endpoint: headers: {Authorization: "Bearer ${ACTION_SERVER_TOKEN}"}``);
* ``POST /webhook`` must be a JSON object with a ``next_action`` string, or the answer
  is 400 ``{"error": ...}`` (rasa-sdk answers a JSON list or string with a 500).

It listens on 127.0.0.1 unless ``--host`` (or ``ACTION_SERVER_HOST``) names another
address, which should be a private one: the action server is never public. Without a
token it refuses to start, unless ``--allow-no-token`` says so (local development).
``/health`` needs no token, for load balancers and probes; it tells nothing.
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import zlib
from typing import List, Optional

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from sanic import Sanic, response
from sanic.request import Request

logger = logging.getLogger(__name__)

TOKEN_ENV = "ACTION_SERVER_TOKEN"
OPEN_PATHS = {("GET", "/health")}


def _error(status: int, message: str) -> response.HTTPResponse:
    return response.json({"error": message}, status=status)


def _webhook_body_error(request: Request) -> Optional[str]:
    """Why a /webhook body can't be an action call, or None when it can."""
    try:
        if request.headers.get("Content-Encoding") == "deflate":
            body = json.loads(zlib.decompress(request.body))
        else:
            body = json.loads(request.body or b"null")
    except (ValueError, zlib.error):
        return "the body must be JSON: an action call from Rasa"
    if not isinstance(body, dict):
        return "the body must be a JSON object: an action call from Rasa"
    if not isinstance(body.get("next_action"), str) or not body["next_action"]:
        return '"next_action" must be the name of an action'
    if "tracker" in body and not isinstance(body["tracker"], dict):
        return '"tracker" must be a JSON object'
    return None


def build_app(token: Optional[str], actions_package: str = "actions") -> Sanic:
    """rasa-sdk's app with the token check and the body check in front."""
    app = create_app(actions_package, cors_origins=[])
    expected = f"Bearer {token}".encode() if token else None

    @app.middleware("request")
    async def check_token(request: Request) -> Optional[response.HTTPResponse]:
        if (request.method, request.path) in OPEN_PATHS:
            return None
        if expected is not None:
            given = (request.headers.get("Authorization") or "").encode()
            if not hmac.compare_digest(given, expected):
                logger.warning("Action server: refused a %s %s without the shared token", request.method,
                               request.path)
                return _error(401, "missing or wrong token: send 'Authorization: Bearer <ACTION_SERVER_TOKEN>'")
        if request.method == "POST" and request.path == "/webhook":
            problem = _webhook_body_error(request)
            if problem:
                return _error(400, problem)
        return None

    return app


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("ACTION_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTION_SERVER_PORT", "5055")))
    parser.add_argument("--allow-no-token", action="store_true",
                        help=f"start without {TOKEN_ENV} (every caller is then trusted)")
    parser.add_argument("--loglevel", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV) or None
    if not token and not args.allow_no_token:
        parser.error(f"{TOKEN_ENV} is not set: set the shared token (Rasa sends it from the endpoints file), "
                     "or pass --allow-no-token for local development")
    utils.configure_colored_logging(args.loglevel)
    utils.update_sanic_log_level()
    app = build_app(token)
    logger.info("Action server on http://%s:%d (%s)", args.host, args.port,
                "shared token required" if token else "NO token: every caller is trusted")
    app.run(host=args.host, port=args.port, workers=1, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
