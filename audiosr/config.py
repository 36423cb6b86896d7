"""params.yaml as typed, strict configs: one frozen dataclass per block, checked when it is read.

Every key of a block is required and its value's type is checked; a key the block does not know is an
error naming the nearest known key (``params.yaml: vae.chanels is not a known key; did you mean
vae.channels?``), so a typo never trains the default while the log shows the typo as if it were used.
The values live in params.yaml alone: the dataclasses here have no defaults.

The model blocks (`vae`, `vocoder`, `ldm`) hold training keys and may override any key of the profile's
architecture (`vae.channels: 48`, `vocoder.istft.dim: 512`); `arch` is the profile's architecture with
those overrides, the one the model is built from and the one logged. The vocoder's hop is not a key: it
is `mel.hop`, and HiFi-GAN's upsample rates must multiply to it.

`Params.load()` reads the whole file (every stage does, so a typo anywhere stops the first stage run).
A key repeated in a block is an error (PyYAML would keep the last one), as is a value out of its key's
range (a cutoff above the Nyquist frequency, a size of 0). Functions that take one block also take its
plain dict (tests, notebooks) and check it the same way, through `block(cls, value, name)`.
A stage script's entry point is `stage_main(main)`: a ParamsError is one line on stderr and exit status 1.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from audiosr.audio import SAMPLE_RATE, MelConfig
from audiosr.names import FILTERS, NOISE_TYPES, PRECISIONS
from audiosr.profiles import PROFILES, resolve

FilterName = Literal[FILTERS]  # type: ignore[valid-type]
EVAL_NOISES = ("none", "tone", "gaussian")
MEL_KEYS = ("n_mels", "n_fft", "hop", "win", "fmin", "fmax")  # sample_rate and floor are the method's, not params
# keys that are derived from others and so may not be set; the message says where they come from
DERIVED = {"vocoder.hop": "mel.hop", "vocoder.istft.hop": "mel.hop", "vocoder.hifigan.hop": "mel.hop"}
NYQUIST = SAMPLE_RATE / 2  # every frequency key is of the 48 kHz audio
MAX_ORDER = 32  # the highest filter order audiosr.degrade takes (its `_check`: 1 to 32)
# PyYAML reads YAML 1.1, where `1e-4` (no dot) is a string; a float key takes such a string as its number
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ParamsError(ValueError):
    """A params.yaml that cannot be used; the message names the block, the key and what is wrong."""


FILE = "params.yaml"  # how messages name the file


def _unknown(where: str, key: str, known: list[str]) -> ParamsError:
    full = f"{where}.{key}" if where else key
    if full in DERIVED:
        return ParamsError(f"{FILE}: {full} is not a known key: it is derived from {DERIVED[full]}")
    near = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    what = "key" if where else "block"
    hint = (
        f"; did you mean {f'{where}.{near[0]}' if where else near[0]}?"
        if near
        else f"; known: {', '.join(map(str, known))}"
    )
    return ParamsError(f"{FILE}: {full} is not a known {what}{hint}")


def _name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin in (list, tuple):
        return "a list"
    if tp is dict or origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping of keys"
    return str(tp)


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def coerce(value: Any, tp: Any, where: str) -> Any:
    """`value` checked against the type hint `tp` (and converted: int -> float, lists -> tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        return coerce(value, rest[0], where) if len(rest) == 1 else value
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is Literal:
        if value in args and type(value) is type(args[args.index(value)]):
            return value
        near = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise ParamsError(f"{FILE}: {where}: {value!r} is not {_name(tp)}{hint}")
    elif origin is tuple:
        if isinstance(value, list | tuple):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
            if len(value) != len(args):
                raise ParamsError(f"{FILE}: {where}: expected a list of {len(args)} values, got {_got(value)}")
            return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    elif origin is list:
        if isinstance(value, list | tuple):
            return [coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    elif tp is dict or origin is dict:
        if isinstance(value, dict):
            return copy.deepcopy(value)
    elif dataclasses.is_dataclass(tp):
        return block(tp, value, where)
    elif hasattr(tp, "from_params"):  # a config class that checks its own block (e.g. data.rendered)
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return tp.from_params(value)
    else:
        raise TypeError(f"config: no check for type {tp!r} ({where})")
    raise ParamsError(f"{FILE}: {where}: expected {_name(tp)}, got {_got(value)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=False)


def block(cls: type, value: Any, where: str, keys: tuple[str, ...] | None = None):
    """The dataclass `cls` from the params mapping `value` (block `where`); an instance passes through.

    `keys`: the fields that are params (default: every field); each is required, no other is allowed.
    """
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ParamsError(f"{FILE}: {where}: expected a mapping of keys, got {_got(value)}")
    hints = _hints(cls)
    keys = keys or tuple(f.name for f in dataclasses.fields(cls))
    for key in value:
        if key not in keys:
            raise _unknown(where, key, list(keys))
    missing = [k for k in keys if k not in value]
    if missing:
        raise ParamsError(f"{FILE}: {where} lacks {', '.join(f'{where}.{k}' for k in missing)}")
    cfg = cls(**{k: coerce(value[k], hints[k], f"{where}.{k}") for k in keys})
    check = getattr(cfg, "check", None)
    if check is not None:
        check(where)
    return cfg


def to_dict(cfg: Any) -> Any:
    """A config as plain YAML/JSON data (tuples as lists), for logging and fingerprints."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ParamsError(f"{FILE}: {message}")


def _range(where: str, pair: tuple, low: float | None = None, high: float | None = None) -> None:
    _require(pair[0] <= pair[1], f"{where}: {list(pair)} must be [low, high] with low <= high")
    if low is not None:
        _require(pair[0] >= low, f"{where}: {list(pair)} must be at least {low}")
    if high is not None:
        _require(pair[1] <= high, f"{where}: {list(pair)} must be at most {high}")


def _at_least(cfg: Any, where: str, low: float, *names: str) -> None:
    """Keys `names` of the block `where` (counts, sizes, steps, weights, seeds): each at least `low`."""
    for name in names:
        value = getattr(cfg, name)
        _require(value >= low, f"{where + '.' if where else ''}{name}: {value!r} must be at least {low}")


def _positive(cfg: Any, where: str, *names: str) -> None:
    """Keys `names` of the block `where` (durations, rates, scales): each above 0."""
    for name in names:
        _require(getattr(cfg, name) > 0, f"{where}.{name}: {getattr(cfg, name)!r} must be positive")


def _fraction(cfg: Any, where: str, *names: str) -> None:
    """Keys `names` of the block `where` (peaks, amplitudes: fractions of full scale): each in (0, 1]."""
    for name in names:
        _require(0 < getattr(cfg, name) <= 1, f"{where}.{name}: {getattr(cfg, name)!r} must be in (0, 1]")


def _hz(where: str, values: tuple[float, ...]) -> None:
    """Frequencies of the 48 kHz audio (key `where`): each above 0 and below the Nyquist frequency."""
    for hz in values:
        _require(hz > 0, f"{where}: {hz:g} must be positive")
        _require(
            hz < NYQUIST,
            f"{where}: {hz:g} is not below the Nyquist frequency ({NYQUIST:g} Hz at {SAMPLE_RATE // 1000} kHz); "
            f"use values below {NYQUIST:g}",
        )


def _orders(where: str, values: tuple[int, ...]) -> None:
    """Filter orders (key `where`): each one audiosr.degrade's filters take."""
    for order in values:
        _require(
            1 <= order <= MAX_ORDER,
            f"{where}: {order} is not an order audiosr.degrade's filters take; use 1 to {MAX_ORDER}",
        )


# --- the data blocks ------------------------------------------------------------------------------


# data.source values (audiosr.data.sources reads each); here, not there, so that loading params does not
# make every stage depend on the data sources' code
SOURCES = ("rendered", "synthetic", "musdb18hq", "musdb18", "musdb-preview", "folder")


def _check_songs(cfg: SyntheticConfig | RenderConfig, where: str) -> None:
    """The keys of both generated sources."""
    _at_least(cfg, where, 3, "tracks")
    _positive(cfg, where, "seconds")
    _at_least(cfg, where, 0, "seed")


@dataclass(frozen=True)
class SyntheticConfig:
    """`data.synthetic`: the built-in oscillator songs."""

    tracks: int
    seconds: float
    seed: int

    def check(self, where: str) -> None:
        _check_songs(self, where)


@dataclass(frozen=True)
class RenderConfig:
    """`data.rendered`: the built-in songs on recorded instruments (audiosr.data.rendered)."""

    tracks: int
    seconds: float
    seed: int
    soundfont: str
    drumkits: str
    min_top_db: float  # an instrument is used when its 16-20 kHz band is at least this (dB re its total)
    test_programs: tuple[int, ...]  # General MIDI programs (0-based) held out for the test songs
    test_kits: tuple[str, ...]  # Hydrogen kits held out for the test songs

    def check(self, where: str) -> None:
        _check_songs(self, where)
        # a band's level relative to the instrument's total is at most 0 dB
        _require(self.min_top_db <= 0, f"{where}.min_top_db: {self.min_top_db:g} must be at most 0 (dB re the total)")
        for p in self.test_programs:
            _require(0 <= p <= 127, f"{where}.test_programs: {p} is not a General MIDI program; use 0 to 127")


@dataclass(frozen=True)
class DataConfig:
    """`data`: where the audio comes from (audiosr.data.sources)."""

    source: Literal[SOURCES]  # type: ignore[valid-type]
    root: str | None
    on_error: Literal["fail", "skip"]
    rendered: RenderConfig
    synthetic: SyntheticConfig


@dataclass(frozen=True)
class SplitConfig:
    """`split`: train / valid / test tracks (audiosr.data.split)."""

    valid_tracks: int
    proportions: tuple[float, float, float]
    seed: int

    def check(self, where: str) -> None:
        _at_least(self, where, 0, "valid_tracks", "seed")
        _require(
            min(self.proportions) >= 0 and sum(self.proportions) > 0 and self.proportions[0] > 0,
            f"{where}.proportions: {list(self.proportions)} must be three non-negative numbers, train > 0",
        )


@dataclass(frozen=True)
class AudioConfig:
    """`audio`: how tracks are cut into segments (audiosr.data.segments)."""

    segment_seconds: float
    silence_db: float
    peak: float
    train_stems: tuple[Literal["drums", "bass", "other", "vocals"], ...]  # also cut alone, for training

    def check(self, where: str) -> None:
        _positive(self, where, "segment_seconds")
        _fraction(self, where, "peak")
        # no segment is louder than 0 dBFS, so a threshold at or above it would skip them all
        _require(self.silence_db < 0, f"{where}.silence_db: {self.silence_db:g} must be below 0 (dBFS)")


@dataclass(frozen=True)
class FilterConfig:
    """`filter`: the training degradation's low-pass filters (audiosr.degrade)."""

    types: tuple[FilterName, ...]
    order: tuple[int, int]
    cutoff_hz: tuple[float, float]

    def check(self, where: str) -> None:
        _require(len(self.types) > 0, f"{where}.types: name at least one of {', '.join(FILTERS)}")
        _range(f"{where}.order", self.order, 1)
        _orders(f"{where}.order", self.order)
        _range(f"{where}.cutoff_hz", self.cutoff_hz, 1)
        _hz(f"{where}.cutoff_hz", self.cutoff_hz)


@dataclass(frozen=True)
class NoiseConfig:
    """`noise`: the training degradation's noise (audiosr.degrade)."""

    type: Literal[NOISE_TYPES]  # type: ignore[valid-type]
    tone_amplitude: tuple[float, float]
    tone_hz: tuple[float, float]
    gaussian_amplitude: tuple[float, float]

    def check(self, where: str) -> None:
        for name in ("tone_amplitude", "gaussian_amplitude"):  # fractions of full scale
            _range(f"{where}.{name}", getattr(self, name), 0, 1)
        _range(f"{where}.tone_hz", self.tone_hz, 0)
        _hz(f"{where}.tone_hz", self.tone_hz)


@dataclass(frozen=True)
class RealsetConfig:
    """`realset`: the real-recordings test set (audiosr.data.realset)."""

    strums: str  # a folder of recorded guitar strums (FLAC)
    strum_clips: int
    drumkits: str  # Hydrogen kits
    kits: tuple[str, ...]  # their single hits and sparse patterns
    stem_songs: int  # test songs whose stems are scored alone
    seconds: float
    peak: float

    def check(self, where: str) -> None:
        _at_least(self, where, 0, "strum_clips", "stem_songs")
        _positive(self, where, "seconds")
        _fraction(self, where, "peak")


@dataclass(frozen=True)
class EvalConfig:
    """`eval`: the fixed evaluation protocol (audiosr.evaluate)."""

    cutoffs_hz: tuple[float, ...]
    filters: tuple[FilterName, ...]
    order: int
    noises: tuple[Literal[EVAL_NOISES], ...]  # type: ignore[valid-type]
    tone_amplitude: float
    tone_hz: float
    gaussian_amplitude: float
    clips: int
    steps: int
    guidance: float
    precision: Literal[PRECISIONS]  # type: ignore[valid-type]
    perceptual: bool
    seed: int
    real_cutoffs_hz: tuple[float, ...]  # the real set: every clip at each cutoff, no noise,
    real_filters: tuple[FilterName, ...]  # the filter family cycling over clips and cutoffs
    real_order: int

    def check(self, where: str) -> None:
        for name in ("cutoffs_hz", "filters", "noises", "real_cutoffs_hz", "real_filters"):
            _require(len(getattr(self, name)) > 0, f"{where}.{name}: needs at least one value")
        for name in ("cutoffs_hz", "real_cutoffs_hz"):
            _hz(f"{where}.{name}", getattr(self, name))
        _hz(f"{where}.tone_hz", (self.tone_hz,))
        _orders(f"{where}.order", (self.order,))
        _orders(f"{where}.real_order", (self.real_order,))
        _fraction(self, where, "tone_amplitude", "gaussian_amplitude")
        _at_least(self, where, 1, "clips", "steps", "guidance")  # guidance: the classifier-free scale, 1: none
        _at_least(self, where, 0, "seed")


# --- the model blocks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopConfig:
    """The keys of every training block (audiosr.train.loop)."""

    steps: int
    batch: int
    lr: float
    warmup: int
    betas: tuple[float, float]  # AdamW's
    weight_decay: float
    grad_clip: float  # gradient norm clipping
    validate_every: int
    seed: int

    def check(self, where: str) -> None:
        _at_least(self, where, 1, "steps", "batch", "validate_every")
        _at_least(self, where, 0, "warmup", "weight_decay", "seed")
        _positive(self, where, "lr", "grad_clip")
        _require(all(0 <= b < 1 for b in self.betas), f"{where}.betas: {list(self.betas)} must be in [0, 1)")


@dataclass(frozen=True)
class TrainingConfig(LoopConfig):
    """A model block: the loop's keys, `init` (a pipeline folder whose part of this name the training
    starts from, or null: random weights) and `arch`: the profile's architecture with the block's
    overrides (not a key of its own)."""

    init: str | None
    arch: dict


@dataclass(frozen=True)
class VAEConfig(TrainingConfig):
    """`vae`: L1 + KL, a patch discriminator from `adv_start` (audiosr.train.vae)."""

    crop_frames: int
    kl_weight: float
    adv_weight: float
    adv_start: int
    disc_channels: int

    def check(self, where: str) -> None:
        super().check(where)
        _at_least(self, where, 1, "crop_frames", "disc_channels")
        _at_least(self, where, 0, "kl_weight", "adv_weight", "adv_start")


@dataclass(frozen=True)
class VocoderConfig(TrainingConfig):
    """`vocoder`: mel L1 and multi-resolution log-STFT L1, then adversarial + feature matching from
    `adv_start` (audiosr.train.vocoder).
    `arch` carries `hop`, the mel hop (derived, not a key)."""

    crop_frames: int
    mel_weight: float
    stft_weight: float
    adv_weight: float
    fm_weight: float
    adv_start: int
    discriminators: tuple[Literal["mpd", "msd", "mrd"], ...]
    disc_channels_scale: float

    def check(self, where: str) -> None:
        super().check(where)
        _at_least(self, where, 1, "crop_frames")
        _at_least(self, where, 0, "mel_weight", "stft_weight", "adv_weight", "fm_weight", "adv_start")
        _require(len(self.discriminators) > 0, f"{where}.discriminators: name at least one of mpd, msd, mrd")
        _positive(self, where, "disc_channels_scale")


@dataclass(frozen=True)
class LDMConfig(TrainingConfig):
    """`ldm`: v-prediction with condition dropout and EMA (audiosr.train.ldm)."""

    crop_frames: int
    cond_drop: float
    ema_decay: float
    validate_timesteps: tuple[int, ...]  # diffusion steps at which the validation loss is measured

    def check(self, where: str) -> None:
        super().check(where)
        _at_least(self, where, 1, "crop_frames")
        _require(0 <= self.cond_drop < 1, f"{where}.cond_drop must be in [0, 1)")
        _require(0 <= self.ema_decay < 1, f"{where}.ema_decay: {self.ema_decay:g} must be in [0, 1)")
        _require(len(self.validate_timesteps) > 0, f"{where}.validate_timesteps: needs at least one step")
        # the upper end (the diffusion schedule's steps) is the LDM's, checked where it is built
        _require(
            min(self.validate_timesteps) >= 0,
            f"{where}.validate_timesteps: {list(self.validate_timesteps)} must be at least 0",
        )


@dataclass(frozen=True)
class DistillConfig(LoopConfig):
    """`distill`: a one-step student of the LDM, trained on the teacher's guided samples
    (audiosr.train.distill). Its architecture is the teacher's, so the block has no `arch`."""

    crop_frames: int  # mel frames, as ldm.crop_frames
    examples: int  # (noise, condition) pairs the teacher samples once, the student's training set
    teacher_steps: int  # the teacher's DPM-Solver++ steps per example
    guidance: float  # the teacher's classifier-free guidance scale, built into the student

    def check(self, where: str) -> None:
        # steps 0: no student (the distill stage writes a folder that says so, package leaves it out)
        _require(self.steps >= 0, f"{where}.steps must be >= 0 (0: no student)")
        if self.steps:
            super().check(where)
        _at_least(self, where, 1, "crop_frames", "examples", "guidance")  # guidance 1: none
        _require(self.teacher_steps >= 2, f"{where}.teacher_steps must be at least 2 (1 is the student's own)")


MODEL_BLOCKS: dict[str, type[TrainingConfig]] = {"vae": VAEConfig, "vocoder": VocoderConfig, "ldm": LDMConfig}


def _check_arch(override: dict, base: dict, where: str) -> dict:
    """The architecture overrides of a model block, checked against the profile's keys and value types."""
    out = {}
    for key, value in override.items():
        if key not in base:
            raise _unknown(where, key, list(base))
        ref = base[key]
        if isinstance(ref, dict):
            out[key] = _check_arch(coerce(value, dict, f"{where}.{key}"), ref, f"{where}.{key}")
        elif isinstance(ref, list):
            inner = type(ref[0]) if ref and not isinstance(ref[0], list) else Any
            out[key] = coerce(value, list[inner], f"{where}.{key}")
        else:
            out[key] = coerce(value, type(ref), f"{where}.{key}")
    return out


def _check_sizes(value: Any, where: str, low: int = 1) -> None:
    """An architecture's integers (in its mappings and lists) are sizes, counts, rates and kernels, each at
    least 1; those of `attention_levels` are indices of levels, each at least 0."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_sizes(item, f"{where}.{key}", 0 if key == "attention_levels" else 1)
    elif isinstance(value, list):
        for item in value:
            _check_sizes(item, where, low)
    elif isinstance(value, int) and not isinstance(value, bool):
        _require(value >= low, f"{where}: {value} must be at least {low}")


def model_block(name: str, value: Any, profile: str, mel_hop: int | None = None) -> TrainingConfig:
    """The typed `vae` / `vocoder` / `ldm` block: training keys, plus overrides of the profile's
    architecture keys; `mel_hop` (the vocoder only) becomes its arch's `hop`."""
    cls = MODEL_BLOCKS[name]
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ParamsError(f"{FILE}: {name}: expected a mapping of keys, got {_got(value)}")
    if profile not in PROFILES:
        raise ParamsError(f"{FILE}: profile: {profile!r} is not one of {', '.join(PROFILES)}")
    base = PROFILES[profile][name]
    keys = tuple(f.name for f in dataclasses.fields(cls) if f.name != "arch")
    training = {k: v for k, v in value.items() if k in keys}
    extra = {k: v for k, v in value.items() if k not in keys}
    for key in extra:
        if key not in base:
            raise _unknown(name, key, [*keys, *base])
    arch = resolve(profile, name, _check_arch(extra, base, name))
    _check_sizes(arch, name)
    if name == "vocoder":
        if mel_hop is None:
            raise ValueError("config: the vocoder block needs the mel hop")
        arch["hop"] = mel_hop
        if arch["arch"] not in ("hifigan", "istft"):
            raise ParamsError(f"{FILE}: vocoder.arch: {arch['arch']!r} is not one of hifigan, istft")
        if arch["arch"] == "hifigan":
            rates = arch["hifigan"]["upsample_rates"]
            _require(
                math.prod(rates) == mel_hop,
                f"vocoder.hifigan.upsample_rates: {rates} multiply to {math.prod(rates)}, but must multiply to "
                f"mel.hop ({mel_hop})",
            )
        else:
            _require(
                arch["istft"]["n_fft"] >= mel_hop,
                f"vocoder.istft.n_fft: {arch['istft']['n_fft']} must be at least mel.hop ({mel_hop})",
            )
    missing = [k for k in keys if k not in training]
    if missing:
        raise ParamsError(f"{FILE}: {name} lacks {', '.join(f'{name}.{k}' for k in missing)}")
    hints = _hints(cls)
    cfg = cls(**{k: coerce(training[k], hints[k], f"{name}.{k}") for k in keys}, arch=arch)
    cfg.check(name)
    return cfg


# --- the whole file -------------------------------------------------------------------------------


def _check_mel(mel: MelConfig, where: str = "mel") -> None:
    """The `mel` block (MelConfig is audiosr.audio's, without a check of its own)."""
    _at_least(mel, where, 1, "n_mels", "n_fft", "hop", "win")
    _require(mel.win <= mel.n_fft, f"{where}.win: {mel.win} must be at most {where}.n_fft ({mel.n_fft})")
    _require(
        0 <= mel.fmin < mel.fmax <= NYQUIST,
        f"{where}.fmin, {where}.fmax: {mel.fmin:g}, {mel.fmax:g} must be 0 <= fmin < fmax <= {NYQUIST:g} "
        f"(the Nyquist frequency at {SAMPLE_RATE // 1000} kHz)",
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key repeated in a mapping (PyYAML itself keeps the last one)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.blocks: dict[yaml.Node, str] = {}  # each mapping node's dotted name, from its parent's key

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        where = self.blocks.get(node, "")
        seen = set()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                inside = f"in block {where!r}" if where else "at the top level"
                raise ParamsError(f"{FILE}: line {key_node.start_mark.line + 1}: duplicate key {key!r} {inside}")
            seen.add(key)
            self.blocks[value_node] = f"{where}.{key}" if where else str(key)
        return super().construct_mapping(node, deep)

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list:
        for i, item in enumerate(node.value):
            self.blocks[item] = f"{self.blocks.get(node, '')}[{i}]"
        return super().construct_sequence(node, deep)


def parse(text: str) -> Any:
    """params.yaml's text as data; a syntax error or a repeated key is a ParamsError naming the line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}: " if mark else ""
        raise ParamsError(f"{FILE}: {at}could not parse YAML: {exc.problem or exc.context}") from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a control character)
        line = text.count("\n", 0, exc.position) + 1
        raise ParamsError(f"{FILE}: line {line}: could not parse YAML: {exc.reason} (#x{exc.character:04x})") from exc


def stage_main(main: Callable[[], Any], *errors: type[Exception]) -> None:
    """A stage script's entry point: `if __name__ == "__main__": stage_main(main)`.

    A ParamsError (and any of `errors`, the stage's own expected failures) ends the stage with one line on
    stderr, `<stage>: <message>`, and exit status 1; any other exception keeps its traceback."""
    try:
        main()
    except (ParamsError, *errors) as exc:
        sys.exit(f"{Path(main.__code__.co_filename).stem}: {exc}")


@dataclass(frozen=True)
class Params:
    """params.yaml, every block typed."""

    profile: Literal[tuple(PROFILES)]  # type: ignore[valid-type]
    data: DataConfig
    split: SplitConfig
    audio: AudioConfig
    mel: MelConfig
    filter: FilterConfig
    noise: NoiseConfig
    seed: int
    vae: VAEConfig
    vocoder: VocoderConfig
    ldm: LDMConfig
    distill: DistillConfig
    realset: RealsetConfig
    eval: EvalConfig

    @classmethod
    def from_dict(cls, raw: Any) -> Params:
        if not isinstance(raw, dict):
            raise ParamsError(f"{FILE}: expected a mapping of blocks, got {_got(raw)}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in raw:
            if key not in names:
                raise _unknown("", key, names)
        missing = [k for k in names if k not in raw]
        if missing:
            raise ParamsError(f"{FILE}: lacks the block(s) {', '.join(missing)}")
        hints = _hints(cls)
        profile = coerce(raw["profile"], hints["profile"], "profile")
        mel = block(MelConfig, raw["mel"], "mel", MEL_KEYS)
        _check_mel(mel)
        out: dict[str, Any] = {"profile": profile, "mel": mel}
        for name in names:
            if name in MODEL_BLOCKS:
                out[name] = model_block(name, raw[name], profile, mel.hop)
            elif name not in out:
                out[name] = coerce(raw[name], hints[name], name)
        params = cls(**out)
        _at_least(params, "", 0, "seed")
        return params

    @classmethod
    def load(cls, path: str | Path = "params.yaml") -> Params:
        path = Path(path)
        if not path.exists():
            raise ParamsError(f"{path}: not found; run stages from the repository root")
        return cls.from_dict(parse(path.read_text()) or {})

    def to_dict(self) -> dict:
        """Every param as used: the model blocks with their resolved `arch` (what MLflow logs)."""
        out = to_dict(self)
        out["mel"] = {k: out["mel"][k] for k in MEL_KEYS}
        return out


def mel_dict(mel: MelConfig) -> dict:
    """The `mel` block's keys of a MelConfig (for logging)."""
    return {k: getattr(mel, k) for k in MEL_KEYS}
