"""GNNDelete: deleted edges move to non-edges, nodes beyond L hops of the request stay untouched."""

import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError
from recunlearn.evaluation.forgetting import score_pairs
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.unlearning import METHODS, gnndelete
from recunlearn.unlearning.base import final_embeddings

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py


def test_gnndelete_identity_operators_give_the_frozen_backbone_on_the_remaining_graph(
    original, task_for, block_a_request
):
    task = task_for(original, block_a_request(original))
    out = METHODS["gnndelete"]({"epochs": 0}).unlearn(task, None)["gnndelete"]
    users, items = final_embeddings(original.backbone, original.backbone.embedding, task.remaining)
    assert torch.equal(out.user_emb, users) and torch.equal(out.item_emb, items)


def test_gnndelete_moves_deleted_edges_to_non_edges_and_leaves_far_nodes(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original))
    before = torch.cat(final_embeddings(original.backbone, original.backbone.embedding, task.remaining))
    out = METHODS["gnndelete"]().unlearn(task, None)["gnndelete"]
    after = torch.cat([out.user_emb, out.item_emb])
    non_edges = sample_non_edges(N_USERS, N_ITEMS, [original.trained_on], 200, seed=3)

    def gap(emb):
        u, i = emb[:N_USERS], emb[N_USERS:]
        return abs(score_pairs(u, i, task.request).mean() - score_pairs(u, i, non_edges).mean())

    assert gap(after) < 0.5 * gap(before)
    block_b = np.r_[15:30, N_USERS + 10 : N_USERS + 20]
    assert torch.equal(after[block_b], before[block_b])  # beyond L hops of the request: untouched
    # inside the neighbourhood, L_NI is what holds the non-endpoint nodes in place: without it they move more
    ends = np.unique(np.r_[task.request[:, 0], N_USERS + task.request[:, 1]])
    others = np.setdiff1d(np.r_[0:15, N_USERS : N_USERS + 10], ends)
    no_ni = METHODS["gnndelete"]({"lambda_dec": 1.0}).unlearn(task, None)["gnndelete"]
    moved = (torch.cat([no_ni.user_emb, no_ni.item_emb]) - before).norm(dim=1)[others].mean()
    assert (after - before).norm(dim=1)[others].mean() < 0.8 * moved


def test_registered_and_unknown_settings_refused():
    assert METHODS["gnndelete"] is gnndelete.GNNDelete
    with pytest.raises(ConfigError, match="unknown key"):
        gnndelete.GNNDelete({"no_such_setting": 1})


@pytest.mark.parametrize("settings", [{"lambda_dec": 2.0}])
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["gnndelete"](settings)
