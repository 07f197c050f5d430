"""profkit load — drive a running engine with a named scenario and report latency percentiles."""

from __future__ import annotations

from typing import Any

from agentmem.workload.loadgen import LoadError, run_load
from agentmem.workload.scenarios import SCENARIOS
from agentmem.workload.wshold import run_hold
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..console import err, out
from ..errors import TargetError, UsageError

SCENARIO_NAMES = (*SCENARIOS, "ws-hold")


def run_load_command(
    *, url: str, scenario: str, duration: float, concurrency: int, seed_per_tenant: int, warmup: float,
    show_progress: bool = True,
) -> dict[str, Any]:
    if scenario not in SCENARIO_NAMES:
        raise UsageError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIO_NAMES)}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=err, disable=not show_progress, transient=True) as progress:
        task = progress.add_task(f"{scenario} → {url}", total=duration, info="seeding")

        def tick(elapsed: float, done: int, errors: int) -> None:
            progress.update(task, completed=elapsed, info=f"{done} done, {errors} errors")

        try:
            if scenario == "ws-hold":
                return run_hold(url, concurrency, duration, on_progress=tick)
            return run_load(url, scenario, duration=duration, concurrency=concurrency,
                            seed_per_tenant=seed_per_tenant, warmup=warmup, on_progress=tick)
        except LoadError as exc:
            raise TargetError(str(exc)) from exc


def render(report: dict[str, Any]) -> None:
    if report.get("scenario") == "ws-hold":
        out.print(f"WebSockets: {report['opened']}/{report['requested']} opened in {report['open_seconds']} s, "
                  f"{report['answered']} answered after {report['hold_seconds']} s, errors {report['errors']}, "
                  f"server RSS {report['server_rss_mb']} MB")
        return
    table = Table(title=f"{report['scenario']} on {report['url']} — {report['concurrency']} connections, "
                  f"{report['duration_s']} s")
    for col in ("operation", "count", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for op, s in report["operations"].items():
        table.add_row(op, str(s["count"]), f"{s['rps']:.0f}", str(s["errors"]), f"{s['p50_ms']:.2f}",
                      f"{s['p95_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['max_ms']:.1f}")
    lat = report["latency"]
    table.add_row("[bold]all", str(report["requests"]), f"[bold]{report['rps']:.0f}", str(report["errors"]),
                  f"{lat['p50_ms']:.2f}", f"{lat['p95_ms']:.2f}", f"{lat['p99_ms']:.2f}", f"{lat['max_ms']:.1f}")
    out.print(table)
    for sample in report.get("error_samples", []):
        err.print(f"[red]error:[/] {sample}")
