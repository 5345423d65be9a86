"""Learners: what is trained on a suite (ContinualSAC for RL, BCLearner for supervised)."""

from robotcl.agents.sac import ContinualSAC
from robotcl.agents.supervised import BCLearner, SupervisedBatch, TransitionDataset

__all__ = ["BCLearner", "ContinualSAC", "SupervisedBatch", "TransitionDataset"]
