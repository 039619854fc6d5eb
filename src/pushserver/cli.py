"""The ``pushserver`` command."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pushserver import __version__, logs
from pushserver.campaigns.schemas import CampaignDetail
from pushserver.db import migrations
from pushserver.db.engine import Database, SchemaOutOfDate
from pushserver.errors import PushServerError
from pushserver.security import apikeys
from pushserver.security.apikeys import Role
from pushserver.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Push notification server.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
key_app = typer.Typer(no_args_is_help=True, help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(key_app, name="apikey")

out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    settings = Settings()
    logs.configure(settings.log_level)
    return settings


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """Run the REST API."""
    import uvicorn

    from pushserver.app import create_app

    settings = _settings()
    updates = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update=updates)
    if settings.auth_disabled and settings.listens_publicly:
        err.print("[red]refusing to start: authentication is disabled on a non-loopback address")
        raise typer.Exit(2)

    try:
        asyncio.run(_check_schema(settings))
    except SchemaOutOfDate as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(1) from None

    err.print(f"Push Server {__version__} listening on http://{settings.host}:{settings.port}")
    err.print(f"database: {settings.resolved_database_url}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
    )


@app.command()
def worker(
    lanes: Annotated[int, typer.Option(help="Batches in flight at once", min=1, max=16)] = 2,
) -> None:
    """Deliver queued messages: claim due ones from the database, send, record the outcomes."""
    settings = _settings()
    try:
        asyncio.run(_check_schema(settings))
    except SchemaOutOfDate as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    import uvloop

    uvloop.run(_run_worker(settings, lanes))


async def _run_worker(settings: Settings, lanes: int) -> None:
    import signal

    from pushserver.delivery.registry import SenderRegistry
    from pushserver.delivery.worker import Worker
    from pushserver.security.secretbox import SecretBox, load_master_key

    database = Database(settings)
    registry = SenderRegistry(settings, database, SecretBox(load_master_key(settings)))
    runner = Worker(settings, database, registry, lanes=lanes)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.stop)
    try:
        await runner.run()
    finally:
        await registry.close()
        await database.dispose()


async def _check_schema(settings: Settings) -> None:
    database = Database(settings)
    try:
        await database.check_schema()
    finally:
        await database.dispose()


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply the schema migrations."""
    settings = _settings()
    asyncio.run(_migrate(settings, revision))
    out.print(f"database schema is at {revision} ({migrations.head_revision()} is the newest)")


async def _migrate(settings: Settings, revision: str) -> None:
    database = Database(settings)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(migrations.upgrade, revision)
    finally:
        await database.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    settings = _settings()

    async def current() -> str | None:
        database = Database(settings)
        try:
            async with database.engine.connect() as conn:
                return await conn.run_sync(migrations.current_revision)
        finally:
            await database.dispose()

    out.print(f"current: {asyncio.run(current()) or 'none'}, newest: {migrations.head_revision()}")


@key_app.command("create")
def apikey_create(
    role: Annotated[Role, typer.Option(help="What the key may do")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by")] = "",
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    settings = _settings()

    async def create() -> apikeys.NewKey:
        database = Database(settings)
        try:
            await database.check_schema()
            async with database.transaction() as session:
                return await apikeys.create_key(session, role, name or role.value)
        finally:
            await database.dispose()

    try:
        key = asyncio.run(create())
    except SchemaOutOfDate as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    err.print(f"created API key id={key.id} role={key.role.value}; it is shown only once:")
    print(key.secret)


@key_app.command("list")
def apikey_list() -> None:
    """List API keys (never the keys themselves)."""
    settings = _settings()

    async def rows() -> list[tuple[str, ...]]:
        database = Database(settings)
        try:
            async with database.transaction() as session:
                keys = await apikeys.list_keys(session)
                return [
                    (str(k.id), k.name, k.role, k.key_prefix + "…", k.timestamp_created.isoformat())
                    for k in keys
                ]
        finally:
            await database.dispose()

    table = Table("id", "name", "role", "key", "created")
    for row in asyncio.run(rows()):
        table.add_row(*row)
    out.print(table)


@key_app.command("revoke")
def apikey_revoke(key_id: Annotated[int, typer.Argument(help="Id shown by `apikey list`")]) -> None:
    """Delete an API key; processes stop accepting it within the key cache time."""
    settings = _settings()

    async def revoke() -> bool:
        database = Database(settings)
        try:
            async with database.transaction() as session:
                return await apikeys.revoke_key(session, key_id)
        finally:
            await database.dispose()

    if not asyncio.run(revoke()):
        err.print(f"[red]no API key with id {key_id}")
        raise typer.Exit(1)
    out.print(f"revoked API key {key_id}")


campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns.")
app.add_typer(campaign_app, name="campaign")


async def _campaign_detail(database: Database, campaign_id: int) -> CampaignDetail:
    from pushserver.campaigns import service as campaigns

    async with database.transaction() as session:
        return await campaigns.detail(session, campaign_id)


def _print_progress(detail: CampaignDetail) -> None:
    table = Table("campaign", "app", "sent", "total", "pending", "sending", "delivered", "failed")
    p = detail.progress
    table.add_row(
        str(detail.id),
        str(detail.app_id),
        "yes" if detail.sent else "no",
        *(str(n) for n in (p.total, p.pending, p.sending, p.sent, p.failed)),
    )
    out.print(table)


@campaign_app.command("status")
def campaign_status(campaign_id: Annotated[int, typer.Argument(help="Campaign id")]) -> None:
    """Print a campaign's progress over its devices."""
    settings = _settings()

    async def status() -> CampaignDetail:
        database = Database(settings)
        try:
            return await _campaign_detail(database, campaign_id)
        finally:
            await database.dispose()

    try:
        _print_progress(asyncio.run(status()))
    except PushServerError as exc:
        err.print(f"[red]{exc.message}")
        raise typer.Exit(1) from None


@campaign_app.command("send")
def campaign_send(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id")],
    follow: Annotated[bool, typer.Option(help="Show progress until every device is done")] = False,
) -> None:
    """Send a campaign live; workers deliver it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from pushserver.campaigns import service as campaigns

    settings = _settings()

    async def send() -> CampaignDetail:
        database = Database(settings)
        try:
            async with database.transaction() as session:
                devices = await campaigns.start_live(session, campaign_id)
            err.print(f"campaign {campaign_id} sent live to {devices} devices")
            detail = await _campaign_detail(database, campaign_id)
            if not follow:
                return detail
            columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err) as bar:
                task = bar.add_task("sending", total=detail.progress.total)
                counted_s = 0.0
                while not detail.sent:
                    # Counting a large campaign's rows takes the database a while: look less
                    # often then, so following a campaign never slows it down.
                    await asyncio.sleep(max(0.5, 4 * counted_s))
                    started = time.monotonic()
                    detail = await _campaign_detail(database, campaign_id)
                    counted_s = time.monotonic() - started
                    done = detail.progress.sent + detail.progress.failed
                    bar.update(task, completed=done)
            return detail
        finally:
            await database.dispose()

    try:
        _print_progress(asyncio.run(send()))
    except PushServerError as exc:
        err.print(f"[red]{exc.message}")
        raise typer.Exit(1) from None


def main() -> None:
    app()
