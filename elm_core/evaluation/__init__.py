"""Evaluation: a program's text in, fitness and behaviour descriptors out, safely.

The program runs in the sandbox; its walker is validated on the trusted side and simulated in a
separate process that never ran program text.
"""

from elm_core.evaluation._evaluator import EvalResult, EvaluatorPool
from elm_core.evaluation._simulation_process import SimulationProcess

__all__ = ["EvalResult", "EvaluatorPool", "SimulationProcess"]
