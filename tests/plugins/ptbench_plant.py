"""Planted changes for the nightly tests, loaded through PTBENCH_PLUGINS like a user's plugin.

``PTBENCH_PLANT=skip_steps:K`` — the trainer skips every K-th optimizer step of models trained
with label smoothing: a bug in the code under test, in one cell of the nightly test suite, that
leaves every cell's identity (config, split, weights) as it was.
``PTBENCH_PLANT=data`` — one digits image altered: a changed dataset, so a new split hash.
``PTBENCH_PLANT=crash`` — hashing a cell raises: a bug in ptbench, not the user's (exit 3).
"""

from __future__ import annotations

import os

from ptbench.tasks import images
from ptbench.train import trainer

PLANT = os.environ.get("PTBENCH_PLANT", "")

if PLANT.startswith("skip_steps"):
    every = int(PLANT.partition(":")[2] or 2)
    _optimizer = trainer._optimizer

    def _skipping_optimizer(groups, recipe):
        opt = _optimizer(groups, recipe)
        calls = [0]
        if not recipe.label_smoothing:
            return opt

        def drop_grads(optimizer, args, kwargs):  # no gradient: the optimizer leaves the weights
            calls[0] += 1
            if calls[0] % every == 0:
                for group in optimizer.param_groups:
                    for p in group["params"]:
                        p.grad = None

        opt.register_step_pre_hook(drop_grads)
        return opt

    trainer._optimizer = _skipping_optimizer

if PLANT == "data":
    _digits = images._sklearn_digits

    def _altered_digits():
        x, y = _digits()
        x = x.copy()
        x[0] = 255 - x[0]
        return x, y

    images._sklearn_digits = _altered_digits

if PLANT == "crash":  # a bug in ptbench itself, no user mistake: the grid cannot be hashed
    from ptbench.suite import grid

    def _broken_hash(obj, n=12):
        raise RuntimeError("planted bug: stable_hash")

    grid.stable_hash = _broken_hash

if PLANT.startswith("no_trial:"):  # the worker cannot reach the Optuna storage: no trial is made
    from ptbench import jobs

    _unreachable = PLANT.partition(":")[2]  # for the cells of this backbone

    def _ask_unreachable(study, cell, job_id, budget):
        if cell.backbone["name"] == _unreachable:
            raise ConnectionError("could not connect to the Optuna storage")
        return _ask_in_budget(study, cell, job_id, budget)

    _ask_in_budget, jobs._ask_in_budget = jobs._ask_in_budget, _ask_unreachable

if PLANT == "dead_workers":  # every local worker dies as it starts (a device it cannot open)
    from ptbench.executors import local

    def _die_at_start(device, threads):
        os.kill(os.getpid(), 9)

    local._init_worker = _die_at_start
