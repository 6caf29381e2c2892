"""Runs the review app under waitress:  python -m review [--host 127.0.0.1] [--port 8081]

It listens on 127.0.0.1 by default: set REVIEW_HOST to the clinic's internal
interface to reach it from other machines, and put it behind an HTTPS proxy
(REVIEW_TRUSTED_PROXIES, REVIEW_SECURE_COOKIES=1) when it leaves one machine.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from review.config import DEFAULT_HOST, DEFAULT_PORT, ConfigError, ReviewConfig

logger = logging.getLogger("review")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve the clinic review app.")
    parser.add_argument("--host", default=os.environ.get("REVIEW_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("REVIEW_PORT", DEFAULT_PORT)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("REVIEW_THREADS", 4)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ReviewConfig.from_env()
    except ConfigError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2

    from waitress import serve

    from review.app import create_app

    app = create_app(config)
    accounts = app.extensions["review"]["accounts"]
    logger.info("Clinic review app on http://%s:%d/ (tracker store: %s)", args.host, args.port,
                app.extensions["review"]["store"].reader.fingerprint())
    if accounts.count_users() == 0:
        logger.warning("No staff account yet. Create the first admin with: "
                       ".venv/bin/python -m review.manage create-user NAME --role admin")
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="", clear_untrusted_proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
