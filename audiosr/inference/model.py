"""The model folder, read: one pipeline, found from a path or an MLflow URI, read, described. Writing one
is audiosr.packaging's (the package stage, the AudioSR importer); logging one to MLflow, audiosr.registry's.

A pipeline folder (``models/pipeline/``) holds ``vae.safetensors``, ``ldm.safetensors`` (EMA weights),
``vocoder.safetensors``, optionally ``student.safetensors`` (the one-step student of the LDM, made by
the `distill` stage) and one ``config.json`` with each part's config, the profile, the mel settings,
the latent scale and a format version. The same folder is logged to MLflow as the artifact ``pipeline``
of the package run, so a model is a path, ``runs:/<run id>/pipeline`` or ``models:/<name>/<version>``
(`resolve_model`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from audiosr.audio import SAMPLE_RATE, MelConfig
from audiosr.models.load import load_unet, load_vae, load_vocoder
from audiosr.tracking import repo_root, tracking_uri

VERSION = 1
# what a version-1 folder written before it recorded these meant: 512-frame windows (5.12 s), segments
# peak-normalised to 0.5, training cutoffs up to 16 kHz
FORMAT_1 = {"segment_frames": 512, "peak": 0.5, "full_band_hz": 16_000.0}
PARTS = ("vae", "ldm", "vocoder")
STUDENT = "student"  # the optional part: its folder under models/ is the distill stage's output
STUDENT_DIR = "distill"
ARTIFACT_PATH = "pipeline"  # the run artifact holding the folder: runs:/<run id>/pipeline
URI_SCHEMES = ("runs:/", "models:/")


REBUILD = "re-run `dvc repro package` (or `make run`)"


class ModelError(ValueError):
    """A model that cannot be used: one line naming the folder or file, what is wrong and what to do.

    Where the advice is to choose another model, ``{other}`` in the message stands for how; `str()` says
    it as `audiosr upsample` takes it (--model), `advice(other)` in another command's words."""

    def __init__(self, message: str):
        self.template = message
        super().__init__(self.advice("pass --model"))

    def advice(self, other: str) -> str:
        return self.template.replace("{other}", other)


def _reason(exc: BaseException) -> str:
    """An exception as a short phrase for one line: its first line, without the file name it may repeat."""
    text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).strip()
    return text.splitlines()[0].rstrip(":") if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# The folder: made by the package stage, logged to MLflow, found from a path or URI, described


MODEL_ENV = "AUDIOSR_MODEL"  # the default --model: a folder or a runs:/ or models:/ URI


def default_models() -> list[Path]:
    """Where the default model may be, in order: models/pipeline of the repository holding the current
    folder, and of the checkout holding this package (an editable install, used from anywhere)."""
    checkout = Path(__file__).resolve().parents[2]
    roots = [repo_root(), *([checkout] if (checkout / "dvc.yaml").exists() else [])]
    return list(dict.fromkeys(root / "models" / "pipeline" for root in roots))


@contextlib.contextmanager
def resolve_model(spec: str | None) -> Iterator[Path]:
    """A model argument -> a local pipeline folder, for the duration of the block.

    None: $AUDIOSR_MODEL, else the first of `default_models` that exists. ``runs:/<run id>/pipeline`` or
    ``models:/<name>/<version>``: downloaded from the tracking store (`audiosr.tracking.tracking_uri`)
    into a temporary folder, removed afterwards. Anything else is a path.
    """
    if spec is None and os.environ.get(MODEL_ENV):
        spec = os.environ[MODEL_ENV]
    if spec is None:
        candidates = default_models()
        path = next((c for c in candidates if c.is_dir()), None)
        if path is None:
            raise ModelError(
                f"no model: neither {' nor '.join(map(str, candidates))} exists; train one with `make run` "
                f"(dvc repro), set ${MODEL_ENV}, or {{other}} PATH, runs:/<run id>/pipeline or "
                "models:/<name>/<version>"
            )
        yield path
    elif spec.startswith(URI_SCHEMES):
        import mlflow

        uri = tracking_uri()
        store = Path(uri.removeprefix("sqlite:///"))
        if uri.startswith("sqlite:///") and not store.exists():  # mlflow would create an empty one
            raise ModelError(
                f"{spec}: there is no tracking store {store}; run from the repository that logged it, "
                "or set MLFLOW_TRACKING_URI"
            )
        with tempfile.TemporaryDirectory(prefix="audiosr-model-") as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=spec, dst_path=tmp, tracking_uri=uri, registry_uri=uri
                )
            except Exception as exc:  # MlflowException, OSError, ...: one line, whatever the store says
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelError(
                    f"{spec}: cannot be fetched from the tracking store {uri} ({reason}); check the "
                    "run id or model version, and MLFLOW_TRACKING_URI"
                ) from exc
            yield Path(local)
    else:
        yield Path(spec)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("audiosr")
    except PackageNotFoundError:
        return "unknown"


def read_config(path: Path) -> dict:
    """config.json of a complete pipeline folder; ModelError naming the folder or file for a missing
    folder or part, a config that is not a pipeline's, or another format version."""
    if not path.is_dir():
        raise ModelError(f"{path}: no such model folder; train one with `make run` (dvc repro) or {{other}}")
    missing = [n for n in ("config.json", *(f"{p}.safetensors" for p in PARTS)) if not (path / n).exists()]
    if missing:
        raise ModelError(f"{path}: incomplete model folder, missing {', '.join(missing)}; {REBUILD}, or {{other}}")
    file = path / "config.json"
    try:
        config = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{file}: cannot be read as JSON ({_reason(exc)}); {REBUILD}, or {{other}}") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{file}: not a pipeline config (a JSON {type(config).__name__}); {REBUILD}, or {{other}}")
    if config.get("version") != VERSION:
        raise ModelError(
            f"{path}: model format version {config.get('version')}, this audiosr ({package_version()}) reads "
            f"version {VERSION}; {REBUILD} with this audiosr, install the audiosr that wrote it, "
            "or {other}"
        )
    if STUDENT in config and not (path / f"{STUDENT}.safetensors").exists():
        raise ModelError(f"{path}: incomplete model folder, missing {STUDENT}.safetensors; {REBUILD}, or {{other}}")
    parts = (*PARTS, STUDENT) if STUDENT in config else PARTS
    lacking = [k for k in ("mel", "latent_scale", "n_mels", "profile", *PARTS) if k not in config]
    lacking += [f"{p}.arch" for p in parts if p in config and not isinstance((config[p] or {}).get("arch"), dict)]
    if STUDENT in config and "sampling_steps" not in (config[STUDENT] or {}):
        lacking.append(f"{STUDENT}.sampling_steps")
    if lacking:
        raise ModelError(f"{file}: not a pipeline config (no {', '.join(lacking)}); {REBUILD}, or {{other}}")
    _check_values(config, file, parts)
    return config


def _check_values(config: dict, file: Path, parts: tuple[str, ...]) -> None:
    """The values of a pipeline config that inference reads, and their agreement with each other: one
    ModelError naming the file and the key."""

    def require(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ModelError(f"{file}: {key} {what}; {REBUILD}, or {{other}}")

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    scale = config["latent_scale"]
    ok = isinstance(scale, int | float) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0
    require(ok, "latent_scale", f"is {scale!r}, not a positive number")
    require(whole(config["n_mels"]), "n_mels", f"is {config['n_mels']!r}, not a whole number of at least 1")
    for part in parts:
        require(isinstance(config[part], dict), part, "is not a part's config")
        named = config[part].get("profile", config["profile"])
        require(named == config["profile"], "profile", f"{config['profile']!r} is not the {part}'s ({named!r})")
        mels = config[part].get("n_mels", config["n_mels"])
        require(mels == config["n_mels"], "n_mels", f"{config['n_mels']!r} is not the {part}'s ({mels!r})")
    try:
        mel = MelConfig(**config["mel"])
    except TypeError as exc:
        raise ModelError(f"{file}: mel is not a mel config ({_reason(exc)}); {REBUILD}, or {{other}}") from exc
    require(mel.n_mels == config["n_mels"], "mel.n_mels", f"{mel.n_mels!r} is not n_mels ({config['n_mels']!r})")
    require(mel.sample_rate == SAMPLE_RATE, "mel.sample_rate", f"is {mel.sample_rate!r}, not {SAMPLE_RATE}")
    factor = config["vae"].get("factor", 1)
    require(whole(factor), "vae.factor", f"is {factor!r}, not a whole number of at least 1")
    frames = config.get("segment_frames", FORMAT_1["segment_frames"])
    ok = whole(frames) and frames % factor == 0
    require(ok, "segment_frames", f"is {frames!r}, not a positive multiple of the VAE's factor {factor}")
    for part in ("ldm", STUDENT) if STUDENT in parts else ("ldm",):
        channels = config[part].get("latent_channels")
        require(whole(channels), f"{part}.latent_channels", f"is {channels!r}, not a whole number of at least 1")
    if STUDENT in parts:
        steps = config[STUDENT]["sampling_steps"]
        require(whole(steps), f"{STUDENT}.sampling_steps", f"is {steps!r}, not a whole number of at least 1")


def _tensors(path: Path, part: str) -> dict[str, torch.Tensor]:
    """The tensors of one part; ModelError naming the file when it is damaged (truncated, not safetensors)."""
    file = path / f"{part}.safetensors"
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ModelError(
            f"{file}: cannot be read ({_reason(exc)}): the file is damaged or incomplete; {REBUILD}, or {{other}}"
        ) from exc


def _shapes(path: Path, part: str) -> dict[str, list[int]]:
    """The tensor shapes of one part, from the file's header alone; ModelError as `_tensors`."""
    file = path / f"{part}.safetensors"
    try:
        with safe_open(str(file), "pt") as f:
            return {k: f.get_slice(k).get_shape() for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise ModelError(
            f"{file}: cannot be read ({_reason(exc)}): the file is damaged or incomplete; {REBUILD}, or {{other}}"
        ) from exc


def load_networks(path: Path, device: torch.device) -> tuple[dict, dict[str, torch.nn.Module | None]]:
    """A pipeline folder -> (config, {"vae", "unet", "vocoder", "student": module or None}) on `device`,
    in eval mode, the vocoder's weight norm removed; ModelError for a missing folder or part, or weights
    that do not fit the config."""
    config = read_config(path)
    try:
        nets = {
            "vae": load_vae(_tensors(path, "vae"), config["vae"], device),
            "unet": load_unet(_tensors(path, "ldm"), config["ldm"], device),
            "vocoder": load_vocoder(_tensors(path, "vocoder"), config["vocoder"], device),
            "student": load_unet(_tensors(path, STUDENT), config[STUDENT], device) if STUDENT in config else None,
        }
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(
            f"{path}: the weights do not match the config ({_reason(exc)}); {REBUILD}, or {{other}}"
        ) from exc
    if hasattr(nets["vocoder"], "remove_weight_norm"):
        nets["vocoder"].remove_weight_norm()
    return config, nets


def _run_of(spec: str) -> tuple[dict, dict] | None:
    """(metrics, params) of the MLflow run a runs:/ or models:/ URI points into; None for a path."""
    if not spec.startswith(URI_SCHEMES):
        return None
    from mlflow.store.artifact.utils.models import get_model_name_and_version
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(), tracking_uri())
    if spec.startswith("runs:/"):
        run_id = spec[len("runs:/") :].split("/")[0]
    else:
        run_id = client.get_model_version(*get_model_name_and_version(client, spec)).run_id
    run = client.get_run(run_id)
    return dict(run.data.metrics), dict(run.data.params)


def describe(path: Path, spec: str | None = None) -> dict:
    """What a pipeline folder is: its config, parameter counts per part and, for an MLflow URI, the
    metrics and params of the run that logged it."""
    config = read_config(Path(path))
    parts = (*PARTS, STUDENT) if STUDENT in config else PARTS
    counts = {part: sum(math.prod(shape) for shape in _shapes(Path(path), part).values()) for part in parts}
    run = _run_of(spec) if spec else None
    return {
        "config": config,
        "params": counts,
        "run_metrics": run[0] if run else {},
        "run_params": run[1] if run else {},
    }
