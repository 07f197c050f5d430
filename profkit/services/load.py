"""load — drive a running engine with a named scenario and report latency percentiles."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CheckFailed, TargetError, UsageError
from ..results import LoadReport

# (seconds elapsed, requests done, requests failed)
LoadProgress = Callable[[float, int, int], None]


def scenario_names() -> tuple[str, ...]:
    from agentmem.workload.scenarios import SCENARIOS

    return (*SCENARIOS, "ws-hold")


def run_load_command(
    *, url: str, scenario: str, duration: float, concurrency: int, seed_per_tenant: int, warmup: float,
    on_progress: LoadProgress | None = None,
) -> LoadReport:
    """The report of the load generator; raises CheckFailed (with the report) when requests failed."""
    names = scenario_names()
    if scenario not in names:
        raise UsageError(f"unknown scenario {scenario!r}; choose one of: {', '.join(names)}")
    report = drive(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
                   seed_per_tenant=seed_per_tenant, warmup=warmup, on_progress=on_progress)
    if report["errors"]:
        raise CheckFailed(failure_line(report), result=report)
    return report


def drive(*, url: str, scenario: str, duration: float, concurrency: int, seed_per_tenant: int, warmup: float,
          on_progress: LoadProgress | None = None) -> LoadReport:
    """Run the load and return its report, errors or not (``ci`` files it either way)."""
    from agentmem.workload.loadgen import LoadError, run_load
    from agentmem.workload.wshold import run_hold

    tick = on_progress or (lambda _elapsed, _done, _errors: None)
    try:
        if scenario == "ws-hold":
            return run_hold(url, concurrency, duration, on_progress=tick)
        return run_load(url, scenario, duration=duration, concurrency=concurrency, seed_per_tenant=seed_per_tenant,
                        warmup=warmup, on_progress=tick)
    except LoadError as exc:
        raise TargetError(str(exc)) from exc


def failure_line(report: LoadReport) -> str:
    total = report.get("requests") or report.get("requested") or 0
    return f"{report['errors']} of {total} requests to {report.get('url', 'the engine')} failed; see the errors above"
