"""Provenance recorded with every result (no timestamps: results must be byte-identical)."""

from __future__ import annotations

import functools
import platform
from importlib import metadata
from typing import Any

from ecgaudit.schema import SCHEMA_VERSION

_DEPENDENCIES = (
    "numpy", "pandas", "scipy", "scikit-learn", "fairlearn", "matplotlib", "jinja2",
    "pydantic", "pyarrow",
)


@functools.cache
def package_version(name: str) -> str | None:
    """Return an installed distribution's version, or None (looked up once per process)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def build_manifest(config: dict[str, Any], inputs: list[dict[str, Any]], seed: int,
                   thresholds: dict[str, Any], extra: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Assemble the manifest of a run.

    Parameters
    ----------
    config : dict
        The resolved configuration.
    inputs : list of dict
        ``{role, name, sha256, rows}`` of every input (base names only).
    seed : int
        Random seed.
    thresholds : dict
        ``{task: {value, rule, target, derived_on}}``.
    extra : dict, optional
        More provenance (e.g. model inference settings).

    Returns
    -------
    dict
    """
    return {
        "tool": "ecgaudit",
        "ecgaudit_version": package_version("ecgaudit") or "unknown",
        "python_version": platform.python_version(),
        "dependencies": {d: package_version(d) for d in _DEPENDENCIES},
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "config": config,
        "inputs": inputs,
        "thresholds": thresholds,
        **(extra or {}),
    }
