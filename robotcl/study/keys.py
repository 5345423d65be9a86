"""The one key of a run's settings: a content hash of everything that changes what a run learns
or measures, and of nothing else.

In a key: the curriculum (a suite file by its content, not its path), the observation, the agent,
the evaluation, the probe, the seed, the strategies and their own settings, the reference runs (by
their results' content; ``reference=experts`` by the experts' steps and seed), a behaviour-cloning
agent's expert data (by the datasets' content).

Not in a key (they change how a run is logged or where it goes, not its numbers): ``name``,
``runs_dir``, ``run_dir``, ``overwrite``, ``progress``, ``torch_threads``,
``checkpoint_every_steps``, ``device``, ``video.*``,
``agent.log_every_updates``, the settings of strategies and contrastive objectives the run does
not use (and ``agent.encoder.ssl_update`` without an objective, ``pixels.render`` on state;
settings added later, at their defaults: :data:`ADDED_AT_DEFAULT`), ``experts.*`` unless the
run's reference is its experts (then ``experts.steps_per_task`` and ``experts.seed``),
``experts.threshold`` (it only flags)
and ``gap.*`` (the gap turns them into the supervised agent's own settings, which are in its
runs' keys).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import robotcl.ssl  # noqa: F401  (registers the built-in objectives)
from robotcl.config import ExperimentConfig
from robotcl.envs.suite_file import is_suite_file
from robotcl.registry import OBJECTIVES, STRATEGIES

#: written beside every keyed folder; folders of another version were keyed otherwise
KEY_VERSION = 2
#: dotted keys that change how a run is logged or where it goes, not what it learns or measures
LOGGING_ONLY = (
    "name",
    "runs_dir",
    "run_dir",
    "overwrite",
    "progress",
    "torch_threads",
    "checkpoint_every_steps",
    "device",
    "video",
    "agent.log_every_updates",
    "gap",
)


#: settings added after :data:`KEY_VERSION` 2, left out of a key at their default (which is the
#: behaviour from before they existed), so the keys of earlier runs and records stay valid
ADDED_AT_DEFAULT: dict[str, Any] = {
    "agent.actor_update_interval": 1,
    "agent.target_update_interval": 1,
    "suite_settings": {},
    "keep_best": False,  # an expert's best policy is another expert (experts.policy)
}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's content (16 hex digits)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def suite_identity(suite: str) -> str:
    """A registered suite by name; a suite file by its content (moved: same, edited: not)."""
    return "file:" + file_digest(suite) if is_suite_file(suite) else suite


def _reference_identity(path: str) -> str:
    file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    try:
        return "results:" + file_digest(file)
    except OSError:
        return "missing:" + str(path)  # the run refuses it with its own one-line error


#: beside datasets made from experts: what they are made of (so that a key needs no data)
DATA_FILE = "data.json"
#: in a gap folder: what ``robotcl gap`` ran (written by the command) and its table (by the report)
GAP_FILE = "gap.json"


def _data_identity(folder: str) -> Any:
    """A folder of ``<task>.npz`` datasets: what they are made of where it says so in
    ``data.json`` (the experts' keys, episodes, noise, seed: seeded rollouts of seeded experts),
    else the datasets' content."""
    declared = Path(folder) / DATA_FILE
    if declared.is_file():
        return json.loads(declared.read_text())
    return {p.name: file_digest(p) for p in sorted(Path(folder).glob("*.npz"))}


_ANY = object()


def _pop(data: dict[str, Any], dotted: str, when: Any = _ANY) -> None:
    """Remove the dotted key from ``data`` (only if its value is ``when``, where given)."""
    *parents, last = dotted.split(".")
    for key in parents:
        data = data.get(key)  # type: ignore[assignment]
        if not isinstance(data, dict):
            return
    if when is _ANY or data.get(last, when) == when:
        data.pop(last, None)


def result_settings(config: ExperimentConfig, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a run of ``config`` learns and measures (see the module docstring); ``without``:
    more dotted keys to leave out (a grid's folder leaves out the cells' seed and strategy)."""
    data = config.model_dump()
    for name in config.model_extra or {}:  # strategies' settings: the run's own, in full
        data.pop(name, None)
    for name in config.strategy if "strategy" not in without else []:
        data[name] = (
            STRATEGIES.get(name)
            .Settings.model_validate(config.strategy_settings(name))
            .model_dump()
        )
    for dotted in (*LOGGING_ONLY, *without):
        _pop(data, dotted)
    data["suite"] = suite_identity(config.suite)
    for dotted, default in ADDED_AT_DEFAULT.items():
        _pop(data, dotted, when=default)
    if config.reference == ["experts"]:
        data["experts"] = {
            "steps_per_task": config.experts.steps_per_task,
            "seed": config.experts.seed,
        }
    else:
        data.pop("experts", None)
        if config.reference is not None:
            data["reference"] = [_reference_identity(p) for p in config.reference]
    if config.observation == "state":  # how frames are drawn: no frames, no matter
        _pop(data, "pixels.render")
    encoder = data.get("agent", {}).get("encoder")
    if isinstance(encoder, dict):  # the selected objective's settings, in full; no other's
        chosen = encoder.get("objective")
        if chosen == "none":  # how an SSL loss is stepped: no SSL loss, no matter
            encoder.pop("ssl_update", None)
        if encoder.get("type") != "pixels":  # how frames are cropped: no frames, no matter
            encoder.pop("crops", None)
        for name in [n for n in encoder if n in OBJECTIVES and n != chosen]:
            encoder.pop(name)
        if chosen in OBJECTIVES:
            settings = OBJECTIVES.get(chosen).Settings.model_validate(encoder.get(chosen) or {})
            encoder[chosen] = settings.model_dump()
    expert_data = data.get("agent", {}).get("expert_data")
    if expert_data:
        data["agent"]["expert_data"] = _data_identity(expert_data)
    return data


def settings_key(settings: Any, length: int = 10) -> str:
    """The hash of ``settings`` (JSON, keys sorted)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def run_key(config: ExperimentConfig) -> str:
    """The key of one run of ``config``."""
    return settings_key(result_settings(config))
