"""profkit load in a terminal: a progress bar while it runs, then latency per operation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ...console import err, out
from ...results import LoadReport
from ...services.load import LoadProgress
from .tables import fit, key_column, new_table, number_column


@contextlib.contextmanager
def load_progress(description: str, duration: float, *, show: bool = True) -> Iterator[LoadProgress]:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=err, disable=not show, transient=True) as progress:
        task = progress.add_task(description, total=duration, info="seeding")

        def tick(elapsed: float, done: int, errors: int) -> None:
            progress.update(task, completed=elapsed, info=f"{done} done, {errors} errors")

        yield tick


def show(report: LoadReport) -> None:
    if report.get("scenario") == "ws-hold":
        out.print(f"WebSockets: {report['opened']}/{report['requested']} opened in {report['open_seconds']} s, "
                  f"{report['answered']} answered after {report['hold_seconds']} s, errors {report['errors']}, "
                  f"server RSS {report['server_rss_mb']} MB")
        return
    table = new_table(f"{report['scenario']} on {report['url']} — {report['concurrency']} connections, "
                      f"{report['duration_s']} s")
    key_column(table, "operation")
    for col in ("count", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        number_column(table, col)
    for op, s in report["operations"].items():
        table.add_row(op, str(s["count"]), f"{s['rps']:.0f}", str(s["errors"]), f"{s['p50_ms']:.2f}",
                      f"{s['p95_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['max_ms']:.1f}")
    lat = report["latency"]
    table.add_row("[bold]all", str(report["requests"]), f"[bold]{report['rps']:.0f}", str(report["errors"]),
                  f"{lat['p50_ms']:.2f}", f"{lat['p95_ms']:.2f}", f"{lat['p99_ms']:.2f}", f"{lat['max_ms']:.1f}")
    out.print(fit(table))
    for sample in report.get("error_samples", []):
        err.print(f"[red]error:[/] {escape(str(sample))}", highlight=False)
