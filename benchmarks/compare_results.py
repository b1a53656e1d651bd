"""Check two ``results.json`` for identity except the lowess-fitted values (issue 19).

The compiled lowess kernels (``ecgaudit/metrics/_lowesskernels.py``) may change the last
bits of the calibration suite's ICI, E50, E90 and Emax and of the smooth calibration curves'
fitted values; nothing else may change. This walks both files in parallel and fails on any
difference in structure, keys, strings, counts or numbers, except at those leaves, where
the two numbers must agree to ``--tol`` (default 1e-12; absolute, relative above 1)::

    python benchmarks/compare_results.py OLD/results.json NEW/results.json

``--bootstrap`` also lets bootstrap interval limits and p-values (:data:`BOOT_KEYS`) differ
within ``--tol``: the binned replicate kernel adds its floating sums in vectorised order.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

#: Calibration-suite fields that come from the lowess fit.
SUITE_KEYS = frozenset({"ici", "e50", "e90", "emax"})
#: With ``--bootstrap``: interval limits and p-values from bootstrap replicates, whose
#: floating sums the binned kernel may add in another order (issue 19 item 5).
BOOT_KEYS = frozenset({"ci_low", "ci_high", "difference_ci_low", "difference_ci_high",
                       "ratio_ci_low", "ratio_ci_high", "p_value", "p_bh", "p_holm", "q_value"})
_BOOT = {"on": False}


def _allowed(path: tuple[Any, ...]) -> bool:
    """Whether the leaf at ``path`` may differ within the tolerance."""
    if _BOOT["on"] and path and path[-1] in BOOT_KEYS:
        return True
    if len(path) == 4 and path[:2] == ("extras", "calibration_suite"):
        return path[3] in SUITE_KEYS
    # extras.curves.<task>.<attribute>.<group>.smooth.y[i]
    return (len(path) == 8 and path[:2] == ("extras", "curves") and path[5] == "smooth"
            and path[6] == "y")


def _close(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def compare(old: Any, new: Any, tol: float = 1e-12) -> dict[str, Any]:
    """Compare two parsed ``results.json``.

    Parameters
    ----------
    old, new : Any
        The parsed documents.
    tol : float
        Largest difference allowed at a lowess-fitted leaf.

    Returns
    -------
    dict
        ``identical`` (leaves equal), ``differing`` (allowed leaves that differ within
        ``tol``), ``max_difference`` (largest absolute difference there) and ``problems``
        (paths that differ where they must not, or by more than ``tol``).
    """
    out: dict[str, Any] = {"identical": 0, "differing": 0, "max_difference": 0.0,
                           "problems": []}
    _walk(old, new, (), tol, out)
    return out


def _walk(a: Any, b: Any, path: tuple[Any, ...], tol: float, out: dict[str, Any]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            out["problems"].append(f"{'.'.join(map(str, path))}: keys differ")
            return
        for key in a:
            _walk(a[key], b[key], (*path, key), tol, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out["problems"].append(f"{'.'.join(map(str, path))}: lengths differ")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, (*path, i), tol, out)
    elif type(a) is float and type(b) is float and _allowed(path):
        if repr(a) == repr(b):
            out["identical"] += 1
        elif _close(a, b, tol):
            out["differing"] += 1
            out["max_difference"] = max(out["max_difference"], abs(a - b))
        else:
            out["problems"].append(f"{'.'.join(map(str, path))}: {a!r} vs {b!r}")
    elif type(a) is type(b) and repr(a) == repr(b):
        out["identical"] += 1
    else:
        out["problems"].append(f"{'.'.join(map(str, path))}: {a!r} vs {b!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--tol", type=float, default=1e-12)
    ap.add_argument("--bootstrap", action="store_true",
                    help="also allow bootstrap interval limits and p-values within --tol")
    a = ap.parse_args()
    _BOOT["on"] = a.bootstrap
    res = compare(json.loads(Path(a.old).read_text()), json.loads(Path(a.new).read_text()),
                  a.tol)
    print(json.dumps({k: (v[:20] if k == "problems" else v) for k, v in res.items()}))
    sys.exit(1 if res["problems"] else 0)


if __name__ == "__main__":
    main()
