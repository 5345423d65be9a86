"""Learners: what is trained on a suite (ContinualSAC, ContinualTD3 and ContinualPPO for RL,
BCLearner for supervised, run on expert data as the ``bc`` agent). The protocol they follow
is :mod:`robotcl.learner`."""

from robotcl.agents.cloning import BCAgent
from robotcl.agents.ppo import ContinualPPO
from robotcl.agents.sac import ContinualSAC
from robotcl.agents.supervised import BCLearner, SupervisedBatch, TransitionDataset
from robotcl.agents.td3 import ContinualTD3

__all__ = [
    "BCAgent",
    "BCLearner",
    "ContinualPPO",
    "ContinualSAC",
    "ContinualTD3",
    "SupervisedBatch",
    "TransitionDataset",
]
