"""The binned replicates' fused draw-and-sweep kernel and the exact-integer helpers it uses.

Each kernel is checked against an independent numpy reference: the numpy sampler's row
weights summed into cells with ``np.bincount``, group cells as sums of stratum cells, the
ranking counts as Python-integer dot products, and the unsigned-integer formula of the
uniforms.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics import _hashrng, _kernels
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._bootstrap import Grouping, TaskArrays
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._evaluate import Evaluator

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba is a dev dependency")


def _engine(n: int, bins: int, seed: int = 0, patient: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    a = rng.choice(4, n, p=[0.6, 0.3, 0.08, 0.02])
    b = rng.integers(0, 3, n)
    groupings = [Grouping("a", a, ["a0", "a1", "a2", "a3"], 0),
                 Grouping("b", b, ["b0", "b1", "b2"], 0)]
    tasks = []
    for t in range(2):
        y = (rng.random(n) < 0.3).astype(np.int8)
        p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
        tasks.append(TaskArrays(f"t{t}", y, p, 0.5))
    strata = finest_strata([g.codes for g in groupings], n)
    sampler = Sampler(strata.codes, patient, 5)
    ev = Evaluator(tasks, groupings, strata.codes, sampler, engine="compiled", bins=bins,
                   clip=1e-6, ece_bins=10, skip=frozenset())
    ev.estimates()
    return ev, sampler


def _reference_cells(engine, sampler: Sampler, block: range) -> np.ndarray:
    # numpy sampler (not the compiled kernels): row weights, then cells by bincount
    weights = Sampler.draw(_numpy_twin(sampler), block)
    n_cells = engine.n_fine * engine.width
    return np.stack([
        np.concatenate([np.bincount(engine.cells[t], weights=w, minlength=n_cells)
                        for t in range(engine.cells.shape[0])])
        for w in weights]).astype(np.int64)


def _numpy_twin(sampler: Sampler) -> Sampler:
    twin = object.__new__(Sampler)
    twin.__dict__.update(sampler.__dict__)
    twin.compiled = False
    return twin


@pytest.mark.parametrize(("n", "bins", "dtype"),
                         [(3000, 4096, np.uint16), (40000, 40000, np.int32)])
@pytest.mark.parametrize("cap", [255, 1])
def test_draw_sweep_counts_the_numpy_samplers_draws_into_every_tasks_cells(n, bins, dtype,
                                                                          cap) -> None:
    # uint16 codes while a stratum's cells fit 16 bits; int32 past 32767 score bins
    from ecgaudit.metrics._binsweep import draw_sweep

    ev, sampler = _engine(n, bins)
    engine = ev._binned
    bounds, run_stratum, codes = engine.runs
    assert bounds.size > 1 and codes.dtype == dtype  # the fused path is the one in use
    block = range(2, 6)
    ref = _reference_cells(engine, sampler, block)
    n_cells = engine.n_fine * engine.width
    n = sampler.slot_size.size
    block = block if n < 10000 else range(2, 3)
    ref = ref[:len(block)]
    for i, key in enumerate(_hashrng.replicate_keys(sampler.seed, block)):
        acc = np.full(engine.cells.shape[0] * n_cells, -7, dtype=np.int32)  # dirty buffer
        acc[:] = np.where(np.isin(np.arange(acc.size) // engine.width % engine.n_fine,
                                  run_stratum), acc, 0)
        draw_sweep(key, cap, bounds, run_stratum, codes, engine.width, n_cells,
                   np.empty(n, np.uint8), np.empty(n, np.int64), acc)
        assert np.array_equal(acc, ref[i])
    assert ref.max() > 1  # repeated draws of one cell (cap = 1: the overflow list)


def test_stratum_runs_declines_slots_that_are_not_one_run_per_stratum() -> None:
    from ecgaudit.metrics._binsweep import stratum_runs

    width = 10
    slot_start = np.array([0, 0, 0, 3, 3], dtype=np.int64)
    cells = np.array([[1, 5, 9, 12, 15]], dtype=np.int32)  # strata 0, 0, 0, 1, 1
    bounds, run_stratum, codes = stratum_runs(slot_start, cells, width)
    assert bounds.tolist() == [0, 3, 5] and run_stratum.tolist() == [0, 1]
    assert codes.tolist() == [[1, 5, 9, 2, 5]] and codes.dtype == np.uint16
    mixed = np.array([[1, 5, 19, 12, 15]], dtype=np.int32)  # one run over two strata
    assert stratum_runs(slot_start, mixed, width) is None
    shared = np.array([[1, 5, 9, 2, 5]], dtype=np.int32)  # two runs, one stratum
    assert stratum_runs(slot_start, shared, width) is None


def test_clustered_slots_keep_the_row_by_row_sweep() -> None:
    n = 2000
    patient = np.random.default_rng(1).integers(0, 700, n)
    ev, _ = _engine(n, 4096, patient=patient)
    assert ev._binned.runs[0].size == 0


def test_group_cells_are_sums_of_their_strata_on_a_dirty_buffer() -> None:
    from ecgaudit.metrics._binkernels import marginal_plan, marginalize_one

    rng = np.random.default_rng(4)
    width, n_f = 6, 5
    gmap = np.array([[0, 0, 1, 1, 1], [2, 3, 2, 3, 2], [4, 4, 4, 4, 4]])  # 2 + 2 + 1 slots
    offsets = np.array([0, 2, 4, 6])  # slot 5 is never a destination: must come out zero
    strata = rng.integers(0, 50, n_f * width).astype(np.int32)
    dst = np.full(6 * width, 99, dtype=np.int32)
    marginalize_one(strata, *marginal_plan(gmap, offsets), width, dst)
    cells = strata.reshape(n_f, width)
    for slot in range(5):
        members = [f for f in range(n_f) if slot in gmap[:, f]]
        assert np.array_equal(dst[slot * width:(slot + 1) * width], cells[members].sum(0))
    assert not dst[5 * width:].any()


def test_uniforms_keep_the_unsigned_formula_bit_for_bit() -> None:
    from ecgaudit.metrics._drawkernels import _to_unit

    rng = np.random.default_rng(5)
    z = np.concatenate([rng.integers(0, 2**64 - 1, 10**5, dtype=np.uint64, endpoint=True),
                        np.array([0, 1, 2**11 - 1, 2**11, 2**63 - 1, 2**63, 2**64 - 1],
                                 dtype=np.uint64)])
    want = ((z >> np.uint64(11)).astype(object) * 2.0**-53).astype(np.float64)
    assert np.array_equal(_hashrng.to_unit(z).view(np.uint64), want.view(np.uint64))
    compiled = np.array([_to_unit(v) for v in z[-7:]])
    assert np.array_equal(compiled.view(np.uint64), want[-7:].view(np.uint64))
    assert want.max() < 1.0


def test_scan_ranking_counts_stay_exact_past_2_to_the_53() -> None:
    # counts of ~1e7 per cell: dot products ~1e16, beyond float64's exact integers; the
    # expected sums are Python integers
    from ecgaudit.metrics._binkernels import scan_one

    rng = np.random.default_rng(6)
    nb = 10
    groups = rng.integers(10**6, 10**7, (2, nb, 2))
    cells = np.concatenate([groups, groups.sum(0, keepdims=True)]).astype(np.int32)
    rep = np.linspace(0.05, 0.95, nb)
    refslot = np.array([-1, 0])
    ist = np.zeros((9, 2), dtype=np.int64)
    fst = np.zeros((8, 2))
    scan_one(cells.reshape(-1), rep, 0.5, 10, refslot, 2, ist, fst)

    def mult(c):  # 2 x (count below the bin) + count in the bin, per label
        below = np.cumsum(c, axis=0) - c
        return (2 * below + c).astype(object)

    cohort, ref = mult(cells[2]), mult(cells[0])
    g = cells[1].astype(object)
    assert ist[5, 1] == sum(g[:, 0] * cohort[:, 1])  # negatives x cohort positives
    assert ist[6, 1] == sum(g[:, 1] * cohort[:, 0])
    assert ist[7, 1] == sum(g[:, 1] * ref[:, 0])
    assert ist[8, 1] == sum(g[:, 0] * ref[:, 1])
    assert 2.0 * cells[1].sum() * cells[2].sum() > 2.0**53


def test_replicates_are_the_same_with_and_without_the_stratum_by_stratum_draws(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ecgaudit.metrics import _binned

    fused, _ = _engine(2500, 4096, seed=2)
    monkeypatch.setattr(_binned, "FUSED_CELLS", 0)  # too many cells: the task-by-task sweep
    plain, _ = _engine(2500, 4096, seed=2)
    assert fused._binned.runs[0].size > 1 and plain._binned.runs[0].size == 0
    for row_a, row_b in zip(fused.replicates(range(4)), plain.replicates(range(4))):
        for a, b in zip(row_a, row_b):
            assert np.array_equal(a, b, equal_nan=True)
