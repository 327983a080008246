"""D2DGN: the student keeps the original model's (preserver's) knowledge of the retained graph and takes a randomly
initialised model's (destroyer's) view of the deleted edges; with nothing to forget it stays at the preserver."""

import numpy as np
import pytest
import torch

from recunlearn.errors import ConfigError
from recunlearn.evaluation.forgetting import score_pairs
from recunlearn.graph.adjacency import user_item_csr
from recunlearn.unlearning import METHODS, d2dgn
from recunlearn.unlearning.base import final_embeddings

LONG = {"epochs": 10, "batch_size": 32, "lr": 0.02}  # 50 steps on the two-block graph


def _run(task, settings=None):
    return METHODS["d2dgn"](settings).unlearn(task, None)["d2dgn"]


def _margins(final: torch.Tensor, task) -> np.ndarray:
    """Per deleted edge (u, i): s_ui minus the mean score of the items u never had (what soft scores over a
    deleted item and random non-items encode: how far the item stands out for u)."""
    o = task.original
    scores = (final[: o.n_users] @ final[o.n_users :].T).numpy()
    had = user_item_csr(o.trained_on, o.n_users, o.n_items).toarray().astype(bool)
    return np.array([scores[u, i] - scores[u, ~had[u]].mean() for u, i in task.request])


def _final(out) -> torch.Tensor:
    return torch.cat([out.user_emb, out.item_emb])


def test_registered_and_unknown_settings_refused():
    assert METHODS["d2dgn"] is d2dgn.D2DGN
    assert METHODS["d2dgn"]().settings["forget_target"] == "destroyer"
    with pytest.raises(ConfigError, match="unknown key"):
        d2dgn.D2DGN({"no_such_setting": 1})


@pytest.mark.parametrize("settings", [{"tau": 0.0}, {"alpha": 1.5}, {"forget_target": "retrain"}])
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["d2dgn"](settings)


@pytest.mark.parametrize("target", ["destroyer", "hinge"])
def test_with_nothing_to_forget_the_student_stays_at_the_preserver(original, task_for, target):
    """An empty request leaves distillation alone, and the student starts at its optimum (its own teacher on the
    same graph): every step must leave it there exactly."""
    task = task_for(original, np.empty((0, 2), dtype=np.int64))
    out = _run(task, {**LONG, "forget_target": target})
    bb = original.backbone
    assert out.info["steps"] == 10 * -(-len(task.remaining) // 32)
    assert "forget" not in out.info["last"]
    assert torch.equal(_final(out), torch.cat(final_embeddings(bb, bb.embedding, original.trained_on)))


def test_destroyer_moves_deleted_edges_to_the_random_teachers_view(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original, n=3))
    bb = original.backbone
    random_teacher = d2dgn.destroyer(task)
    assert torch.equal(random_teacher, d2dgn.destroyer(task))  # one fixed random teacher per task
    target = _margins(random_teacher, task)
    before = _margins(torch.cat(final_embeddings(bb, bb.embedding, original.trained_on)), task)
    after = _margins(_final(_run(task, LONG)), task)
    distil_only = _margins(_final(_run(task, {**LONG, "alpha": 1.0})), task)
    assert np.abs(target).max() < 1.0 < before.min()  # the random teacher does not single the deleted items out
    assert np.abs(after - target).mean() < 0.1 * np.abs(distil_only - target).mean()
    assert np.abs(after - target).mean() < 0.1 * np.abs(before - target).mean()


def test_destroyer_keeps_the_remaining_scores(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original, n=3))
    bb = original.backbone
    orig_u, orig_i = final_embeddings(bb, bb.embedding, original.trained_on)
    none_u, none_i = final_embeddings(bb, bb.embedding, task.remaining)
    out = _run(task)  # the defaults
    assert (_margins(_final(out), task) < _margins(torch.cat([none_u, none_i]), task)).all()
    kept, kept_orig = (
        score_pairs(out.user_emb, out.item_emb, task.remaining),
        score_pairs(orig_u, orig_i, task.remaining),
    )
    assert np.corrcoef(kept, kept_orig)[0, 1] > 0.95


def test_hinge_option_lowers_deleted_scores_and_keeps_remaining_ones(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original, n=3))
    bb = original.backbone
    orig_u, orig_i = final_embeddings(bb, bb.embedding, original.trained_on)
    none_u, none_i = final_embeddings(bb, bb.embedding, task.remaining)
    out = _run(task, {**LONG, "lambda_emb": 100.0, "forget_target": "hinge"})
    deleted = score_pairs(out.user_emb, out.item_emb, task.request).mean()
    assert deleted < score_pairs(none_u, none_i, task.request).mean() - 1.0
    assert deleted < score_pairs(orig_u, orig_i, task.request).mean() - 2.0
    kept, kept_orig = (
        score_pairs(out.user_emb, out.item_emb, task.remaining),
        score_pairs(orig_u, orig_i, task.remaining),
    )
    assert np.abs(kept - kept_orig).mean() < 0.1 * np.abs(kept_orig).mean()
    assert np.corrcoef(kept, kept_orig)[0, 1] > 0.9


def test_a_request_touching_every_node_leaves_the_feature_term_zero_not_nan(original, task_for):
    """One edge per user, chosen so every item is covered too: no node is retained, L_emb has nothing to match."""
    edges, covered, request = original.trained_on, set(), []
    for u in range(original.n_users):
        mine = edges[edges[:, 0] == u]
        fresh = [e for e in mine if e[1] not in covered]
        pick = fresh[0] if fresh else mine[0]
        covered.add(int(pick[1]))
        request.append(pick)
    assert covered == set(range(original.n_items))
    out = _run(task_for(original, np.array(request)), {"epochs": 1})
    assert out.info["last"]["emb"] == 0.0
    assert torch.isfinite(out.user_emb).all() and torch.isfinite(out.item_emb).all()


def test_distil_gradient_vanishes_exactly_at_the_teacher():
    logits = torch.randn(64, 17, dtype=torch.float32)
    student = logits.clone().requires_grad_(True)
    loss = d2dgn.distil(student, logits)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-7)
    assert torch.count_nonzero(student.grad) == 0
    other = torch.randn(64, 17)
    reference = torch.nn.functional.kl_div(
        torch.log_softmax(other, 1), torch.log_softmax(logits, 1), log_target=True, reduction="batchmean"
    )
    assert float(d2dgn.distil(other, logits)) == pytest.approx(float(reference), rel=1e-5)
    mine, theirs = other.clone().requires_grad_(True), other.clone().requires_grad_(True)
    d2dgn.distil(mine, logits).backward()
    torch.nn.functional.kl_div(
        torch.log_softmax(theirs, 1), torch.log_softmax(logits, 1), log_target=True, reduction="batchmean"
    ).backward()
    assert torch.allclose(mine.grad, theirs.grad, atol=1e-7)  # the same gradient away from the teacher
