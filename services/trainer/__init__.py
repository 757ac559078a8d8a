"""The trainer service: training jobs (a run's fine-tuning dataset, fine-tuning, stage-3 invention).

`serve(TrainerServerConfig(...), port=0)` starts it over the coordinator's store with health, reflection
and metrics. Jobs are queued in the store and run one at a time; their kinds are registered in
`services.trainer.kinds.KINDS`.
"""

from services.trainer.jobs import JobRunner
from services.trainer.kinds import KINDS, JobContext, JobInterrupted, JobKind
from services.trainer.server import SERVICE_NAME, TrainerServerConfig, build_service, serve
from services.trainer.servicer import TrainerServicer

__all__ = [
    "KINDS",
    "SERVICE_NAME",
    "JobContext",
    "JobInterrupted",
    "JobKind",
    "JobRunner",
    "TrainerServerConfig",
    "TrainerServicer",
    "build_service",
    "serve",
]
