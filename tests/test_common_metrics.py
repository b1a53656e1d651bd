"""Common checks: every registered metric x every engine x degenerate inputs.

In the spirit of scikit-learn's ``test_common.py``: the cases are generated from the metric
registry (:mod:`ecgaudit.registry`), so a newly registered metric is checked without a new
test. Each case compares an engine's value with the registry's independent reference
implementation and checks the status and reason the audit would report:

* binary metrics: the exact per-group path (``group_stats``), the numpy and the compiled
  (numba) engines (``group_point_estimates``), both under row weights with zeros
  (``Evaluator.weighted``), and the binned engine (on the quantised scores it uses);
* ranking metrics: the numpy and compiled engines;
* continuous metrics: the sufficient-statistics formula;
* survival metrics: the numpy path and the compiled kernel;
* and each outcome type's audit produces exactly the registered metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import ecgaudit
from ecgaudit.metrics import _kernels
from ecgaudit.metrics import _table as tbl
from ecgaudit.metrics._binned import QuantisedTask
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._bootstrap import Grouping, TaskArrays
from ecgaudit.metrics._calibration import REASON_EQUAL, REASON_SEPARATED, logistic_recalibration
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._continuous import metric_values, sufficient_stats
from ecgaudit.metrics._evaluate import Evaluator
from ecgaudit.metrics._fastboot import EXTENDED_INDEX
from ecgaudit.metrics._points import MetricSession, group_point_estimates
from ecgaudit.metrics._survaudit import compiled_replicates
from ecgaudit.metrics._survival import SurvGroup, metric_keys, survival_values
from ecgaudit.registry import MetricSpec, registry

REG = registry()
BINARY = REG.select("binary")
RANKING = REG.select("binary", table="ranking")
CONTINUOUS = REG.select("continuous")
SURVIVAL = REG.select("survival")
THRESHOLD = 0.5
MIN_EVENTS = 10
ENGINES = ["numpy", "compiled"] if _kernels.HAVE_NUMBA else ["numpy"]
needs_numba = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba not installed")

# --------------------------------------------------------------------------- binary cases


def _typical(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = np.clip(0.25 + 0.35 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    y[:2] = (0, 1)  # both classes whatever the seed
    return y, p


def _case(name: str) -> tuple[np.ndarray, np.ndarray]:
    y, p = _typical()
    cases: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
        "typical": lambda: (y, p),
        "ties": lambda: (y, np.round(p, 1)),
        "one_class_pos": lambda: (np.ones_like(y), p),
        "one_class_neg": lambda: (np.zeros_like(y), p),
        "constant": lambda: (y, np.full(p.size, 0.3)),
        "all_zero_scores": lambda: (y, np.zeros(p.size)),
        "saturated": lambda: (y, np.where(np.arange(y.size) % 5 == 0, 1 - y, y).astype(float)),
        "separated": lambda: (y, np.where(y == 1, 0.9, 0.1) + 0.01 * np.arange(y.size) / y.size),
        "all_flagged": lambda: (y, np.clip(p, 0.6, 1.0)),
        "none_flagged": lambda: (y, np.clip(p, 0.0, 0.4)),
        "tiny": lambda: (np.array([0, 1, 1], np.int8), np.array([0.2, 0.7, 0.4])),
    }
    return cases[name]()


CASES = ["typical", "ties", "one_class_pos", "one_class_neg", "constant", "all_zero_scores",
         "saturated", "separated", "all_flagged", "none_flagged", "tiny"]


def _expected_reason(spec: MetricSpec, y: np.ndarray, p: np.ndarray) -> str | None:
    """The reason a metric is undefined, from the needs it declares (None: no fixed text)."""
    flag = p >= THRESHOLD
    checks = [("positives", y.sum() == 0, tbl.REASON_NO_POS),
              ("negatives", (1 - y).sum() == 0, tbl.REASON_NO_NEG),
              ("flagged", not flag.any(), tbl.REASON_NO_FLAGGED),
              ("unflagged", flag.all(), tbl.REASON_NO_UNFLAGGED)]
    for need, missing, reason in checks:
        if need in spec.needs and missing:
            return reason
    if spec.name in ("auroc", "auprc") and np.ptp(p) == 0:
        return tbl.REASON_CONSTANT
    return None


def _check(spec: MetricSpec, value: tbl.MetricValue, y: np.ndarray, p: np.ndarray) -> None:
    expected = spec.reference(y, p, THRESHOLD)
    if math.isnan(expected):
        assert value.status == "insufficient" and math.isnan(value.estimate), value
        assert value.reason, f"{spec.name}: an undefined value needs a reason"
        reason = _expected_reason(spec, y, p)
        if reason is not None:
            assert value.reason == reason
        return
    assert value.estimate == pytest.approx(expected, rel=1e-7, abs=1e-9), spec.name
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    small = min(n_pos, n_neg) < MIN_EVENTS
    assert value.status == ("unstable" if small else "ok"), (value.status, value.reason)
    assert bool(value.reason) == small
    if spec.bounded:
        assert 0.0 <= value.estimate <= 1.0
    if "wilson" in spec.intervals or "newcombe-score" in spec.intervals:
        assert value.ci_low < value.ci_high, "a closed-form interval never has zero width"


def _one_group(y: np.ndarray, p: np.ndarray) -> tuple[list[TaskArrays], list[Grouping]]:
    return ([TaskArrays("t", y, p, THRESHOLD)],
            [Grouping("overall", np.zeros(y.size, np.int64), ("all",), None)])


@pytest.fixture(scope="module")
def engine_values() -> dict[tuple[str, str], dict[str, tbl.MetricValue]]:
    """Every case through every engine once: ``(case, engine) -> metric -> value``."""
    out = {}
    for case in CASES:
        y, p = _case(case)
        out[(case, "exact")] = tbl.group_stats(y, p, THRESHOLD, min_events=MIN_EVENTS).values
        for engine in ENGINES:
            pts = group_point_estimates(*_one_group(y, p), engine=engine, min_events=MIN_EVENTS)
            out[(case, engine)] = pts.stats[0][0][0].values
    return out


@pytest.mark.parametrize("engine", ["exact", *ENGINES])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("spec", BINARY, ids=lambda s: s.name)
def test_binary_value_status_reason(spec: MetricSpec, case: str, engine: str,
                                    engine_values: dict) -> None:
    y, p = _case(case)
    _check(spec, engine_values[(case, engine)][spec.name], y, p)


@pytest.mark.parametrize("case", CASES)
def test_binary_engines_agree_on_status_and_reason(case: str, engine_values: dict) -> None:
    statuses = {e: {m: (v.status, v.reason) for m, v in engine_values[(case, e)].items()}
                for e in ENGINES}
    assert all(s == statuses[ENGINES[0]] for s in statuses.values())
    exact = {m: v.status for m, v in engine_values[(case, "exact")].items()}
    assert exact == {m: s for m, (s, _) in statuses[ENGINES[0]].items()}


@pytest.mark.parametrize("case, reason", [("constant", REASON_EQUAL),
                                          ("separated", REASON_SEPARATED)])
def test_calibration_reason_is_the_same_on_every_path(case: str, reason: str,
                                                      engine_values: dict) -> None:
    """An undefined recalibration fit gives the exact path's specific reason everywhere."""
    y, p = _case(case)
    assert logistic_recalibration(y, p).reason == reason  # the exact path's own words
    binned = MetricSession(*_one_group(y, p), bins=4096).point_estimates(min_events=MIN_EVENTS)
    paths = {e: engine_values[(case, e)] for e in ("exact", *ENGINES)}
    paths["binned"] = binned.stats[0][0][0].values
    for path, values in paths.items():
        for metric in ("cal_intercept", "cal_slope"):
            assert values[metric].status == "insufficient", (path, metric)
            assert values[metric].reason == reason, (path, metric)


def _same(value: float, expected: float, name: str, rtol: float, atol: float) -> None:
    """Both undefined (nan), or equal to the reference within ``rtol`` / ``atol``."""
    if math.isnan(expected):
        assert math.isnan(value), name
    else:
        assert value == pytest.approx(expected, rel=rtol, abs=atol), name


def _weighted(engine: str, y: np.ndarray, p: np.ndarray, w: np.ndarray,
              bins: int | None = None) -> np.ndarray:
    tasks, groupings = _one_group(y, p)
    strata = finest_strata([g.codes for g in groupings], y.size)
    ev = Evaluator(tasks, groupings, strata.codes, Sampler(strata.codes, None, 0),
                   engine=engine, bins=bins, clip=0.0, ece_bins=10, skip=frozenset())
    ev.estimates()
    return ev.weighted(np.asarray(w, np.int32)[None, :])[0][0][0][:, 0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", ["typical", "ties", "saturated", "tiny"])
def test_binary_zero_and_repeat_weights(case: str, engine: str) -> None:
    """Integer row weights (with zeros) equal the reference on the repeated rows."""
    y, p = _case(case)
    w = np.random.default_rng(1).integers(0, 3, y.size)
    w[:2] = 1  # keep both classes
    got = _weighted(engine, y, p, w)
    yr, pr = np.repeat(y, w), np.repeat(p, w)
    for spec in BINARY:
        expected = spec.reference(yr, pr, THRESHOLD)
        value = got[EXTENDED_INDEX[spec.name]]
        _same(value, expected, spec.name, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", ["typical", "ties", "saturated"])
def test_binned_engine_against_reference_on_quantised_scores(case: str, engine: str) -> None:
    """Binned replicates use quantised scores and a coarse recalibration covariate."""
    y, p = _case(case)
    bins = 4096
    q = QuantisedTask(p, THRESHOLD, bins, 0.0)
    got = _weighted(engine, y, p, np.ones(y.size), bins=bins)
    for spec in BINARY:
        if spec.name in ("cal_intercept", "cal_slope"):
            expected = spec.reference(y, q.scores(), THRESHOLD, x=q.covariate())
        else:
            expected = spec.reference(y, q.scores(), THRESHOLD)
        value = got[EXTENDED_INDEX[spec.name]]
        _same(value, expected, spec.name, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", ["typical", "ties", "one_class_neg"])
def test_ranking_metrics(case: str, engine: str) -> None:
    y, p = _case(case)
    codes = (np.arange(y.size) % 3 == 0).astype(np.int64)  # group 1 vs reference 0
    g = Grouping("sex", codes, ("f", "m"), 0)
    pts = group_point_estimates([TaskArrays("t", y, p, THRESHOLD)], [g], engine=engine)
    rows = pts.ranking.set_index(["group", "metric"])["estimate"]
    for spec in RANKING:
        for k, name in enumerate(g.groups):
            if spec.name.startswith("xauc") and k == g.reference:
                continue
            expected = spec.reference(y, p, codes == k, codes == g.reference)
            value = float(rows[(name, spec.name)])
            _same(value, expected, spec.name, rtol=1e-9, atol=1e-12)

# ----------------------------------------------------------------------- continuous cases


def _continuous_case(name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.normal(4.5, 0.6, 30)
    x = y + rng.normal(0.1, 0.3, 30)
    return {"typical": (y, x), "ties": (np.round(y, 1), np.round(x, 1)),
            "perfect": (y, y.copy()), "tiny": (y[:3], x[:3]), "one_row": (y[:1], x[:1]),
            "constant_predicted": (y, np.full(y.size, 4.37)),
            "constant_measured": (np.full(y.size, 4.2), x),
            "large_offset": (y + 1e6, x + 1e6)}[name]


CONTINUOUS_CASES = ["typical", "ties", "perfect", "tiny", "one_row", "constant_predicted",
                    "constant_measured", "large_offset"]


@pytest.mark.parametrize("case", CONTINUOUS_CASES)
@pytest.mark.parametrize("spec", CONTINUOUS, ids=lambda s: s.name)
def test_continuous_against_reference(spec: MetricSpec, case: str) -> None:
    y, x = _continuous_case(case)
    tol = 0.5
    shift = float(y.mean())
    values = metric_values(sufficient_stats(y, x, tol, shift).sum(axis=0)[None, :], shift)
    value = float(values[0, [s.name for s in CONTINUOUS].index(spec.name)])
    expected = spec.reference(y, x, tol)
    if y.size < spec.extra["min_n"] or not math.isfinite(expected):
        assert not math.isfinite(value)
        return
    scale = 1e-6 if case == "large_offset" else 1e-9  # shifted sums keep ~1e-10 of 1e6
    assert value == pytest.approx(expected, rel=1e-7, abs=scale), (spec.name, value, expected)

# ------------------------------------------------------------------------- survival cases


def _survival_case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 80
    x = np.round(rng.normal(size=n), 1)
    te = np.round(rng.weibull(1.3, n) * 500 * np.exp(-0.6 * x)) + 1.0
    p = 1 / (1 + np.exp(-(x - 0.3)))
    # "uncensored": administrative censoring after the last horizon only
    tc = np.round(rng.uniform(100, 1500, n)) if name == "censored" else np.full(n, 1000.0)
    return np.minimum(te, tc), (te <= tc).astype(np.int8), x, p


HORIZONS = [200.0, 600.0]


@pytest.mark.parametrize("path", ["numpy", "compiled"])
@pytest.mark.parametrize("case", ["censored", "uncensored"])
def test_survival_against_reference(case: str, path: str) -> None:
    if path == "compiled" and not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    t, e, s, p = _survival_case(case)
    g = SurvGroup.build(t, e, s, p)
    if path == "numpy":
        values = survival_values(g, None, HORIZONS, THRESHOLD)
    else:
        values = compiled_replicates(g, np.arange(t.size), np.ones((1, t.size)), HORIZONS,
                                     THRESHOLD)[0]
    got = dict(zip(metric_keys(HORIZONS), values))
    checked = 0
    for spec in SURVIVAL:
        if spec.reference is None:
            continue
        if spec.name in ("sensitivity", "specificity", "ppv") and case == "censored":
            continue  # their reference needs no censoring up to the horizon
        for (name, h), value in got.items():
            if name != spec.name:
                continue
            expected = spec.reference(t, e, s, p, h, HORIZONS, threshold=THRESHOLD)
            assert value == pytest.approx(expected, rel=1e-7, abs=1e-9), (name, h)
            checked += 1
    assert checked >= 10

def _survival_degenerate(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t, e, s, p = _survival_case("censored")
    if name == "no_events":
        e = np.zeros_like(e)
    elif name == "tied_risks":
        s, p = np.zeros_like(s), np.full(p.size, 0.3)
    elif name == "events_after_horizons":
        t = t + 1000.0
    elif name == "tiny":
        t, e, s, p = t[:4], np.array([1, 0, 1, 1], np.int8), s[:4], p[:4]
    return t, e, s, p


@needs_numba
@pytest.mark.parametrize("case", ["no_events", "tied_risks", "events_after_horizons", "tiny",
                                  "zero_weights"])
def test_survival_degenerate_inputs_numpy_and_compiled_agree(case: str) -> None:
    """Both paths give the same value, or both say undefined (``nan``)."""
    t, e, s, p = _survival_degenerate("censored" if case == "zero_weights" else case)
    w = np.ones(t.size)
    if case == "zero_weights":
        w = np.random.default_rng(5).integers(0, 3, t.size).astype(float)
    g = SurvGroup.build(t, e, s, p)
    a = survival_values(g, w, HORIZONS, THRESHOLD)
    b = compiled_replicates(g, np.arange(t.size), w[None, :], HORIZONS, THRESHOLD)[0]
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    if case == "zero_weights":  # equal to the unweighted values of the repeated rows
        rep = np.repeat(np.arange(t.size), w.astype(int))
        c = survival_values(SurvGroup.build(t[rep], e[rep], s[rep], p[rep]), None, HORIZONS,
                            THRESHOLD)
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-12, equal_nan=True)
    keys = metric_keys(HORIZONS)
    if case == "no_events":  # what needs events is undefined; Brier, specificity... are not
        defined = {k[0] for k, v in zip(keys, a) if np.isfinite(v)}
        assert not defined & {"harrell_c", "uno_c", "td_auroc", "sensitivity"}
        assert {"brier", "specificity", "observed_risk"} <= defined
    if case == "tied_risks":
        assert dict(zip(keys, a))[("harrell_c", None)] == pytest.approx(0.5)

# --------------------------------------------------------- registered == produced by audit


def _produced(result: ecgaudit.AuditResult) -> set[str]:
    """The metric names of an audit; every row's status agrees with its number and reason."""
    m = result.metrics
    number = np.isfinite(m["estimate"].astype(float))
    assert set(m.loc[number, "status"]) <= {"ok", "unstable"}
    assert set(m.loc[~number, "status"]) <= {"insufficient", "suppressed"}
    assert (m.loc[m["status"] != "ok", "reason"].astype(str).str.len() > 0).all()
    return set(m["metric"])


def test_binary_audit_produces_exactly_the_registered_metrics() -> None:
    from ecgaudit.datasets import make_synthetic_cohort

    frame = make_synthetic_cohort(400, seed=0, tasks=("hf",)).frame
    r = ecgaudit.audit(frame, {"tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
                               "attributes": {"sex": {}}, "bootstrap": 0})
    assert _produced(r) == set(REG.names("binary"))
    ranking = {row["metric"] for row in r.extras["ranking"]}
    assert ranking == set(REG.names("binary", table="ranking"))


def test_continuous_audit_produces_exactly_the_registered_metrics() -> None:
    from ecgaudit.datasets import make_synthetic_potassium

    frame = make_synthetic_potassium(400, seed=1)
    r = ecgaudit.audit(frame, {"tasks": [{"name": "K", "kind": "continuous", "label": "k",
                                          "score": "k_hat", "tolerance": 0.5}],
                               "attributes": {"sex": {}}, "bootstrap": 0})
    assert _produced(r) == set(REG.names("continuous"))


def test_survival_audit_produces_exactly_the_registered_metrics() -> None:
    t, e, _, p = _survival_case("censored")
    frame = pd.DataFrame({"t": t, "e": e, "p": p, "sex": np.where(np.arange(t.size) % 2,
                                                                  "f", "m")})
    r = ecgaudit.audit(frame, {"tasks": [{"name": "d", "kind": "survival", "time": "t",
                                          "event": "e", "score": "p",
                                          "horizons": HORIZONS}],
                               "attributes": {"sex": {}}, "bootstrap": 0})
    assert _produced(r) == set(REG.names("survival"))


def test_every_declaration_is_complete() -> None:
    for spec in REG:
        assert spec.label and spec.short_label and spec.definition and spec.needs_text
        assert spec.intervals and spec.disparity_test and spec.family
        assert spec.reference is not None or spec.name == "cal_ici", spec.key
        assert spec.reference_name, spec.key
