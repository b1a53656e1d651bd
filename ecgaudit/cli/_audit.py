"""``ecgaudit audit``: run an audit from files and write results (and the report)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ecgaudit.cli._app import app, cli_errors
from ecgaudit.cli._engineopts import ConnectionOption, SqlOption, audit_engine
from ecgaudit.cli._progress import step_progress
from ecgaudit.cli._survflags import survival_tasks
from ecgaudit.errors import ConfigError

if TYPE_CHECKING:
    from ecgaudit.config import AuditConfig


def _flag_config(label: list[str], score: list[str], task: list[str], positive: str | None,
                 logits: bool, attrs: dict[str, str | None], extra: list[str],
                 id_column: str | None, patient: str | None, threshold: float | None,
                 kind: str = "binary", surv: dict[str, Any] | None = None) -> dict[str, Any]:
    if kind not in ("binary", "continuous"):
        raise ConfigError(f"--kind must be 'binary' or 'continuous', not '{kind}'")
    if surv and (surv["time"] or surv["event"]):
        tasks = survival_tasks(surv["time"], surv["event"], score, task, surv["horizon"],
                               surv["risk"], logits)
    elif surv and (surv["horizon"] or surv["risk"]):
        raise ConfigError("--horizon and --risk are for survival audits: add --time and --event")
    elif not label or len(label) != len(score):
        raise ConfigError(
            "without --config, give one --score for every --label (e.g. --label y --score p)"
        )
    else:
        names = task or label
        if len(names) != len(label):
            raise ConfigError("give one --task name for every --label, or none")
        tasks = [{"name": n, "label": lab, "score": s, "positive_label": positive,
                  "score_type": "logit" if logits else "probability", "kind": kind}
                 for n, lab, s in zip(names, label, score)]
    attributes: dict[str, dict[str, Any]] = {}
    for name, column in attrs.items():
        if column:
            attributes[name] = {"column": column, **({"kind": "age"} if name == "age" else {})}
    for col in extra:
        attributes[col] = {"column": col}
    cfg: dict[str, Any] = {"tasks": tasks, "attributes": attributes}
    if id_column:
        cfg["id_column"] = id_column
    if patient:
        cfg["patient_column"] = patient
    if threshold is not None:
        cfg["threshold"] = {"rule": "fixed", "value": threshold}
    return cfg


def _resolve_config(config: Path | None, flags: dict[str, Any], overrides: dict[str, Any]
                    ) -> AuditConfig:
    from ecgaudit.config import load_config, parse_config

    if config is not None:
        if flags["label"] or flags["score"]:
            raise ConfigError("give tasks either in --config or with --label/--score, not both")
        base = load_config(config).to_dict()
        name = config.name
    else:
        base = _flag_config(**flags)
        name = "command-line options"
    for key, value in overrides.items():
        if value is not None:
            base[key] = value
    return parse_config(base, source=name)


@app.command(no_args_is_help=True)
@cli_errors
def audit(
    predictions: Annotated[Path | None, typer.Argument(help="Predictions file (CSV, CSV.gz or Parquet); omit with --model.")] = None,
    metadata: Annotated[Path | None, typer.Option(help="Demographics file, joined on --id.")] = None,
    config: Annotated[Path | None, typer.Option(help="Audit config (YAML).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (metrics.csv, disparities.csv, results.json, report.html).")] = Path("results"),
    label: Annotated[list[str], typer.Option(help="Label column (repeat for several tasks).")] = [],  # noqa: B006
    score: Annotated[list[str], typer.Option(help="Score column, one per --label.")] = [],  # noqa: B006
    task: Annotated[list[str], typer.Option(help="Task name, one per --label.")] = [],  # noqa: B006
    positive_label: Annotated[str | None, typer.Option(help="Value of a text label that means positive.")] = None,
    kind: Annotated[str, typer.Option(help="Task kind of --label/--score: binary, or continuous (label = measured, score = predicted value).")] = "binary",
    logits: Annotated[bool, typer.Option(help="Scores are logits, not probabilities.")] = False,
    sex: Annotated[str | None, typer.Option(help="Sex column.")] = None,
    race: Annotated[str | None, typer.Option(help="Race / ethnicity column.")] = None,
    age: Annotated[str | None, typer.Option(help="Age column (years; banded).")] = None,
    attribute: Annotated[list[str], typer.Option(help="Another grouping column (site, device...).")] = [],  # noqa: B006
    id_column: Annotated[str | None, typer.Option("--id", help="Id column joining the files.")] = None,
    patient: Annotated[str | None, typer.Option(help="Patient id column (repeated ECGs).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Fixed operating threshold.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config).")] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap replicates B (0 = closed-form CIs only).")] = None,
    bootstrap_bins: Annotated[int | None, typer.Option(help="Binned bootstrap: 4096..65536 score bins per task for the replicates (point estimates stay exact); for very large inputs.")] = None,
    min_cell: Annotated[int | None, typer.Option(help="Suppress groups with fewer patients.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Fairness policy (YAML) to gate on.")] = None,
    fail_on_policy: Annotated[bool, typer.Option(help="Exit 1/3 when the policy fails / is inconclusive.")] = True,
    junit: Annotated[Path | None, typer.Option(help="Write the gate as JUnit XML here.")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html next to the results.")] = True,
    templates: Annotated[Path | None, typer.Option(help="Folder of report templates overriding the bundled ones (see docs/report.md).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (they are off anyway in CI and when stderr is not a terminal).")] = False,
    model: Annotated[Path | None, typer.Option(help="Model weights (safetensors, state dict, TorchScript, ONNX): score --ecgs first.")] = None,
    model_config: Annotated[Path | None, typer.Option(help="Model config JSON (with --model).")] = None,
    ecgs: Annotated[Path | None, typer.Option(help="ECG records: WFDB folder, .npy/.npz, or HDF5 (with --model).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Inference batch size.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads.")] = None,
    time: Annotated[str | None, typer.Option(help="Survival: follow-up time column.")] = None,
    event: Annotated[str | None, typer.Option(help="Survival: event column (1 event, 0 censored).")] = None,
    horizon: Annotated[list[float], typer.Option(help="Survival: horizon in the time unit (repeat).")] = [],  # noqa: B006
    risk: Annotated[bool, typer.Option(help="Survival: scores are risks on any scale (not probabilities).")] = False,
    from_summaries: Annotated[list[Path], typer.Option(help="Audit pooled summary files (`ecgaudit summarize`; repeat per site) instead of rows; needs --config.")] = [],  # noqa: B006
    sql: SqlOption = None,
    connection: ConnectionOption = None,
) -> None:
    """Audit predictions by subgroup and write metrics.csv, disparities.csv, results.json.

    Give the tasks and groups in --config (YAML), or with --label/--score and --sex, --race,
    --age, --attribute. With --model, --model-config and --ecgs the ECGs are scored first.
    """
    from ecgaudit.cli._gate import check_outputs
    from ecgaudit.io import check_output_dir, output_lock
    from ecgaudit.policy import load_policy

    flags = {
        "label": label, "score": score, "task": task, "positive": positive_label,
        "logits": logits, "attrs": {"race": race, "sex": sex, "age": age},
        "extra": attribute, "id_column": id_column, "patient": patient, "threshold": threshold,
        "kind": kind,
        "surv": {"time": time, "event": event, "horizon": horizon, "risk": risk},
    }
    overrides = {"seed": seed, "bootstrap": bootstrap, "min_cell_size": min_cell,
                 "bootstrap_bins": bootstrap_bins}
    inputs = [predictions, metadata, config, policy, model, model_config, ecgs, *from_summaries]
    check_output_dir(out, inputs, "--out")
    check_outputs({"--junit": junit}, inputs)
    cfg = _resolve_config(config, flags, overrides)
    if policy is not None:
        load_policy(policy)  # a broken policy fails before any computation
    with output_lock(out):  # a second run into the same folder is refused, not mixed
        if from_summaries:  # pooled site summaries: cli/_summarize.py
            from ecgaudit.cli._summarize import audit_from_summaries

            return audit_from_summaries(cfg, config, from_summaries, out, policy, junit, report,
                                        fail_on_policy, quiet=quiet, templates=templates,
                                        rows=[predictions, metadata, model, ecgs])
        if sql is not None or connection is not None:  # rows stay in the engine
            return audit_engine(cfg, config, sql=sql, connection=connection, out=out,
                                policy=policy, junit=junit, report=report,
                                fail_on_policy=fail_on_policy, quiet=quiet, templates=templates)
        _run_audit(cfg, predictions, metadata, out, policy, junit, report, fail_on_policy,
                   quiet=quiet, templates=templates, model=model, model_config=model_config,
                   ecgs=ecgs, batch_size=batch_size, device=device, threads=threads)


def _run_audit(cfg: AuditConfig, predictions: Path | None, metadata: Path | None, out: Path,
               policy: Path | None, junit: Path | None, report: bool, fail_on_policy: bool,
               *, quiet: bool, templates: Path | None, **model_args: Any) -> None:
    from ecgaudit.cli._gate import run_gate, write_gate_outputs
    from ecgaudit.cli._predict import progress_bar
    from ecgaudit.cli._summary import print_summary, print_verdicts
    from ecgaudit.io import write_output_set
    from ecgaudit.pipeline import audit_files, audit_model
    from ecgaudit.reports import render_html

    model, model_config, ecgs = (model_args.pop(k) for k in ("model", "model_config", "ecgs"))
    if model is not None or ecgs is not None or model_config is not None:
        if predictions is not None or None in (model, model_config, ecgs):
            raise ConfigError("audit a model with --model, --model-config and --ecgs together, "
                              "and no predictions file")
        with progress_bar(quiet) as bar, step_progress(quiet) as steps:
            result = audit_model(model, model_config, ecgs, cfg, metadata=metadata,
                                 progress=bar, steps=steps, **model_args)
    elif predictions is None:
        raise ConfigError("give a predictions file, or --model/--model-config/--ecgs")
    else:
        with step_progress(quiet) as steps:
            result = audit_files(predictions, cfg, metadata=metadata, progress=steps)
    files = result.output_files()
    print_summary(result)
    gate = None
    if policy is not None:
        gate = run_gate(result, policy)
        files["gate.json"] = gate.to_json().encode("utf-8")
    print_verdicts(result, gate.to_dict() if gate is not None else None)
    if report:
        files["report.html"] = render_html(
            result, gate=gate.to_dict() if gate is not None else None,
            templates=templates).encode("utf-8")
    # One atomic set: metrics, disparities, results, gate and report of the same run.
    written = write_output_set(out, files)
    if gate is not None and junit is not None:
        write_gate_outputs(gate, None, junit)
    typer.echo(f"results: {written['results.json']}")
    if report:
        typer.echo(f"report: {written['report.html']}")
    if gate is not None and fail_on_policy and gate.exit_code != 0:
        raise typer.Exit(gate.exit_code)
