"""Which engine computes the point estimates and replicates of the bootstrap.

Engines
-------
``"compiled"``
    numba kernels (:mod:`ecgaudit.metrics._kernels`): one fused pass per task and replicate,
    replicates in parallel threads. Used by default when numba is installed
    (``pip install "ecgaudit[fast]"``).
``"numpy"``
    The pure-numpy cell engine (:mod:`ecgaudit.metrics._bootstats`). Same draws; integer
    statistics identical, floating ones equal to about 1e-12 (tested).

``bins`` (``None`` = exact) switches the replicates, never the point estimates, to the
binned mode of :mod:`ecgaudit.metrics._binned`; with the numpy engine the binned replicates
are the numpy engine's replicates of the quantised scores, which the compiled binned engine
reproduces.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ecgaudit.errors import InputError
from ecgaudit.metrics import _kernels
from ecgaudit.metrics._binned import BinnedEngine, QuantisedTask
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._bootstats import METRIC_INDEX, replicate_metrics
from ecgaudit.metrics._cells import SortedCells, build_cells
from ecgaudit.metrics._crossauc import ranking_replicates
from ecgaudit.metrics._delong import delong_auc_variance
from ecgaudit.metrics._fastboot import FastEngine

__all__ = ["ENGINES", "Evaluator", "resolve_engine"]

#: Engine names accepted by ``bootstrap_intervals(engine=...)``.
ENGINES = ("auto", "compiled", "numpy")
NO_NUMBA = (
    "bootstrap engine 'compiled' needs numba, which is not installed; install it with "
    "pip install 'ecgaudit[fast]' or use engine 'numpy' (same results, slower)"
)
BAD_ENGINE = "bootstrap engine must be one of {valid}, got {got!r} from {source}"
BAD_BINS = "bootstrap_bins must be between 2**12 and 2**16 (or unset for exact), got {got}"
ENV = "ECGAUDIT_ENGINE"

Nested = list[list[np.ndarray]]


class _TaskLike(Protocol):
    y: np.ndarray
    p: np.ndarray
    threshold: float


class _GroupingLike(Protocol):
    codes: np.ndarray
    groups: tuple[str, ...]
    reference: int | None


def resolve_engine(engine: str) -> str:
    """Map ``"auto"`` (or the ``ECGAUDIT_ENGINE`` environment variable) to an engine."""
    source = "the engine setting"
    if engine == "auto" and os.environ.get(ENV):
        engine, source = os.environ[ENV], f"the environment variable {ENV}"
    if engine not in ENGINES:
        raise InputError(BAD_ENGINE.format(valid=list(ENGINES), got=engine, source=source))
    if engine == "auto":
        return "compiled" if _kernels.HAVE_NUMBA else "numpy"
    if engine == "compiled" and not _kernels.HAVE_NUMBA:
        raise InputError(NO_NUMBA)
    return engine


def check_bins(bins: int | None) -> None:
    """Reject a bin count outside ``2**12..2**16``."""
    if bins is not None and not (2**12 <= int(bins) <= 2**16):
        raise InputError(BAD_BINS.format(got=bins))


class Evaluator:
    """Point estimates and replicates ``[task][grouping] -> (R, len(EXTENDED), G)``.

    The metric axis is :data:`ecgaudit.metrics._fastboot.EXTENDED`: every metric of
    :data:`ecgaudit.schema.METRICS`, then the ranking metrics (BPSN, BNSP, both xAUCs).
    """

    def __init__(self, tasks: Sequence[_TaskLike], groupings: Sequence[_GroupingLike],
                 strata: np.ndarray, sampler: Sampler, *, engine: str, bins: int | None,
                 clip: float, ece_bins: int, skip: frozenset[str]) -> None:
        check_bins(bins)
        self.engine = resolve_engine(engine)
        self.bins = bins
        self.sampler = sampler
        self.kw = {"ece_bins": ece_bins, "clip": clip}
        self.skip = skip
        self.calibration = not {"cal_intercept", "cal_slope"} <= skip
        self.n_tasks = len(tasks)
        codes = [g.codes for g in groupings]
        sizes = [len(g.groups) for g in groupings]
        refs = [g.reference for g in groupings]
        self._groupings = [(c, n, r) for c, n, r in zip(codes, sizes, refs)]
        triples = [(t.y, t.p, t.threshold) for t in tasks]
        self._rank_inputs: list[tuple[np.ndarray, np.ndarray]] = []
        self._fast: FastEngine | None = None
        self._binned: BinnedEngine | None = None
        self._cells: list[list[SortedCells]] = []
        self._qcells: list[list[SortedCells]] = []
        if self.engine == "compiled":
            self._fast = FastEngine(triples, codes, sizes, strata, refs, clip=clip,
                                    ece_bins=ece_bins)
            if bins is not None:
                self._binned = BinnedEngine(triples, codes, sizes, strata, sampler, refs,
                                            bins=bins,
                                            clip=clip, ece_bins=ece_bins,
                                            orders=self._fast.sorted["orders"])
        else:
            self._cells = _sorted_cells(triples, codes, sizes)
            if bins is not None:
                qt, xs = [], []
                for y, p, t in triples:
                    q = QuantisedTask(p, t, bins, clip)
                    qt.append((y, q.scores(), t))
                    xs.append(q.covariate())
                self._qcells = _sorted_cells(qt, codes, sizes, xs)
                self._rank_inputs = [(np.asarray(y), q) for y, q, _ in qt]
            self._exact_inputs = [(np.asarray(y), np.asarray(p, dtype=np.float64))
                                  for y, p, _ in triples]
        self.starts: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._estimates: tuple[Nested, list[list[np.ndarray]]] | None = None

    def estimates(self) -> tuple[Nested, list[list[np.ndarray]]]:
        """Exact point estimates (unit weights) and DeLong variances of the AUROC.

        Returns ``([task][grouping] -> (len(EXTENDED), G), [task][grouping] -> (G,))``;
        also sets the Newton starting values of the replicates.
        """
        if self._estimates is not None:  # computed once (binned mode drops the exact rows)
            return self._estimates
        n = self.sampler.n_rows
        ones = np.ones((1, n), dtype=np.int32)
        if self._fast is not None:
            full, var = self._fast.metrics(ones, calibration=self.calibration)
            est = [[a[0] for a in row] for row in full]
            dvar = [[v[0] for v in row] for row in var]
            if self._binned is not None:  # replicates never need the exact rows again
                self._fast = None
        else:
            est = [[a[0] for a in row] for row in self._numpy(self._cells, ones, exact=True)]
            dvar = [[_delong_groups(y, p, c, g) for c, g, _ in self._groupings]
                    for y, p in self._exact_inputs]
        ia, ib = METRIC_INDEX["cal_intercept"], METRIC_INDEX["cal_slope"]
        self.starts = [(np.concatenate([e[ia] for e in row]),
                        np.concatenate([e[ib] for e in row])) for row in est]
        self._estimates = (est, dvar)
        return est, dvar

    def centres(self) -> Nested:
        """Unit-weight metrics on the replicates' own scale (BCa's bias correction).

        The exact point estimates, except in binned mode, where replicates are computed on
        quantised scores and must be compared with the quantised estimate.
        """
        est = self.estimates()[0]
        if self.bins is None:
            return est
        ones = np.ones((1, self.sampler.n_rows), dtype=np.int32)
        return [[a[0] for a in row] for row in self.weighted(ones)]

    def _numpy(self, cells: list[list[SortedCells]], w: np.ndarray, *,
               exact: bool) -> Nested:
        out = []
        inputs = self._exact_inputs if exact else self._rank_inputs
        for t, row in enumerate(cells):
            out_row = []
            lo = 0
            y, p = inputs[t]
            for c, (codes, size, ref) in zip(row, self._groupings):
                g = c.n_groups
                start = None
                if self.starts is not None:
                    start = (self.starts[t][0][lo:lo + g], self.starts[t][1][lo:lo + g])
                m = replicate_metrics(c, w, cal_start=start, skip=self.skip, **self.kw)
                rk = ranking_replicates(y, p, codes, size, ref, w)
                out_row.append(np.concatenate([m, rk], axis=1))
                lo += g
            out.append(out_row)
        return out

    def block_size(self, n_boot: int) -> int:
        """Replicates per :meth:`replicates` call (bounds the memory of row weights).

        Row-weight engines hold ``block x rows`` weights (about 32 MB per block); binned
        replicates hold no row weights, so their blocks are large (fewer, longer kernel
        calls). At least 2, so that both cores stay busy.
        """
        if self._binned is not None:
            return max(2, min(n_boot, 256))
        return max(2, min(n_boot, (1 << 23) // max(self.sampler.n_rows, 1)))

    def replicates(self, block: range) -> Nested:
        """Metrics of bootstrap replicates ``block``."""
        if self._binned is not None:
            return self._binned.replicates(block, calibration=self.calibration,
                                           starts=self.starts)
        return self.weighted(self.sampler.draw(block))

    def weighted(self, w: np.ndarray) -> Nested:
        """Metrics for explicit row weights (replicates or jackknife blocks)."""
        binned = self.bins is not None
        if self._binned is not None:
            return self._binned.weighted(w, calibration=self.calibration, starts=self.starts)
        if self._fast is not None:
            return self._fast.metrics(w, calibration=self.calibration, starts=self.starts)[0]
        return self._numpy(self._qcells if binned else self._cells, w, exact=not binned)


def _delong_groups(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int
                   ) -> np.ndarray:
    out = np.full(n_groups, np.nan)
    for g in range(n_groups):
        m = codes == g
        if m.any():
            out[g] = delong_auc_variance(y[m], p[m])[1]
    return out


def _sorted_cells(triples: Sequence[tuple[np.ndarray, np.ndarray, float]],
                  codes: Sequence[np.ndarray], sizes: Sequence[int],
                  xs: Sequence[np.ndarray] | None = None) -> list[list[SortedCells]]:
    out = []
    for i, (y, p, t) in enumerate(triples):
        p = np.asarray(p, dtype=np.float64)
        order = np.lexsort((np.asarray(y), p))
        x = None if xs is None else xs[i]
        out.append([build_cells(y, p, c, g, t, order, x) for c, g in zip(codes, sizes)])
    return out
