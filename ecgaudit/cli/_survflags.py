"""One-file survival flags of ``ecgaudit audit``: ``--time --event --score --horizon``."""

from __future__ import annotations

from typing import Any

from ecgaudit.errors import ConfigError

__all__ = ["survival_tasks"]


def survival_tasks(time: str, event: str, score: list[str], task: list[str],
                   horizon: list[float], risk: bool, logits: bool) -> list[dict[str, Any]]:
    """Task configs of a survival audit given by flags (one task per ``--score``)."""
    if not score or not horizon:
        raise ConfigError("a survival audit (--time/--event) needs --score and at least one "
                          "--horizon (e.g. --horizon 365)")
    names = task or score
    if len(names) != len(score):
        raise ConfigError("give one --task name for every --score, or none")
    kind = "risk" if risk else "logit" if logits else "probability"
    return [{"name": n, "kind": "survival", "time": time, "event": event, "score": s,
             "horizons": list(horizon), "score_type": kind} for n, s in zip(names, score)]
