"""The Python client library: typed calls to the coordinator, the evaluator fleet, the model server and the
trainer, with deadlines, retries of retryable codes only, and the project's exceptions on failure; and
evaluator containers an embedded run starts itself (`DockerEvaluators`)."""

from services.client._coordinator import CoordinatorClient
from services.client._docker_evaluators import DockerEvaluators, sweep
from services.client._evaluators import EvaluatorFleet, InRunWorld, WorldEvaluator
from services.client._mutation import RemoteMutator
from services.client._trainer import TrainerClient

__all__ = [
    "CoordinatorClient",
    "DockerEvaluators",
    "EvaluatorFleet",
    "InRunWorld",
    "RemoteMutator",
    "TrainerClient",
    "WorldEvaluator",
    "sweep",
]
