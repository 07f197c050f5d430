"""The text of the console's panes, built from a snapshot: the header, the warnings, a task in detail."""

from __future__ import annotations

from collections.abc import Iterable

from rich.markup import escape
from rich.text import Text

from ...results import ConsoleSnapshot, ConsoleWarning, TaskDetail, TerminatedTask
from .format import histogram_lines, ms, percentiles, seconds

# Colours by urgency (the order of profkit.console_lints.SEVERITY): the loop stopped, then slowed, then hints.
WARNING_STYLE = {"never-yields": "bold red", "blocking-step": "red", "loop-lag": "yellow", "gc-pause": "yellow",
                 "never-awaited": "cyan", "idle-outlier": "cyan"}
OUTCOME_STYLE = {"finished": "green", "cancelled": "yellow", "failed": "bold red"}


def header(snap: ConsoleSnapshot | None, *, label: str, state: str, state_style: str) -> Text:
    text = Text.from_markup(f"[b]{escape(label)}[/]  ")
    text.append(f" {state} ", style=state_style)
    if snap is None:
        text.append("\nwaiting for the first snapshot…", style="dim")
        return text
    loop, gc = snap["loop"], snap["gc"]
    text.append_text(Text.from_markup(
        f"\npid [b]{snap['pid']}[/]  python {escape(snap['python'])}  loop [b]{escape(loop['kind'])}[/]  "
        f"lag [b]{ms(loop['lag_ms'])}[/] now, p99 {ms(loop['lag_p99_ms'])}  "
        f"gc {ms(gc['total_ms'])} ({sum(gc['collections']):,} collections)  "
        f"agent up {seconds(snap['agent_uptime_s'])}  tasks [b]{len(snap['tasks']):,}[/]"))
    if loop["blocked_for_ms"] is not None:
        text.append(f"\nthe loop is blocked right now: {ms(loop['blocked_for_ms'])} in "
                    f"{loop['blocked_by'] or 'a callback'}", style="bold red")
    elif not loop["steps_measured"]:
        text.append(f"\n{loop['kind']} runs its steps in compiled code: busy, steps and scheduled time "
                    "are not measured", style="dim")
    return text


def warnings(found: Iterable[ConsoleWarning]) -> Text:
    text = Text(no_wrap=False)
    for w in found:
        if text:
            text.append("\n")
        style = WARNING_STYLE.get(w["kind"], "")
        text.append(f"{w['kind']:<14}", style=style)
        text.append(f" {w['name']}", style="bold")
        text.append(f": {w['message']}")
    return text or Text("no warnings", style="dim")


def terminated_row(t: TerminatedTask) -> list[Text]:
    return [Text(t["name"], no_wrap=True), Text(t["coro"], no_wrap=True),
            Text(t["outcome"], style=OUTCOME_STYLE.get(t["outcome"], "")),
            Text(t["cancelled_by"] or "-"), Text(t["exception"] or "-", style="red" if t["exception"] else ""),
            Text(seconds(t["lived_s"]), justify="right"), Text(seconds(t["ended_s_ago"]) + " ago", justify="right")]


def detail(d: TaskDetail) -> Text:
    t = d["task"]
    out = Text()
    out.append(t["name"], style="bold")
    out.append(f"  {t['coro']}  ")
    out.append(t["state"], style="bold")
    out.append(f"  id {t['id']}  age {seconds(t['age_s'])}", style="dim")
    if not t["seen_from_start"]:
        out.append("  (counted since the agent started)", style="dim")
    if t["created"]:
        out.append(f"\ncreated at {t['created']}", style="dim")
    gc_note = ""
    if t["longest_step_gc_ms"]:
        gc_note = f", {ms(t['longest_step_gc_ms'])} of it gc gen {t['longest_step_gc_generation']}"
    out.append(f"\nsteps {'-' if t['steps'] is None else format(t['steps'], ',')}  busy {ms(t['busy_ms'])}  "
               f"cpu {ms(t['cpu_ms'])}  idle {ms(t['idle_ms'])}  scheduled {ms(t['scheduled_ms'])}  "
               f"longest step {ms(t['longest_step_ms'])}{gc_note}")
    out.append("\n\nawaiting ", style="bold")
    out.append(t["awaiting"] or "-")
    _section(out, "await chain (outermost first)",
             [f"{f['function']}  {f['file']}:{f['line']}" for f in t["await_chain"]])
    _section(out, "stack (outermost first)", d["stack"])
    for title, h in (("step time", d["steps"]), ("scheduled time (ready, waiting for the loop)", d["scheduled"])):
        out.append(f"\n\n{title}", style="bold")
        out.append(f"  {percentiles(h)}")
        for line in histogram_lines(h):
            out.append(f"\n  {line}")
    steps = sorted(d["history"], key=lambda s: -s.get("at_s", 0.0))  # the latest first
    out.append(f"\n\nrecent steps ({len(steps)}, the latest first; at: seconds since the agent started)",
               style="bold")
    if steps:
        out.append(f"\n  {'at':>12}  {'wall':>9}  {'cpu':>9}  {'gc':>9}", style="dim")
    for s in steps:
        out.append(f"\n  {s.get('at_s', 0.0):>10.3f} s  {ms(s.get('wall_ms')):>9}  {ms(s.get('cpu_ms')):>9}  "
                   f"{ms(s.get('gc_ms')):>9}")
    return out


def _section(out: Text, title: str, lines: list[str]) -> None:
    out.append(f"\n\n{title}", style="bold")
    for line in lines or ["-"]:
        out.append(f"\n  {line}")
