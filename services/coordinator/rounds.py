"""Fine-tuning rounds: every K batches of a run, the trainer fine-tunes the model server's current model on
the run's mutation log, and the model server reloads the checkpoint (atomically: no call fails)."""

from __future__ import annotations

import threading

import structlog

from elm_core.errors import ElmError
from elm_core.spec import RunSpec
from elm_core.store import MetricsRecord
from services.client import RemoteMutator, TrainerClient
from services.common import Credentials

log = structlog.get_logger()


class FinetuneRounds:
    """Starts at most one round per run at a time, in a background thread, so the run never waits for it."""

    def __init__(self, trainer: str, model_server: str, *, credentials: Credentials | None = None) -> None:
        self.trainer = TrainerClient(trainer, credentials=credentials)
        self.model_server = RemoteMutator(model_server, credentials=credentials)
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}

    def on_batch(self, run_id: str, config: RunSpec, metrics: MetricsRecord) -> None:
        every = config.finetune.every_batches
        if not every or metrics.batch == 0 or metrics.batch % every:
            return
        with self._lock:
            if run_id in self._running:
                return
            thread = threading.Thread(
                target=self._round, args=(run_id, config), name=f"round-{run_id}", daemon=True
            )
            self._running[run_id] = thread
        thread.start()

    def wait(self, timeout_s: float | None = None) -> None:
        """Waits for the rounds under way (tests, shutdown)."""
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout_s)

    def close(self) -> None:
        self.trainer.close()
        self.model_server.close()

    def _round(self, run_id: str, config: RunSpec) -> None:
        try:
            base = self.model_server.model_info().name
            job = self.trainer.start_job(
                run_id, kind="finetune", model=base, config=config.finetune.job_settings()
            )
            log.info("fine-tuning round started", run=run_id, job=job.job_id, base=base)
            final = list(self.trainer.watch_job(job.job_id))[-1]
            if final.status != "SUCCEEDED":
                log.warning("fine-tuning round failed", run=run_id, job=job.job_id, message=final.message)
                return
            reloaded = self.model_server.reload(final.checkpoint)
            log.info("model server reloaded", run=run_id, job=job.job_id, checkpoint=final.checkpoint,
                     version=reloaded.info.version)  # fmt: skip
        except ElmError as e:  # the run goes on with the model it has
            log.warning("fine-tuning round failed", run=run_id, error=str(e))
        finally:
            with self._lock:
                self._running.pop(run_id, None)
