"""Compiled (numba) bootstrap kernels: draws and one fused pass per task and replicate.

The pure-numpy engine (:mod:`ecgaudit.metrics._bootstats`) makes about 40 full-length array
passes per task, grouping and replicate. These kernels make one pass per task and replicate
over the rows sorted by score, updating every group of every grouping the row belongs to
(each row is in one group per grouping), plus about three passes for the recalibration
Newton steps. Replicates run in parallel threads.

Each kernel returns *sufficient statistics* per (replicate, group), in the layout of
:mod:`ecgaudit.metrics._suffstats`, whose ``assemble`` forms the metrics; the recalibration
fit follows :mod:`ecgaudit.metrics._newton` and ECE's bins :mod:`ecgaudit.metrics._ecebins`.
Integer statistics (n, events, confusion counts and twice the Mann-Whitney U) are exact and
identical to the numpy engine; floating sums (Brier, AUPRC, ECE, the calibration fit) are
accumulated in another order and agree with it to about 1e-12 relative (tested).

The module imports without numba (``HAVE_NUMBA`` is then ``False`` and callers use the
numpy engine); the functions are then plain (slow) Python, used by no caller.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ecgaudit.metrics import _ecebins, _newton, _suffstats
from ecgaudit.metrics._compile import _CACHE, HAVE_NUMBA, _jit, _pjit, prange

if HAVE_NUMBA:  # pragma: no cover - exercised in both environments by the CI image
    import numba

__all__ = ["F_STATS", "HAVE_NUMBA", "I_STATS", "n_threads", "task_stats"]

#: Modules whose kernels call each other's (see :func:`_drop_stale_cache`).
KERNEL_MODULES = ("_kernels", "_compile", "_hashrng", "_newton", "_ecebins", "_drawkernels",
                  "_binkernels", "_binsweep", "_binfused", "_contkernels", "_survconc",
                  "_survkernel", "_pairkernel", "_cellboot", "_lowesskernels")

#: The sufficient-statistics layout of :mod:`ecgaudit.metrics._suffstats` (re-exported).
I_STATS, F_STATS = _suffstats.I_STATS, _suffstats.F_STATS


_SUB_ROWS = 50_000  # rows of the subsample that starts the point-estimate fits


@_jit
def _main_pass(ws, ys, ps, xs, fs, newblk, gmap, refslot, n_g, p_g, thr, bins, ist, fst, sep):
    n = ws.size
    n_k = gmap.shape[0]
    n_s = n_g.size
    cb = np.zeros(n_s, dtype=np.int64)  # weight below (earlier in ascending order)
    pb = np.zeros(n_s, dtype=np.int64)  # positive weight below
    snap_n = np.zeros(n_s, dtype=np.int64)  # a group's negatives below the current block
    snap_p = np.zeros(n_s, dtype=np.int64)  # and its positives below it
    cb_all = 0  # the same for the whole cohort (the background of BPSN/BNSP)
    pb_all = 0
    cur = np.zeros(n_s, dtype=np.int64)  # current ECE bin
    acc = np.zeros(n_s)  # running sum of (y - p) in the current ECE bin
    q = n_g // bins  # equal-mass bins as numpy.array_split: the first `rem` hold q + 1
    rem = n_g - q * bins
    nxt = _ecebins.edge(1, q, rem)  # end of the current ECE bin
    i = 0
    while i < n:
        j = i + 1
        while j < n and not newblk[j]:
            j += 1
        # Pass 1 over the tie block: counts strictly below the block.
        for t in range(i, j):
            w = ws[t]
            if w == 0:
                continue
            f = fs[t]
            if ys[t]:
                for k in range(n_k):
                    g = gmap[k, f]
                    below = cb[g] - pb[g]
                    ist[4, g] += w * below
                    snap_n[g] = below
                    fst[2, g] += w * ((p_g[g] - pb[g]) / (n_g[g] - cb[g]))
                    ist[6, g] += w * (cb_all - pb_all)
                    r = refslot[g]
                    if r >= 0:
                        ist[7, g] += w * (cb[r] - pb[r])
            else:
                for k in range(n_k):
                    g = gmap[k, f]
                    snap_p[g] = pb[g]
                    ist[5, g] += w * pb_all
                    r = refslot[g]
                    if r >= 0:
                        ist[8, g] += w * pb[r]
        # Pass 2: add the block's rows.
        for t in range(i, j):
            w = ws[t]
            if w == 0:
                continue
            y = ys[t]
            p = ps[t]
            x = xs[t]
            f = fs[t]
            flag = p >= thr
            d = y - p
            for k in range(n_k):
                g = gmap[k, f]
                fst[0, g] += w * p
                fst[1, g] += w * (d * d)
                if flag:
                    ist[3, g] += w
                    ist[2, g] += w * y
                if y:
                    if x < sep[0, g]:
                        sep[0, g] = x
                    if x > sep[1, g]:
                        sep[1, g] = x
                else:
                    if x < sep[2, g]:
                        sep[2, g] = x
                    if x > sep[3, g]:
                        sep[3, g] = x
                acc[g], fst[3, g], cur[g], nxt[g] = _ecebins.feed(
                    cb[g], w, d, acc[g], fst[3, g], cur[g], nxt[g], q[g], rem[g])
                cb[g] += w
                pb[g] += w * y
            cb_all += w
            pb_all += w * y
        # Pass 3: counts at or below the block (ties count 1/2 overall).
        for t in range(i, j):
            w = ws[t]
            if w == 0:
                continue
            f = fs[t]
            if ys[t]:
                for k in range(n_k):
                    g = gmap[k, f]
                    below = cb[g] - pb[g]
                    ist[4, g] += w * below
                    v = np.float64(snap_n[g] + below)
                    fst[6, g] += w * (v * v)
                    ist[6, g] += w * (cb_all - pb_all)
                    r = refslot[g]
                    if r >= 0:
                        ist[7, g] += w * (cb[r] - pb[r])
            else:
                for k in range(n_k):
                    g = gmap[k, f]
                    v = np.float64(2 * p_g[g] - snap_p[g] - pb[g])
                    fst[7, g] += w * (v * v)
                    ist[5, g] += w * pb_all
                    r = refslot[g]
                    if r >= 0:
                        ist[8, g] += w * pb[r]
        i = j


@_jit
def _newton_terms(ws, ys, xs, fs, gmap, a, b, live, out):
    out[:] = 0.0
    n_k = gmap.shape[0]
    last_x = np.nan
    last_f = -1
    mus = np.zeros(n_k)
    for t in range(ws.size):
        w = ws[t]
        if w == 0:
            continue
        x = xs[t]
        y = ys[t]
        f = fs[t]
        same = x == last_x and f == last_f  # binned cells: both labels share a score
        last_x = x
        last_f = f
        for k in range(n_k):
            g = gmap[k, f]
            if not live[g]:
                continue
            if not same:
                mus[k] = _newton.sigmoid(a[g] + b[g] * x)
            mu = mus[k]
            r = w * (y - mu)
            v = w * (mu * (1.0 - mu))
            out[0, g] += r
            out[1, g] += r * x
            out[2, g] += v
            out[3, g] += v * x
            out[4, g] += v * x * x


@_jit
def _loglik(ws, ys, xs, fs, gmap, a, b, live, out):
    out[:] = 0.0
    n_k = gmap.shape[0]
    for t in range(ws.size):
        w = ws[t]
        if w == 0:
            continue
        x = xs[t]
        f = fs[t]
        for k in range(n_k):
            g = gmap[k, f]
            if not live[g]:
                continue
            eta = a[g] + b[g] * x
            out[g] += w * (ys[t] * eta - _newton.softplus(eta))


@_jit
def _calibrate(ws, ys, xs, fs, gmap, active, a, b):
    """Damped Newton fit of every active group, one pass over the rows per step.

    The rules are :mod:`ecgaudit.metrics._newton`'s (its compiled functions), applied to all
    groups at once; :func:`ecgaudit.metrics._newton.fit_weighted` applies them to one group's
    cells.
    """
    n_s = a.size
    done = ~active
    failed = np.zeros(n_s, dtype=np.bool_)
    terms = np.zeros((5, n_s))
    ll = np.zeros(n_s)
    new = np.zeros(n_s)
    da = np.zeros(n_s)
    db = np.zeros(n_s)
    tt = np.ones(n_s)
    for _ in range(_newton.MAX_ITER):
        live = ~done
        if not live.any():
            break
        _newton_terms(ws, ys, xs, fs, gmap, a, b, live, terms)
        search = np.zeros(n_s, dtype=np.bool_)
        for g in range(n_s):
            if not live[g]:
                continue
            det = _newton.determinant(terms[2, g], terms[3, g], terms[4, g])
            if not det > 0:
                failed[g] = True
                done[g] = True
                live[g] = False
                continue
            da[g], db[g] = _newton.direction(terms[0, g], terms[1, g], terms[2, g], terms[3, g],
                                             terms[4, g], det)
            tt[g] = 1.0
            if _newton.is_final(da[g], db[g], a[g], b[g]):
                a[g] += da[g]
                b[g] += db[g]
                done[g] = True
                live[g] = False
            elif _newton.step_size(da[g], db[g]) > _newton.GUARD:
                search[g] = True
        if search.any():
            _loglik(ws, ys, xs, fs, gmap, a, b, search, ll)
            for _h in range(_newton.HALVINGS):
                ca = a + tt * da
                cb = b + tt * db
                _loglik(ws, ys, xs, fs, gmap, ca, cb, search, new)
                worse = False
                for g in range(n_s):
                    if search[g]:
                        if _newton.accepts(new[g], ll[g]):
                            search[g] = False
                        else:
                            tt[g] /= 2.0
                            worse = True
                if not worse:
                    break
        for g in range(n_s):
            if not live[g]:
                continue
            a[g] += tt[g] * da[g]
            b[g] += tt[g] * db[g]
            if _newton.diverged(a[g], b[g]):
                failed[g] = True
                done[g] = True
            elif _newton.converged(tt[g] * _newton.step_size(da[g], db[g]), a[g], b[g]):
                done[g] = True
    for g in range(n_s):
        if (not active[g]) or failed[g] or (not done[g]):
            a[g] = np.nan
            b[g] = np.nan


@_pjit
def task_stats(W, orders, ys, ps, xs, fs, newblk, gmap, refslot, n_fine, thr, bins, cal, a0,
               b0, ist_out, fst_out):
    """Fill the statistics of every (task, replicate, group); tasks stacked along axis 0.

    ``W`` (R, n) holds row weights in row order; ``orders[t]`` sorts task ``t`` by score
    (then label) and ``ys, ps, xs, fs, newblk`` are already in that order; ``gmap[k, f]``
    is the group slot of stratum ``f`` in grouping ``k`` and ``refslot[g]`` the slot of
    its reference group (-1: none). Outputs ``ist_out`` (T, R, 9, S) and ``fst_out``
    (T, R, 8, S) follow :data:`I_STATS` and :data:`F_STATS`.
    """
    n_t, n = orders.shape
    n_r = W.shape[0]
    n_k = gmap.shape[0]
    n_s = ist_out.shape[3]
    for job in prange(n_t * n_r):
        t = job // n_r
        r = job - t * n_r
        order = orders[t]
        y_t = ys[t]
        f_t = fs[t]
        ws = np.empty(n, dtype=np.int64)
        nf = np.zeros(n_fine, dtype=np.int64)
        pf = np.zeros(n_fine, dtype=np.int64)
        for i in range(n):
            w = np.int64(W[r, order[i]])
            ws[i] = w
            nf[f_t[i]] += w
            pf[f_t[i]] += w * y_t[i]
        n_g = np.zeros(n_s, dtype=np.int64)
        p_g = np.zeros(n_s, dtype=np.int64)
        for k in range(n_k):
            for f in range(n_fine):
                n_g[gmap[k, f]] += nf[f]
                p_g[gmap[k, f]] += pf[f]
        ist = ist_out[t, r]
        fst = fst_out[t, r]
        ist[:, :] = 0
        fst[:, :] = 0.0
        sep = np.empty((4, n_s))
        sep[0, :] = np.inf
        sep[1, :] = -np.inf
        sep[2, :] = np.inf
        sep[3, :] = -np.inf
        _main_pass(ws, y_t, ps[t], xs[t], f_t, newblk[t], gmap, refslot, n_g, p_g, thr[t], bins,
                   ist, fst, sep)
        ist[0, :] = n_g
        ist[1, :] = p_g
        if cal:
            active = (p_g > 0) & (n_g > p_g) & (sep[3] > sep[0]) & (sep[1] > sep[2])
            a = np.zeros(n_s)
            b = np.ones(n_s)  # without a start: identity recalibration (a, b) = (0, 1)
            started = False
            for g in range(n_s):
                if np.isfinite(a0[t, g]) and np.isfinite(b0[t, g]):
                    a[g] = a0[t, g]
                    b[g] = b0[t, g]
                    started = True
            if not started and n > 4 * _SUB_ROWS:
                # Point estimates of a large input: fit every `step`-th sorted row first (a
                # spread-out subsample), then polish on all rows from there (2-3 passes).
                step = n // _SUB_ROWS
                a_s = a.copy()
                b_s = b.copy()
                _calibrate(ws[::step], y_t[::step], xs[t][::step], f_t[::step], gmap, active,
                           a_s, b_s)
                for g in range(n_s):
                    if np.isfinite(a_s[g]) and np.isfinite(b_s[g]):
                        a[g] = a_s[g]
                        b[g] = b_s[g]
            _calibrate(ws, y_t, xs[t], f_t, gmap, active, a, b)
            fst[4, :] = a
            fst[5, :] = b
        else:
            fst[4, :] = np.nan
            fst[5, :] = np.nan


def n_threads() -> int:
    """Threads the parallel kernels use (1 without numba)."""
    return int(numba.get_num_threads()) if HAVE_NUMBA else 1


def _drop_stale_cache(cache_dir: Path) -> None:
    """Drop numba's on-disk cache of every kernel module when any of their sources changed.

    numba keys a cached kernel on its own source file only, but kernels here compile in
    kernels of the other :data:`KERNEL_MODULES`; a change in one would otherwise leave
    stale machine code in the others' cache. A stamp (the hash of all their sources) in
    the cache directory records which sources the cache was built from.
    """
    here = Path(__file__).resolve().parent
    try:
        digest = hashlib.sha256()
        for name in KERNEL_MODULES:
            digest.update((here / f"{name}.py").read_bytes())
        stamp = cache_dir / "ecgaudit-kernels.sha256"
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return
        for name in KERNEL_MODULES:
            for old in [*cache_dir.glob(f"{name}.*.nbi"), *cache_dir.glob(f"{name}.*.nbc")]:
                old.unlink(missing_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(digest.hexdigest())
        tmp.replace(stamp)
    except OSError:  # pragma: no cover - sources or cache not readable/writable: numba
        pass  # then keeps (or cannot write) its cache; nothing else depends on the stamp


def _cache_dir() -> Path | None:
    """Numba's cache directory of this module (an internal attribute; None if it moved)."""
    path = getattr(getattr(task_stats, "_cache", None), "_cache_path", None)
    return Path(path) if path else None


_CACHE_DIR = _cache_dir() if HAVE_NUMBA and _CACHE else None
if _CACHE_DIR is not None:
    _drop_stale_cache(_CACHE_DIR)
