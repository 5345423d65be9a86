"""Learners: what is trained on a suite (ContinualSAC and ContinualTD3 for RL, BCLearner for
supervised)."""

from robotcl.agents.sac import ContinualSAC
from robotcl.agents.supervised import BCLearner, SupervisedBatch, TransitionDataset
from robotcl.agents.td3 import ContinualTD3

__all__ = ["BCLearner", "ContinualSAC", "ContinualTD3", "SupervisedBatch", "TransitionDataset"]
