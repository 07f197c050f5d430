"""The profkit command line. Each command is a thin shell around a function in profkit.commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .console import err, out
from .errors import ProfkitError

app = typer.Typer(
    name="profkit",
    help="Profile asyncio Python services: flamegraphs, memory, coroutine timing, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEFAULT_STORE = Path(os.environ.get("PROFKIT_STORE", "flamegraphs"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address. Anything but loopback exposes the engine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: Annotated[Path, typer.Option(help="SQLite database file (created if missing).")] = Path("agentmem.db"),
    embedder: Annotated[str, typer.Option(help="'hashing' (default, local) or 'st:<local model>'.")] = "hashing",
    llm_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for fact extraction.")] = None,
) -> None:
    """Start the bundled agent-memory engine (HTTP, WebSocket, Prometheus /metrics)."""
    from .commands.serve import run_serve

    run_serve(host=host, port=port, db=db, embedder=embedder, llm_url=llm_url)


@app.command()
def load(
    url: Annotated[str, typer.Option(help="Engine base URL.")] = "http://127.0.0.1:8080",
    scenario: Annotated[str, typer.Option(help="mixed, ingest, search-heavy, graph or ws-hold.")] = "mixed",
    duration: Annotated[float, typer.Option(help="Seconds of measured load (ws-hold: seconds held).")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Open connections (ws-hold: WebSockets).")] = 64,
    seed_per_tenant: Annotated[int, typer.Option(help="Memories written per tenant before measuring.")] = 100,
    warmup: Annotated[float, typer.Option(help="Seconds of unmeasured load first.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
) -> None:
    """Drive a running engine with a named scenario; report req/s, errors and p50/p95/p99 per operation."""
    from .commands.load import render, run_load_command

    report = run_load_command(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
                              seed_per_tenant=seed_per_tenant, warmup=warmup, show_progress=not as_json)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        render(report)
    if report["errors"]:
        raise typer.Exit(1)


@app.command()
def ci(
    store: Annotated[Path, typer.Option(help="Artifact store (env PROFKIT_STORE).")] = DEFAULT_STORE,
    duration: Annotated[float, typer.Option(help="Seconds of measured load.")] = 20.0,
    concurrency: Annotated[int, typer.Option(help="Open connections.")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
) -> None:
    """The main job: profile the bundled engine for the current commit into STORE/<commit>/."""
    from .commands.ci import run_ci
    from .commands.load import render

    result = run_ci(store=store, repo=Path.cwd(), duration=duration, concurrency=concurrency)
    if as_json:
        sys.stdout.write(json.dumps({"folder": str(result.folder), "load": result.load}) + "\n")
    else:
        render(result.load)
        out.print(f"artifacts: [bold]{result.folder}[/] (load.json, metrics.prom, engine.log)")
    if result.load["errors"]:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except ProfkitError as exc:
        err.print(f"[red]profkit:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]profkit:[/] interrupted")
        sys.exit(130)
