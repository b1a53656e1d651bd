"""Config sections of the ``federated`` and ``adapt`` strategies (``finetune.yaml``).

Example::

    strategy: federated
    federated:
      site_column: site         # one federated client per value
      sites: ["0", "1", "2"]    # optional: which values take part (default: all)
      algorithm: fedprox        # fedavg | fedprox
      proximal_mu: 0.01         # FedProx: weight of (mu/2)*||w - w_global||^2
      rounds: 5
      local_epochs: 1
      min_site_patients: 20     # a site with fewer patients is an error (exit 2)
      compare: true             # also fit centralised and local-only models to compare

    strategy: adapt
    adapt:
      domain_column: device     # rows whose value is `target` are the unlabelled target
      target: "CS100    3"
      method: dann              # dann | coral
      weight: 1.0               # weight of the domain loss
      target_test: 0.5          # fraction of target patients held out (labelled) to judge
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AdaptConfig", "FederatedConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_text(value: object) -> object:
    """YAML ``2`` / ``2.0`` -> ``"2"`` (site and domain values are compared as text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value]
    return value


class FederatedConfig(_Strict):
    """Federated fine-tuning across sites (clients) with FedAvg or FedProx.

    Each site splits its own patients (``split``), trains ``local_epochs`` per round from the
    global weights with the ``training`` hyper-parameters, and sends only its weights and
    record count; the server averages them weighted by the count (FedAvg). FedProx adds
    ``(proximal_mu / 2) * ||w - w_global||^2`` to each local loss. The round whose global
    model has the lowest count-weighted validation loss across sites is kept (early stopping
    with ``training.patience`` rounds).
    """

    site_column: str = "site"
    sites: tuple[str, ...] | None = None
    algorithm: Literal["fedavg", "fedprox"] = "fedavg"
    proximal_mu: float = Field(default=0.01, ge=0.0, le=100.0)
    rounds: int = Field(default=5, ge=1, le=1000)
    local_epochs: int = Field(default=1, ge=1, le=100)
    min_site_patients: int = Field(default=20, ge=2)
    compare: bool = True

    _text_sites = field_validator("sites", mode="before")(staticmethod(_as_text))


class AdaptConfig(_Strict):
    """Unsupervised domain adaptation from labelled source to unlabelled target ECGs.

    Rows whose ``domain_column`` equals ``target`` form the target domain, the others (or
    those listed in ``source``) the labelled source. Target patients are split (by patient,
    without looking at labels) into an adaptation pool, whose labels are never read, and a
    labelled held-out part (``target_test``) used only by the before/after audit. Model
    selection is label-free on the target: the epoch with the lowest *source* validation
    loss is kept (``selection: source_val_loss``), or the last epoch (``last``).
    ``weight: 0`` is the source-only baseline (the target is never forwarded, not even for
    BatchNorm statistics).
    """

    domain_column: str = "site"
    target: str
    source: tuple[str, ...] | None = None
    method: Literal["dann", "coral"] = "dann"
    weight: float = Field(default=1.0, ge=0.0, le=1.0e6)
    domain_hidden: int = Field(default=64, ge=2, le=4096)
    target_test: float = Field(default=0.5, gt=0.0, lt=1.0)
    selection: Literal["source_val_loss", "last"] = "source_val_loss"

    _text_values = field_validator("target", "source", mode="before")(staticmethod(_as_text))
