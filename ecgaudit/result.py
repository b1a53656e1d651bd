"""The audit result: tidy tables plus a manifest, saved and loaded byte-identically.

``results.json`` layout (schema version :data:`ecgaudit.schema.SCHEMA_VERSION`)::

    {
      "schema_version": "1.0",
      "manifest": {...versions, seed, resolved config, input sha256...},
      "metrics": [ {task, attribute, group, metric, estimate, ci_low, ...}, ... ],
      "disparities": [ {task, attribute, group, reference, metric, ...}, ... ],
      "extras": { "cohort": [...], "thresholds": {...}, "curves": {...}, ... }
    }

NaN is written as ``null``. Keys are sorted, separators compact, and floats use
Python's shortest repr, so the same inputs and seed give byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ecgaudit.config import AuditConfig, parse_config
from ecgaudit.errors import EcgAuditError, InputError
from ecgaudit.headline import WorstGroup
from ecgaudit.headline import worst_group as headline_worst_group
from ecgaudit.io import frame_to_csv, write_output_set
from ecgaudit.io._viewcsv import VIEW_TABLES, view_table_files
from ecgaudit.schema import DISPARITY_COLUMNS, INTERSECTION_SEP, METRIC_COLUMNS, SCHEMA_VERSION
from ecgaudit.views import by_group, disparity_table, summary_html, summary_text

__all__ = ["AuditResult", "config_from_manifest", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON data (NaN -> None).

    Parameters
    ----------
    value : object
        Nested dicts, lists, tuples, numpy scalars/arrays, floats.

    Returns
    -------
    object
        Plain Python data that :func:`json.dumps` accepts with ``allow_nan=False``.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    sub = frame.loc[:, list(columns)]
    return [to_jsonable(dict(zip(columns, row))) for row in sub.itertuples(index=False)]


def _frame(records: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    for col in frame.columns:
        if col in ("n", "n_pos"):
            frame[col] = frame[col].astype("Int64")
        elif frame[col].dtype == object and col not in (
            "task", "attribute", "group", "reference", "metric", "ci_method", "status",
            "reason", "test",
        ):
            frame[col] = pd.to_numeric(frame[col])
    return frame


def config_from_manifest(manifest: Any, extras: Any) -> AuditConfig | None:
    """Parse the resolved audit config a manifest records (None when it records none).

    ``results.json`` sorts keys, so the attribute order (which fixes intersection names such
    as ``race & sex``) is restored from ``extras["attributes"]``.

    Parameters
    ----------
    manifest : dict
        ``AuditResult.manifest``.
    extras : dict
        ``AuditResult.extras``.

    Returns
    -------
    AuditConfig or None

    Raises
    ------
    ConfigError
        If the manifest's config does not parse.
    """
    cfg = manifest.get("config") if isinstance(manifest, dict) else None
    if not isinstance(cfg, dict):
        return None
    data = dict(cfg)
    listed = extras.get("attributes", []) if isinstance(extras, dict) else []
    order = [a for a in listed if isinstance(a, str)]
    attrs = data.get("attributes") or {}
    singles = [a for a in order if a in attrs]
    data["attributes"] = {a: attrs[a] for a in [*singles, *(a for a in attrs if a not in singles)]}
    combos = [a.split(INTERSECTION_SEP) for a in order if INTERSECTION_SEP in a]
    if combos or data.get("intersections") != "none":
        data["intersections"] = combos if combos else data.get("intersections", "pairs")
    return parse_config(data, source="results.json manifest config")


def _typed_config(manifest: Any, extras: Any) -> AuditConfig | None:
    """:func:`config_from_manifest`, or None when the recorded config does not parse."""
    try:
        return config_from_manifest(manifest, extras)
    except EcgAuditError:
        return None


@dataclass
class AuditResult:
    """The result of one audit.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per task x attribute x group x metric; columns
        :data:`ecgaudit.schema.METRIC_COLUMNS`.
    disparities : pandas.DataFrame
        One row per task x attribute x group x metric compared with the attribute's
        reference group; columns :data:`ecgaudit.schema.DISPARITY_COLUMNS`.
    manifest : dict
        Provenance: versions, seed, resolved config, input hashes, schema version.
    extras : dict
        Additional JSON-serialisable data (cohort counts, thresholds, curves).
    config : AuditConfig, optional
        The parsed audit config the result was computed with (the audit passes it; a
        loaded result parses it from ``manifest["config"]``, which stays the serialised
        form: ``results.json`` is written from the manifest, byte for byte as before).
        None when the manifest records no config that parses (hand-built results).
    """

    metrics: pd.DataFrame
    disparities: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    config: AuditConfig | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.config is None:
            self.config = _typed_config(self.manifest, self.extras)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON data (the content of ``results.json``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "manifest": to_jsonable(self.manifest),
            "metrics": _records(self.metrics, METRIC_COLUMNS),
            "disparities": _records(self.disparities, DISPARITY_COLUMNS),
            "extras": to_jsonable(self.extras),
        }

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, NaN as null, trailing newline)."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False
        ) + "\n"

    def output_files(self) -> dict[str, bytes]:
        """Return the saved files by name: ``metrics.csv``, ``disparities.csv``, ``results.json``.

        CSV text cells that a spreadsheet would run as formulas are neutralised (OWASP);
        ``results.json`` keeps the raw values.
        """
        return {
            "metrics.csv": frame_to_csv(self.metrics.loc[:, list(METRIC_COLUMNS)]).encode(),
            "disparities.csv": frame_to_csv(
                self.disparities.loc[:, list(DISPARITY_COLUMNS)]).encode(),
            "results.json": self.to_json().encode("utf-8"),
            **view_table_files(self.extras),  # docs/views.md
        }

    def __repr__(self) -> str:
        return summary_text(self.metrics, self.disparities, self.manifest)

    def _repr_html_(self) -> str:
        """Compact notebook summary: one row per task (overall AUROC, groups, flags)."""
        return summary_html(self.metrics, self.disparities, self.manifest)

    def by_group(self, metric: str, task: str | None = None, *,
                 intersections: bool = True) -> pd.DataFrame:
        """One metric as a wide table: a row per (attribute, group), estimate and CI columns.

        Parameters
        ----------
        metric : str
            Metric identifier, e.g. ``"auroc"`` or ``"sensitivity"``.
        task : str, optional
            One task; without it each task gets a column block.
        intersections : bool
            Keep intersection groups.

        Returns
        -------
        pandas.DataFrame
            See :func:`ecgaudit.views.by_group`.
        """
        return by_group(self.metrics, metric, task, intersections=intersections)

    def disparity_table(self, metric: str, kind: Literal["difference", "ratio"] = "difference",
                        task: str | None = None) -> pd.DataFrame:
        """Each group versus its reference: difference or ratio with CI and p-values.

        Parameters
        ----------
        metric : str
            Metric identifier.
        kind : {"difference", "ratio"}
            ``group - reference`` or ``group / reference``.
        task : str, optional
            One task; without it each task gets a column block.

        Returns
        -------
        pandas.DataFrame
            See :func:`ecgaudit.views.disparity_table`.
        """
        return disparity_table(self.disparities, metric, kind, task)

    def save(self, out_dir: str | Path, *, report: bool = False) -> dict[str, Path]:
        """Write ``metrics.csv``, ``disparities.csv`` and ``results.json`` as one atomic set.

        The files are written into a temporary sibling folder and swapped in, so the folder
        never holds files of two different runs (see :func:`ecgaudit.io.write_output_set`).

        Parameters
        ----------
        out_dir : str or Path
            Output folder (created if needed).
        report : bool
            Also write the HTML report, ``report.html`` (role ``"report"``).

        Returns
        -------
        dict of str to Path
            The files written, by role.
        """
        files = self.output_files()
        if report:
            # The one upward import of this module (allowed in pyproject's layers contract):
            # the report renders a result, so it is imported only when asked for.
            from ecgaudit.reports import render_html

            files["report.html"] = render_html(self).encode("utf-8")
        written = write_output_set(out_dir, files)
        roles = {"metrics": "metrics.csv", "disparities": "disparities.csv",
                 "results": "results.json", "report": "report.html", **VIEW_TABLES}
        return {role: written[name] for role, name in roles.items() if name in written}

    def worst_group(self, task: str | None = None, metric: str = "auroc"
                    ) -> WorstGroup | dict[str, WorstGroup | None] | None:
        """Return the worst group per task on ``metric`` (the rule of the CLI and report).

        Every published group counts (intersections and ``unstable`` ones too, flagged);
        see :func:`ecgaudit.headline.worst_group`.

        Parameters
        ----------
        task : str, optional
            One task; by default a dict over every task.
        metric : str
            The metric (default AUROC).

        Returns
        -------
        WorstGroup, dict of str to WorstGroup, or None
        """
        records = _records(self.metrics, METRIC_COLUMNS)
        if task is not None:
            return headline_worst_group(records, task, metric)
        tasks = dict.fromkeys(str(t) for t in self.metrics["task"])
        return {t: headline_worst_group(records, t, metric) for t in tasks}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "results.json") -> AuditResult:
        """Build a result from the content of ``results.json``.

        Raises
        ------
        InputError
            If the content is not an ecgaudit result of a supported schema version.
        """
        if not isinstance(data, dict) or "metrics" not in data or "schema_version" not in data:
            raise InputError(f"'{source}' is not an ecgaudit results.json file")
        major = str(data["schema_version"]).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise InputError(
                f"'{source}' has schema version {data['schema_version']}; this ecgaudit "
                f"reads {SCHEMA_VERSION}. Re-run the audit with this version."
            )
        return cls(
            metrics=_frame(data["metrics"], METRIC_COLUMNS),
            disparities=_frame(data.get("disparities", []), DISPARITY_COLUMNS),
            manifest=data.get("manifest", {}),
            extras=data.get("extras", {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> AuditResult:
        """Read a saved ``results.json`` (or the folder that holds it).

        Raises
        ------
        InputError
            If the file is missing or not a valid result.
        """
        p = Path(path)
        if p.is_dir():
            p = p / "results.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as err:
            raise InputError(f"cannot read results file '{p.name}': {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise InputError(f"'{p.name}' is not valid JSON: {err}") from None
        return cls.from_dict(data, source=p.name)
