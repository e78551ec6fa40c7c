"""`yishi …`: the command line of DESIGN.md. Messages go to the operator in YISHI_LOCALE."""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import io
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config, ConfigError
from flows.errors import Refused
from locales import N_, Translator
from storage.migrate import NoDatabase, SchemaBehind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.channels import ChannelUnavailable


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", metavar="URL", help="database URL (default: $DATABASE_URL, else sqlite:///yishi.db)"
    )
    with_community = argparse.ArgumentParser(add_help=False)
    with_community.add_argument(
        "--community", metavar="NAME", help="which community, where the database holds several"
    )

    p = argparse.ArgumentParser(
        prog="yishi", description="Yishi (议事): residents raise, discuss, decide and act."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_ = sub.add_parser(
        "demo",
        parents=[common],
        help="a fresh demo community in its own SQLite file, its public board on 127.0.0.1, then the console",
    )
    demo_.add_argument("--no-board", action="store_true", help="the console alone, without serving the board")
    sub.add_parser("console", parents=[common], help="interactive, or a script on stdin (one message a line)")
    imp = sub.add_parser(
        "import",
        parents=[common],
        help="import the register (columns community,area,grid,building,room,name,role): an Excel "
        "workbook (.xlsx, its first sheet) or CSV in UTF-8 or GB18030",
    )
    imp.add_argument("file", metavar="REGISTER")
    imp.add_argument("--dry-run", action="store_true", help="say what would change, and write nothing")
    inv = sub.add_parser(
        "invites", parents=[common, with_community], help="invite codes: name,building,room,code"
    )
    inv.add_argument(
        "--format",
        choices=("csv", "links", "html"),
        default="csv",
        help="csv: name,building,room,code; links: name,building,room,link (Telegram deep links); "
        "html: slips to print (A4), with QR codes of the deep links where the bot is configured",
    )
    inv.add_argument(
        "--building", metavar="B", help="only the people of building B (the slips a leader hands out)"
    )
    inv.add_argument(
        "--reissue",
        metavar="NAME",
        help="a new code for NAME (or NAME@BUILDING-ROOM); their unused one stops working",
    )
    acc = sub.add_parser("accounts", help="residents' chat accounts")
    acc_sub = acc.add_subparsers(dest="action", required=True, metavar="ACTION")
    unbind = acc_sub.add_parser(
        "unbind",
        parents=[common, with_community],
        help="NAME's chat accounts no longer speak for them (a lost phone)",
    )
    unbind.add_argument("name", metavar="NAME")
    exp = sub.add_parser("export", parents=[common, with_community], help="the public record")
    exp.add_argument("--format", choices=("json", "csv"), default="json")
    st = sub.add_parser(
        "settings", parents=[common, with_community], help="read or change the community's rules"
    )
    st.add_argument("key", nargs="?")
    st.add_argument("value", nargs="?")
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="apply the Alembic migrations up to the newest")
    clock = sub.add_parser(
        "clock", parents=[common], help="the scheduler and sender: deadlines, reminders, digests"
    )
    clock.add_argument(
        "--once", action="store_true", help="do what is due and send what is queued, then exit"
    )
    tg = sub.add_parser(
        "telegram", parents=[common], help="Telegram by long polling, with the clock in this process"
    )
    hook = tg.add_mutually_exclusive_group()
    hook.add_argument(
        "--set-webhook", action="store_true", help="register TELEGRAM_WEBHOOK_URL with its secret, then exit"
    )
    hook.add_argument(
        "--delete-webhook", action="store_true", help="remove the webhook (to poll again), then exit"
    )
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="the web process: the public board, POST /telegram, GET|POST /wechat, GET /healthz",
    )
    serve.add_argument("--port", type=int, metavar="P", help="default: $PORT, else 8000")
    serve.add_argument("--host", default="0.0.0.0", help="default: 0.0.0.0 (every interface)")
    box = sub.add_parser("outbox", parents=[common], help="what is queued, held and failed, per channel")
    box_sub = box.add_subparsers(dest="action", metavar="ACTION")
    retry = box_sub.add_parser("retry", parents=[common], help="send a failed or held message again")
    retry.add_argument("id", type=int, metavar="ID")
    sub.add_parser("groups", parents=[common], help="the group chats bound to scopes")
    wx = sub.add_parser("wechat", help="WeChat: WeCom group robots, the Official Account's menu")
    wx_sub = wx.add_subparsers(dest="part", required=True, metavar="PART")
    robot = wx_sub.add_parser("robot", help="a WeCom group robot for a building, grid or community")
    robot_sub = robot.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = robot_sub.add_parser(
        "add", parents=[common], help="bind a robot to a scope (replacing the scope's robot, if it has one)"
    )
    add.add_argument("scope", metavar="SCOPE", help="its full path, e.g. 梧桐社区/东片区/东一网格/1栋")
    add.add_argument("url", metavar="URL", help="the robot's webhook URL (…/webhook/send?key=…)")
    add.add_argument(
        "--markdown",
        action="store_true",
        help="send WeCom Markdown (default: plain text, which every member sees)",
    )
    remove = robot_sub.add_parser("remove", parents=[common], help="unbind the scope's robot")
    remove.add_argument("scope", metavar="SCOPE")
    robot_sub.add_parser("list", parents=[common], help="the robots bound, their keys masked")
    wx_sub.add_parser(
        "menu", parents=[common], help="install the Official Account's menu: 提议 / 议题 / 我的"
    )
    audit = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    audit_sub.add_parser(
        "verify",
        parents=[common, with_community],
        help="check every chain (or the community's); name the first broken row of each",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(
        logging.WARNING
    )  # its INFO lines carry the Bot API's URL, token and all
    args = _parser().parse_args(argv)
    try:
        config = Config.from_environ()
    except ConfigError as exc:
        print(f"yishi: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "db", None):
        config = replace(config, database_url=args.db)
    t = Translator(config.locale)
    try:
        return _COMMANDS[args.command](args, config, t)
    except Refused as refusal:
        print(t(refusal.msgid, **refusal.params), file=sys.stderr)
        return 2
    except NoDatabase as exc:
        print(
            t(
                "There is no database at {path}. Run `yishi db upgrade` to create it, or `yishi demo` for a demo community.",
                path=exc.path,
            ),
            file=sys.stderr,
        )
        return 2
    except SchemaBehind as exc:
        print(
            t(
                "The database is at migration {current}; this version needs {head}. Run `yishi db upgrade` first.",
                current=exc.current,
                head=exc.head,
            ),
            file=sys.stderr,
        )
        return 2


def _demo(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from bot import demo
    from storage.seal import BallotKey

    path = Path("yishi-demo.db").resolve()
    config = replace(config, database_url=f"sqlite:///{path}")
    demo.create(config.database_url, BallotKey(config.ballot_key, config.ballot_key_file))
    print(t("A fresh demo community is in {path}.", path=path))
    if not args.no_board:
        from bot import web

        board = web.in_background(config, config.port)
        print(t("Its public board, for your browser: {url}", url=f"{board}/c/1"))
    print(t("Try: /as 欧阳明, then /issues, /raise, /support N, /comment N TEXT; /help lists everything."))
    return _console(args, config, t)


def _console(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from bot.app import App
    from bot.channels.console import Console
    from flows.clock import OffsetClock

    app = App(config, clock=OffsetClock())
    return Console(app).run()


@contextlib.contextmanager
def _session(config: Config, rolled_back: bool = False) -> Iterator[Session]:
    """One transaction on the configured database, committed (or, `rolled_back`, undone: a dry
    run); its connections closed after it (a command is also run within a process, by the tests)."""
    from storage.db import Database
    from storage.migrate import require_current

    db = Database(config.database_url)
    try:
        require_current(db.engine)
        if rolled_back:
            with db.sessions() as session:
                try:
                    yield session
                    session.flush()  # what a commit would write first, tried as it would be
                finally:
                    session.rollback()
        else:
            with db.transaction() as session:
                yield session
    finally:
        db.dispose()


# the operating system's reasons are in English: the common ones in the operator's language
_OS_REASONS = {
    errno.ENOENT: N_("there is no such file"),
    errno.EACCES: N_("permission denied"),
    errno.EISDIR: N_("it is a folder"),
}


def _import(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import register
    from flows.clock import Clock

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        reason = t(_OS_REASONS[exc.errno]) if exc.errno in _OS_REASONS else exc.strerror
        print(t("Cannot read {file}: {reason}", file=args.file, reason=reason), file=sys.stderr)
        return 2
    try:
        with _session(config, rolled_back=args.dry_run) as session:
            summary = register.import_file(session, data, Clock().now())
    except register.RegisterInvalid as invalid:
        print(t("{file} was not imported; nothing changed:", file=args.file), file=sys.stderr)
        for line, refusal in invalid.problems[:50]:
            print(
                t("line {line}: {reason}", line=line, reason=t(refusal.msgid, **refusal.params)),
                file=sys.stderr,
            )
        return 2
    said = (
        N_(
            "A dry run, nothing written: {added} would be added, {updated} updated, {unchanged} unchanged, {moved} moved out."
        )
        if args.dry_run
        else N_("Imported: {added} added, {updated} updated, {unchanged} unchanged, {moved} moved out.")
    )
    if args.dry_run:
        kinds = {
            "added": N_("would be added"),
            "updated": N_("would be updated"),
            "moved out": N_("would move out"),
        }
        for kind, who in summary.changes:
            print(f"{who}: {t(kinds[kind])}")
    print(
        t(
            said,
            added=summary.added,
            updated=summary.updated,
            unchanged=summary.unchanged,
            moved=summary.moved_out,
        )
    )
    return 0


def _invites(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import invites, people, settings
    from flows.clock import Clock
    from flows.export import community

    if args.reissue:
        with _session(config) as session:
            person = people.find(session, args.reissue, community(session, args.community).id)
            code = invites.reissue(session, person, Clock().now())
            who = people.label(session, person)
        print(
            t(
                "A new invite code for {name}: {code}. Their earlier code no longer works.",
                name=who,
                code=code,
            )
        )
        return 0
    with _session(config) as session:
        rows = invites.open_codes(session, args.community)
        root = community(session, args.community)
        locale = str(settings.get(session, root.id, "locale", config.locale))
    if args.building:
        rows = [row for row in rows if row[1] == args.building]
        if not rows:
            print(
                t("Nobody in building {building} has an unused code.", building=args.building),
                file=sys.stderr,
            )
            return 1
    if args.format == "html":
        return _slips(config, t, root.name, rows, locale)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if args.format == "links":
        from bot.channels.telegram.sender import deep_link

        _need_token(config)
        bot = _bot_username(config, t)
        if bot is None:
            return 1
        writer.writerow(["name", "building", "room", "link"])
        writer.writerows((*row[:3], deep_link(bot, f"join_{row[3]}")) for row in rows)
    else:
        writer.writerow(["name", "building", "room", "code"])
        writer.writerows(rows)
    sys.stdout.write(out.getvalue())
    return 0


def _bot_username(config: Config, t: Translator) -> str | None:
    """The bot's username, from Telegram (deep links name it); None where Telegram cannot be asked,
    said why on stderr."""
    import asyncio

    from bot.channels import ChannelUnavailable
    from bot.channels.telegram.runner import username

    try:
        return asyncio.run(username(config))
    except ChannelUnavailable as exc:
        _channel_unavailable(t, exc)
        return None


def _slips(
    config: Config, t: Translator, community: str, rows: list[tuple[str, str, str, str]], locale: str
) -> int:
    """The slips to print, on stdout; with the Telegram deep links' QR codes where the bot is configured."""
    from bot import slips

    link_for = None
    bot = _bot_username(config, t) if config.telegram_token else None
    if bot is not None:
        from bot.channels.telegram.sender import deep_link

        def link_for(code: str) -> str:
            return deep_link(bot, f"join_{code}")
    elif config.telegram_token:
        print(t("The slips are made without Telegram's QR codes."), file=sys.stderr)
    if config.wechat_app_id and not config.wechat_account_name:
        print(
            t(
                "WECHAT_ACCOUNT_NAME is not set: the slips cannot tell residents which Official Account to follow."
            ),
            file=sys.stderr,
        )
    if link_for is None and not config.wechat_account_name:
        print(
            t(
                "Neither Telegram nor WeChat's Official Account is configured: the slips name no app to send the code in."
            ),
            file=sys.stderr,
        )
    made = slips.slips(rows, link_for)
    sys.stdout.write(slips.page(community, made, config.wechat_account_name, locale))
    return 0


def _accounts(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import invites, people
    from flows.clock import Clock
    from flows.export import community

    with _session(config) as session:
        person = people.find(session, args.name, community(session, args.community).id)
        unbound = invites.unbind(session, person, Clock().now())
        who = people.label(session, person)
    if not unbound:
        print(t("{name} has no chat account bound.", name=who))
    else:
        print(
            t(
                "{name}'s accounts are unbound ({channels}). `yishi invites --reissue` gives them a new code.",
                name=who,
                channels=", ".join(unbound),
            )
        )
    return 0


def _export(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import export
    from flows.clock import Clock

    with _session(config) as session:
        data = export.record(session, args.community, Clock().now())
    if args.format == "csv":
        sys.stdout.write(export.to_csv(data))
    else:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def _settings(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import audit, settings
    from flows.clock import Clock
    from flows.export import community

    with _session(config) as session:
        root = community(session, args.community)
        if args.value is not None:
            value = settings.put(session, root.id, args.key, args.value)
            audit.append(
                session,
                at=Clock().now(),
                action="setting",
                community_id=root.id,
                detail={"key": args.key, "value": str(value)},
            )
            print(f"{args.key} = {value}")
            return 0
        values = settings.all_values(session, root.id, {"timezone": config.timezone, "locale": config.locale})
    if args.key is not None:
        if args.key not in values:
            raise Refused("Unknown setting {key}. Settings: {keys}.", key=args.key, keys=", ".join(values))
        print(values[args.key])
        return 0
    for key, value in values.items():
        shown = value if value != "" else t("(the standard text)")
        print(f"{key} = {shown}    # {t(settings.RULES[key].help)}")
    return 0


def _db(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from storage.db import Database
    from storage.migrate import head_revision, upgrade

    db = Database(config.database_url)
    upgrade(db.engine)
    print(t("The database is at migration {rev}.", rev=head_revision()))
    return 0


def _clock(args: argparse.Namespace, config: Config, t: Translator) -> int:
    import asyncio

    from bot.app import App
    from bot.channels import ChannelUnavailable, outward
    from bot.scheduler import run_forever, run_once

    app = App(config)
    channels = outward(app)
    if all(c.name == "wecom" for c in channels):
        print(
            t(
                "No chat channel for residents is configured (TELEGRAM_TOKEN, WECHAT_APP_ID): their messages wait in the outbox."
            )
        )
    try:
        if args.once:
            won, sent, failed = asyncio.run(run_once(app, channels))
            print(t("Due work done: {won}; messages sent: {sent}.", won=won, sent=sent))
            for exc in failed:
                _channel_unavailable(t, exc)
            return 1 if failed else 0
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_forever(app, channels))
    except ChannelUnavailable as exc:
        _channel_unavailable(t, exc)
        return 1
    return 0


def _need_token(config: Config) -> None:
    """Refused in the operator's language, saying where a token comes from."""
    if not config.telegram_token:
        raise Refused("TELEGRAM_TOKEN is not set: a bot's token comes from @BotFather on Telegram.")


def _telegram(args: argparse.Namespace, config: Config, t: Translator) -> int:
    """Polling with the clock, or (un)registering the webhook; a webhook set refuses polling."""
    import asyncio

    from bot.channels import ChannelUnavailable
    from bot.channels.telegram import runner

    _need_token(config)
    try:
        if args.delete_webhook:
            asyncio.run(runner.delete_webhook(config))
            print(t("The webhook is removed: `yishi telegram` can poll now."))
            return 0
        if args.set_webhook:
            if not config.telegram_webhook_url or not config.telegram_webhook_secret:
                raise Refused(
                    "Set TELEGRAM_WEBHOOK_URL (https://…/telegram, where `yishi serve` answers) and TELEGRAM_WEBHOOK_SECRET first."
                )
            asyncio.run(runner.set_webhook(config))
            print(t("Telegram now sends updates to {url}.", url=config.telegram_webhook_url))
            return 0
        from bot.app import App

        app = App(config)
        asyncio.run(runner.poll_until_signalled(app, config))
    except runner.WebhookSet as exc:
        print(
            t(
                "A webhook is set ({url}): Telegram sends the updates there, and polling would remove it. Run `yishi serve` for webhooks, or `yishi telegram --delete-webhook` to poll instead.",
                url=exc.url,
            ),
            file=sys.stderr,
        )
        return 1
    except ChannelUnavailable as exc:
        _channel_unavailable(t, exc)
        return 1
    return 0


def _serve(args: argparse.Namespace, config: Config, t: Translator) -> int:
    """One web worker on uvicorn; run as many as needed, all state is in the database."""
    import uvicorn

    from bot import web

    try:
        site = web.create(config)
    except ConfigError as exc:
        print(f"yishi: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(site, host=args.host, port=args.port or config.port, access_log=False, log_level="info")
    return 0


def _channel_unavailable(t: Translator, exc: ChannelUnavailable) -> None:
    reason = t(exc.msgid, **exc.params)
    print(t("The chat channel cannot be used: {reason}.", reason=reason), file=sys.stderr)


def _audit(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import audit
    from flows.export import community

    with _session(config) as session:
        only = community(session, args.community).id if args.community else None
        verdicts = audit.verify(session, only)
    for v in verdicts:
        name = t(v.name) if v.name in (audit.FROZEN_CHAIN, audit.NO_COMMUNITY) else v.name
        if v.broken is None:
            print(
                t(
                    "{chain}: holds, {n} rows; head #{seq} {hash}",
                    chain=name,
                    n=v.rows,
                    seq=v.head.seq,
                    hash=v.head.hash,
                )
            )
        else:
            print(t("{chain}: broken at row #{seq}: {reason}.", chain=name, seq=v.broken, reason=t(v.reason)))
    return 1 if any(v.broken is not None for v in verdicts) else 0


STATES = {"queued": N_("queued"), "held": N_("held"), "failed": N_("failed"), "dropped": N_("dropped")}


def _outbox(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from flows import outbox
    from flows.clock import Clock

    with _session(config) as session:
        if args.action == "retry":
            if not outbox.retry(session, args.id, Clock().now()):
                raise Refused("There is no failed or held message #{id}.", id=args.id)
            print(t("Message #{id} will be sent again.", id=args.id))
            return 0
        rows = outbox.report(session, Clock().now())
    if not rows:
        print(t("Nothing waits to be sent."))
        return 0
    for channel in sorted({r.channel for r in rows}):
        mine = [r for r in rows if r.channel == channel]
        counts = {state: sum(r.state == state for r in mine) for state in STATES}
        print(
            t(
                "{channel}: {queued} queued, {held} held, {failed} failed, {dropped} dropped",
                channel=channel,
                **counts,
            )
        )
        for r in mine:
            if r.state in ("held", "failed"):
                print(f"  #{r.id} {t(STATES[r.state])} → {r.to}: {r.error or ''}")
    return 0


def _groups(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from bot.channels.wecom import CHANNEL, mask
    from flows import groups

    with _session(config) as session:
        bound = [
            (g.scope.path, g.channel, mask(g.chat_id) if g.channel == CHANNEL else g.chat_id, g.title or "")
            for g in groups.listed(session)
        ]
    if not bound:
        print(t("No group is bound to a scope yet: /linkgroup in a group binds it."))
    for path, channel, chat, title in bound:
        print(f"{path}\t{channel}\t{chat}\t{title}".rstrip())
    return 0


def _wechat(args: argparse.Namespace, config: Config, t: Translator) -> int:
    from bot.channels.wecom import CHANNEL, checked_url, mask
    from flows import groups
    from flows.clock import Clock

    if args.part == "menu":
        return _menu(config, t)

    with _session(config) as session:
        if args.action == "list":
            bound = groups.listed(session, CHANNEL)
            if not bound:
                print(t("No robot is bound yet: yishi wechat robot add SCOPE URL."))
            for g in bound:
                style = t("Markdown") if g.markdown else t("plain text")
                state = (
                    t(
                        "refused by WeCom since {time}: its messages are held",
                        time=g.blocked_at.isoformat(timespec="minutes"),
                    )
                    if g.blocked_at
                    else t("in use")
                )
                print(f"{g.scope.path}\t{mask(g.chat_id)}\t{style}\t{state}")
            return 0
        scope = groups.scope_at(session, args.scope)
        if args.action == "remove":
            groups.detach(session, scope, CHANNEL, Clock().now())
            print(
                t(
                    "The robot of {scope} is unbound; what was queued for it will not be sent.",
                    scope=scope.path,
                )
            )
            return 0
        url = checked_url(args.url)
        _, replaced = groups.attach(session, scope, CHANNEL, url, Clock().now(), markdown=args.markdown)
    if replaced:
        print(
            t(
                "{scope}'s robot is now {url}; what was queued for the old one goes to it.",
                scope=scope.path,
                url=mask(url),
            )
        )
    else:
        print(t("{url} is bound to {scope}.", scope=scope.path, url=mask(url)))
    return 0


def _menu(config: Config, t: Translator) -> int:
    from wechatpy.exceptions import WeChatClientException

    from bot.channels.wechat.callback import MENU
    from bot.channels.wechat.client import Client
    from handlers.commands import BY_NAME
    from storage.db import Database
    from storage.migrate import require_current

    if not (config.wechat_app_id and config.wechat_app_secret):
        raise Refused(
            "WECHAT_APP_ID and WECHAT_APP_SECRET are not set: they are in the Official Account's console."
        )
    buttons = [
        {"type": "click", "name": BY_NAME[command[1:]].aliases[0], "key": key}
        for key, command in MENU.items()
    ]
    db = Database(config.database_url)
    try:
        require_current(db.engine)  # the access token is kept in the database
        Client(config, db).menu.create({"button": buttons})
    except WeChatClientException as exc:
        print(t("WeChat refused: {error}", error=f"{exc.errcode} {exc.errmsg}"), file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(t("The menu is installed: {names}.", names=" / ".join(b["name"] for b in buttons)))
    return 0


_COMMANDS = {
    "demo": _demo,
    "console": _console,
    "import": _import,
    "invites": _invites,
    "accounts": _accounts,
    "export": _export,
    "settings": _settings,
    "db": _db,
    "audit": _audit,
    "outbox": _outbox,
    "groups": _groups,
    "wechat": _wechat,
    "clock": _clock,
    "telegram": _telegram,
    "serve": _serve,
}

if __name__ == "__main__":
    sys.exit(main())
