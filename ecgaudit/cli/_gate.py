"""``ecgaudit gate`` and ``ecgaudit compare``: judge results against a fairness policy.

Exit codes: 0 every required rule passes; 1 a required rule fails; 3 a required rule is
inconclusive (unless the policy says ``on_inconclusive: warn``); 2 usage or input error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ecgaudit._text import visible
from ecgaudit.cli._app import app, cli_errors, echo_err

if TYPE_CHECKING:  # imported in the command bodies: `--help` never loads pandas
    from rich.console import Console

    from ecgaudit.policy import Comparison, GateResult, RuleOutcome
    from ecgaudit.result import AuditResult

__all__ = ["check_outputs", "print_gate_summary", "print_gate_warnings", "run_gate",
           "write_gate_outputs"]

#: Rows shown in the one-screen summary (failures and inconclusive first).
MAX_ROWS = 10
_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}
_ORDER = {"fail": 0, "inconclusive": 1, "pass": 2}


def escape(text: str) -> str:
    """Rich-markup-escape ``text`` with control and escape sequences made visible."""
    from rich.markup import escape as rich_escape

    return rich_escape(visible(text))


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _value(o: RuleOutcome) -> str:
    if o.value is None:
        return ""
    if o.kind == "coverage":
        return str(int(o.value))
    ci = f" [{_num(o.ci_low)}, {_num(o.ci_high)}]" if o.ci_low is not None else ""
    return f"{_num(o.value)}{ci}"


def print_gate_summary(gate: GateResult, console: Console | None = None) -> None:
    """Print a one-screen summary: verdict, one line per rule, then the worst outcomes.

    Parameters
    ----------
    gate : GateResult
        The evaluated policy.
    console : rich.console.Console, optional
        Where to print (default: standard output, at least 100 columns wide).
    """
    from rich.console import Console
    from rich.table import Table

    con = console or Console(width=max(100, Console().width), highlight=False)
    s = gate.summary
    con.print(
        f"[{_STYLE.get(gate.status, 'bold')}]{gate.mode} '{escape(gate.policy_name)}': "
        f"{gate.status.upper()}[/] (exit {gate.exit_code}) - {s['pass']} pass, "
        f"{s['fail']} fail, {s['inconclusive']} inconclusive"
    )
    by_rule: dict[str, list[RuleOutcome]] = {}
    for o in gate.outcomes:
        by_rule.setdefault(o.rule_id, []).append(o)
    table = Table(show_header=True, header_style="bold")
    for col in ("rule", "req.", "pass", "fail", "inc.", "worst case", "value [CI]"):
        table.add_column(col, overflow="fold", no_wrap=col == "rule")
    for rule_id, items in by_rule.items():
        worst = min(items, key=lambda o: _ORDER[o.outcome])
        n = {k: sum(o.outcome == k for o in items) for k in _ORDER}
        style = _STYLE[worst.outcome]
        table.add_row(
            escape(rule_id), "yes" if items[0].required else "no", str(n["pass"]),
            f"[{_STYLE['fail']}]{n['fail']}[/]" if n["fail"] else "0",
            f"[{_STYLE['inconclusive']}]{n['inconclusive']}[/]" if n["inconclusive"] else "0",
            f"[{style}]{worst.outcome}[/] {escape(worst.where)}" if worst.outcome != "pass" else "",
            _value(worst) if worst.outcome != "pass" else "",
        )
    con.print(table)
    problems = sorted((o for o in gate.outcomes if o.outcome != "pass"),
                      key=lambda o: (_ORDER[o.outcome], not o.required))
    for o in problems[:MAX_ROWS]:
        con.print(f"[{_STYLE[o.outcome]}]{o.outcome.upper()}[/] {escape(o.rule_id)} "
                  f"{escape(o.where)}: {escape(o.detail)}", soft_wrap=True)
    if len(problems) > MAX_ROWS:
        con.print(f"... {len(problems) - MAX_ROWS} more (every outcome is in gate.json / JUnit)")
    for note in gate.notes:
        con.print(f"note: {escape(note)}", soft_wrap=True)


def check_outputs(outputs: dict[str, Path | None], inputs: list[Path | None]) -> None:
    """Refuse output files that are folders, inputs or unwritable, before any work."""
    from ecgaudit.io import check_output_file

    for option, path in outputs.items():
        if path is not None:
            check_output_file(path, inputs, option)


def write_gate_outputs(gate: GateResult, out: Path | None, junit: Path | None) -> None:
    """Write ``gate.json`` and the JUnit XML atomically (each only when a path is given)."""
    from ecgaudit.pipeline import write_gate

    write_gate(gate, out, junit)


def print_gate_warnings(gate: GateResult) -> None:
    """Print the gate's one-screen summary, then its warnings on standard error."""
    print_gate_summary(gate)
    for w in gate.warnings:
        echo_err(f"warning: {w}")


def run_gate(result: AuditResult, policy: Path, *, out: Path | None = None,
             junit: Path | None = None, comparison: Comparison | None = None) -> GateResult:
    """Judge a result with :func:`ecgaudit.pipeline.run_gate`, then print the summary.

    Parameters
    ----------
    result : AuditResult
        The audit (for compare: the candidate's).
    policy : Path
        The policy YAML.
    out, junit : Path, optional
        Where to write ``gate.json`` and the JUnit XML.
    comparison : Comparison, optional
        Candidate-vs-baseline table for change rules.

    Returns
    -------
    GateResult
        Its ``exit_code`` is what the command should exit with.
    """
    from ecgaudit.pipeline import judge, write_gate

    gate = judge(result, policy, comparison)
    print_gate_warnings(gate)
    write_gate(gate, out, junit)
    return gate


@app.command()
@cli_errors
def gate(
    results: Annotated[Path, typer.Argument(help="results.json of an audit (or its folder).")],
    policy: Annotated[Path, typer.Option(help="Fairness policy (YAML).")],
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write gate.json here.")] = None,
) -> None:
    """Judge an audit result against a fairness policy (exit 0 pass, 1 fail, 3 inconclusive)."""
    from ecgaudit.result import AuditResult

    check_outputs({"--junit": junit, "--out": out}, [results, policy])
    result = AuditResult.load(results)
    outcome = run_gate(result, policy, out=out, junit=junit)
    raise typer.Exit(outcome.exit_code)


def _print_comparison(comp: Comparison) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=max(100, Console().width), highlight=False)
    t = comp.table
    shown = t.loc[t["metric"].isin(["auroc", "sensitivity", "specificity"])].head(MAX_ROWS)
    table = Table(show_header=True, header_style="bold")
    for col in ("task", "attribute", "group", "metric", "baseline", "candidate", "change",
                "change CI", "method"):
        table.add_column(col, overflow="fold")
    for r in shown.to_dict("records"):
        ci = f"[{_num(r['change_ci_low'])}, {_num(r['change_ci_high'])}]"
        table.add_row(*(escape(str(r[k])) for k in ("task", "attribute", "group", "metric")),
                      _num(r["baseline"]), _num(r["candidate"]), _num(r["change"]), escape(ci),
                      escape(str(r["ci_method"] or "")))
    con.print(f"comparison ({comp.method}): {len(t)} rows")
    con.print(table)
    for note in comp.notes:
        con.print(f"note: {escape(note)}")


@app.command()
@cli_errors
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline results.json (or its folder).")],
    candidate: Annotated[Path, typer.Argument(help="Candidate results.json (or its folder).")],
    policy: Annotated[Path | None, typer.Option(help="Policy with change rules (YAML).")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write gate.json here.")] = None,
    table: Annotated[Path | None, typer.Option(help="Write the comparison table (CSV).")] = None,
    baseline_predictions: Annotated[Path | None, typer.Option(
        help="Baseline predictions file: with --candidate-predictions the comparison is "
             "paired.")] = None,
    candidate_predictions: Annotated[Path | None, typer.Option(
        help="Candidate predictions file (same ECGs as the baseline).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="Audit config (default: the one stored in the candidate results.json).")] = None,
    metadata: Annotated[Path | None, typer.Option(help="Demographics file.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap replicates.")] = 1000,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: config seed).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (it is off anyway in CI and when stderr is not a terminal).")] = False,
) -> None:
    """Compare a candidate with a baseline per group; judge 'no group worse by > delta'.

    With --baseline-predictions and --candidate-predictions (and --metadata when the audits
    joined a demographics file) the comparison is paired on the same ECGs.
    """
    from ecgaudit.cli._progress import step_progress
    from ecgaudit.io import atomic_write_text, frame_to_csv
    from ecgaudit.pipeline import compare_files

    check_outputs({"--junit": junit, "--out": out, "--table": table},
                  [baseline, candidate, policy, baseline_predictions, candidate_predictions,
                   config, metadata])
    with step_progress(quiet) as steps:
        cand, comp = compare_files(baseline, candidate,
                                   baseline_predictions=baseline_predictions,
                                   candidate_predictions=candidate_predictions, config=config,
                                   metadata=metadata, n_boot=bootstrap, seed=seed,
                                   progress=steps)
    if table is not None:
        atomic_write_text(table, frame_to_csv(comp.table))
    if policy is None:
        _print_comparison(comp)
        return
    outcome = run_gate(cand, policy, out=out, junit=junit, comparison=comp)
    raise typer.Exit(outcome.exit_code)
