"""The review app's command line.

    python -m review.manage create-user NAME --role admin|viewer [--password-stdin]
    python -m review.manage list-users
    python -m review.manage disable-user NAME | enable-user NAME
    python -m review.manage set-role NAME admin|viewer
    python -m review.manage set-password NAME [--password-stdin]
    python -m review.manage purge --older-than-days N [--dry-run]
    python -m review.manage refresh

Passwords are asked for twice at a prompt (never on the command line, where they
would stay in the shell history), or read from standard input with
``--password-stdin`` for scripts. Weak or short passwords are refused.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import sys
from typing import List, Optional

from review.config import ConfigError, ReviewConfig


def _services(config: Optional[ReviewConfig] = None):
    from review.audit import AuditLog
    from review.auth import Accounts
    from review.store import Store
    from review.tracker import TrackerReader

    config = config or ReviewConfig.from_env()
    store = Store(config.database_url, TrackerReader(config.tracker_url))
    accounts = Accounts(store.engine, config.idle_minutes * 60, config.session_hours * 3600,
                        config.login_limit_account, config.login_limit_ip,
                        config.login_window_minutes * 60)
    return config, store, accounts, AuditLog(store.engine)


def _read_password(from_stdin: bool, username: str) -> str:
    from review.auth import password_problem

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    for _ in range(3):
        first = getpass.getpass(f"Password for {username} (at least 12 characters): ")
        problem = password_problem(first, username)
        if problem:
            print(f"Password refused: {problem}", file=sys.stderr)
            continue
        if getpass.getpass("The same password again: ") != first:
            print("The two passwords differ.", file=sys.stderr)
            continue
        return first
    raise SystemExit("No password set.")


def main(argv: Optional[List[str]] = None, config: Optional[ReviewConfig] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m review.manage",
                                     description="Staff accounts and retention for the clinic review app.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a staff account")
    create.add_argument("username")
    create.add_argument("--role", choices=["admin", "viewer"], required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    commands.add_parser("list-users", help="list staff accounts")
    for name, helptext in (("disable-user", "disable an account (and end its sessions)"),
                           ("enable-user", "enable a disabled account")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("username")
    role = commands.add_parser("set-role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("role", choices=["admin", "viewer"])
    password = commands.add_parser("set-password", help="set a new password (ends the account's sessions)")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    purge = commands.add_parser("purge", help="delete conversations older than N days")
    purge.add_argument("--older-than-days", required=True, type=int, metavar="N")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    commands.add_parser("refresh", help="bring the conversation summary up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from review.auth import AuthError
    from review.retention import RetentionError, purge as run_purge

    try:
        config, store, accounts, audit = _services(config)
        actor = f"cli:{getpass.getuser()}"
        if args.command == "create-user":
            username = accounts.check_username(args.username)
            if accounts.get_user(username):
                raise AuthError(f"There is already a user called {username}.")
            user = accounts.create_user(username, _read_password(args.password_stdin, username), args.role)
            audit.record(actor, "user_admin", detail=f"created {user.username} ({user.role})")
            print(f"Created {user.role} {user.username}. Sign in at http://localhost:8081/ "
                  "(or wherever the review app is served).")
        elif args.command == "list-users":
            rows = accounts.list_users()
            if not rows:
                print("No staff accounts yet.")
            for row in rows:
                state = "disabled" if row["disabled"] else "active"
                print(f"{row['username']:<32} {row['role']:<7} {state}")
        elif args.command in ("disable-user", "enable-user"):
            disabled = args.command == "disable-user"
            user = accounts.update_user(args.username, disabled=disabled)
            audit.record(actor, "user_admin", detail=f"{user.username}: {'disabled' if disabled else 'enabled'}")
            print(f"{user.username} is now {'disabled' if disabled else 'active'}.")
        elif args.command == "set-role":
            user = accounts.update_user(args.username, role=args.role)
            audit.record(actor, "user_admin", detail=f"{user.username}: role {user.role}")
            print(f"{user.username} is now {user.role}.")
        elif args.command == "set-password":
            user = accounts.get_user(args.username)
            if user is None:
                raise AuthError(f"There is no user called {args.username}.")
            accounts.set_password(user.username, _read_password(args.password_stdin, user.username))
            audit.record(actor, "password", detail=f"set password of {user.username}")
            print(f"New password set for {user.username}; their sessions were ended.")
        elif args.command == "purge":
            result = run_purge(store, audit, args.older_than_days, actor, dry_run=args.dry_run,
                               outbox_path=config.outbox_path)
            print(("Dry run: " if result.dry_run else "") + result.describe() + ".")
        elif args.command == "refresh":
            changed = store.refresh()
            print(f"{changed} conversation(s) updated.")
    except (AuthError, RetentionError, ConfigError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
