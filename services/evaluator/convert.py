"""The evaluator's wire format: EvalResult, the simulated world and capabilities to and from elm.v1 messages.

Server and client share these functions, so a result survives the round trip unchanged (walker included).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from elm_core.errors import ConfigError
from elm_core.evaluation import EvalResult
from elm_core.sandbox import Layer, Outcome, SandboxConfig
from elm_core.sodarace import (
    Descriptors,
    Muscle,
    MuscleKind,
    SimConfig,
    SimStatus,
    Terrain,
    TerrainKind,
    Walker,
)
from protos.elm.v1 import evaluator_pb2


def result_to_proto(result: EvalResult) -> evaluator_pb2.EvaluationResult:
    message = evaluator_pb2.EvaluationResult(
        status=result.status,
        execution=result.execution.value,
        simulation=result.simulation.value if result.simulation is not None else "",
        message=result.message,
        walker_json=json.dumps(result.walker.to_dict()) if result.walker is not None else "",
        timings_ms=result.timings,
        reused=result.reused,
    )
    if result.fitness is not None:
        message.fitness = result.fitness
    if result.descriptors is not None:
        message.descriptors.CopyFrom(evaluator_pb2.Descriptors(**result.descriptors.to_dict()))
    return message


def result_from_proto(message: evaluator_pb2.EvaluationResult) -> EvalResult:
    box = message.descriptors if message.HasField("descriptors") else None
    return EvalResult(
        execution=Outcome(message.execution),
        simulation=SimStatus(message.simulation) if message.simulation else None,
        message=message.message,
        fitness=message.fitness if message.HasField("fitness") else None,
        descriptors=Descriptors(box.height, box.width, box.mass) if box is not None else None,
        walker=_walker_from_json(message.walker_json) if message.walker_json else None,
        timings=dict(message.timings_ms),
        reused=message.reused,
    )


def _walker_from_json(text: str) -> Walker:
    """The walker exactly as the replica sent it. The replica validated it (against its own limits, on its
    trusted side) before simulating it, so it is rebuilt here, not validated again: that costs ms."""
    data = json.loads(text)
    joints = tuple((float(x), float(y)) for x, y in data["joints"])
    muscles = tuple(
        Muscle(a, b, MuscleKind(kind["type"]), kind.get("amplitude", 0.0), kind.get("phase", 0.0))
        for a, b, kind in data["muscles"]
    )
    return Walker(joints, muscles)


def world_to_proto(sim: SimConfig, terrain: Terrain) -> evaluator_pb2.SimulatorSettings:
    """The simulator's settings and the terrain, every parameter included."""
    return evaluator_pb2.SimulatorSettings(
        terrain=terrain.kind.value,
        seconds=sim.seconds,
        steps_per_second=sim.steps_per_second,
        config_json=json.dumps(dataclasses.asdict(sim), sort_keys=True),
        terrain_json=json.dumps(dataclasses.asdict(terrain), sort_keys=True),
    )


def world_from_proto(settings: evaluator_pb2.SimulatorSettings) -> tuple[SimConfig, Terrain]:
    """The world a request names; ConfigError (naming the setting) for anything that does not decode."""
    try:
        sim = SimConfig(**_json_object(settings.config_json, "config_json"))
        terrain_values = _json_object(settings.terrain_json, "terrain_json")
        kind = TerrainKind(terrain_values.pop("kind", settings.terrain or TerrainKind.FLAT))
        return sim, Terrain(kind=kind, **terrain_values)
    except (TypeError, ValueError) as e:  # unknown names, wrong types, an unknown terrain kind
        raise ConfigError(f"bad simulator settings: {e}") from e


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        values = json.loads(text) if text else {}
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deep
        raise ConfigError(f"simulator {name} is not JSON: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"simulator {name} must be a JSON object")
    return values


def capabilities_to_proto(
    *,
    layers: dict[Layer, tuple[bool, str]],
    sandbox: SandboxConfig,
    sim: SimConfig,
    terrain: Terrain,
    workers: int,
    max_batch: int,
) -> evaluator_pb2.Capabilities:
    """What a replica offers: its sandbox layers and limits, its simulator, its parallelism."""
    limits = evaluator_pb2.SandboxLimits(
        **{
            field.name: getattr(sandbox, field.name)
            for field in evaluator_pb2.SandboxLimits.DESCRIPTOR.fields
        }
    )
    return evaluator_pb2.Capabilities(
        layers=[
            evaluator_pb2.SandboxLayer(name=layer.value, active=active, detail=detail)
            for layer, (active, detail) in layers.items()
        ],
        limits=limits,
        simulator=world_to_proto(sim, terrain),
        workers=workers,
        max_batch=max_batch,
    )
