"""GPU readiness, guarded on a CPU: the hot loops (backbone training, IE pre-training, the IE forward and its
fine-tune) create their tensors on the model's device and read nothing back to the host per step.

A CPU has one device, so two stand-ins for a GPU are used while a hot path runs:
- torch's default device is "meta": a tensor made without an explicit `device=` lands there, and the first
  operation that mixes it with the model's (CPU) tensors raises, as a CPU tensor would beside CUDA ones;
- every call of the project's code that copies a tensor to the host (`.cpu()`, `.numpy()`, `.item()`,
  `.tolist()`, `float()`, `int()`, `bool()`) is counted. The same loop run with ten times as many steps per
  epoch must make exactly as many host reads: reads once per epoch (the epoch's loss line, a validation) are
  fine, reads per step are not.
"""

from __future__ import annotations

import collections
import contextlib
import sys

import numpy as np
import pytest
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.meter import LossMeter
from recunlearn.backbones.trainer import train_backbone
from recunlearn.config import method_settings
from recunlearn.unlearning.unlearnrec.pretrain import pretrain_influence_encoder
from recunlearn.unlearning.unlearnrec.unlearn import unlearn_request

N_USERS, N_ITEMS = 30, 40
HOST_READS = ("cpu", "numpy", "item", "tolist", "__float__", "__int__", "__bool__")
# Only the project's own reads count: torch's Adam reads its step counter every step, but keeps that counter on
# the host by design (it is not a device tensor on a GPU either).
OURS = ("recunlearn", __name__)


@contextlib.contextmanager
def hot_path_guard(monkeypatch):
    """Count host reads by name and make device-less tensor creation fail (default device "meta")."""
    counts: collections.Counter = collections.Counter()

    def counted(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            if sys._getframe(1).f_globals.get("__name__", "").startswith(OURS):
                counts[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    with monkeypatch.context() as m:
        for name in HOST_READS:
            m.setattr(torch.Tensor, name, counted(name))
        previous = torch.get_default_device()
        torch.set_default_device("meta")
        try:
            yield counts
        finally:
            torch.set_default_device(previous)


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(0)
    users = rng.integers(0, N_USERS, 600)
    items = (users % 2) * 20 + rng.integers(0, 20, 600)
    return np.unique(np.stack([users, items], 1), axis=0)


def trained(name, edges):
    backbone = build_backbone(name, N_USERS, N_ITEMS, {"dim": 8, "layers": 2}, seed=0)
    train_backbone(
        backbone, edges, None, N_USERS, N_ITEMS, lr=0.01, batch_size=256, epochs=2, patience=1, eval_every=1,
        ks=(20,), progress=False,
    )  # fmt: skip
    return backbone


def reads(monkeypatch, run) -> collections.Counter:
    with hot_path_guard(monkeypatch) as counts:
        run()
    return counts


def test_the_guard_catches_a_host_read_per_step_and_a_tensor_made_without_a_device(monkeypatch):
    """The guard itself: a loop reading a float per step scales with the steps; a device-less tensor raises."""

    def loop(steps):
        x = torch.ones(3, device="cpu")
        return lambda: [float(x.sum()) for _ in range(steps)]

    assert reads(monkeypatch, loop(2)) != reads(monkeypatch, loop(20))
    with pytest.raises(RuntimeError), hot_path_guard(monkeypatch):
        torch.ones(3, device="cpu") + torch.zeros(3)


@pytest.mark.parametrize("name", ["lightgcn", "sgl", "simgcl"])
def test_training_reads_the_host_per_epoch_not_per_step(monkeypatch, graph, name):
    def run(batch):
        backbone = build_backbone(name, N_USERS, N_ITEMS, {"dim": 8, "layers": 2}, seed=0)  # made on the CPU
        return lambda: train_backbone(
            backbone, graph, graph[:50], N_USERS, N_ITEMS, lr=0.01, batch_size=batch, epochs=2, patience=5,
            eval_every=1, ks=(20,), device="cpu", progress=False,
        )  # fmt: skip

    few, many = reads(monkeypatch, run(len(graph) // 2)), reads(monkeypatch, run(len(graph) // 20))
    assert few == many


@pytest.mark.parametrize("name", ["lightgcn", "sgl"])
def test_ie_pretraining_reads_the_host_per_epoch_not_per_step(monkeypatch, graph, name):
    backbone = trained(name, graph)
    base = {"epochs": 2, "lr": 0.01, "u_batch_size": 16, "heldout_every": 1, "resample_every": 10}

    def run(batch):
        settings = method_settings("unlearnrec", {**base, "batch_size": batch})
        return lambda: pretrain_influence_encoder(backbone, graph, N_USERS, N_ITEMS, settings, seed=0)

    few, many = reads(monkeypatch, run(len(graph) // 2)), reads(monkeypatch, run(len(graph) // 20))
    assert few == many


@pytest.mark.parametrize("name, lambda_p", [("lightgcn", 0.0), ("simgcl", 1e-3)])  # L_p's two code paths
def test_ie_forward_and_fine_tune_read_the_host_per_check_not_per_step(monkeypatch, graph, name, lambda_p):
    backbone = trained(name, graph)
    state, _ = pretrain_influence_encoder(
        backbone, graph, N_USERS, N_ITEMS, method_settings("unlearnrec", {"epochs": 1, "select": "budget"}), seed=0
    )
    request = graph[::15]

    def run(batch):
        # one check, at the last step, whatever the number of steps
        settings = method_settings(
            "unlearnrec",
            {
                "ft_batch_size": batch,
                "ft_lambda_p": lambda_p,
                "ft_max_epochs": 2,
                "ft_check_every": 10_000,
                "ft_u_batch_size": 8,
            },
        )
        return lambda: unlearn_request(backbone, state, graph, request, N_USERS, N_ITEMS, settings, seed=0)

    few, many = reads(monkeypatch, run(len(graph) // 2)), reads(monkeypatch, run(len(graph) // 20))
    assert few == many


def test_the_loss_meter_gives_the_means_of_host_floats_bit_for_bit():
    rng = np.random.default_rng(0)
    steps = [{"a": torch.tensor(v, dtype=torch.float32), "b": torch.tensor(-v)} for v in rng.random(37)]
    meter = LossMeter()
    for parts in steps:
        meter.add(parts)
    host = {k: sum(float(p[k]) for p in steps) / len(steps) for k in ("a", "b")}
    assert meter.means() == host and meter.steps == 37
    assert LossMeter().means() == {}
