"""profkit console's non-interactive modes in a terminal: a snapshot's tasks and warnings, a recording, awaits."""

from __future__ import annotations

from rich.markup import escape

from ...console import err, out
from ...results import ConsoleResult, ConsoleSnapshot, ConsoleWarning, TaskRow
from .artifacts import print_artifacts
from .tables import compact, fit, key_column, name_column, new_table, number_column, text_column

# A snapshot of a large service holds thousands of tasks; the terminal shows the busiest.
SHOWN_TASKS = 30
WARNING_STYLE = {"never-yields": "red", "blocking-step": "red", "loop-lag": "yellow", "gc-pause": "magenta",
                 "never-awaited": "yellow", "idle-outlier": "cyan"}


def _busy_key(t: TaskRow) -> tuple[float, float]:
    return (-(t["busy_ms"] or 0.0), -(t["age_s"] or 0.0))


def warning_line(w: ConsoleWarning) -> str:
    style = WARNING_STYLE.get(w["kind"], "yellow")
    return f"[{style}]{w['kind']}:[/] {escape(w['name'])}: {escape(w['message'])}"


def show_snapshot(snap: ConsoleSnapshot) -> None:
    loop = snap["loop"]
    lag = f"loop lag {loop['lag_ms']:.1f} ms (p99 {compact(loop['lag_p99_ms'])} ms)"
    steps = f"{loop['steps']} steps" if loop["steps_measured"] else "steps not measured on this loop"
    out.print(f"pid {snap['pid']} · Python {snap['python']} · {loop['kind']} loop · {steps} · {lag} · "
              f"GC {snap['gc']['total_ms']:.0f} ms · {len(snap['tasks'])} tasks", highlight=False)
    table = new_table(f"tasks by busy time, in ms (the busiest {min(SHOWN_TASKS, len(snap['tasks']))} "
                      f"of {len(snap['tasks'])})")
    key_column(table, "task")
    text_column(table, "state")
    for col in ("steps", "busy", "idle", "sched", "longest"):
        number_column(table, col)
    name_column(table, "awaiting")
    flagged = {w["task_id"] for w in snap["warnings"]
               if w["task_id"] and w["kind"] in ("blocking-step", "never-yields")}
    for t in sorted(snap["tasks"], key=_busy_key)[:SHOWN_TASKS]:
        table.add_row(escape(t["name"] if t["name"] == t["coro"] else f"{t['name']} {t['coro']}"), t["state"],
                      compact(t["steps"]), compact(t["busy_ms"]), compact(t["idle_ms"]), compact(t["scheduled_ms"]),
                      compact(t["longest_step_ms"]), escape(t["awaiting"] or "-"),
                      style="red" if t["id"] in flagged else None)
    out.print(fit(table))
    finished = snap.get("finished") or []
    if finished:
        done = new_table("tasks that ended, by coroutine (ms, since the agent started)")
        key_column(done, "coroutine")
        for col in ("tasks", "steps", "busy", "cpu", "sched", "longest"):
            number_column(done, col)
        for f in finished[:10]:
            done.add_row(escape(f["coro"]), compact(f["tasks"]), compact(f["steps"]), compact(f["busy_ms"]),
                         compact(f["cpu_ms"]), compact(f["scheduled_ms"]), compact(f["longest_step_ms"]))
        out.print(fit(done))
    for w in snap["warnings"]:
        out.print(warning_line(w), highlight=False)
    if snap["terminated"]:
        ended = snap["terminated"]
        cancelled = sum(1 for t in ended if t["outcome"] == "cancelled")
        failed = sum(1 for t in ended if t["outcome"] == "failed")
        err.print(f"{len(ended)} task(s) ended lately: {cancelled} cancelled, {failed} failed "
                  "(the console's terminated view lists them)", highlight=False)


def show(doc: ConsoleResult) -> None:
    how = f" (agent injected with {doc['injected']}, detached again)" if doc["injected"] else ""
    if doc["mode"] == "snapshot" and "snapshot" in doc:
        show_snapshot(doc["snapshot"])
        err.print(f"agent at {doc['agent']}{how}", highlight=False)
        return
    if doc["mode"] == "record":
        err.print(f"{doc.get('snapshots', 0)} snapshot(s) recorded from {doc['agent']}{how}; "
                  "play them back with `profkit console --replay FILE`", highlight=False)
    elif doc["mode"] == "awaits":
        err.print(f"await flamegraph of {doc['agent']}{how}: one root per task name, width = how often a task "
                  "was suspended there", highlight=False)
    if "folder" in doc:
        print_artifacts(doc)  # type: ignore[arg-type]
