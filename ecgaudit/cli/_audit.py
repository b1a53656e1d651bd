"""``ecgaudit audit``: run an audit from files and write results (and the report)."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ecgaudit.cli._app import app, cli_errors
from ecgaudit.cli._engineopts import ConnectionOption, SqlOption
from ecgaudit.cli._progress import step_progress
from ecgaudit.cli._survflags import survival_tasks
from ecgaudit.errors import ConfigError

if TYPE_CHECKING:
    from ecgaudit.config import AuditConfig
    from ecgaudit.pipeline import AuditOutcome, ModelInputs, RowsElsewhere


@dataclass(frozen=True)
class ConfigFlags:
    """The tasks and groups given with flags instead of ``--config``."""

    label: list[str]
    score: list[str]
    task: list[str]
    positive: str | None = None
    logits: bool = False
    attrs: dict[str, str | None] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    id_column: str | None = None
    patient: str | None = None
    threshold: float | None = None
    kind: str = "binary"
    surv: dict[str, Any] | None = None

    def to_config(self) -> dict[str, Any]:
        """Return the config mapping these flags describe."""
        return _flag_config(**dataclasses.asdict(self))


@dataclass(frozen=True)
class ConfigOverrides:
    """Flags that override one key of the config (None = keep the config's)."""

    seed: int | None = None
    bootstrap: int | None = None
    min_cell_size: int | None = None
    bootstrap_bins: int | None = None

    def apply(self, base: dict[str, Any]) -> dict[str, Any]:
        """Return ``base`` with every given override set."""
        for key, value in dataclasses.asdict(self).items():
            if value is not None:
                base[key] = value
        return base


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


def _resolve_config(config: Path | None, flags: ConfigFlags, overrides: ConfigOverrides
                    ) -> AuditConfig:
    from ecgaudit.config import load_config, parse_config

    if config is not None:
        if flags.label or flags.score:
            raise ConfigError("give tasks either in --config or with --label/--score, not both")
        base = load_config(config).to_dict()
        name = config.name
    else:
        base = flags.to_config()
        name = "command-line options"
    return parse_config(overrides.apply(base), source=name)


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
    from ecgaudit.io import check_output_dir
    from ecgaudit.pipeline import ModelInputs, RowsElsewhere

    flags = ConfigFlags(
        label=label, score=score, task=task, positive=positive_label, logits=logits,
        attrs={"race": race, "sex": sex, "age": age}, extra=attribute, id_column=id_column,
        patient=patient, threshold=threshold, kind=kind,
        surv={"time": time, "event": event, "horizon": horizon, "risk": risk},
    )
    overrides = ConfigOverrides(seed=seed, bootstrap=bootstrap, min_cell_size=min_cell,
                                bootstrap_bins=bootstrap_bins)
    scoring = ModelInputs(model=model, model_config=model_config, ecgs=ecgs,
                          batch_size=batch_size, device=device, threads=threads)
    inputs = [predictions, metadata, config, policy, model, model_config, ecgs, *from_summaries]
    check_output_dir(out, inputs, "--out")
    check_outputs({"--junit": junit}, inputs)
    cfg = _resolve_config(config, flags, overrides)
    outputs = AuditOutputs(out=out, policy=policy, junit=junit, report=report,
                           templates=templates, fail_on_policy=fail_on_policy, quiet=quiet)
    elsewhere = RowsElsewhere(summaries=tuple(from_summaries), sql=sql, connection=connection)
    if elsewhere.given and config is None:
        raise ConfigError("--from-summaries and --sql/--connection need --config: the config "
                          "the sites summarised with (binary tasks, fixed thresholds)")
    _run_audit(cfg, predictions, metadata, outputs, scoring, elsewhere)


@dataclass(frozen=True)
class AuditOutputs:
    """Where ``audit`` writes, what it gates on, and how it reports progress."""

    out: Path
    policy: Path | None = None
    junit: Path | None = None
    report: bool = True
    templates: Path | None = None
    fail_on_policy: bool = True
    quiet: bool = False


def _run_audit(cfg: AuditConfig, predictions: Path | None, metadata: Path | None,
               outputs: AuditOutputs, scoring: ModelInputs,
               elsewhere: RowsElsewhere | None = None) -> None:
    """Run the library workflow with progress bars, then print and map the exit code."""
    from ecgaudit.cli._predict import progress_bar
    from ecgaudit.pipeline import run_audit

    bar_ctx = progress_bar(outputs.quiet) if scoring.given else contextlib.nullcontext()
    with bar_ctx as bar, step_progress(outputs.quiet) as steps:
        outcome = run_audit(cfg, predictions, out=outputs.out, metadata=metadata,
                            policy=outputs.policy, junit=outputs.junit, report=outputs.report,
                            templates=outputs.templates, model=scoring,
                            elsewhere=elsewhere, progress=bar, steps=steps)
    _print_outcome(outcome)
    if outcome.gate is not None and outputs.fail_on_policy and outcome.exit_code != 0:
        raise typer.Exit(outcome.exit_code)


def _print_outcome(outcome: AuditOutcome) -> None:
    """Summary, gate table and warnings, verdicts, then the written paths."""
    from ecgaudit.cli._gate import print_gate_warnings
    from ecgaudit.cli._summary import print_summary, print_verdicts

    gate = outcome.gate
    print_summary(outcome.result)
    if gate is not None:
        print_gate_warnings(gate)
    print_verdicts(outcome.result, gate.to_dict() if gate is not None else None)
    typer.echo(f"results: {outcome.paths['results.json']}")
    if "report.html" in outcome.paths:
        typer.echo(f"report: {outcome.paths['report.html']}")
