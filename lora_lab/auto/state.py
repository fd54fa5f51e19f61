"""The run's state file (`auto.json` in the output folder): the options it was started with and
each stage's state, time and result, written atomically after every change. A stage marked done
is not run again; anything else is (each stage itself keeps what it finished)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..files.jsonfile import JsonFileError, read_json, write_json_atomic

SCHEMA = "lora-lab/auto"
STATE_NAME = "auto.json"
StageState = Literal["done", "interrupted", "failed", "running"]


class StateError(ValueError):
    pass


@dataclass
class StageRecord:
    name: str
    state: StageState
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "seconds": round(self.seconds, 3), "result": self.result}


@dataclass
class AutoState:
    path: Path
    options: dict[str, Any]
    checkpoint: str | None
    stages: dict[str, StageRecord] = field(default_factory=dict)

    def done(self, name: str) -> bool:
        record = self.stages.get(name)
        return record is not None and record.state == "done"

    def result(self, name: str) -> dict[str, Any]:
        return self.stages[name].result

    def record(self, name: str, state: StageState, seconds: float, result: dict[str, Any] | None = None) -> None:
        old = self.stages.get(name)
        spent = seconds + (old.seconds if old is not None and old.state != "done" else 0.0)
        self.stages[name] = StageRecord(name, state, spent, result or {})
        self.save()

    def save(self) -> None:
        write_json_atomic(self.path, {"schema": SCHEMA, "version": 1, "options": self.options,
                                      "checkpoint": self.checkpoint,
                                      "stages": [s.to_json() for s in self.stages.values()]})


def load_state(path: Path) -> AutoState | None:
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except JsonFileError as e:
        raise StateError(str(e)) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise StateError(f"{path} is not a LoRA Lab auto state file")
    stages = {}
    for item in data.get("stages", []):
        stages[item["name"]] = StageRecord(item["name"], item["state"], float(item.get("seconds", 0.0)),
                                           dict(item.get("result", {})))
    return AutoState(path, dict(data.get("options", {})), data.get("checkpoint"), stages)
