"""Unlearning methods. UnlearnRec lives in influence_encoder.py (the IE), losses.py and unlearnrec.py."""
from recunlearn.unlearning.influence_encoder import InfluenceEncoder, RequestGraph
from recunlearn.unlearning.unlearnrec import (
    DEFAULT_IE_SETTINGS,
    UnlearnOutcome,
    pretrain_influence_encoder,
    unlearn_request,
)

__all__ = ["InfluenceEncoder", "RequestGraph", "DEFAULT_IE_SETTINGS", "UnlearnOutcome",
           "pretrain_influence_encoder", "unlearn_request"]
