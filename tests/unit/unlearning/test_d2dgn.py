"""D2DGN: deleted scores fall, remaining scores stay close to the original model's."""

import numpy as np
import pytest

from recunlearn.errors import ConfigError
from recunlearn.evaluation.forgetting import score_pairs
from recunlearn.unlearning import METHODS, d2dgn
from recunlearn.unlearning.base import final_embeddings


def test_d2dgn_lowers_deleted_scores_and_keeps_remaining_ones(original, task_for, block_a_request):
    task = task_for(original, block_a_request(original, n=3))
    bb = original.backbone
    orig_u, orig_i = final_embeddings(bb, bb.embedding, original.trained_on)
    none_u, none_i = final_embeddings(bb, bb.embedding, task.remaining)
    settings = {"epochs": 10, "batch_size": 32, "lr": 0.02, "lambda_emb": 100.0}
    out = METHODS["d2dgn"](settings).unlearn(task, None)["d2dgn"]
    deleted = score_pairs(out.user_emb, out.item_emb, task.request).mean()
    assert deleted < score_pairs(none_u, none_i, task.request).mean() - 1.0
    assert deleted < score_pairs(orig_u, orig_i, task.request).mean() - 2.0
    kept, kept_orig = (
        score_pairs(out.user_emb, out.item_emb, task.remaining),
        score_pairs(orig_u, orig_i, task.remaining),
    )
    assert np.abs(kept - kept_orig).mean() < 0.1 * np.abs(kept_orig).mean()
    assert np.corrcoef(kept, kept_orig)[0, 1] > 0.9


def test_registered_and_unknown_settings_refused():
    assert METHODS["d2dgn"] is d2dgn.D2DGN
    with pytest.raises(ConfigError, match="unknown key"):
        d2dgn.D2DGN({"no_such_setting": 1})


@pytest.mark.parametrize("settings", [{"tau": 0.0}])
def test_invalid_values_refused(settings):
    with pytest.raises(ConfigError):
        METHODS["d2dgn"](settings)
