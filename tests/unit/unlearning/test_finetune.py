"""Fine-tune: a copy of the original table trained on the remaining graph alone."""

import pytest
import torch

from recunlearn.config import method_settings
from recunlearn.errors import ConfigError
from recunlearn.unlearning import METHODS, build_method, finetune
from recunlearn.unlearning.base import final_embeddings


def test_registered_and_unknown_keys_refused():
    assert METHODS["finetune"] is finetune.FineTune
    assert isinstance(build_method("finetune"), finetune.FineTune)
    assert build_method("finetune").settings == method_settings("finetune")
    with pytest.raises(ConfigError, match="unknown key 'method_settings.finetune.epoch'"):
        build_method("finetune", {"epoch": 3})


@pytest.mark.parametrize("settings", [{"lr": "fast"}, {"lr": -1.0}, {"batch_size": 0}, {"epochs": 1.5}])
def test_bad_setting_values_refused(settings):
    with pytest.raises(ConfigError, match="method_settings.finetune"):
        build_method("finetune", settings)


def test_finetune_without_epochs_is_the_original_table_on_the_remaining_graph(clustered):
    task = clustered.task
    got = clustered.run("finetune", {"epochs": 0})["finetune"]
    want = final_embeddings(task.original.backbone, task.original.backbone.embedding.detach(), task.remaining)
    assert torch.equal(got.user_emb, want[0]) and torch.equal(got.item_emb, want[1])


def test_finetune_trains_a_copy_on_the_remaining_graph_and_keeps_utility(clustered):
    task = clustered.task
    got = clustered.run("finetune")["finetune"]  # `run` checks the original table is untouched
    none = clustered.run("none")["none"]
    assert not torch.equal(got.user_emb, none.user_emb)  # it did train
    assert got.info["lr"] == 0.05 and got.info["batch_size"] == 64  # inherited from the original training
    assert clustered.recall(got.user_emb, got.item_emb) >= clustered.recall(none.user_emb, none.item_emb) - 0.1
    assert len(got.info["epoch_loss"]) == 3
    assert got.seconds > 0 and set(got.timings) == {"setup_s", "train_s"}
    assert len(task.remaining) + len(task.request) == len(task.original.trained_on)
