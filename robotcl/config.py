"""Experiment configuration: YAML presets + ``key=value`` overrides, validated by pydantic.

Every key has a documented default (``robotcl run PRESET --help`` lists them). A strategy's
settings live under its own name (``ewc.coef=...``) and are validated by that strategy.
"""

from __future__ import annotations

import inspect
import re
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from robotcl.errors import UserInputError, warn

#: the largest seed: numpy's legacy seeding (used by stable-baselines3) takes 32 bits
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class EncoderConfig(_Strict):
    """The agent's observation encoder and its contrastive objective (robotcl.ssl). Defaults as
    CURL (Laskin et al. 2020): 50 features, the critic's loss and the SSL loss train the
    encoder, the actor reads detached features. An objective's own settings live under its name
    (``agent.encoder.moco.queue_size``), validated by its ``Settings`` (:func:`validate_config`)."""

    # extra keys: the settings blocks of registered objectives (checked in validate_config)
    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)

    type: Literal["none", "mlp", "pixels"] = Field(
        "none",
        description="none: the trunks read the state; mlp: an encoder (MLP + LayerNorm) shared "
        "by actor and critic, the parameter group 'encoder'; pixels: CURL's convolutional "
        "encoder, for observation=pixels",
    )
    feature_dim: PositiveInt = Field(50, description="encoder output width (CURL: 50)")
    hidden: PositiveInt = Field(256, description="hidden width of the mlp encoder")
    objective: str = Field(
        "none",
        description="contrastive objective that also trains the encoder: none or a registered "
        "objective (curl, moco, simclr, temporal, crossmodal); its settings under "
        "agent.encoder.<objective>.*",
    )
    ssl_weight: NonNegativeFloat = Field(1.0, description="weight of the SSL loss")
    ssl_every: PositiveInt = Field(1, description="compute the SSL loss every N updates")
    ssl_update: Literal["separate", "joint"] = Field(
        "separate",
        description="sac, td3: separate (CURL's): after each RL update, the SSL loss's own "
        "backward pass and Adam over the encoder and the objective; joint: added to the "
        "critic's loss, one backward (the critic's gradient then sets the encoder's step). bc "
        "always adds it to its loss",
    )
    crops: Literal["shared", "independent"] = Field(
        "shared",
        description="type pixels, sac and td3: shared (CURL's): each sampled batch is cropped "
        "once an update, the critic, the actor and the contrastive query see that anchor crop, "
        "the actor and the critic target one random crop of the next observations, the "
        "contrastive key a crop of its own; independent: every network draws its own crop and "
        "the critic target sees the centre",
    )
    actor_gradients: bool = Field(False, description="the actor's loss trains the encoder")
    critic_gradients: bool = Field(True, description="the critic's loss trains the encoder")
    memory_ratio: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of each SSL batch drawn from earlier tasks' observations "
        "(rehearses the representation even when the policy is not)",
    )
    memory_per_task: PositiveInt = Field(
        10_000, description="observations kept per finished task for memory_ratio"
    )

    #: keys that moved into an objective's settings: old key -> (objective, key)
    MOVED_KEYS: ClassVar[dict[str, tuple[str, str]]] = {"queue_size": ("moco", "queue_size")}

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """An old key still works: its value goes to the objective's block (a default value
        is dropped, so configs saved with every key load quietly)."""
        if not isinstance(data, dict) or not any(k in data for k in cls.MOVED_KEYS):
            return data
        data = dict(data)
        for old, (name, key) in cls.MOVED_KEYS.items():
            if old not in data:
                continue
            value = data.pop(old)
            default = _objectives().get(name).Settings.model_fields[key].default
            block = dict(data.get(name) or {})
            if key in block and block[key] != value:
                raise ValueError(
                    f"{old}={value} and {name}.{key}={block[key]} disagree; set "
                    f"agent.encoder.{name}.{key} only ({old} is its old name)"
                )
            if value != default or key in block:
                block[key] = value
                data[name] = block
        return data

    @field_validator("objective")
    @classmethod
    def _registered(cls, value: str) -> str:
        objectives = _objectives()
        if value != "none" and value not in objectives:
            raise ValueError(f"unknown objective; known: none, {', '.join(objectives)}")
        return value

    @model_validator(mode="after")
    def _objective_needs_an_encoder(self) -> EncoderConfig:
        if self.objective != "none" and self.type == "none":
            raise ValueError(
                f"objective={self.objective} trains an encoder; set agent.encoder.type=mlp"
            )
        return self

    def objective_settings(self, name: str | None = None) -> dict[str, Any]:
        """The settings given under an objective's name (default: the selected objective)."""
        return dict((self.model_extra or {}).get(name or self.objective) or {})


def _objectives() -> Any:
    """The objective registry, with the built-in objectives registered (they import torch)."""
    import robotcl.ssl  # noqa: F401
    from robotcl.registry import OBJECTIVES

    return OBJECTIVES


class AgentConfig(_Strict):
    """Learner settings. Keys marked "sac only", "td3 only" or "ppo only" belong to that learner;
    the others are shared with one default: Continual World's SAC (Wolczyk et al. 2021). TD3's
    own keys default to Fujimoto et al. 2018, PPO's to stable-baselines3's.

    Setting a key that the chosen agent does not take is an error (a value equal to the default
    is accepted, so presets that spell out SAC defaults and saved configs that list every key
    load for any agent). The learner receives only the keys its ``__init__`` takes, and the keys
    of its own ``Settings`` (robotcl.learner.LearnerSettings), validated in
    :func:`validate_config`.
    """

    # extra keys: the chosen learner's own settings (checked in validate_config)
    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)

    name: str = Field(
        "sac", description="learner: a registered agent name (sac, td3, ppo; bc: supervised)"
    )
    learning_rate: float = Field(
        1e-3, gt=0, le=1, description="Adam learning rate (above 1 Adam only diverges)"
    )
    buffer_size: PositiveInt = Field(1_000_000, description="replay buffer capacity")
    batch_size: PositiveInt = Field(128, description="minibatch size")
    tau: float = Field(0.005, gt=0, le=1, description="target network polyak rate")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    ent_coef: Literal["auto"] | PositiveFloat = Field(
        "auto",
        description="ppo, sac only: entropy coefficient: SAC's, or 'auto' for a tuned "
        "log-alpha per task; PPO's entropy bonus ('auto': 0)",
    )
    actor_update_interval: PositiveInt = Field(
        1,
        description="sac only: update the actor and its alpha every N updates (Haarnoja et al. "
        "2018: 1; CURL's DMC settings, Laskin et al. 2020: 2)",
    )
    target_update_interval: PositiveInt = Field(
        1,
        description="sac only: move the target critic every N updates (Haarnoja et al.: 1; "
        "CURL: 2)",
    )
    policy_delay: PositiveInt = Field(
        2,
        description="td3 only: critic updates per actor and target update "
        "(Fujimoto et al. 2018: 2)",
    )
    target_policy_noise: NonNegativeFloat = Field(
        0.2, description="td3 only: std of the target policy smoothing noise (Fujimoto: 0.2)"
    )
    target_noise_clip: NonNegativeFloat = Field(
        0.5, description="td3 only: clip of the target policy smoothing noise (Fujimoto: 0.5)"
    )
    action_noise: NonNegativeFloat = Field(
        0.1,
        description="td3 only: std of the Gaussian exploration noise, actions in [-1, 1] "
        "(Fujimoto: 0.1)",
    )
    n_steps: PositiveInt = Field(2048, description="ppo only: env steps per rollout (SB3: 2048)")
    n_epochs: PositiveInt = Field(10, description="ppo only: passes over each rollout (SB3: 10)")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="ppo only: GAE lambda (SB3: 0.95)")
    clip_range: PositiveFloat = Field(0.2, description="ppo only: surrogate clip (SB3: 0.2)")
    vf_coef: NonNegativeFloat = Field(0.5, description="ppo only: value loss weight (SB3: 0.5)")
    max_grad_norm: PositiveFloat = Field(0.5, description="ppo only: gradient norm clip (SB3: 0.5)")
    train_freq: PositiveInt = Field(50, description="env steps between update rounds")
    gradient_steps: PositiveInt = Field(50, description="gradient steps per update round")
    random_steps: NonNegativeInt = Field(10_000, description="random actions at each task start")
    update_after: NonNegativeInt = Field(1_000, description="steps into a task before updates")
    net_arch: list[PositiveInt] = Field([256, 256, 256, 256], description="hidden widths")
    activation: Literal["relu", "leaky_relu", "tanh", "elu"] = Field(
        "leaky_relu", description="hidden activation"
    )
    layer_norm: bool = Field(True, description="LayerNorm + tanh after the first layer")
    encoder: EncoderConfig = Field(
        default_factory=EncoderConfig,
        description="bc, sac, td3 only: observation encoder and its contrastive objective",
    )
    expert_data: str | None = Field(
        None,
        description="bc only: folder of expert datasets, <task>.npz each (robotcl experts "
        "writes them; robotcl gap sets this)",
    )
    heldout_fraction: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="bc only: share of each task's expert episodes held out for the action-loss "
        "matrix",
    )
    reset_buffer: bool = Field(True, description="empty the replay buffer at each task start")
    reset_optimizer: bool = Field(True, description="fresh optimizer state at each task start")
    log_every_updates: PositiveInt = Field(200, description="training-loss logging interval")

    @staticmethod
    def keys_taken_by(learner: type) -> set[str] | None:
        """The agent keys (less ``name``) that ``learner.__init__`` takes, its own settings
        included; None if it takes any keyword (``**kwargs``)."""
        params = inspect.signature(learner).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        shared = {k for k in AgentConfig.model_fields if k in params and k != "name"}
        return shared | set(learner_settings(learner).model_fields)

    def settings_for(self, learner: type) -> dict[str, Any]:
        """The settings to pass to ``learner``: the keys it takes."""
        keys = self.keys_taken_by(learner)
        settings = self.model_dump(exclude={"name"})
        return settings if keys is None else {k: v for k, v in settings.items() if k in keys}

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        agents = _agents()
        if value not in agents:
            raise ValueError(f"unknown agent; known: {', '.join(agents)}")
        return value

    @field_validator("*")
    @classmethod
    def _taken_by_the_agent(cls, value: Any, info: ValidationInfo) -> Any:
        key, agent = info.field_name, info.data.get("name", "sac")
        if key == "name" or value == cls.model_fields[key].get_default(call_default_factory=True):
            return value
        agents = _agents()
        if agent not in agents:
            return value
        keys = cls.keys_taken_by(agents.get(agent))
        if keys is not None and key not in keys:
            users = [a for a in agents if key in (cls.keys_taken_by(agents.get(a)) or {key})]
            where = f"set it only with agent {' or '.join(users)}" if users else "remove it"
            raise ValueError(f"not used by agent '{agent}'; {where}")
        return value


def learner_settings(learner: type) -> type[BaseModel]:
    """The model of a learner's own ``agent.*`` keys (an empty one if it declares none)."""
    from robotcl.learner import LearnerSettings

    return getattr(learner, "Settings", None) or LearnerSettings


def _agents() -> Any:
    """The learner registry, with the built-in learners registered (they import torch)."""
    import robotcl.agents  # noqa: F401
    from robotcl.registry import AGENTS

    return AGENTS


class EvalConfig(_Strict):
    """Evaluation of every task of the suite. Defaults: Continual World (10 stochastic)."""

    every_steps: PositiveInt = Field(20_000, description="env steps between evaluations")
    episodes: NonNegativeInt = Field(10, description="stochastic episodes per task")
    deterministic_episodes: NonNegativeInt = Field(1, description="deterministic episodes per task")
    metric: Literal["stochastic", "deterministic"] = Field(
        "stochastic", description="which episodes build R and the metrics"
    )

    @model_validator(mode="after")
    def _metric_has_episodes(self) -> EvalConfig:
        count = self.episodes if self.metric == "stochastic" else self.deterministic_episodes
        if count == 0:
            raise ValueError(f"eval.metric={self.metric} needs at least one such episode")
        return self


class ProbeConfig(_Strict):
    """The linear probe of representation forgetting (robotcl/probe.py)."""

    samples: NonNegativeInt = Field(
        2000, description="held-out observations kept per task (half fit, half score); 0: off"
    )
    ridge: NonNegativeFloat = Field(
        1e-2, description="ridge penalty of the linear probe (times the fit samples)"
    )


class VideoConfig(_Strict):
    """Rollout videos at task ends (robotcl/videos.py): every task played by the policy after
    each chosen stage, the stages side by side."""

    enabled: bool = Field(False, description="record videos (off in quick presets)")
    episodes: PositiveInt = Field(1, description="deterministic episodes per task and stage")
    stages: Literal["all", "last"] | list[NonNegativeInt] = Field(
        "all", description="after which tasks to record: all, last, or positions like [0,4,9]"
    )
    size: PositiveInt = Field(120, description="frame width and height (state observations)")
    fps: PositiveInt = Field(10, description="frames per second (D'Claw: 10 steps a second)")


class PixelsConfig(_Strict):
    """Rendered observations (observation=pixels or pixels+proprio). Defaults: CURL."""

    size: PositiveInt = Field(100, description="render width and height")
    frames: PositiveInt = Field(3, description="stacked frames")
    crop: PositiveInt = Field(84, description="random crop in training, centre crop in acting")
    render: Literal["fast", "full"] = Field(
        "fast",
        description="fast: no shadows, reflections or multisampling (about 12x cheaper a frame on "
        "a software renderer); full: MuJoCo's defaults, as the contact sheets (D'Claw tasks; "
        "other envs render as they do)",
    )

    @model_validator(mode="after")
    def _crop_fits(self) -> PixelsConfig:
        if self.crop > self.size or self.crop < 16:
            raise ValueError(f"pixels.crop={self.crop} must lie in 16..pixels.size={self.size}")
        return self


class ExpertsConfig(_Strict):
    """Single-task expert runs (``robotcl experts``, ``robotcl gap``): the preset's agent on one
    task with the ``single`` strategy, cached by suite, task, settings and seed; and their
    datasets for behaviour cloning."""

    steps_per_task: PositiveInt | None = Field(
        None, description="env steps of each expert (default: the preset's steps_per_task)"
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the expert runs")
    threshold: float = Field(
        0.8,
        ge=0,
        le=1,
        description="an expert whose success (of experts.policy) is below this is flagged in "
        "every table that uses it",
    )
    policy: Literal["final", "best"] = Field(
        "final",
        description="the policy of each expert that makes its dataset and its success: the "
        "one at the end of its budget, or the one at its best evaluation (success, then "
        "return; the run keeps it, keep_best), which on the study's one-episode evaluations "
        "made worse data (docs/results.md, the gap)",
    )
    episodes: PositiveInt = Field(50, description="episodes in each expert's dataset")
    successful_only: bool = Field(
        False,
        description="datasets of the expert's successful noisy rollouts only: rollouts go on "
        "until experts.episodes of them succeed (at most 10 tries an episode; fewer is an "
        "error naming the task)",
    )
    noise: NonNegativeFloat = Field(
        0.1,
        description="std of Gaussian noise on the expert's actions while its dataset is "
        "collected (the stored targets are its noise-free actions, as in DART); 0: "
        "deterministic rollouts",
    )


class GapConfig(_Strict):
    """The supervised side of ``robotcl gap``: behaviour cloning on the experts' datasets with the
    RL actor's network shape (agent.net_arch, activation, layer_norm, encoder)."""

    epochs: PositiveFloat = Field(
        100,
        description="passes over each task's training rows (its steps: epochs x rows / batch)",
    )
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate of BC")
    batch_size: PositiveInt = Field(256, description="BC minibatch size")


class ExperimentConfig(_Strict):
    """One run: a learner and a strategy through a suite, with one seed."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)

    name: str = Field(
        "custom",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$",
        description="preset name; the run directory groups by it (letters, digits, _ . + -)",
    )
    suite: str = Field(
        "dclaw10",
        description="a registered suite, a suite file (*.yaml) or package.module:factory (see "
        "README)",
    )
    suite_settings: dict[str, Any] = Field(
        {},
        description="settings of the suite's factory, as its Settings declares (a plugin "
        "suite's; the shipped suites and suite files take none)",
    )
    order: str | list[str] = Field(
        "a",
        description="task order: a named order of the suite (dclaw10: a, b, c), a list of all "
        "its tasks, or shuffle:I (a seeded permutation); random:K is K orders, for compare",
    )
    tasks: list[str] | None = Field(
        None,
        min_length=1,
        description="the curriculum: these tasks of the suite, in this order (e.g. [T3,T7]); "
        "given on the command line it replaces the preset's tasks and num_tasks",
    )
    num_tasks: PositiveInt | None = Field(
        None, description="train only the first N tasks (not together with tasks)"
    )
    steps_per_task: PositiveInt = Field(1_000_000, description="env steps per task")
    seed: int = Field(0, ge=0, le=MAX_SEED, description=f"random seed, 0..{MAX_SEED}")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda or cuda:N")
    strategy: list[str] = Field(["finetune"], description="strategy name, or a list to compose")
    agent: AgentConfig = Field(default_factory=AgentConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    observation: Literal["state", "pixels", "pixels+proprio"] = Field(
        "state",
        description="what the agent sees: the state vector, rendered frames, or frames and the "
        "state (proprioception); pixels need agent.encoder.type=pixels",
    )
    pixels: PixelsConfig = Field(default_factory=PixelsConfig)
    experts: ExpertsConfig = Field(default_factory=ExpertsConfig)
    gap: GapConfig = Field(default_factory=GapConfig)
    runs_dir: str = Field("runs", description="root of run directories")
    run_dir: str | None = Field(None, description="exact run directory (default: generated)")
    overwrite: bool = Field(False, description="allow writing into an existing run directory")
    reference: list[str] | None = Field(
        None,
        description="single-task reference runs (run directories or results.json, one per "
        "seed) for Continual World's AUC forward transfer; 'experts': the cached experts of "
        "these settings (robotcl experts)",
    )
    keep_best: bool = Field(
        False,
        description="also keep the policy at its best evaluation of each task while that task "
        "is trained (its success, then its return, in eval.metric) in checkpoints/best<task>/; "
        "experts do (experts.policy)",
    )
    checkpoint_every_steps: NonNegativeInt = Field(
        0,
        description="env steps between checkpoints inside a task (0: at task ends only); "
        "robotcl run --resume continues the task from the last one, with new episodes",
    )
    torch_threads: PositiveInt | None = Field(None, description="torch CPU threads")
    progress: bool = Field(True, description="show a progress bar")

    @field_validator("strategy", "reference", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("suite")
    @classmethod
    def _suite_file_absolute(cls, value: str) -> str:
        from robotcl.envs.suite_file import FACTORY_REFERENCE, is_suite_file

        if is_suite_file(value):
            return str(Path(value).absolute())
        if ":" in value and not FACTORY_REFERENCE.fullmatch(value):
            raise ValueError("not package.module:factory, a suite file (*.yaml) or a suite name")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        problem = device_problem(value)
        if problem:
            raise ValueError(f"{problem}; use device=cpu or device=auto")
        return value

    @model_validator(mode="after")
    def _learner_can_run_it(self) -> ExperimentConfig:
        check = getattr(_agents().get(self.agent.name), "config_problem", None)
        problem = check(self) if check is not None else None
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _pixels_need_the_pixel_encoder(self) -> ExperimentConfig:
        pixel_encoder = self.agent.encoder.type == "pixels"
        if (self.observation != "state") != pixel_encoder:
            encoder = self.agent.encoder.type
            raise ValueError(
                f"observation={self.observation} with agent.encoder.type={encoder}: rendered "
                "frames need agent.encoder.type=pixels, and that encoder needs them"
            )
        return self

    @model_validator(mode="after")
    def _objective_gets_its_inputs(self) -> ExperimentConfig:
        name = self.agent.encoder.objective
        if name == "none":
            return self
        needs = _objectives().get(name).needs_for(self.agent.encoder.objective_settings())
        if "proprio" in needs and self.observation != "pixels+proprio":
            raise ValueError(
                f"agent.encoder.objective={name} with observation={self.observation}: it "
                "contrasts the frames with the state of the same step; set "
                "observation=pixels+proprio"
            )
        learner = _agents().get(self.agent.name)
        missing = sorted(needs - getattr(learner, "ssl_inputs", needs))
        if missing:
            from robotcl.ssl.objective import INPUTS

            objectives = _objectives()
            usable = [n for n in objectives if objectives.get(n).needs <= learner.ssl_inputs]
            raise ValueError(
                f"agent.encoder.objective={name} needs "
                f"{'; '.join(INPUTS.get(m, m) for m in missing)}, "
                f"which agent {self.agent.name} cannot give; use one of: {', '.join(usable)}"
            )
        return self

    @model_validator(mode="after")
    def _one_task_selection(self) -> ExperimentConfig:
        if self.tasks is not None and self.num_tasks is not None:
            raise ValueError(
                f"tasks={self.tasks} and num_tasks={self.num_tasks} both set; an explicit task "
                "list is the curriculum: drop num_tasks"
            )
        return self

    def strategy_settings(self, name: str) -> dict[str, Any]:
        """The settings given under a strategy's name (validated by :func:`validate_config`)."""
        return dict((self.model_extra or {}).get(name) or {})


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine, or None (``auto`` always can)."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = (
                "without CUDA" if torch.version.cuda is None else "with CUDA, but no GPU is visible"
            )
            return f"CUDA is not available (torch {torch.__version__} built {build})"
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            return f"no GPU {index}: this machine has {count} (cuda:0..cuda:{count - 1})"
    if kind == "mps" and not torch.backends.mps.is_available():
        return "MPS (Apple GPU) is not available on this machine"
    return None


PRESET_PACKAGE = "robotcl.configs"


def preset_names() -> list[str]:
    """The presets shipped in configs/."""
    files = resources.files(PRESET_PACKAGE).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserInputError(where, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserInputError(where, "must be a mapping of config keys")
    return data


def load_source(source: str | None) -> dict[str, Any]:
    """Raw config of a preset name or a YAML file path (``None``: the ``quick`` preset)."""
    source = source or "quick"
    if source.endswith((".yaml", ".yml")) or "/" in source:
        path = Path(source)
        if not path.is_file():
            raise UserInputError(f"config file '{source}'", "not found")
        data = _read_yaml(path.read_text(), f"config file '{source}'")
        data.setdefault("name", path.stem)
        return data
    if source not in preset_names():
        raise UserInputError(
            f"preset '{source}'", "unknown preset", f"known: {', '.join(preset_names())}"
        )
    text = resources.files(PRESET_PACKAGE).joinpath(f"{source}.yaml").read_text()
    data = _read_yaml(text, f"preset '{source}'")
    data.setdefault("name", source)
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML: numbers, lists, booleans)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w.]*", key):
            raise UserInputError(f"override '{item}'", "expected key=value", "e.g. seed=3")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return data


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _union_tag(part: Any) -> bool:
    """A part of an error location that names a branch of a union type (``literal['a','b']``,
    ``list[int]``, ``str``), not a config key."""
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool"))


def _format_error(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> UserInputError:
    errors = exc.errors()
    err = errors[0]
    tags = [k for k, p in enumerate(err["loc"]) if _union_tag(p)]
    stem = err["loc"][: tags[0]] if tags else err["loc"]
    loc = tuple(p for p in stem if not isinstance(p, int) or p is not stem[-1])
    key = prefix + ".".join(str(p) for p in stem)
    if err["type"] == "extra_forbidden":
        return UserInputError(
            f"config key '{key}'", "unknown key", f"allowed: {', '.join(_fields_of(model, loc))}"
        )
    got = err.get("input")
    details = []
    for other in errors if tags else [err]:  # a union: what each of its branches said
        if tuple(other["loc"][: len(stem)]) != tuple(stem):
            continue
        inner = [str(p) for p in other["loc"][len(stem) :] if not _union_tag(p)]
        where = f" at {'.'.join(inner)}" if inner else ""
        details.append(other["msg"].removeprefix("Value error, ") + where)
    detail = ", or ".join(dict.fromkeys(details))
    if not isinstance(got, dict):
        detail += f" (got {got!r})"
    return UserInputError(f"config key '{key}'" if key else "config", detail)


def validate_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a raw config, including each strategy's own settings block."""
    import robotcl.strategies  # noqa: F401  (registers the built-in strategies)
    from robotcl.registry import STRATEGIES  # late: strategies import torch

    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_error(exc, ExperimentConfig) from None
    for name in config.strategy:
        STRATEGIES.get(name)
    _validate_blocks(config, STRATEGIES, "")
    _validate_blocks(config.agent.encoder, _objectives(), "agent.encoder.")
    _check_objective(config.agent.encoder)
    _validate_learner_settings(config.agent)
    _validate_suite_settings(config)
    return config


def _validate_suite_settings(config: ExperimentConfig) -> None:
    """``suite_settings`` must be the suite factory's own settings; stored validated, defaults
    filled."""
    from robotcl.envs.suites import factory_settings, suite_factory

    factory = suite_factory(config.suite)
    if factory is None:  # a suite file
        if config.suite_settings:
            raise UserInputError(
                "config key 'suite_settings'", "a suite file takes no settings", "remove it"
            )
        return
    model = factory_settings(factory, f"suite '{config.suite}'")
    unknown = sorted(set(config.suite_settings) - set(model.model_fields))
    if unknown:
        allowed = ", ".join(model.model_fields) or f"none: suite {config.suite} takes no settings"
        raise UserInputError(
            f"config key 'suite_settings.{unknown[0]}'", "unknown key", f"allowed: {allowed}"
        )
    try:
        settings = model.model_validate(config.suite_settings)
    except ValidationError as exc:
        raise _format_error(exc, model, prefix="suite_settings.") from None
    config.suite_settings = settings.model_dump()


def _validate_learner_settings(agent: AgentConfig) -> None:
    """The agent's extra keys must be its learner's own settings; stored validated, defaults
    filled (so config.yaml and ``--dry-run`` list them)."""
    extra = agent.model_extra
    assert extra is not None  # extra="allow"
    agents = _agents()
    model = learner_settings(agents.get(agent.name))
    shared = sorted(set(model.model_fields) & set(AgentConfig.model_fields))
    if shared:
        raise UserInputError(
            f"agent '{agent.name}'",
            f"its Settings declare {', '.join(shared)}, a shared agent key",
            "take it as an __init__ argument instead, or rename it",
        )
    for key in extra:
        if key not in model.model_fields:
            users = [a for a in agents if key in learner_settings(agents.get(a)).model_fields]
            allowed = sorted([*AgentConfig.model_fields, *model.model_fields])
            why = (
                f"not a setting of agent '{agent.name}'; set it only with agent "
                + " or ".join(users)
                if users
                else f"unknown key; allowed: {', '.join(allowed)}"
            )
            raise UserInputError(f"config key 'agent.{key}'", why)
    try:
        settings = model.model_validate(extra)
    except ValidationError as exc:
        raise _format_error(exc, model, prefix="agent.") from None
    extra.clear()
    extra.update(settings.model_dump())


def _validate_blocks(model: BaseModel, registry: Any, prefix: str) -> None:
    """Each extra block of ``model`` (``<prefix><name>``) must name an item of ``registry``
    (strategies; contrastive objectives) and hold valid settings of it, stored validated so the
    resolved config lists them."""
    extra = model.model_extra or {}
    for key, value in extra.items():
        if key not in registry:
            allowed = sorted([*type(model).model_fields, *registry])
            raise UserInputError(
                f"config key '{prefix}{key}'", "unknown key", f"allowed: {', '.join(allowed)}"
            )
        settings_cls = registry.get(key).Settings
        try:
            settings = settings_cls.model_validate(value or {})
        except ValidationError as exc:
            raise _format_error(exc, settings_cls, prefix=f"{prefix}{key}.") from None
        extra[key] = settings.model_dump()


def _check_objective(encoder: EncoderConfig) -> None:
    """The selected objective's settings must work with the rest of ``agent.encoder``."""
    if encoder.objective == "none":
        return
    objective = _objectives().get(encoder.objective)
    problem = objective.encoder_problem(encoder.objective_settings(), encoder.model_dump())
    if problem:
        raise UserInputError(f"config key 'agent.encoder.{encoder.objective}'", problem)


def unused_objective_settings(config: ExperimentConfig) -> list[str]:
    """``agent.encoder.<name>`` settings blocks of objectives other than the selected one."""
    encoder = config.agent.encoder
    return sorted(k for k in (encoder.model_extra or {}) if k != encoder.objective)


def merge_overrides(
    data: dict[str, Any], overrides: list[str], quiet: bool = False
) -> dict[str, Any]:
    """:func:`apply_overrides`, where a task list given on the command line is the whole
    curriculum: it replaces the source's ``num_tasks`` (unless that is given too). With
    ``quiet``, the source's agent keys left out for another learner are not warned about."""
    keys = {item.partition("=")[0] for item in overrides}
    if "tasks" in keys and "num_tasks" not in keys:
        data.pop("num_tasks", None)
    data = apply_overrides(data, overrides)
    agent = data.get("agent")
    if "agent.name" in keys and isinstance(agent, dict) and agent.get("name") in _agents():
        # a preset written for one learner, run with another: its keys that the other learner
        # does not take are left out (the user's own overrides are still checked)
        taken = AgentConfig.keys_taken_by(_agents().get(agent["name"]))
        given = {k.split(".")[1] for k in keys if k.startswith("agent.") and k.count(".") >= 1}
        dropped = [
            k
            for k in list(agent)
            if taken is not None and k != "name" and k not in taken and k not in given
        ]
        for k in dropped:
            del agent[k]
        if dropped and not quiet:
            warn(
                f"agent '{agent['name']}' does not take the source's "
                + ", ".join(f"agent.{k}" for k in dropped)
                + "; left out"
            )
    return data


def load_config(source: str | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Preset or YAML file, plus overrides, validated (a ``compare:`` block, the grid that
    ``robotcl compare`` and ``robotcl gap`` run, is not part of one run's config)."""
    data = load_source(source)
    data.pop("compare", None)
    config = validate_config(merge_overrides(data, overrides or []))
    unused = unused_objective_settings(config)
    if unused:
        warn(
            f"settings of objectives other than agent.encoder.objective="
            f"{config.agent.encoder.objective} are ignored: "
            + ", ".join(f"agent.encoder.{k}.*" for k in unused)
        )
    return config


def unused_settings(config: ExperimentConfig, used: set[str] | None = None) -> list[str]:
    """Strategy settings blocks of ``config`` that no selected strategy reads (``used``: the
    strategies that will; default the config's own)."""
    used = set(config.strategy) if used is None else used
    return sorted(k for k in (config.model_extra or {}) if k not in used)


def describe(
    model: type[BaseModel] = ExperimentConfig, prefix: str = ""
) -> list[tuple[str, str, str]]:
    """(key, default, description) for every config key, nested keys dotted."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += describe(annotation, f"{prefix}{name}.")
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((prefix + name, repr(default), field.description or ""))
    if model is EncoderConfig:  # each objective's settings, under its name
        objectives = _objectives()
        for name in objectives:
            rows += describe(objectives.get(name).Settings, f"{prefix}{name}.")
    if model is ExperimentConfig:  # each registered suite's own settings
        from robotcl.envs.suites import factory_settings
        from robotcl.registry import SUITES

        for name in SUITES:
            own = describe(factory_settings(SUITES.get(name), name), f"{prefix}suite_settings.")
            rows += [(k, v, f"suite {name} only: {d}") for k, v, d in own]
    if model is AgentConfig:  # each learner's own settings
        agents = _agents()
        for name in agents:
            own = describe(learner_settings(agents.get(name)), prefix)
            rows += [(k, v, f"{name} only: {d}") for k, v, d in own]
    return rows
