"""UnlearnRec behind the common interface: IE pre-training (`pretrain.py`) is the one-off preparation; a request
(`unlearn.py`) gives two variants, "ie_only" (one IE forward pass) and "ie_ft" (IE + the short fine-tune).

Settings: `schemas/methods/unlearnrec.yaml`. Why a subpackage: the encoder, its four losses and the two entry
points are each worth reading and testing apart.
"""

from __future__ import annotations

from recunlearn.unlearning.base import OriginalModel, Unlearned, UnlearningMethod, UnlearningTask, as_state
from recunlearn.unlearning.unlearnrec.pretrain import pretrain_influence_encoder
from recunlearn.unlearning.unlearnrec.unlearn import unlearn_request

__all__ = ["UnlearnRec"]


class UnlearnRec(UnlearningMethod):
    name = "unlearnrec"

    def prepare(self, original: OriginalModel) -> tuple[dict, dict]:
        state, report = pretrain_influence_encoder(
            original.backbone,
            original.trained_on,
            original.n_users,
            original.n_items,
            self.settings,
            seed=original.seed,
            device=original.device,
        )
        return as_state(state), report

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o = task.original
        out = unlearn_request(
            o.backbone,
            state,
            o.trained_on,
            task.request,
            o.n_users,
            o.n_items,
            self.settings,
            seed=o.seed,
            device=o.device,
        )
        t = out.timings
        split = o.backbone.split
        ie_seconds = t["setup_s"] + t["ie_forward_s"]
        info = {"stop_reason": out.stop_reason, "finetune_steps": len(out.history)}
        return {
            "ie_only": Unlearned(*split(out.final_ie), seconds=ie_seconds, timings=dict(t), e0=out.e0_ie),
            "ie_ft": Unlearned(*split(out.final_ft), seconds=t["total_s"], timings=dict(t), info=info, e0=out.e0_ft),
        }
