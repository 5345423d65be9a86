"""Learners: what is trained on a suite (ContinualSAC; behaviour cloning later)."""

from robotcl.agents.sac import ContinualSAC

__all__ = ["ContinualSAC"]
