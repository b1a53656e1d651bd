"""``ecgaudit finetune``: adapt a model to a site and audit it before and after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ecgaudit.cli._app import app, cli_errors, echo_err
from ecgaudit.cli._progress import progress_enabled
from ecgaudit.errors import InputError


def _fmt(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ecg_options(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"--ecg-spec '{path.name}' is not a readable JSON file") from None
    if not isinstance(data, dict):
        raise InputError(f"--ecg-spec '{path.name}' must be a JSON object (fs, leads, ...)")
    return data


class _Progress:
    """Training progress on standard error: a rich bar on terminals, epoch lines otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        if progress_enabled():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                console=Console(stderr=True), transient=True)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "stage":
            echo_err(f"-- {event['stage']}")
        elif kind == "batch" and self.bar is not None:
            if self.task is None:
                self.bar.start()
                self.task = self.bar.add_task("", total=event["batches"], info="")
            self.bar.update(self.task, completed=event["batch"], total=event["batches"],
                            description=f"epoch {event['epoch']}",
                            info=f"loss {event['loss']:.4f}")
        elif kind == "epoch":
            line = (f"epoch {event['epoch']}/{event['epochs']}: train loss "
                    f"{event['train_loss']:.4f}, val loss {event['val_loss']:.4f}, val AUROC "
                    f"{_fmt(event['val_auroc'])}{'  (best so far)' if event['improved'] else ''}")
            if self.bar is not None:
                self.bar.console.print(line)
            else:
                echo_err(line)

        elif kind == "round":  # strategy: federated
            echo_err(f"round {event['round']}/{event['rounds']}: site-weighted val loss "
                     f"{event['val_loss']:.4f}{'  (best so far)' if event['improved'] else ''}")
        elif kind == "adapt_epoch":  # strategy: adapt
            echo_err(f"epoch {event['epoch']}/{event['epochs']}: task loss "
                     f"{event['task_loss']:.4f}, domain loss {event['domain_loss']:.4g}, "
                     f"source val loss {event['source_val_loss']:.4f}")

    def close(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.stop()


@app.command()
@cli_errors
def finetune(
    model: Annotated[Path, typer.Option(help="Parent model weights (safetensors or .pt "
                                        "state dict; never pickle).")],
    model_config: Annotated[Path, typer.Option(help="Parent model config JSON.")],
    ecgs: Annotated[Path, typer.Option(help="The site's ECGs: WFDB folder, .npy/.npz with "
                                       "index, or .h5.")],
    metadata: Annotated[Path, typer.Option(help="One row per site ECG: id, patient id, "
                                           "labels, audited attributes.")],
    config: Annotated[Path, typer.Option(help="Fine-tuning config YAML (strategy, tasks, "
                                         "split, training, gate).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: adapted model + "
                                      "audit/ (before/after).")],
    policy: Annotated[Path | None, typer.Option(
        help="Policy YAML replacing the default no-group-worse rule.")] = None,
    ecg_spec: Annotated[Path | None, typer.Option(
        help="JSON describing an array ECG file (fs, leads, units, index, id_column).")] = None,
    resume: Annotated[bool, typer.Option(help="Resume training from OUT/checkpoints.")] = False,
    fail_on_gate: Annotated[bool, typer.Option(
        help="Exit 1 if a group got worse (3 if inconclusive and on_inconclusive: fail).")
    ] = True,
) -> None:
    """Fine-tune a model for a site; audit before and after on held-out patients."""
    from ecgaudit.io import check_output_dir
    from ecgaudit.pipeline._finetune import finetune_and_audit

    check_output_dir(out, [model, model_config, ecgs, metadata, config, policy, ecg_spec])
    progress = _Progress()
    try:
        outcome = finetune_and_audit(model, model_config, ecgs, metadata, config, out,
                                     policy=policy, ecg_options=_ecg_options(ecg_spec),
                                     resume=resume, progress=progress)
    finally:
        progress.close()
    summary = outcome.summary
    echo_err(f"strategy {outcome.manifest['strategy']}: held-out site patients, "
             f"{summary['metric']} before -> after (paired change, 95% CI)")
    for r in summary["overall"]:
        b, a = r["before"], r["after"]
        echo_err(f"  {r['task']:<8} {_fmt(b['estimate'])} [{_fmt(b['ci_low'])}, "
                 f"{_fmt(b['ci_high'])}] -> {_fmt(a['estimate'])} [{_fmt(a['ci_low'])}, "
                 f"{_fmt(a['ci_high'])}]  change {_fmt(r['change'])} "
                 f"[{_fmt(r['change_ci_low'])}, {_fmt(r['change_ci_high'])}]")
    for task, c in summary.get("threshold_cost", {}).items():
        echo_err(f"  {task:<8} overall sensitivity {_fmt(c['sensitivity_before'])} -> "
                 f"{_fmt(c['sensitivity_after'])}, specificity {_fmt(c['specificity_before'])} "
                 f"-> {_fmt(c['specificity_after'])} (group thresholds vs one threshold)")
    if summary.get("warning"):
        echo_err(f"WARNING: {summary['warning']}")
    gate = outcome.gate
    counts = ", ".join(f"{k} {v}" for k, v in gate.summary.items())
    echo_err(f"gate '{gate.policy_name}': {gate.status.upper()} ({counts})")
    for w in gate.warnings[:5]:
        echo_err(f"  warning: {w}")
    for o in gate.blocking_failures[:10]:
        echo_err(f"  FAIL {o.where}: {o.detail}")
    echo_err(f"wrote the adapted model and audit/ to '{out.name}'")
    if fail_on_gate and gate.exit_code:
        raise typer.Exit(gate.exit_code)
