"""The `headrace` command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

import engine
from engine.errors import ConfigurationError
from engine.logs import configure_logging, get_logger
from engine.settings import Settings

log = get_logger("headrace.cli")


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


async def _open_database(settings: Settings):
    """The database, migrated if settings allow, else checked to be current."""
    from engine.store import Database
    from engine.store.migrate import require_current_schema, upgrade

    if settings.is_sqlite and settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        if settings.should_auto_migrate:
            await upgrade(db)
        else:
            await require_current_schema(db)
    except BaseException:
        await db.close()
        raise
    return db


def _serve(settings: Settings, *, serve_ui: bool) -> None:
    from api.app import create_app
    from api.server import run

    # Check (or bring) the schema up to date before binding the port, so a
    # misconfigured database fails fast with a clear message.
    async def prepare() -> None:
        await (await _open_database(settings)).close()

    try:
        asyncio.run(prepare())
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None
    log.info(
        "starting headrace",
        version=engine.__version__,
        url=f"http://{settings.host}:{settings.port}",
        ui=serve_ui,
    )
    run(create_app(settings, serve_ui=serve_ui), settings.host, settings.port)


host_option = click.option("--host", help="Interface to bind [env HEADRACE_HOST; 127.0.0.1]")
port_option = click.option(
    "--port", type=int, help="Port to bind [env HEADRACE_PORT; 8080]"
)
data_dir_option = click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data directory [env HEADRACE_DATA_DIR]"
)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(engine.__version__, prog_name="headrace")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Headrace: workflow and RAG orchestration with an embedded LLM gateway.

    With no command, `headrace` runs `serve`.
    """
    configure_logging(Settings().log_level, Settings().log_format)
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@cli.command()
@host_option
@port_option
@data_dir_option
def serve(host: str | None = None, port: int | None = None, data_dir: Path | None = None) -> None:
    """Serve the API and the admin console (the default command)."""
    _serve(_settings(host=host, port=port, data_dir=data_dir), serve_ui=True)


@cli.command()
@host_option
@port_option
@data_dir_option
def api(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Serve the API only, without the admin console."""
    _serve(_settings(host=host, port=port, data_dir=data_dir), serve_ui=False)


@cli.command("ui")
@host_option
@port_option
@click.option("--api-url", help="The Headrace whose /admin and /v1 routes the console uses")
@click.option("--skip-proxy", is_flag=True, help="Serve the console's files only")
def console(host: str | None, port: int | None, api_url: str | None, skip_proxy: bool) -> None:
    """Serve only the admin console, proxying its API calls to --api-url."""
    from urllib.parse import urlsplit

    from api.console import create_console_app
    from api.server import run

    if api_url is None and not skip_proxy:
        raise click.UsageError("give --api-url (or --skip-proxy for the static files alone)")
    if api_url is not None and (urlsplit(api_url).scheme not in ("http", "https")
                                or not urlsplit(api_url).hostname):
        raise click.BadParameter("an http(s) URL such as http://headrace:8080",
                                 param_hint="--api-url")
    settings = _settings(host=host, port=port)
    log.info("starting the headrace console", url=f"http://{settings.host}:{settings.port}",
             api=None if skip_proxy else api_url)
    run(create_console_app(None if skip_proxy else api_url), settings.host, settings.port)


@cli.command()
@click.option("--concurrency", type=click.IntRange(1, 1000),
              help="Operations this worker runs at once "
                   "[env HEADRACE_OPERATIONS_MAX_CONCURRENCY; 4]")
@data_dir_option
def worker(concurrency: int | None, data_dir: Path | None) -> None:
    """Run queued async operations: the distributed mode (PostgreSQL).

    Start any number of workers, on any machines, against the database the API
    uses; set HEADRACE_OPERATIONS_MODE=distributed on the API so it only enqueues.
    """
    from api.worker import run_worker

    settings = _settings(data_dir=data_dir, operations_mode="distributed",
                         operations_max_concurrency=concurrency)
    if settings.is_sqlite:
        raise click.ClickException(
            "headrace worker needs PostgreSQL: set HEADRACE_DATABASE_URL to the API's database")

    async def run() -> None:
        await (await _open_database(settings)).close()
        await run_worker(settings)

    try:
        asyncio.run(run())
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None


@cli.command()
@click.option("--revision", default="head", show_default=True, help="Target revision")
@data_dir_option
def migrate(revision: str, data_dir: Path | None) -> None:
    """Create or upgrade the database schema (HEADRACE_DATABASE_URL)."""
    from engine.store import Database
    from engine.store.migrate import upgrade

    settings = _settings(data_dir=data_dir)
    if settings.is_sqlite and settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> str:
        db = Database(settings.resolved_database_url)
        try:
            current = (await upgrade(db, revision)).current
            return f"database {db.display_url} is at revision {current}"
        finally:
            await db.close()

    click.echo(asyncio.run(run()))


@cli.command()
@click.option("--file", "seed_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML with models, chains and prompts [the shipped demo]")
@data_dir_option
def seed(seed_file: Path | None, data_dir: Path | None) -> None:
    """Load demo models, chains and prompts (or those of --file); safe to re-run."""
    from api.wiring import build_gateway
    from engine.demo import SEED_FILE
    from engine.demo import seed as load_seed
    from engine.errors import HeadraceError
    from engine.knowledge.kinds import knowledge_kinds
    from engine.knowledge.service import KnowledgeService
    from engine.store import ResourceStore
    from engine.workflows.kinds import workflow_kinds

    settings = _settings(data_dir=data_dir)

    async def run() -> None:
        db = await _open_database(settings)
        try:
            parts = build_gateway(settings, ResourceStore(db), None)
            knowledge = KnowledgeService(db, settings.data_dir, parts.gateway.embed)
            parts.registry.add_kinds(knowledge_kinds(knowledge) + workflow_kinds())
            report = await load_seed(parts.registry, seed_file or SEED_FILE)
            await knowledge.aclose()
            await parts.aclose()
        finally:
            await db.close()
        for label in report.created:
            click.echo(f"created {label}")
        for label in report.updated:
            click.echo(f"updated {label}")
        if report.unchanged:
            click.echo(f"{len(report.unchanged)} unchanged")

    try:
        asyncio.run(run())
    except HeadraceError as error:
        raise click.ClickException(error.message) from None


@cli.command("create-key")
@click.option("--name", required=True, help="What the key is for")
@click.option("--admin", is_flag=True, help="May use /admin")
@click.option("--team", "team_id", help="Team id")
@click.option("--test", "environment", flag_value="test", default="live",
              help="A pk_test_ key instead of pk_live_")
@data_dir_option
def create_key(name: str, admin: bool, team_id: str | None, environment: str,
               data_dir: Path | None) -> None:
    """Create an API key and print its secret (once; only its hash is stored)."""
    from engine.governance.keys import KeyStore
    from engine.schemas.governance import ApiKeyCreate

    settings = _settings(data_dir=data_dir)

    async def run() -> tuple[str, str]:
        db = await _open_database(settings)
        try:
            row, secret = await KeyStore(db).create(ApiKeyCreate(
                name=name, admin=admin, team_id=team_id, environment=environment))
            return row.id, secret
        finally:
            await db.close()

    key_id, secret = asyncio.run(run())
    click.echo(f"created {key_id}; its secret (shown only now):", err=True)
    click.echo(secret)


@cli.command()
@click.argument("kb_id")
@click.argument("path")
@click.option("--api-url", default="http://127.0.0.1:8080", show_default=True,
              envvar="HEADRACE_API_URL", help="The Headrace to ingest into")
@click.option("--api-key", envvar="HEADRACE_API_KEY", required=True,
              help="An admin key [env HEADRACE_API_KEY]")
@click.option("--metadata", help="JSON object added to every document's metadata")
@click.option("--s3-endpoint-url", help="s3:// only: an S3-compatible endpoint")
@click.option("--s3-region", default="us-east-1", show_default=True,
              help="s3:// only: the bucket's region")
@click.option("--s3-credentials", help="s3:// only: secret reference (on the server) to "
              "JSON {aws_access_key_id, aws_secret_access_key}; default: the AWS chain")
def ingest(kb_id: str, path: str, api_url: str, api_key: str, metadata: str | None,
           s3_endpoint_url: str | None, s3_region: str, s3_credentials: str | None) -> None:
    """Upload a file, or every file under a directory, into a knowledge base; or, with
    s3://bucket/prefix, have the server ingest the changed objects under that prefix."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"}
    if path.startswith("s3://"):
        _ingest_s3(kb_id, path, api_url, headers, metadata=metadata,
                   endpoint_url=s3_endpoint_url, region=s3_region, credentials=s3_credentials)
        return
    root = Path(path)
    if not root.exists():
        raise click.BadParameter(f"{path} does not exist", param_hint="PATH")
    files = sorted(p for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file())
    if not files:
        raise click.ClickException(f"no files under {path}")
    failed: list[str] = []
    chunks = 0
    with httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=600) as client, \
            click.progressbar(files, label=f"ingesting into {kb_id}",
                              item_show_func=lambda p: p.name if p else "") as bar:
        for file in bar:
            form = {"document_id": _document_id_for(file, root)}
            if metadata:
                form["metadata"] = metadata
            with file.open("rb") as handle:
                response = client.post(f"/admin/knowledge-bases/{kb_id}/documents",
                                       files={"file": (file.name, handle)}, data=form)
            if response.status_code >= 400:
                failed.append(f"{file}: {response.json().get('error', {}).get('message')}")
                continue
            chunks += sum(d["chunk_count"] for d in response.json()["data"])
    click.echo(f"{len(files) - len(failed)} of {len(files)} documents ingested, "
               f"{chunks} chunks")
    for line in failed:
        click.echo(f"failed: {line}", err=True)
    if failed:
        sys.exit(1)


def _ingest_s3(kb_id: str, uri: str, api_url: str, headers: dict[str, str], *,
               metadata: str | None, endpoint_url: str | None, region: str,
               credentials: str | None) -> None:
    import json

    import httpx

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise click.BadParameter(f"{uri}: expected s3://bucket/prefix", param_hint="PATH")
    source: dict[str, object] = {"bucket": bucket, "prefix": prefix, "region": region}
    if endpoint_url:
        source["endpoint_url"] = endpoint_url
    if credentials:
        source["credentials"] = credentials
    body: dict[str, object] = {"s3": source}
    if metadata:
        try:
            body["metadata"] = json.loads(metadata)
        except ValueError:
            raise click.BadParameter("not valid JSON", param_hint="--metadata") from None
    click.echo(f"ingesting {uri} into {kb_id}...", err=True)
    with httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=3600) as client:
        response = client.post(f"/admin/knowledge-bases/{kb_id}/documents", json=body)
    result = response.json()
    if response.status_code >= 400:
        raise click.ClickException(result.get("error", {}).get("message") or response.text)
    errors = result.get("errors", [])
    click.echo(f"{len(result['data'])} ingested, {len(result.get('skipped', []))} skipped "
               f"(unchanged), {len(errors)} failed; "
               f"{sum(d['chunk_count'] for d in result['data'])} chunks")
    for error in errors:
        click.echo(f"failed: {error['name']}: {error['error']}", err=True)
    if errors:
        sys.exit(1)


def _document_id_for(file: Path, root: Path) -> str:
    """Stable ids from the path, so re-running replaces instead of duplicating."""
    import re

    relative = file.name if root.is_file() else str(file.relative_to(root))
    return re.sub(r"[^A-Za-z0-9._:-]+", "-", relative).strip("-")[:128] or "document"


def main() -> None:
    try:
        cli(prog_name="headrace")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
