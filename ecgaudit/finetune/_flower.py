"""Federated rounds on Flower: a ``ClientApp`` per site, Flower's ``FedAvg`` / ``FedProx``.

The sites' local step is :meth:`SiteClient.fit` (FedProx: the proximal term
``mu/2 * ||w - w_global||^2``, with ``mu`` sent by Flower's ``FedProx`` strategy under
``"proximal-mu"``); the server is Flower's message-API strategy, run by Flower's simulation
engine (``flwr.simulation.run_simulation``, Ray backend, one CPU per client). Each round the
strategy samples every site (``fraction_train = 1``), aggregates the replies sorted by site
(so the floating-point sum, hence the weights, do not depend on which Ray worker answered
first), then runs Flower's federated evaluation on every site's validation records. The
round with the lowest record-weighted validation loss is kept (round 0 = the parent);
``training.patience`` rounds without improvement stop the training (later rounds send no
messages). The global state is checkpointed after every round (same files as the in-process
:func:`~ecgaudit.finetune._federated.run_federated`, which is the test oracle).

A real deployment runs the same client function under ``flower-supernode`` at every site and
the same strategy under ``flower-superlink`` (see docs/federated.md).
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecgaudit.errors import ComputationError, EcgAuditError, InputError
from ecgaudit.finetune._config import TrainingConfig
from ecgaudit.finetune._fedconfig import FederatedConfig
from ecgaudit.finetune._federated import (
    FED_CHECKPOINT,
    FederatedResult,
    ProgressFn,
    SiteClient,
    _fingerprint,
    _load,
    _save,
)
from ecgaudit.finetune._train import Aggregate, _trainable_names, find_head

__all__ = ["run_flower"]

FLWR_MISSING = ("strategy: federated runs on Flower, which is not installed: "
                "pip install 'ecgaudit[federated]'")

# Ray hands a worker the sites' arrays read-only (zero copy); they are only read.
READ_ONLY = "The given NumPy array is not writable"


def _state(arrays: Any, ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a Flower ``ArrayRecord`` to a state dict with the reference dtypes."""
    sd = arrays.to_torch_state_dict()
    return {k: sd[k].to(v.dtype) if v.is_floating_point() else sd[k].round().to(v.dtype)
            for k, v in ref.items()}


class _Run:
    """Server-side bookkeeping: history, kept round, patience, checkpoints, errors."""

    def __init__(self, names: list[str], ref: dict[str, torch.Tensor], patience: int,
                 ckpt: Path | None, fp: str, clients: list[SiteClient],
                 progress: ProgressFn | None, rounds: int) -> None:
        self.names, self.ref, self.patience, self.ckpt, self.fp = names, ref, patience, ckpt, fp
        self.clients, self.progress, self.rounds = clients, progress, rounds
        self.history: list[dict[str, Any]] = []
        self.best_loss, self.best_round, self.bad = float("inf"), 0, 0
        self.best_state = ref
        self.state = ref
        self.initial = float("nan")
        self.train: dict[int, tuple[int, float]] = {}
        self.stopped = False
        self.error: str | None = None
        self.error_kind = "input"

    def halted(self) -> bool:
        if self.error is None and self.bad >= self.patience:
            self.stopped = True
        return self.stopped or self.error is not None

    def _valid(self, replies: list[Any]) -> list[Any]:
        if self.halted():  # stopped early or failed: later rounds send and get nothing
            return []
        failed = [m for m in replies if m.has_error() or "error" in m.content]
        if failed:  # every failed site's message, in site order
            errs = sorted(str(m.error.reason) if m.has_error() else
                          str(m.content["error"]["message"]) for m in failed)
            kinds = {str(m.content["error"]["kind"]) for m in failed if not m.has_error()}
            self.error = "; ".join(errs)
            self.error_kind = "input" if kinds == {"input"} else "computation"
            return []
        if len(replies) != len(self.names):
            self.error = (f"{len(replies)} of {len(self.names)} sites replied; the sites' "
                          "errors are in the log above")
            return []
        return sorted(replies, key=lambda m: int(m.content["metrics"]["site-index"]))

    def take_train(self, replies: list[Any]) -> list[Any]:
        ok = self._valid(replies)
        self.train = {int(m.content["metrics"]["site-index"]): (
            int(m.content["metrics"]["num-examples"]),
            float(m.content["metrics"]["train-loss"])) for m in ok}
        return ok

    def take_eval(self, rnd: int, replies: list[Any]) -> list[Any]:
        ok = self._valid(replies)
        if not ok:
            return ok
        per = {self.names[int(m.content["metrics"]["site-index"])]: m.content["metrics"]
               for m in ok}
        total = sum(int(v["num-examples"]) for v in per.values())
        loss = sum(float(v["val-loss"]) * int(v["num-examples"]) for v in per.values()) / total
        if rnd == 0:
            self.initial = self.best_loss = loss
            return ok
        improved = loss < self.best_loss - 1e-6
        if improved:
            self.best_loss, self.best_round, self.bad = loss, rnd, 0
            self.best_state = {k: v.clone() for k, v in self.state.items()}
        else:
            self.bad += 1
        self.history.append({
            "round": rnd, "improved": improved, "val_loss": loss,
            "sites": {s: {"train_loss": self.train[i][1], "n_train": self.train[i][0],
                          "val_loss": float(per[s]["val-loss"]),
                          "val_auroc": float(per[s]["val-auroc"]),
                          "n": int(per[s]["num-examples"])}
                      for i, s in enumerate(self.names)}})
        if self.ckpt is not None:
            _save(self.ckpt, self.state, self.best_state, self.clients,
                  {"fingerprint": self.fp, "round": rnd, "history": self.history,
                   "bad": self.bad, "best_round": self.best_round, "best_loss": self.best_loss})
        if self.progress:
            self.progress({"event": "round", "round": rnd, "rounds": self.rounds,
                           "val_loss": loss, "improved": improved})
        return ok


def _client_app(template: nn.Module, clients: list[SiteClient], *, trainable: list[str],
                config: TrainingConfig, tasks: list[int], aggregate: Aggregate,
                local_epochs: int) -> Any:
    """Build the ``ClientApp``: node ``partition-id`` i is site ``clients[i]``."""
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()
    ref = {k: v.detach().cpu().clone() for k, v in template.state_dict().items()}

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        warnings.filterwarnings("ignore", message=READ_ONLY)
        i = int(context.node_config["partition-id"])
        cfg = msg.content["config"]
        mu = float(cfg["proximal-mu"]) if "proximal-mu" in cfg else 0.0
        rnd = int(cfg["server-round"]) + int(cfg["round-offset"])
        try:
            new, n, loss = clients[i].fit(
                copy.deepcopy(template), _state(msg.content["arrays"], ref),
                trainable=trainable, config=config, local_epochs=local_epochs, mu=mu,
                tasks=tasks, aggregate=aggregate, round_=rnd)
        except EcgAuditError as err:  # e.g. a diverged loss: the server raises it again
            text = f"site '{clients[i].name}', round {rnd}: {err}"
            kind = "input" if isinstance(err, InputError) else "computation"
            return Message(RecordDict({"error": ConfigRecord({"message": text,
                                                              "kind": kind})}),
                           reply_to=msg)
        metrics = MetricRecord({"num-examples": n, "train-loss": loss, "site-index": i})
        return Message(RecordDict({"arrays": ArrayRecord(new), "metrics": metrics}),
                       reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        warnings.filterwarnings("ignore", message=READ_ONLY)
        i = int(context.node_config["partition-id"])
        model = copy.deepcopy(template)
        model.load_state_dict(_state(msg.content["arrays"], ref))
        loss, auc, n = clients[i].evaluate(model, tasks, aggregate, config.batch_size)
        metrics = MetricRecord({"num-examples": n, "val-loss": loss, "val-auroc": auc,
                                "site-index": i})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    return app


def _server_app(federated: FederatedConfig, run: _Run, n: int, offset: int) -> Any:
    """Build the ``ServerApp``: initial federated evaluation, then the strategy's rounds."""
    from flwr.app import ArrayRecord, ConfigRecord, Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg, FedProx

    base = FedProx if federated.algorithm == "fedprox" else FedAvg

    class EcgStrategy(base):  # type: ignore[misc, valid-type]
        """Flower's FedAvg / FedProx, sampling every site, aggregating in site order."""

        def configure_train(self, server_round: int, arrays: Any, config: Any,
                            grid: Any) -> Any:
            return [] if run.halted() else super().configure_train(server_round, arrays,
                                                                   config, grid)

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            ok = run.take_train(list(replies))
            if not ok:
                return None, None
            arrays, metrics = super().aggregate_train(server_round, ok)
            run.state = _state(arrays, run.ref)
            return arrays, metrics

        def configure_evaluate(self, server_round: int, arrays: Any, config: Any,
                               grid: Any) -> Any:
            return [] if run.halted() else super().configure_evaluate(server_round, arrays,
                                                                      config, grid)

        def aggregate_evaluate(self, server_round: int, replies: Any) -> Any:
            ok = run.take_eval(server_round + offset, list(replies))
            return super().aggregate_evaluate(server_round, ok) if ok else None

    kw: dict[str, Any] = {"fraction_train": 1.0, "fraction_evaluate": 1.0,
                          "min_train_nodes": n, "min_evaluate_nodes": n,
                          "min_available_nodes": n}
    if federated.algorithm == "fedprox":
        kw["proximal_mu"] = federated.proximal_mu
    strategy = EcgStrategy(**kw)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = ConfigRecord({"round-offset": offset})
        replies = grid.send_and_receive(strategy.configure_evaluate(
            0, ArrayRecord(run.ref), ConfigRecord(), grid))
        run.take_eval(0, list(replies))
        if offset:  # resumed: the checkpoint's history and kept round
            _resume_into(run)
        if federated.rounds - offset > 0 and run.error is None:
            strategy.start(grid=grid, initial_arrays=ArrayRecord(run.state),
                           num_rounds=federated.rounds - offset, train_config=cfg,
                           evaluate_config=ConfigRecord({"round-offset": offset}))

    return app


def _resume_into(run: _Run) -> None:
    assert run.ckpt is not None
    gstate, best, meta = _load(run.ckpt, run.clients, run.fp)
    run.state, run.best_state = gstate, best
    run.history, run.best_round, run.bad = meta["history"], meta["best_round"], meta["bad"]
    run.best_loss = meta["best_loss"]


def run_flower(
    model: nn.Module,
    clients: list[SiteClient],
    *,
    federated: FederatedConfig,
    config: TrainingConfig,
    task_index: Sequence[int],
    aggregate: Aggregate = "max",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> FederatedResult:
    """Run the federated rounds with Flower's simulation engine; return the kept weights.

    Same parameters, checkpoints and result as
    :func:`~ecgaudit.finetune._federated.run_federated` (the in-process reference it is
    tested against); the sites' ``ClientApp`` runs in Ray workers, one CPU each.

    Raises
    ------
    InputError
        Flower is not installed, or a site's input was refused.
    ComputationError
        A site's training failed (e.g. its loss diverged), with the site's message.
    """
    try:
        from flwr.simulation import run_simulation
    except ImportError:
        raise InputError(FLWR_MISSING) from None
    tasks = list(task_index)
    trainable = _trainable_names(model, "full", find_head(model, config.head), config.freeze)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    fp = _fingerprint(federated, config, clients, tasks)
    ref = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    run = _Run([c.name for c in clients], ref, config.patience, ckpt, fp, clients, progress,
               federated.rounds)
    offset = 0
    if resume and ckpt is not None and (ckpt / FED_CHECKPOINT["state"]).is_file():
        offset = int(_load(ckpt, clients, fp)[2]["round"])
    n = len(clients)
    # Ray >= 2.5x warns (FutureWarning) unless told to keep CUDA_VISIBLE_DEVICES as it is.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": max(1, min(n, os.cpu_count() or 1)), "num_gpus": 0}}
    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # Ray leaves its stopped processes' Popen objects and /dev/null handles to the
        # garbage collector: collect them here, without a ResourceWarning per handle.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            run_simulation(server_app=_server_app(federated, run, n, offset),
                           client_app=_client_app(model, clients, trainable=trainable,
                                                  config=config, tasks=tasks,
                                                  aggregate=aggregate,
                                                  local_epochs=federated.local_epochs),
                           num_supernodes=n, backend_config=backend)  # type: ignore[arg-type]
        finally:
            flwr_log.setLevel(level)
            gc.collect()
    if run.error is not None:
        err = InputError if run.error_kind == "input" else ComputationError
        raise err(f"federated training stopped: {run.error}")
    if len(run.history) < federated.rounds and not run.stopped:
        raise InputError(f"the Flower simulation ended after {len(run.history)} of "
                         f"{federated.rounds} rounds; see the log above")
    model.load_state_dict(run.best_state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return FederatedResult(state_dict=run.best_state, history=run.history,
                           best_round=run.best_round, stopped_early=run.stopped,
                           trainable=trainable, initial_val={"val_loss": run.initial})
