"""Bootstrap replicates drawn per cell (issue 17): the binomial inversion, the stratified
multinomial, equality in distribution with the row bootstrap, determinism, tiny strata and
coverage on a planted truth."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ecgaudit.metrics import BootGrouping, MetricSession, TaskArrays
from ecgaudit.metrics._cellboot import binomial, stratum_draws
from ecgaudit.metrics._cellengine import CellEngine, TaskCells
from ecgaudit.metrics._hashrng import replicate_keys
from ecgaudit.metrics._suffstats import EXTENDED_INDEX
from ecgaudit.pipeline._sumreplicates import CellReplicates

numba = pytest.importorskip("numba")


@pytest.mark.parametrize(("n", "p"), [(1, 0.3), (7, 0.5), (40, 0.02), (200, 0.4),
                                      (5000, 0.01), (100_000, 0.3), (3, 0.9), (1000, 0.97)])
def test_binomial_is_an_exact_inversion_of_one_uniform(n: int, p: float) -> None:
    m = 20_000
    u = (np.arange(m) + 0.5) / m  # a fine grid of uniforms: frequencies are the pmf
    x = np.array([binomial(n, p, v) for v in u])
    assert x.min() >= 0 and x.max() <= n
    freq = np.bincount(x, minlength=n + 1) / m
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    assert np.abs(freq - pmf).max() <= 2.0 / m  # each outcome owns one interval of width pmf


def test_stratum_draws_are_the_stratified_multinomial() -> None:
    n = np.array([30, 1, 120, 9, 1, 2, 3], dtype=np.int64)  # strata: 4 cells, 1 ECG, 2 cells
    bounds = np.array([0, 4, 5, 7], dtype=np.int64)
    keys = replicate_keys(7, range(4000))
    out = np.empty((keys.size, n.size), dtype=np.int64)
    for r, key in enumerate(keys):
        stratum_draws(key, bounds, n, out[r])
    for lo, hi in itertools.pairwise(bounds):
        assert (out[:, lo:hi].sum(axis=1) == n[lo:hi].sum()).all()  # strata keep their size
    assert (out[:, 4] == 1).all()  # a one-ECG stratum always draws its ECG
    total, share = n[:4].sum(), n[:4] / n[:4].sum()
    mean, var = out[:, :4].mean(axis=0), out[:, :4].var(axis=0, ddof=1)
    want_var = total * share * (1 - share)
    assert np.all(np.abs(mean - total * share) < 5 * np.sqrt(want_var / keys.size))
    np.testing.assert_allclose(var, want_var, rtol=0.15)
    cov = np.cov(out[:, 0], out[:, 2])[0, 1]
    np.testing.assert_allclose(cov, -total * share[0] * share[2], rtol=0.2)


def binned_cohort(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose scores sit on 40 bins (each bin one score), two attributes."""
    rng = np.random.default_rng(seed)
    a = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    b = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.25 + 0.1 * (a == 2)).astype(np.int8)
    raw = 1 / (1 + np.exp(-(rng.normal(-1.2, 1.0, n) + 1.4 * y - 0.3 * b)))
    edges = np.linspace(0, 1, 41)
    edges[20] = 0.5 - 1e-9 + 1e-9  # the threshold 0.5 is an edge
    bins = np.clip(np.searchsorted(edges, raw, side="right") - 1, 0, 39)
    sums = np.bincount(bins, weights=raw, minlength=40)
    cnt = np.bincount(bins, minlength=40)
    rep = np.where(cnt > 0, sums / np.maximum(cnt, 1), edges[:-1])
    frame = pd.DataFrame({"a": a, "b": b, "y": y, "bin": bins, "p": rep[bins]})
    return frame, rep


def session_and_cells(frame: pd.DataFrame, rep: np.ndarray, seed: int = 3
                      ) -> tuple[MetricSession, list[TaskCells]]:
    ab = frame.a.to_numpy() * 2 + frame.b.to_numpy()
    groupings = [BootGrouping("overall", np.zeros(len(frame), np.int64), ("all",), None),
                 BootGrouping("a", frame.a.to_numpy(), ("A0", "A1", "A2"), 0),
                 BootGrouping("b", frame.b.to_numpy(), ("B0", "B1"), 0),
                 BootGrouping("a&b", ab, tuple(f"G{k}" for k in range(6)), 0)]
    task = TaskArrays("t", frame.y.to_numpy(), frame.p.to_numpy(), 0.5)
    session = MetricSession([task], groupings, seed=seed, engine="compiled", bins=None)
    cells = (frame.reset_index().groupby(["a", "b", "bin", "y"])
             .agg(first=("index", "min"), n=("index", "size")).reset_index())
    tc = TaskCells(cells["first"].to_numpy(), cells["bin"].to_numpy(np.int64),
                   cells["y"].to_numpy(np.int64), cells["n"].to_numpy(np.int64), rep, 0.5)
    return session, [tc]


def test_given_counts_equal_to_the_cells_give_the_point_estimates() -> None:
    frame, rep = binned_cohort(3000, seed=1)
    session, (tc,) = session_and_cells(frame, rep)
    one = TaskCells(tc.stratum, tc.bin, tc.label, tc.n, tc.rep, tc.threshold,
                    np.repeat(tc.n[:, None], 3, axis=1).astype(np.int32))
    got = CellReplicates(session, [one], clip=0.0, ece_bins=10).replicates(range(3))
    calibration = {EXTENDED_INDEX["cal_intercept"], EXTENDED_INDEX["cal_slope"]}
    rows = [i for i in range(len(EXTENDED_INDEX)) if i not in calibration]
    for gi, want in enumerate(session.estimates[0]):
        for r in range(3):
            np.testing.assert_allclose(got[0][gi][r][rows], want[rows], rtol=1e-12,
                                       atol=1e-14, equal_nan=True)
        # the recalibration fit runs on coarse bins (<= 0.1 wide on the logit scale)
        np.testing.assert_allclose(got[0][gi][0][sorted(calibration)],
                                   want[sorted(calibration)], atol=0.05, equal_nan=True)


def test_cell_replicates_equal_the_row_bootstrap_in_distribution() -> None:
    frame, rep = binned_cohort(2500, seed=2)
    session, cells = session_and_cells(frame, rep)
    b = 1000
    rows = session.evaluator.replicates(range(b))  # the row bootstrap of the same ECGs
    drawn = CellReplicates(session, cells, clip=0.0, ece_bins=10).replicates(range(b))
    for gi in range(4):
        for metric in ("auroc", "auprc", "brier", "sensitivity", "ece", "cal_slope"):
            x = rows[0][gi][:, EXTENDED_INDEX[metric]]
            z = drawn[0][gi][:, EXTENDED_INDEX[metric]]
            ok = np.isfinite(x).all(axis=0) & np.isfinite(z).all(axis=0)
            assert ok.any()
            x, z = x[:, ok], z[:, ok]
            sd = x.std(axis=0, ddof=1)
            assert np.all(np.abs(x.mean(axis=0) - z.mean(axis=0)) < 5 * sd * np.sqrt(2 / b)), \
                (gi, metric)
            ratio = z.std(axis=0, ddof=1) / sd
            assert np.all((ratio > 0.8) & (ratio < 1.25)), (gi, metric, ratio)


def test_replicates_depend_on_the_seed_only() -> None:
    frame, rep = binned_cohort(800, seed=4)
    session, cells = session_and_cells(frame, rep)
    engine = CellReplicates(session, cells, clip=0.0, ece_bins=10)
    whole = engine.replicates(range(20))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        parts = [engine.replicates(range(0, 7)), engine.replicates(range(7, 20))]
    finally:
        numba.set_num_threads(before)
    for gi in range(4):
        np.testing.assert_array_equal(
            whole[0][gi], np.concatenate([parts[0][0][gi], parts[1][0][gi]]))
    other = CellReplicates(session_and_cells(frame, rep, seed=4)[0], cells, clip=0.0,
                           ece_bins=10).replicates(range(20))
    assert not np.array_equal(other[0][1], whole[0][1], equal_nan=True)


def test_audit_of_summaries_with_tiny_sites_has_no_zero_width_interval() -> None:
    from ecgaudit.pipeline._fromsummaries import audit_summaries
    from ecgaudit.pipeline._summaries import summarize

    from .test_summaries import cohort, config

    df = cohort(700)
    sites = np.where(np.arange(len(df)) < 1, "one", np.where(np.arange(len(df)) < 3, "two",
                                                             "big"))
    cfg = config(bootstrap=200, patient_column=None)
    parts = [summarize(df[sites == s].reset_index(drop=True), cfg, site=s)
             for s in ("one", "two", "big")]
    seen: list[str] = []
    res = audit_summaries(parts, cfg, progress=lambda step, i, n: seen.append(step))
    assert "bootstrap: 200 replicates (drawn per cell of the pooled summaries)" in seen
    m = res.metrics
    boot = m[m.ci_method.str.startswith("bootstrap")]
    assert len(boot) > 20 and (boot.ci_high > boot.ci_low).all()
    tiny = m[(m.attribute == "site") & m.group.isin(["one", "two"])]
    assert len(tiny) and not tiny.ci_method.str.startswith("bootstrap").any()
    assert "per cell" in res.manifest["bootstrap_bins"]["reason"]
    again = audit_summaries(parts, cfg)
    pd.testing.assert_frame_equal(again.metrics, m)
    from ecgaudit.errors import ConfigError

    with pytest.raises(ConfigError, match="BCa needs a jackknife of the rows"):
        audit_summaries(parts, {**cfg, "bootstrap_method": "bca"})


@pytest.mark.slow
def test_cell_bootstrap_covers_the_planted_truth() -> None:
    # A population of cells with known probabilities: 2 strata x 30 bins x 2 labels.
    rng = np.random.default_rng(11)
    rep = np.sort(rng.uniform(0.02, 0.98, 30))
    strata, bins, labels = (a.ravel() for a in np.meshgrid(np.arange(2), np.arange(30),
                                                           np.arange(2), indexing="ij"))
    weight = np.where(labels == 1, rep[bins], 1 - rep[bins]) * np.where(strata == 0, 1.0, 0.5)
    prob = weight / weight.sum()
    pos, neg = np.bincount(bins, prob * labels, 30), np.bincount(bins, prob * (1 - labels), 30)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    true_auc = float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))
    true_brier = float((prob * (labels - rep[bins]) ** 2).sum())
    hits = {"auroc": 0, "brier": 0}
    sims = 200
    for sim in range(sims):
        n = rng.multinomial(1500, prob)
        keep = n > 0
        tc = TaskCells(strata[keep], bins[keep], labels[keep], n[keep], rep, 0.5)
        engine = CellEngine([tc], [np.zeros(2, np.int64)], [1], [None], seed=sim)
        out = engine.replicates(range(400), calibration=False)[0][0][:, :, 0]
        for metric, truth in (("auroc", true_auc), ("brier", true_brier)):
            lo, hi = np.quantile(out[:, EXTENDED_INDEX[metric]], [0.025, 0.975])
            hits[metric] += lo <= truth <= hi
    for metric, h in hits.items():
        assert 0.91 <= h / sims <= 0.985, (metric, h / sims)
