"""Coordinator records to and from `elm.v1` messages."""

from __future__ import annotations

from elm_core.store import EliteRecord, IndividualRecord, MetricsRecord, MutationRecord
from protos.elm.v1 import coordinator_pb2 as pb
from services.coordinator.runs import RunView


def run_message(view: RunView) -> pb.Run:
    record = view.record
    budget = view.config.loop.max_evaluations or 0
    run = pb.Run(
        run_id=record.run_id, name=record.name, status=str(record.status), config_json=record.config_json,
        evaluations=record.evaluations, batches=record.batches, budget=budget, message=view.message,
        created_at=record.created_at, updated_at=record.updated_at,
    )  # fmt: skip
    if view.progress is not None:
        run.progress.CopyFrom(progress_message(view.progress))
    run.operators.extend(
        pb.OperatorProgress(operator=s.operator, mutations=s.mutations, applied=s.applied, ran=s.ran,
                            inserted=s.inserted, duplicates=s.duplicates, generated_tokens=s.generated_tokens)
        for s in view.operators
    )  # fmt: skip
    return run


def progress_message(m: MetricsRecord) -> pb.Progress:
    progress = pb.Progress(
        batch=m.batch, evaluations=m.evaluations, filled=m.filled, coverage=m.coverage, qd_score=m.qd_score,
        applied_fraction=m.applied_fraction, ran_fraction=m.ran_fraction,
        inserted_fraction=m.inserted_fraction, evaluations_per_s=m.evaluations_per_s, elapsed_s=m.elapsed_s,
    )  # fmt: skip
    if m.max_fitness is not None:
        progress.max_fitness = m.max_fitness
    return progress


def elite_message(e: EliteRecord) -> pb.Elite:
    return pb.Elite(cell=e.cell, individual_id=e.individual_id, fitness=e.fitness, descriptors=e.descriptors)


def individual_message(i: IndividualRecord, mutation: MutationRecord | None = None) -> pb.Individual:
    """The individual, with the mutation that produced it when given (a seed has none)."""
    message = pb.Individual(
        run_id=i.run_id, individual_id=i.individual_id, batch=i.batch, source=i.source, status=i.status,
        message=i.message, descriptors=i.descriptors or (), walker_json=i.walker_json or "",
    )  # fmt: skip
    if i.parent_id is not None:
        message.parent_id = i.parent_id
    if i.fitness is not None:
        message.fitness = i.fitness
    if i.cell is not None:
        message.cell = i.cell
    if mutation is not None:
        message.mutation.CopyFrom(mutation_message(mutation))
    return message


def mutation_message(m: MutationRecord) -> pb.Mutation:
    return pb.Mutation(operator=m.operator, style=m.style, message=m.message, raw_output=m.raw_output,
                       outcome=m.mutation_outcome, generated_tokens=m.generated_tokens,
                       parent_id=m.parent_id)  # fmt: skip
