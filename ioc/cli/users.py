"""``ioc-center user`` and ``token``: the dashboard's users and the API tokens of scripts."""

from __future__ import annotations

import click

from common.clikit import Failed
from common.errors import IocEdgeError
from ioc.cli.shared import db_option
from ioc.db import Database


def _password(password_file: str | None) -> str:
    """The first line of ``password_file``, else asked twice without echo."""
    if password_file is None:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with open(password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise Failed(f"{password_file}: cannot read the password: {exc.strerror or exc}") from None


_password_file = click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the password from the first line of this file instead of asking.",
)


@click.group()
def user() -> None:
    """The dashboard's users: viewers read, operators also acknowledge alarms.

    Example: ioc-center user add lan --role operator --db sqlite:///ioc.db
    """


def _role(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The --role choice, checked once the command runs: the roles' module needs the ioc extra."""
    from ioc.web.auth import ROLES

    return click.Choice(ROLES).convert(value, param, ctx)


@user.command("add")
@click.argument("name")
@click.option(
    "--role", metavar="ROLE", callback=_role, required=True, help="viewer (reads) or operator (also acks)."
)
@_password_file
@db_option
def user_add(name: str, role: str, password_file: str | None, url: str) -> None:
    """Add user NAME with a password (asked, or from --password-file; at least 8 characters).

    Example: ioc-center user add lan --role viewer
    """
    from ioc.web.auth import Users

    try:
        Users(Database(url)).add(name, role, _password(password_file))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"added {role} {name}")


@user.command("passwd")
@click.argument("name")
@_password_file
@db_option
def user_passwd(name: str, password_file: str | None, url: str) -> None:
    """Set a new password for NAME; their open sessions end.

    Example: ioc-center user passwd lan
    """
    from ioc.web.auth import Users

    try:
        Users(Database(url)).set_password(name, _password(password_file))
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"new password for {name}")


@user.command("list")
@db_option
def user_list(url: str) -> None:
    """Print the users and their roles, and how long each user locked by failed sign-ins stays locked.

    Example: ioc-center user list
    """
    from ioc.web.auth import Users
    from ioc.web.lockout import SignInLimiter

    try:
        db = Database(url)
        locked = SignInLimiter(db).locked("user")
        for row in Users(db).list():
            lock = locked.get(row["username"])
            note = f"\tlocked for {lock} s (`ioc-center user unlock {row['username']}`)" if lock else ""
            click.echo(f"{row['username']}\t{row['role']}{note}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@user.command("unlock")
@click.argument("name", required=False)
@click.option("--address", default=None, help="Unlock this client address instead (IP, as in the message).")
@db_option
def user_unlock(name: str | None, address: str | None, url: str) -> None:
    """Forget the failed sign-ins of user NAME (or of a client address), ending its lock at once.

    Example: ioc-center user unlock lan; ioc-center user unlock --address 10.0.0.7
    """
    from ioc.web.auth import Users
    from ioc.web.lockout import SignInLimiter

    if (name is None) == (address is None):
        raise Failed("give a user NAME or --address ADDRESS (one of them)")
    try:
        db = Database(url)
        limiter = SignInLimiter(db)
        if address is not None:
            had = limiter.unlock_address(address)
            click.echo(f"unlocked address {address}" if had else f"no failed sign-ins from {address}")
            return
        assert name is not None, "one of NAME and --address, checked above"
        if not limiter.unlock_user(name) and Users(db).get(name) is None:
            raise Failed(f"no user {name!r}: see `ioc-center user list`")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"unlocked {name}")


@user.command("remove")
@click.argument("name")
@db_option
def user_remove(name: str, url: str) -> None:
    """Remove user NAME with their sessions and API tokens (their acknowledgements stay on record).

    Example: ioc-center user remove lan
    """
    from ioc.web.auth import Users

    try:
        Users(Database(url)).remove(name)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"removed {name}")


@click.group()
def token() -> None:
    """API tokens for scripts: each acts as the user it was made for (send Authorization: Bearer TOKEN).

    Example: ioc-center token create lan --label "weekly report"
    """


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What the token is for, shown by `token list`.")
@db_option
def token_create(name: str, label: str, url: str) -> None:
    """Create a token acting as user NAME and print it (only this once; the centre keeps a hash).

    Example: ioc-center token create lan --label "weekly report"
    """
    from ioc.web.auth import Tokens

    try:
        token_id, secret = Tokens(Database(url)).create(name, label)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"token {token_id} for {name} (keep it secret; it is not shown again):", err=True)
    click.echo(secret)


@token.command("list")
@db_option
def token_list(url: str) -> None:
    """Print the tokens: id, user, label.

    Example: ioc-center token list
    """
    from ioc.web.auth import Tokens

    try:
        for row in Tokens(Database(url)).list():
            click.echo(f"{row['token_id']}\t{row['username']}\t{row['label']}")
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@token.command("revoke")
@click.argument("token_id")
@db_option
def token_revoke(token_id: str, url: str) -> None:
    """Revoke the token with id TOKEN_ID (from `token list`).

    Example: ioc-center token revoke 3f2a9c0d1e4b
    """
    from ioc.web.auth import Tokens

    try:
        Tokens(Database(url)).revoke(token_id)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"revoked {token_id}")
