"""GNN recommender backbones (LightGCN, SGL, SimGCL) sharing one propagation, plus training and checkpoints.

Importing this package registers the built-in backbones in `BACKBONES`.
"""
from recunlearn.models.base import Backbone
from recunlearn.models.graph import GraphContext, normalized_adjacency, propagate
from recunlearn.models.registry import BACKBONES, build_backbone, register
from recunlearn.models import lightgcn, sgl, simgcl  # noqa: F401,E402  (registration side effect)
from recunlearn.models.sampling import BPRSampler
from recunlearn.models.train import TrainResult, train_backbone
from recunlearn.models.checkpoint import data_fingerprint, load_checkpoint, save_checkpoint

__all__ = [
    "Backbone", "GraphContext", "normalized_adjacency", "propagate", "BACKBONES", "build_backbone", "register",
    "BPRSampler", "TrainResult", "train_backbone", "save_checkpoint", "load_checkpoint", "data_fingerprint",
]
