"""The audit -> gate -> report workflow as library calls (the CLI only parses and prints).

``ecgaudit audit``, ``ecgaudit gate``, ``ecgaudit compare`` and ``ecgaudit report`` call these
functions; so can any Python program:

>>> outcome = run_audit(config, "predictions.csv", out="results/",
...                     policy="policy.yaml")                    # doctest: +SKIP
>>> outcome.exit_code, outcome.paths["results.json"]           # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgaudit.config import AuditConfig, load_config
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.io import atomic_write_text, output_lock, read_table, write_output_set
from ecgaudit.pipeline._audit import audit_files, audit_model
from ecgaudit.pipeline._compare import (
    compare_predictions,
    compare_results,
    config_from_result,
    merge_comparisons,
)
from ecgaudit.pipeline._progress import ProgressCallback
from ecgaudit.policy import Comparison, GateResult, evaluate, load_policy
from ecgaudit.reports import render_html, write_report
from ecgaudit.result import AuditResult

__all__ = ["AuditOutcome", "ModelInputs", "RowsElsewhere", "compare_files", "judge",
           "read_gate", "render_saved_report", "run_audit", "run_gate", "write_gate"]

MSG_MODEL_TOGETHER = ("audit a model with --model, --model-config and --ecgs together, "
                      "and no predictions file")
MSG_NO_INPUT = "give a predictions file, or --model/--model-config/--ecgs"
MSG_ELSEWHERE_ALONE = ("--from-summaries and --sql/--connection audit rows that are not in a "
                       "file here: give no predictions, --metadata, --model or --ecgs with them")
MSG_SUMMARIES_OR_SQL = "give either --from-summaries or --sql/--connection, not both"
MSG_PAIRED_NEEDS_BOTH = (
    "a paired comparison needs both --baseline-predictions and --candidate-predictions"
)
MSG_PAIRED_NEEDS_METADATA = (
    "the candidate audit joined the demographics file '{name}': give it to the paired "
    "comparison too, with --metadata {name} (the same file for both predictions files)"
)
GATE_UNREADABLE = "cannot read gate file '{name}': {reason}"
GATE_NOT_JSON = ("'{name}' is not valid JSON: {reason}. Pass the gate.json written by "
                 "`ecgaudit gate`.")
GATE_NOT_GATE = (
    "'{name}' is not a gate result: expected an object with 'status' and 'rules'. "
    "Pass the gate.json written by `ecgaudit gate`."
)


@dataclass(frozen=True)
class ModelInputs:
    """Score ECGs with a model before the audit (``audit --model``).

    Attributes
    ----------
    model, model_config, ecgs : Path, optional
        Weights, model config JSON and ECG records; all three or none.
    batch_size : int
        Inference batch size.
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    threads : int, optional
        Inference threads.
    """

    model: Path | None = None
    model_config: Path | None = None
    ecgs: Path | None = None
    batch_size: int = 64
    device: str = "cpu"
    threads: int | None = None

    @property
    def given(self) -> bool:
        """Whether any of the model inputs is set."""
        return any(p is not None for p in (self.model, self.model_config, self.ecgs))


@dataclass(frozen=True)
class RowsElsewhere:
    """Audit rows that never come here: site summaries, or a query run in an engine.

    Attributes
    ----------
    summaries : tuple of Path
        Summary files of ``ecgaudit summarize`` (one per site), pooled by the audit.
    sql, connection : str, optional
        A ``SELECT`` run where the rows live (``docs/warehouse.md``); only its summary
        comes back.
    """

    summaries: tuple[Path, ...] = ()
    sql: str | None = None
    connection: str | None = None

    @property
    def given(self) -> bool:
        """Whether the audit reads summaries or an engine instead of a predictions file."""
        return bool(self.summaries) or self.sql is not None or self.connection is not None


@dataclass(frozen=True)
class AuditOutcome:
    """What :func:`run_audit` produced.

    Attributes
    ----------
    result : AuditResult
        The audit.
    gate : GateResult, optional
        The policy verdict (None without a policy).
    paths : dict of str to Path
        Every file written, by name (``results.json``, ``report.html``, ``gate.json``,
        ``junit``...).
    """

    result: AuditResult
    gate: GateResult | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The gate's exit code (0 pass, 1 fail, 3 inconclusive; 0 without a policy)."""
        return self.gate.exit_code if self.gate is not None else 0


def _audit_elsewhere(config: AuditConfig, rows: RowsElsewhere,
                     steps: ProgressCallback | None) -> AuditResult:
    """Audit pooled site summaries, or the summary an engine computed where the rows live."""
    from ecgaudit.pipeline._fromsummaries import audit_summaries, audit_summary_files

    if rows.summaries:
        if rows.sql is not None or rows.connection is not None:
            raise ConfigError(MSG_SUMMARIES_OR_SQL)
        return audit_summary_files(rows.summaries, config, progress=steps)
    from ecgaudit.pipeline._streamsum import audit_clustered, clustered_replicates
    from ecgaudit.pipeline._warehouse import summarize_where

    reps = clustered_replicates(config)  # B with a patient column: stream, patient-clustered
    summary = summarize_where(config, sql=rows.sql, connection=rows.connection,
                              replicates=reps)
    if reps:
        return audit_clustered(summary, config, steps)
    return audit_summaries([summary], config, progress=steps)


def _audit_step(config: AuditConfig, predictions: Path | None, metadata: Path | None,
                model: ModelInputs, progress: Callable[[int, int], None] | None,
                steps: ProgressCallback | None,
                elsewhere: RowsElsewhere | None = None) -> AuditResult:
    """Audit a predictions file, score the ECGs with the model first, or audit elsewhere."""
    if elsewhere is not None and elsewhere.given:
        if predictions is not None or metadata is not None or model.given:
            raise ConfigError(MSG_ELSEWHERE_ALONE)
        return _audit_elsewhere(config, elsewhere, steps)
    if model.given:
        if predictions is not None or None in (model.model, model.model_config, model.ecgs):
            raise ConfigError(MSG_MODEL_TOGETHER)
        return audit_model(model.model, model.model_config, model.ecgs,  # type: ignore[arg-type]
                           config, metadata=metadata, progress=progress, steps=steps,
                           batch_size=model.batch_size, device=model.device,
                           threads=model.threads)
    if predictions is None:
        raise ConfigError(MSG_NO_INPUT)
    return audit_files(predictions, config, metadata=metadata, progress=steps)


def judge(result: AuditResult, policy: str | Path,
          comparison: Comparison | None = None) -> GateResult:
    """Load a policy (names checked against the result) and judge the result on it.

    Parameters
    ----------
    result : AuditResult
        The audit (for a comparison: the candidate's).
    policy : str or Path
        The policy YAML.
    comparison : Comparison, optional
        Candidate-vs-baseline table for change rules; the gate is then in ``compare`` mode
        and carries the comparison's notes.

    Returns
    -------
    GateResult
    """
    pol = load_policy(policy, result=result)
    gate = evaluate(result, pol, comparison.table if comparison is not None else None)
    if comparison is not None:
        gate = GateResult(gate.policy_name, gate.on_inconclusive, gate.outcomes,
                          mode="compare", notes=comparison.notes)
    return gate


def write_gate(gate: GateResult, out: str | Path | None = None,
               junit: str | Path | None = None) -> dict[str, Path]:
    """Write ``gate.json`` and the JUnit XML atomically (each only when a path is given)."""
    paths = {}
    if out is not None:
        paths["gate.json"] = atomic_write_text(out, gate.to_json())
    if junit is not None:
        paths["junit"] = atomic_write_text(junit, gate.to_junit_xml())
    return paths


def run_gate(result: AuditResult, policy: str | Path, *, out: str | Path | None = None,
             junit: str | Path | None = None,
             comparison: Comparison | None = None) -> GateResult:
    """Judge a result (see :func:`judge`) and write ``gate.json`` / JUnit where asked.

    Returns
    -------
    GateResult
        Its ``exit_code`` is what a CI step should exit with.
    """
    gate = judge(result, policy, comparison)
    write_gate(gate, out, junit)
    return gate


def run_audit(config: AuditConfig, predictions: str | Path | None = None, *,
              out: str | Path, metadata: str | Path | None = None,
              policy: str | Path | None = None, junit: str | Path | None = None,
              report: bool = True, templates: str | Path | None = None,
              model: ModelInputs | None = None,
              elsewhere: RowsElsewhere | None = None,
              progress: Callable[[int, int], None] | None = None,
              steps: ProgressCallback | None = None) -> AuditOutcome:
    """Audit, judge the policy, render the report and write one atomic output set.

    Parameters
    ----------
    config : AuditConfig
        The resolved audit config.
    predictions : str or Path, optional
        Predictions file; omit it with ``model``.
    out : str or Path
        Output folder: ``metrics.csv``, ``disparities.csv``, ``results.json`` and, when
        asked, ``gate.json`` and ``report.html`` are written there together (a second run
        into the same folder at the same time is refused, never mixed).
    metadata : str or Path, optional
        Demographics file joined on ``config.id_column``.
    policy : str or Path, optional
        Fairness policy (YAML); it is read and checked before any computation.
    junit : str or Path, optional
        Also write the gate as JUnit XML here (after the output set).
    report : bool
        Write ``report.html``.
    templates : str or Path, optional
        Folder of report templates overriding the bundled ones.
    model : ModelInputs, optional
        Score ECGs with a model first.
    elsewhere : RowsElsewhere, optional
        Audit site summaries or an engine's query instead of a predictions file.
    progress, steps : callable, optional
        Inference and audit-step progress callbacks.

    Returns
    -------
    AuditOutcome

    Raises
    ------
    ConfigError
        If neither predictions nor a complete set of model inputs is given, or the policy
        is broken.
    """
    if policy is not None:
        load_policy(policy)  # a broken policy fails before any computation
    with output_lock(out):
        result = _audit_step(config, _path(predictions), _path(metadata),
                             model or ModelInputs(), progress, steps, elsewhere)
        files = result.output_files()
        gate = judge(result, policy) if policy is not None else None
        if gate is not None:
            files["gate.json"] = gate.to_json().encode("utf-8")
        if report:
            files["report.html"] = render_html(
                result, gate=gate.to_dict() if gate is not None else None,
                templates=templates).encode("utf-8")
        # One atomic set: metrics, disparities, results, gate and report of the same run.
        paths = dict(write_output_set(out, files))
    if gate is not None and junit is not None:
        paths.update(write_gate(gate, None, junit))
    return AuditOutcome(result=result, gate=gate, paths=paths)


def _path(p: str | Path | None) -> Path | None:
    return Path(p) if p is not None else None


def read_gate(path: str | Path) -> dict[str, Any]:
    """Read and minimally check a ``gate.json`` file.

    Raises
    ------
    InputError
        If the file cannot be read or is not a gate result.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(GATE_UNREADABLE.format(name=path.name, reason=err.strerror)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(GATE_NOT_JSON.format(name=path.name, reason=err)) from None
    if not isinstance(data, dict) or "status" not in data or not isinstance(
        data.get("rules", []), list
    ):
        raise InputError(GATE_NOT_GATE.format(name=path.name))
    return data


def render_saved_report(results: str | Path, dest: str | Path, *,
                        gate: str | Path | None = None,
                        templates: str | Path | None = None) -> Path:
    """Re-render the HTML report of a saved result (no recomputation).

    Parameters
    ----------
    results : str or Path
        ``results.json`` or its folder.
    dest : str or Path
        HTML file to write (atomically).
    gate : str or Path, optional
        A ``gate.json`` to show.
    templates : str or Path, optional
        Folder of report templates overriding the bundled ones.

    Returns
    -------
    Path
    """
    result = AuditResult.load(results)
    gate_data = read_gate(gate) if gate is not None else None
    return write_report(result, dest, gate=gate_data, templates=templates)


def compare_files(baseline: str | Path, candidate: str | Path, *,
                  baseline_predictions: str | Path | None = None,
                  candidate_predictions: str | Path | None = None,
                  config: str | Path | None = None, metadata: str | Path | None = None,
                  n_boot: int = 1000, seed: int | None = None,
                  progress: ProgressCallback | None = None
                  ) -> tuple[AuditResult, Comparison]:
    """Compare two saved audits: unpaired, or paired when both predictions files are given.

    Parameters
    ----------
    baseline, candidate : str or Path
        The two ``results.json`` files (or their folders).
    baseline_predictions, candidate_predictions : str or Path, optional
        Both models' predictions on the same ECGs: the comparison is then paired (the
        metrics without a paired method stay unpaired, see :func:`merge_comparisons`).
    config : str or Path, optional
        Audit config of the paired comparison (default: the candidate result's).
    metadata : str or Path, optional
        Demographics file; required when the candidate audit joined one.
    n_boot : int
        Paired bootstrap replicates.
    seed : int, optional
        Random seed (default: the config's).
    progress : callable, optional
        Paired-bootstrap progress (see :func:`compare_predictions`).

    Returns
    -------
    tuple of (AuditResult, Comparison)
        The candidate's result (change rules are judged on it) and the comparison.

    Raises
    ------
    ConfigError
        If only one predictions file is given, or the demographics file is missing.
    """
    base = AuditResult.load(baseline)
    cand = AuditResult.load(candidate)
    comp = compare_results(base, cand)
    if baseline_predictions is None and candidate_predictions is None:
        return cand, comp
    if baseline_predictions is None or candidate_predictions is None:
        raise ConfigError(MSG_PAIRED_NEEDS_BOTH)
    joined = [i.get("name") for i in cand.manifest.get("inputs", [])
              if i.get("role") == "metadata"]
    if metadata is None and joined:
        raise ConfigError(MSG_PAIRED_NEEDS_METADATA.format(name=joined[0]))
    cfg = load_config(config) if config is not None else config_from_result(cand)
    meta = read_table(metadata).frame if metadata is not None else None
    paired = compare_predictions(
        read_table(baseline_predictions).frame, read_table(candidate_predictions).frame,
        cfg, metadata=meta, n_boot=n_boot, seed=seed, progress=progress,
    )
    return cand, merge_comparisons(paired, comp)
