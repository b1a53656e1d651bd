"""Binned replicates with reordered floating sums agree with the sequential kernel (<= 1e-12).

The binned scan and recalibration fit add their floating sums in vectorised order and the
fit takes its exponential from a polynomial (:mod:`ecgaudit.metrics._binkernels`,
:mod:`ecgaudit.metrics._binfused`). The reference here is main 4e0761e's sequential kernel:
its scan (copied below, unchanged: sums in row order, one bin at a time) and
:func:`ecgaudit.metrics._newton.fit_weighted`, fed by independently drawn row weights
(:meth:`Sampler.draw`) summed into cells. Every replicate value must agree to 1e-12
(absolute or relative); integer statistics (AUROC, rates, ranking metrics) exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgaudit.metrics import _ecebins, _kernels
from ecgaudit.metrics._binkernels import aggregate_cells, coarsen_one, marginalize_one
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._bootstrap import Grouping, TaskArrays
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._evaluate import Evaluator
from ecgaudit.metrics._fastboot import EXTENDED, EXTENDED_INDEX, start_arrays
from ecgaudit.metrics._newton import fit_weighted
from ecgaudit.metrics._suffstats import SuffStats
from ecgaudit.schema import RATE_METRICS

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba is a dev dependency")

if _kernels.HAVE_NUMBA:
    import numba

    njit = numba.njit
else:  # pragma: no cover
    def njit(f):  # type: ignore[no-untyped-def]
        return f

INTEGER_METRICS = ("auroc", "bpsn_auc", "bnsp_auc", "xauc_group_vs_ref", "xauc_ref_vs_group",
                   *RATE_METRICS)
TOL = 1e-12


@njit
def _sequential_scan(c, rep, thr, bins, refslot, allslot, ist_out, fst_out):
    # main 4e0761e's _binkernels.scan_one, verbatim apart from the name
    nb = rep.size
    nb_real = nb
    while nb_real > 0 and not np.isfinite(rep[nb_real - 1]):
        nb_real -= 1
    n_s = ist_out.shape[1]
    row_of = np.full(n_s + 1, -1, dtype=np.int64)
    n_m = 0
    for k in range(n_s + 1):
        src = allslot if k == n_s else refslot[k]
        if src >= 0 and row_of[src] < 0:
            row_of[src] = n_m
            n_m += 1
    mult = np.empty((n_m, 2, nb_real), dtype=np.int64)
    for src in range(n_s + 1):
        if row_of[src] < 0:
            continue
        cs = c[src * 2 * nb:(src + 1) * 2 * nb]
        m0 = mult[row_of[src], 0]
        m1 = mult[row_of[src], 1]
        nbw = 0
        pbw = 0
        for b in range(nb_real):
            x0 = np.int64(cs[2 * b])
            x1 = np.int64(cs[2 * b + 1])
            m0[b] = 2 * nbw + x0
            m1[b] = 2 * pbw + x1
            nbw += x0
            pbw += x1
    for g in range(n_s):
        cg = c[g * 2 * nb:(g + 1) * 2 * nb]
        ref = refslot[g]
        n_tot = 0
        p_tot = 0
        for b in range(nb_real):
            n_tot += cg[2 * b] + cg[2 * b + 1]
            p_tot += cg[2 * b + 1]
        ist_out[0, g] = n_tot
        ist_out[1, g] = p_tot
        if n_tot == 0:
            continue
        q = n_tot // bins
        rem = n_tot - q * bins
        nxt = _ecebins.edge(1, q, rem)
        cur = 0
        acc = 0.0
        ece = 0.0
        cb = 0
        pb = 0
        u2 = 0
        tp = 0
        flagged = 0
        bg_c = 0
        bg_e = 0
        ref_x = 0
        ref_y = 0
        sum_p = 0.0
        sq = 0.0
        ap = 0.0
        for b in range(nb_real):
            n0 = np.int64(cg[2 * b])
            n1 = np.int64(cg[2 * b + 1])
            p = rep[b]
            v = 2 * (cb - pb) + n0
            u2 += n1 * v
            ap += n1 * ((p_tot - pb) / max(n_tot - cb, 1))
            if p >= thr:
                flagged += n0 + n1
                tp += n1
            if cb + n0 + n1 < nxt:
                d = 1 - p
                sum_p += n0 * p
                sq += n0 * (p * p)
                acc += n0 * (0 - p)
                sum_p += n1 * p
                sq += n1 * (d * d)
                acc += n1 * d
                cb += n0 + n1
                pb += n1
            else:
                for y in range(2):
                    w = n0 if y == 0 else n1
                    if w == 0:
                        continue
                    d = y - p
                    sum_p += w * p
                    sq += w * (d * d)
                    acc, ece, cur, nxt = _ecebins.feed(cb, w, d, acc, ece, cur, nxt, q, rem)
                    cb += w
                    pb += w * y
        ma0 = mult[row_of[allslot], 0]
        ma1 = mult[row_of[allslot], 1]
        for b in range(nb_real):
            bg_e += np.int64(cg[2 * b + 1]) * ma0[b]
            bg_c += np.int64(cg[2 * b]) * ma1[b]
        if ref >= 0:
            mr0 = mult[row_of[ref], 0]
            mr1 = mult[row_of[ref], 1]
            for b in range(nb_real):
                ref_x += np.int64(cg[2 * b + 1]) * mr0[b]
                ref_y += np.int64(cg[2 * b]) * mr1[b]
        ist_out[2, g] = tp
        ist_out[3, g] = flagged
        ist_out[4, g] = u2
        ist_out[5, g] = bg_c
        ist_out[6, g] = bg_e
        ist_out[7, g] = ref_x
        ist_out[8, g] = ref_y
        fst_out[0, g] = sum_p
        fst_out[1, g] = sq
        fst_out[2, g] = ap
        fst_out[3, g] = ece
        fst_out[6, g] = np.nan
        fst_out[7, g] = np.nan


def _sequential_fits(coarse, n_coarse, x_cal, a0, b0, out_a, out_b) -> None:
    # main 4e0761e's _binfused.fit_cells: fit_weighted on each group's non-empty cells
    for g in range(a0.size):
        cg = coarse[g * n_coarse * 2:(g + 1) * n_coarse * 2].reshape(n_coarse, 2)
        keep = cg.sum(axis=1) > 0
        w0, w1, x = cg[keep, 0].astype(np.int64), cg[keep, 1].astype(np.int64), x_cal[keep]
        if not (w0.any() and w1.any()) or not (x[w0 > 0].max() > x[w1 > 0].min()
                                             and x[w1 > 0].max() > x[w0 > 0].min()):
            out_a[g] = out_b[g] = np.nan
            continue
        a, b = (a0[g], b0[g]) if np.isfinite(a0[g]) and np.isfinite(b0[g]) else (0.0, 1.0)
        out_a[g], out_b[g] = fit_weighted(np.ascontiguousarray(x), w0, w1, a, b)


def _sequential_replicates(ev: Evaluator, weights: np.ndarray) -> list[list[np.ndarray]]:
    """Main 4e0761e's binned statistics of explicit row weights (cells, scan, fits)."""
    e = ev._binned
    r, n_t, n_s = weights.shape[0], e.cells.shape[0], e.n_slots
    counts = np.zeros((r, n_t, e.n_fine * e.width), dtype=np.int32)
    aggregate_cells(np.ascontiguousarray(weights, dtype=np.int32), e.cells, counts)
    stats = SuffStats.zeros(n_t, r, n_slots=n_s)
    a0, b0 = start_arrays(ev.starts, n_t, n_s)
    cells = np.empty((n_s + 1) * e.width, dtype=np.int32)
    coarse = np.empty(n_s * e.n_coarse * 2, dtype=np.int32)
    for i in range(r):
        for t in range(n_t):
            marginalize_one(counts[i, t], *e.plan, e.width, cells)
            ist, fst = stats.ints[t, i], stats.floats[t, i]
            _sequential_scan(cells, e.fine_rep[t], e.thresholds[t], e.ece_bins, e.refslot,
                             n_s, ist, fst)
            coarsen_one(cells, n_s, e.coarse_of[t], e.n_coarse, coarse)
            _sequential_fits(coarse, e.n_coarse, e.x_cal[t], a0[t], b0[t], fst[4], fst[5])
    return e._assemble(stats)


def _case(kind: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.choice(4, n, p=[0.6, 0.3, 0.08, 0.02])
    b = rng.integers(0, 3, n)
    groupings = [Grouping("overall", np.zeros(n, np.int64), ("all",), None),
                 Grouping("a", a, ("a0", "a1", "a2", "a3"), 0),
                 Grouping("b", b, ("b0", "b1", "b2"), 0)]
    tasks = []
    for t in range(2):
        y = (rng.random(n) < 0.3).astype(np.int8)
        p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
        if kind == "tied":
            p = np.round(p, 2)  # ~100 distinct scores: tie blocks, fewer bins than asked
            p[:15] = 1.0
        elif kind == "separated" and t == 1:
            p = np.where(y == 1, 0.6 + 0.3 * rng.random(n), 0.4 * rng.random(n))
        tasks.append(TaskArrays(f"t{t}", y, p, 0.5))
    return tasks, groupings


def _compare(new: list[list[np.ndarray]], ref: list[list[np.ndarray]]) -> int:
    checked = 0
    for row_new, row_ref in zip(new, ref):
        for x, y in zip(row_new, row_ref):
            assert x.shape == y.shape
            assert np.array_equal(np.isnan(x), np.isnan(y)), "different undefined values"
            for metric in EXTENDED:
                m = EXTENDED_INDEX[metric]
                u, v = x[:, m], y[:, m]
                if metric in INTEGER_METRICS:
                    assert np.array_equal(u, v, equal_nan=True), metric
                    continue
                ok = np.isfinite(v)
                diff = np.abs(u[ok] - v[ok])
                assert np.all((diff <= TOL) | (diff <= TOL * np.abs(v[ok]))), \
                    (metric, float(diff.max(initial=0.0)))
                checked += int(ok.sum())
    return checked


@pytest.mark.parametrize(("kind", "n", "clustered"), [
    ("random", 3000, False), ("random", 3000, True), ("tied", 3000, False),
    ("separated", 2000, False), ("tiny", 40, False), ("large", 200_000, False),
])
def test_reordered_replicates_agree_with_the_sequential_kernel(kind: str, n: int,
                                                                clustered: bool) -> None:
    tasks, groupings = _case(kind, n, seed=len(kind) + n)
    strata = finest_strata([g.codes for g in groupings], n)
    patient = np.arange(n) // 2 if clustered else None
    sampler = Sampler(strata.codes, patient, 11)
    ev = Evaluator(tasks, groupings, strata.codes, sampler, engine="compiled", bins=4096,
                   clip=1e-6, ece_bins=10, skip=frozenset())
    ev.estimates()
    block = range(2, 5) if kind == "large" else range(0, 12)
    new = ev.replicates(block)  # the fused kernel: vectorised scan and fits
    ref = _sequential_replicates(ev, sampler.draw(block))
    assert _compare(new, ref) > 100  # enough finite floating values were compared
    if kind == "separated":  # task t1: every replicate is separated, no fit
        assert np.isnan(new[1][0][:, EXTENDED_INDEX["cal_slope"]]).all()


def test_polynomial_exponential_is_within_two_ulp_of_math_exp() -> None:
    from ecgaudit.metrics._binfused import exp_neg

    x = np.concatenate([np.linspace(-720.0, 720.0, 40001),
                        np.random.default_rng(3).normal(0.0, 6.0, 20000)])
    e = np.empty(x.size)
    bits = np.empty(x.size, dtype=np.int64)
    exp_neg(x, 0.0, 1.0, e, bits)  # the argument -x is exact: only the exponential errs
    got = e * bits.view(np.float64)
    want = np.array([math.exp(min(max(-v, -700.0), 700.0)) for v in x])
    assert np.max(np.abs(got - want) / want) < 4.5e-16


def test_vectorised_fit_agrees_with_fit_weighted() -> None:
    from ecgaudit.metrics._binfused import fit_vectorised

    rng = np.random.default_rng(8)
    fitted = 0
    for _ in range(300):
        m = int(rng.integers(2, 300))
        x = np.sort(rng.normal(0.0, 2.0, m))
        p = 1.0 / (1.0 + np.exp(-(0.3 + 0.8 * x)))
        n = rng.integers(1, 50, m)
        w1 = rng.binomial(n, p).astype(np.int64)
        w0 = (n - w1).astype(np.int64)
        a0, b0 = float(rng.normal(0.0, 0.3)), float(rng.normal(1.0, 0.2))
        want = fit_weighted(x, w0, w1, a0, b0)
        got = fit_vectorised(x, w0, w1, a0, b0, np.empty(m), np.empty(m, dtype=np.int64))
        assert np.isnan(got[0]) == np.isnan(want[0])
        if np.isfinite(want[0]):
            fitted += 1
            assert abs(got[0] - want[0]) <= TOL * max(1.0, abs(want[0]))
            assert abs(got[1] - want[1]) <= TOL * max(1.0, abs(want[1]))
    assert fitted > 250


def test_replicates_do_not_depend_on_threads_or_blocks() -> None:
    # a replicate depends on its key only, not on the thread or the block that draws it
    tasks, groupings = _case("random", 2500, seed=5)
    strata = finest_strata([g.codes for g in groupings], 2500)
    ev = Evaluator(tasks, groupings, strata.codes, Sampler(strata.codes, None, 3),
                   engine="compiled", bins=4096, clip=1e-6, ece_bins=10, skip=frozenset())
    ev.estimates()
    whole = ev.replicates(range(10))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        parts = [ev.replicates(range(0, 3)), ev.replicates(range(3, 10))]
    finally:
        numba.set_num_threads(before)
    for t in range(len(tasks)):
        for gi in range(len(groupings)):
            joined = np.concatenate([parts[0][t][gi], parts[1][t][gi]])
            assert np.array_equal(whole[t][gi], joined, equal_nan=True)
    assert not np.array_equal(whole[0][1][0], whole[0][1][1], equal_nan=True)
