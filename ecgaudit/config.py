"""Audit configuration: a validated, fully resolved description of one audit run.

A config is usually read from YAML (:func:`load_config`) but can be built in Python::

    AuditConfig(
        tasks=[TaskConfig(name="AFIB", label="label:AFIB", score="score:AFIB")],
        attributes={"sex": AttributeConfig(column="sex"), "age": AttributeConfig(kind="age")},
    )

The resolved config (every default filled in) is stored in the result manifest, so a
report always shows exactly what was run.
"""

from __future__ import annotations

import difflib
import itertools
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ecgaudit.errors import ConfigError

__all__ = [
    "DEFAULT_AGE_BANDS",
    "DEFAULT_MAX_GROUPS",
    "AttributeConfig",
    "AuditConfig",
    "CalibrationConfig",
    "ContextConfig",
    "ContinuousAxisConfig",
    "DeriveOn",
    "JoinConfig",
    "MultiplicityConfig",
    "TaskConfig",
    "ThresholdConfig",
    "load_config",
]

M = TypeVar("M", bound=BaseModel)

#: Default clinical age bands: lower edges of ``<40, 40-59, 60-79, 80+``.
DEFAULT_AGE_BANDS: tuple[float, ...] = (40.0, 60.0, 80.0)


#: Most distinct groups one attribute may have (``max_groups``); more stops the audit early.
DEFAULT_MAX_GROUPS = 200


class _Strict(BaseModel):
    # NaN / inf are never valid config numbers (a NaN threshold silently passes nothing).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TaskConfig(_Strict):
    """One prediction task: a label column and a score column.

    ``kind="continuous"``: ``label`` is the measured value and ``score`` the predicted value
    (same unit); ``cutpoints`` derive binary tasks ``<name>>=<cut>`` and ``tolerance`` is the
    clinical tolerance on ``|predicted - measured|`` (see docs/continuous.md).
    ``kind="survival"`` tasks have no label but ``time`` and ``event`` columns (event 1,
    censored 0, optionally a ``competing_event`` code) and ``horizons`` (in the time unit);
    their ``score`` is a risk (``score_type: risk``) or the predicted probability of the
    event by the horizon (see docs/survival.md).
    """

    name: str = Field(min_length=1)
    kind: Literal["binary", "survival", "continuous"] = "binary"
    label: str | None = None
    score: str
    positive_label: str | int | float | bool | None = None
    score_type: Literal["probability", "logit", "risk"] = "probability"
    # kind: continuous (docs/continuous.md)
    cutpoints: tuple[float, ...] = ()
    tolerance: float | None = Field(default=None, gt=0.0)
    # kind: survival (docs/survival.md)
    time: str | None = None
    event: str | None = None
    horizons: tuple[float, ...] = ()
    competing_event: int | str | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> TaskConfig:
        if self.kind == "survival":
            _check_survival_task(self)
        elif self.label is None:
            raise ValueError(f"a {self.kind} task needs a 'label' column")
        elif self.score_type == "risk":
            raise ValueError("score_type 'risk' is for survival tasks only")
        if self.kind != "continuous" and (self.cutpoints or self.tolerance is not None):
            raise ValueError("'cutpoints' and 'tolerance' apply to `kind: continuous` tasks only")
        if len(set(self.cutpoints)) != len(self.cutpoints):
            raise ValueError(f"'cutpoints' must be distinct; got {list(self.cutpoints)}")
        return self


def _check_survival_task(task: TaskConfig) -> None:
    missing = [k for k in ("time", "event") if getattr(task, k) is None]
    if missing or not task.horizons:
        need = [*missing, *([] if task.horizons else ["horizons"])]
        raise ValueError(f"a survival task needs {', '.join(repr(k) for k in need)}")
    if any(not h > 0 or h != h or h == float("inf") for h in task.horizons):
        raise ValueError(f"horizons must be positive, finite times; got {list(task.horizons)}")
    if len(set(task.horizons)) != len(task.horizons):
        raise ValueError(f"horizons must be distinct; got {list(task.horizons)}")


class AttributeConfig(_Strict):
    """A demographic or other grouping attribute.

    ``kind="age"`` bins a numeric column into bands at ``bands`` (lower edges, years).
    ``recode`` maps raw values to group names before grouping (e.g. PTB-XL's age 300 = 90+);
    ``missing_values`` lists raw values that mean unknown; both become the ``Unknown`` group.
    """

    column: str | None = None
    kind: Literal["categorical", "age"] = "categorical"
    bands: tuple[float, ...] | None = None
    reference: str | None = None
    recode: dict[str, str] = Field(default_factory=dict)
    missing_values: tuple[str, ...] = ()
    min_age: float = 0.0
    max_age: float = 120.0

    @field_validator("bands")
    @classmethod
    def _bands_increasing(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and (len(v) == 0 or any(b <= a for a, b in itertools.pairwise(v))):
            raise ValueError("age bands must be a non-empty, strictly increasing list of edges")
        return v


class DeriveOn(_Strict):
    """A development subset: rows where ``column`` takes one of ``values``."""

    column: str
    values: tuple[str | int | float, ...]


class ThresholdConfig(_Strict):
    """How the operating threshold is set, then frozen and applied to every group.

    ``rule="fixed"`` uses ``value``; ``sensitivity`` / ``specificity`` choose the highest
    (resp. lowest) threshold reaching ``target`` on the derivation rows; ``youden`` maximises
    sensitivity + specificity - 1. Derivation uses all rows unless ``derive_on`` names a subset.
    """

    rule: Literal["fixed", "sensitivity", "specificity", "youden"] = "fixed"
    value: float | None = Field(default=None, ge=0.0, le=1.0)
    target: float | None = Field(default=None, gt=0.0, le=1.0)
    derive_on: DeriveOn | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ThresholdConfig:
        if self.rule == "fixed" and self.target is not None:
            raise ValueError(
                "'target' applies to rules 'sensitivity' / 'specificity'; rule 'fixed' uses "
                "'value' (remove 'target', or set the rule that should reach it)"
            )
        if self.rule != "fixed" and self.value is not None:
            raise ValueError(
                f"'value' applies to rule 'fixed'; rule '{self.rule}' derives the threshold "
                "(remove 'value', or use rule: fixed)"
            )
        if self.rule == "fixed":
            if self.value is None:
                object.__setattr__(self, "value", 0.5)
        elif self.rule in ("sensitivity", "specificity") and self.target is None:
            raise ValueError(f"threshold rule '{self.rule}' needs a 'target' in (0, 1]")
        return self


class CalibrationConfig(_Strict):
    """Calibration settings.

    ``clip: 0`` (default) moves only saturated scores (exactly 0 or 1) to the nearest
    finite logit before the calibration slope/intercept fit, so unsaturated scores match
    statsmodels / R ``val.prob``; ``clip > 0`` clips every score to ``[clip, 1 - clip]``.
    ``ece_bins`` equal-mass bins are used for ECE.
    """

    clip: float = Field(default=0.0, ge=0.0, lt=0.01)
    ece_bins: int = Field(default=10, ge=2, le=100)


class MultiplicityConfig(_Strict):
    """Which disparity tests form one multiple-comparison family (Holm and BH).

    ``run`` (default): every comparison of the run; ``task``: one family per task;
    ``attribute``: one per attribute across tasks; ``task_attribute``: one per task and
    attribute. See ``docs/small-groups.md``.
    """

    family: Literal["run", "task", "attribute", "task_attribute"] = "run"


class JoinConfig(_Strict):
    """How predictions and a separate metadata file are joined."""

    allow_extra_metadata: bool = False


class ContextConfig(_Strict):
    """Free text shown in the report (only sections that are given appear)."""

    model_name: str | None = None
    model_version: str | None = None
    intended_use: str | None = None
    out_of_scope: str | None = None
    data_sources: str | None = None
    equity_context: str | None = None
    target_population: dict[str, dict[str, float]] = Field(default_factory=dict)


class ContinuousAxisConfig(_Strict):
    """A numeric attribute (e.g. age, BMI) used as a continuous axis (curves on a grid).

    ``grid`` lists the evaluation points (default: ``grid_points`` equally spaced points
    from the 5th to the 95th percentile). ``bandwidth`` is ``silverman`` / ``scott`` (rules
    of thumb on all known values) or a number in the attribute's units. ``by`` names
    configured attributes whose groups each get their own curves. Values outside
    ``valid_range`` (e.g. PTB-XL's age 300) are treated as unknown. See ``docs/views.md``.
    """

    column: str | None = None
    by: tuple[str, ...] = ()
    grid: tuple[float, ...] | None = None
    grid_points: int = Field(default=25, ge=3, le=200)
    bandwidth: Literal["silverman", "scott"] | float = "silverman"
    valid_range: tuple[float, float] | None = None
    min_effective_n: int | None = Field(default=None, ge=1)

    @field_validator("bandwidth")
    @classmethod
    def _positive(cls, v: str | float) -> str | float:
        if not isinstance(v, str) and not v > 0:
            raise ValueError("bandwidth must be 'silverman', 'scott' or a positive number")
        return v


class AuditConfig(_Strict):
    """The complete configuration of one audit run."""

    tasks: tuple[TaskConfig, ...] = Field(min_length=1)
    attributes: dict[str, AttributeConfig] = Field(default_factory=dict)
    id_column: str | None = None
    patient_column: str | None = None
    intersections: Literal["none", "pairs", "all"] | list[list[str]] = "pairs"
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    task_thresholds: dict[str, ThresholdConfig] = Field(default_factory=dict)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    join: JoinConfig = Field(default_factory=JoinConfig)
    multiplicity: MultiplicityConfig = Field(default_factory=MultiplicityConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_cell_size: int = Field(default=11, ge=1)
    min_events: int = Field(default=10, ge=1)
    seed: int = 0
    bootstrap: int = Field(default=1000, ge=0)
    bootstrap_method: Literal["percentile", "bca"] = "percentile"
    bootstrap_max_degenerate: float = Field(default=0.05, ge=0.0, le=1.0)
    #: ``auto`` (or unset): exact replicates up to ``AUTO_BIN_ROW_TASKS`` rows x tasks, 4096
    #: bins above; ``exact``; or a bin count 4096..65536.
    bootstrap_bins: Annotated[int, Field(ge=2**12, le=2**16)] | Literal["auto", "exact"] | None = (
        "auto")
    engine: Literal["auto", "compiled", "numpy"] = "auto"
    continuous_axes: dict[str, ContinuousAxisConfig] = Field(default_factory=dict)
    control: tuple[str, ...] = ()
    max_groups: int = Field(default=DEFAULT_MAX_GROUPS, ge=2)

    @model_validator(mode="after")
    def _resolve(self) -> AuditConfig:
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"task names must be unique; repeated: {dup}")
        resolved = {}
        for name, attr in self.attributes.items():
            update: dict[str, Any] = {}
            if attr.column is None:
                update["column"] = name
            if attr.kind == "age" and attr.bands is None:
                update["bands"] = DEFAULT_AGE_BANDS
            resolved[name] = attr.model_copy(update=update) if update else attr
        object.__setattr__(self, "attributes", resolved)
        if isinstance(self.intersections, list):
            for combo in self.intersections:
                unknown = [a for a in combo if a not in resolved]
                if unknown or len(combo) < 2:
                    raise ValueError(
                        f"intersection {combo} must name 2+ configured attributes "
                        f"({sorted(resolved)}); unknown: {unknown}"
                    )
        for task in self.task_thresholds:
            if task not in names:
                raise ValueError(_unknown("task_thresholds task", task, names))
        self._check_views(resolved)
        return self

    def _check_views(self, attributes: dict[str, AttributeConfig]) -> None:
        # continuous_axes.*.by and control name configured attributes (docs/views.md).
        valid = sorted(attributes)
        named = [("control", a) for a in self.control] + [
            (f"continuous_axes.{ax}.by", a) for ax, c in self.continuous_axes.items()
            for a in c.by]
        for where, a in named:
            if a not in attributes:
                raise ValueError(_unknown(f"attribute in {where}", a, valid))
        reserved = {"task", "axis", "by", "group", "metric", "estimate", "ci_low", "ci_high",
                    "ci_method", "n_eff", "status", "reason"}
        for axis in self.continuous_axes:
            if axis in reserved:
                raise ValueError(f"continuous_axes: '{axis}' names a column of the curve rows;"
                                 " pick another axis name (and set `column:`)")

    def threshold_for(self, task: str) -> ThresholdConfig:
        """Return the threshold rule of ``task`` (its own, else the default)."""
        return self.task_thresholds.get(task, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Return the resolved config as plain JSON-serialisable data."""
        return self.model_dump(mode="json")


def _unknown(kind: str, value: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(value, valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} '{value}'; valid: {valid}.{hint}"


def _format_pydantic(err: ValidationError, source: str, kind: str = "audit config") -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against the documented config keys)"
        lines.append(f"  - {loc}: {msg}")
    return f"{source}: invalid {kind}:\n" + "\n".join(lines)


def parse_config(data: Any, source: str = "config") -> AuditConfig:
    """Validate a config given as plain data (e.g. parsed YAML).

    Parameters
    ----------
    data : mapping
        The config content.
    source : str
        Name used in error messages.

    Returns
    -------
    AuditConfig

    Raises
    ------
    ConfigError
        If the content is not a valid config; every problem is listed.
    """
    return validate_mapping(AuditConfig, data, source, "audit config")


def validate_mapping(model: type[M], data: Any, source: str, kind: str) -> M:
    """Validate plain data (e.g. parsed YAML) as a pydantic model, listing every problem.

    Parameters
    ----------
    model : type
        The pydantic model class.
    data : object
        The content; must be a mapping.
    source : str
        Name used in error messages.
    kind : str
        What the content is, for messages (e.g. ``"finetune config"``).

    Returns
    -------
    The validated model instance.

    Raises
    ------
    ConfigError
        If the content is not a mapping or not valid.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys to values")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_pydantic(err, source, kind)) from None


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a YAML audit config.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    AuditConfig

    Raises
    ------
    ConfigError
        If the file is missing, not YAML, or not a valid config.
    """
    p = Path(path)
    return parse_config(read_yaml(p, "config file"), source=p.name)


def read_yaml(path: str | Path, what: str) -> Any:
    """Read a YAML file safely (``yaml.safe_load``), naming it in every error.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str
        What the file is, for messages (e.g. ``"policy file"``).

    Returns
    -------
    object
        The parsed content.

    Raises
    ------
    ConfigError
        If the file cannot be read or is not YAML.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {what} '{p.name}': {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} '{p.name}' is not a text (UTF-8 YAML) file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{p.name}: not valid YAML{_yaml_where(err)}") from None


def _yaml_where(err: yaml.YAMLError) -> str:
    """Line, column and problem of a YAML error, without quoting the file's content."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {problem}" if problem else where
