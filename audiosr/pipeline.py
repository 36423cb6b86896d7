"""A trained model as one object: load it, upsample audio of any length to 48 kHz.

A pipeline folder (``models/pipeline/``, made by the `package` stage) holds ``vae.safetensors``,
``ldm.safetensors`` (EMA weights), ``vocoder.safetensors`` and one ``config.json`` with each part's
config, the profile, the mel settings, the latent scale and a version. The same folder is logged to
MLflow as the artifact ``pipeline`` of the package run, so a model is a path, ``runs:/<run id>/pipeline``
or ``models:/<name>/<version>`` (`resolve_model`). The evaluation stage and the `audiosr upsample`
command both run the code below: one code path.

Upsampling streams: the audio is resampled to 48 kHz block by block and cut into windows of the
model's segment length that overlap by `overlap` seconds. Each window is scaled to the training peak
(0.5), restored (mel -> VAE latent -> diffusion sampling with classifier-free guidance -> VAE decoder
-> vocoder) in batches, and scaled back, so the output keeps the input's loudness. Neighbouring windows
are joined by an equal-power crossfade normalised by their correlation in the overlap (above the
cutoff), which keeps the level for uncorrelated and for identical content alike. Finally the input's
own spectrum is kept below its cutoff and the generated one above it (low-frequency replacement), and
STFT frames where the input is silent get no generated band, so silence stays silence. Every step
holds a bounded number of samples, so memory does not grow with the input's length; a file is read
twice (once to measure its length, peaks and cutoff, once to restore it) and written as it is made.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from audiosr.audio import SAMPLE_RATE, AudioError, MelConfig, log_mel
from audiosr.data.store import atomic_dir, write_json
from audiosr.metrics import CUTOFF_ENERGY
from audiosr.models.diffusion import SAMPLERS, Schedule, guided
from audiosr.models.load import load_model, load_unet, load_vae, load_vocoder
from audiosr.tracking import repo_root, tracking_uri

VERSION = 1
PARTS = ("vae", "ldm", "vocoder")
ARTIFACT_PATH = "pipeline"  # the run artifact holding the folder: runs:/<run id>/pipeline
URI_SCHEMES = ("runs:/", "models:/")
TRAINING_PEAK = 0.5
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 2.0
OUTPUT_RATES = (48_000, 44_100)
PRECISIONS = ("fp32", "bf16", "auto")
# -80 dBFS: a window whose peak is below it is not run, an STFT frame whose RMS is below it gets no generated band
SILENCE = 1e-4
FULL_BAND_HZ = 16_000.0  # the top of the training cutoffs: a 48 kHz input whose cutoff is above it needs no model
BLOCK = 1 << 17  # samples per streamed block (2.7 s at 48 kHz); a multiple of the replacement STFT's hop
LFR_FFT = 2048  # low-frequency replacement STFT: Hann 2048, hop 512 (AudioSR's post-processing)
CUTOFF_FFT = 2048  # cutoff detection as metrics.detect_cutoff: Hann 2048, hop 480, CUTOFF_ENERGY of the magnitude
PROGRESS = Callable[[int, int], None]


class ModelError(ValueError):
    """A model folder that cannot be used; the message names the folder and what is wrong."""


# --------------------------------------------------------------------------------------------------
# The folder: made by the package stage, logged to MLflow, found from a path or URI, described


def package(models: Path, out: Path, extra: dict | None = None) -> None:
    """models/{vae,ldm,vocoder} -> one pipeline folder `out` (written atomically)."""
    parts = {name: load_model(models / name) for name in PARTS}
    n_mels = {name: cfg["n_mels"] for name, (_, cfg) in parts.items()}
    if len(set(n_mels.values())) != 1:
        raise ModelError(f"{models}: the parts were trained with different n_mels {n_mels}; re-run training")
    profiles = {name: cfg.get("profile") for name, (_, cfg) in parts.items()}
    if len(set(profiles.values())) != 1:
        raise ModelError(f"{models}: the parts come from different profiles {profiles}; re-run training")
    config = {"version": VERSION, "profile": profiles["vae"], "n_mels": n_mels["vae"], "mel": parts["vae"][1]["mel"],
              "latent_scale": parts["vae"][1]["scale"], **{name: cfg for name, (_, cfg) in parts.items()},
              **(extra or {})}
    with atomic_dir(out) as tmp:
        for name, (state, _) in parts.items():
            save_file(state, str(tmp / f"{name}.safetensors"))
        write_json(tmp / "config.json", config)


def log_to_mlflow(path: Path, mlflow, register: str | None = None) -> str:
    """Log a pipeline folder as the active run's artifact "pipeline"; returns its URI, runs:/<run id>/pipeline.

    `register` also makes it the next version of that registered model (created if new), loadable as
    models:/<register>/<version>.
    """
    mlflow.log_artifacts(str(path), ARTIFACT_PATH)
    run_id = mlflow.active_run().info.run_id
    if register:
        client = mlflow.MlflowClient()
        if not client.search_registered_models(filter_string=f"name = '{register}'"):
            client.create_registered_model(register)
        client.create_model_version(register, mlflow.get_artifact_uri(ARTIFACT_PATH), run_id=run_id)
    return f"runs:/{run_id}/{ARTIFACT_PATH}"


def default_model() -> Path:
    return repo_root() / "models" / "pipeline"


@contextlib.contextmanager
def resolve_model(spec: str | None) -> Iterator[Path]:
    """A model argument -> a local pipeline folder, for the duration of the block.

    None: the repository's models/pipeline. ``runs:/<run id>/pipeline`` or ``models:/<name>/<version>``:
    downloaded from the tracking store (`audiosr.tracking.tracking_uri`) into a temporary folder,
    removed afterwards. Anything else is a path.
    """
    if spec is None:
        path = default_model()
        if not path.is_dir():
            raise ModelError(f"no model: {path} does not exist; train one with `make run` (dvc repro) or pass "
                             "--model PATH, runs:/<run id>/pipeline or models:/<name>/<version>")
        yield path
    elif spec.startswith(URI_SCHEMES):
        import mlflow

        uri = tracking_uri()
        with tempfile.TemporaryDirectory(prefix="audiosr-model-") as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(artifact_uri=spec, dst_path=tmp, tracking_uri=uri,
                                                            registry_uri=uri)
            except Exception as exc:  # MlflowException, OSError, ...: one line, whatever the store says
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelError(f"{spec}: cannot be fetched from the tracking store {uri} ({reason})") from exc
            yield Path(local)
    else:
        yield Path(spec)


def _read_config(path: Path) -> dict:
    """config.json of a complete pipeline folder; one clear error for a missing folder or part."""
    if not path.is_dir():
        raise ModelError(f"{path}: no such model folder; train one with `make run` (dvc repro) or pass --model")
    missing = [n for n in ("config.json", *(f"{p}.safetensors" for p in PARTS)) if not (path / n).exists()]
    if missing:
        raise ModelError(f"{path}: incomplete model folder, missing {', '.join(missing)}; run `dvc repro package`")
    config = json.loads((path / "config.json").read_text())
    if config.get("version") != VERSION:
        raise ModelError(f"{path}: model format version {config.get('version')}, this audiosr reads {VERSION}")
    return config


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
    config = _read_config(Path(path))
    counts = {}
    for part in PARTS:
        with safe_open(str(Path(path) / f"{part}.safetensors"), "pt") as f:
            counts[part] = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    run = _run_of(spec) if spec else None
    return {"config": config, "params": counts, "run_metrics": run[0] if run else {},
            "run_params": run[1] if run else {}}


# --------------------------------------------------------------------------------------------------
# Results


@dataclass
class Result:
    wave: np.ndarray  # (channels, samples) float32 at sample_rate
    sample_rate: int
    cutoff_hz: list[float]  # detected (or given) per channel


@dataclass
class FileResult:
    input: Path
    output: Path
    seconds: float  # the input's duration
    channels: int
    sample_rate: int  # the input's
    cutoff_hz: list[float]  # per channel, at 48 kHz
    elapsed_s: float
    copied: bool  # already full band at 48 kHz: written unchanged, no model run

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio."""
        return self.elapsed_s / self.seconds


# --------------------------------------------------------------------------------------------------
# The model


def bf16_native(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 matrix work natively (a GPU that supports it; a CPU with AMX or
    AVX-512 BF16), where autocast to it is about twice as fast."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return device.type == "cpu" and any(probe() for probe in probes if probe is not None)


class Pipeline:
    """The three models and what is needed to run them. `bf16` runs the VAE and the U-Net under
    bfloat16 autocast (the sampler's arithmetic and the vocoder stay in float32)."""

    def __init__(self, config: dict, vae, unet, vocoder, device: torch.device, bf16: bool = False):
        self.config, self.vae, self.unet, self.vocoder, self.device = config, vae, unet, vocoder, device
        self.bf16 = bf16
        self.mel = MelConfig(**config["mel"])
        self.scale = float(config["latent_scale"])
        self.schedule = Schedule()
        self.segment_frames = int(config.get("segment_frames", 512))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32") -> Pipeline:
        """Load a pipeline folder; one clear error for a missing folder or part. `precision`: fp32, bf16,
        or auto (bf16 where the device runs it natively, see bf16_native)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
        path = Path(path)
        config = _read_config(path)
        device = torch.device(device)
        try:
            vae = load_vae(load_file(str(path / "vae.safetensors")), config["vae"], device)
            unet = load_unet(load_file(str(path / "ldm.safetensors")), config["ldm"], device)
            vocoder = load_vocoder(load_file(str(path / "vocoder.safetensors")), config["vocoder"], device)
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"{path}: the weights do not match the config ({exc})") from exc
        if hasattr(vocoder, "remove_weight_norm"):
            vocoder.remove_weight_norm()
        bf16 = precision == "bf16" or (precision == "auto" and bf16_native(device))
        return cls(config, vae, unet, vocoder, device, bf16)

    @torch.no_grad()
    def restore_windows(self, windows: torch.Tensor, steps: int, guidance: float, sampler: str,
                        generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
        """windows: (B, segment samples) at 48 kHz, peak ~0.5 -> restored (B, segment samples).

        `generator` draws the initial noise of the whole batch, or one generator per window (then a
        window's result does not depend on the batch it runs in).
        """
        mel = log_mel(windows.to(self.device), self.mel)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            cond = self.vae.encode(mel)[0].float() * self.scale
            if isinstance(generator, torch.Generator):
                noise = torch.randn(cond.shape, generator=generator)
            else:
                noise = torch.stack([torch.randn(cond.shape[1:], generator=g) for g in generator])
            fn = guided(lambda x, t: self.unet(x, t).float(), cond, torch.zeros_like(cond[:1]), guidance)
            z = SAMPLERS[sampler](fn, noise.to(self.device), self.schedule.timesteps(steps), self.schedule)
            mel = self.vae.decode(z / self.scale).float()
        return self.vocoder(mel).float().cpu()

    def upsample(self, wave: np.ndarray, sr: int, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                 seed: int = 0, cutoff_hz: float | None = None, sampler: str = "dpmpp_2m", batch: int = 4,
                 overlap: float | None = None, progress: PROGRESS | None = None,
                 output_rate: int = SAMPLE_RATE) -> Result:
        """wave: (samples,) or (channels, samples) at sr -> Result at output_rate, same channels and duration.

        cutoff_hz None detects each channel's bandwidth (as metrics.detect_cutoff) for the low-frequency
        replacement; a number uses it for every channel; 0 turns the replacement off. Windows overlap by
        `overlap` seconds, by default a tenth of the segment (0.51 s of 5.12 s). Each window's noise is
        seeded by (seed, position, channel), so the batch size does not change the result.
        """
        x = np.atleast_2d(np.asarray(wave, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"upsample: expected a non-empty (samples,) or (channels, samples) wave, got {x.shape}")

        def blocks() -> Iterator[np.ndarray]:
            return (x[:, i : i + BLOCK] for i in range(0, x.shape[1], BLOCK))

        info = analyse(_resampled(blocks(), sr, SAMPLE_RATE, len(x)), len(x))
        cutoffs = info.cutoff_hz if cutoff_hz is None else [float(cutoff_hz)] * len(x)
        out = self._restore(_resampled(blocks(), sr, SAMPLE_RATE, len(x)), info.samples, cutoffs, steps, guidance,
                            seed, sampler, batch, overlap, progress)
        out = _exact(_resampled(out, SAMPLE_RATE, output_rate, len(x)), round(x.shape[1] * output_rate / sr), len(x))
        return Result(np.concatenate(list(out), axis=1), output_rate, cutoffs)

    def upsample_file(self, src: Path, dst: Path, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                      seed: int = 0, cutoff_hz: float | None = None, output_rate: int = SAMPLE_RATE,
                      copy_full_band: bool = True, sampler: str = "dpmpp_2m", batch: int = 4,
                      overlap: float | None = None, progress: PROGRESS | None = None,
                      spectrogram: Spectrograms | None = None) -> FileResult:
        """Restore the audio file `src` into `dst` (any format soundfile writes, chosen by its suffix),
        streaming: memory does not grow with the file's length. `dst` is written under a temporary name
        and renamed. A file already at 48 kHz (or more) whose every non-silent channel has a cutoff above
        FULL_BAND_HZ is written unchanged (resampled to output_rate) when copy_full_band is set.
        `spectrogram`, if given, collects the input's and the output's spectrograms at 48 kHz."""
        if output_rate not in OUTPUT_RATES:
            raise ValueError(f"output rate: {output_rate} Hz is not one of {', '.join(map(str, OUTPUT_RATES))}")
        start = time.perf_counter()
        sr, channels, frames = _probe(src)
        info = analyse(_resampled(_file_blocks(src), sr, SAMPLE_RATE, channels), channels)
        heard = [c for c, p in zip(info.cutoff_hz, info.peak, strict=True) if p >= SILENCE]
        copied = copy_full_band and sr >= SAMPLE_RATE and bool(heard) and min(heard) >= FULL_BAND_HZ
        x48 = _resampled(_file_blocks(src), sr, SAMPLE_RATE, channels)
        if spectrogram is not None:
            spectrogram.start(info.samples)
            x48 = spectrogram.tee(x48, "input")
        cutoffs = info.cutoff_hz if cutoff_hz is None else [float(cutoff_hz)] * channels
        if copied:
            y48: Iterable[np.ndarray] = x48
        else:
            y48 = self._restore(x48, info.samples, cutoffs, steps, guidance, seed, sampler, batch, overlap, progress)
        if spectrogram is not None:
            y48 = spectrogram.tee(y48, "output")
        out = _exact(_resampled(y48, SAMPLE_RATE, output_rate, channels), round(frames * output_rate / sr), channels)
        write_stream(dst, out, output_rate, channels)
        return FileResult(Path(src), Path(dst), frames / sr, channels, sr, cutoffs, time.perf_counter() - start,
                          copied)

    def _restore(self, x48: Iterable[np.ndarray], n: int, cutoffs: list[float], steps: int, guidance: float,
                 seed: int, sampler: str, batch: int, overlap: float | None,
                 progress: PROGRESS | None) -> Iterator[np.ndarray]:
        """Blocks (C, k) of n samples at 48 kHz -> restored blocks (C, k') of n samples in all."""
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")
        if batch < 1:
            raise ValueError(f"batch: must be at least 1, got {batch}")
        channels = len(cutoffs)
        seg = self.segment_frames * self.mel.hop
        ov = (round(self.segment_frames / 10) if overlap is None else round(overlap * SAMPLE_RATE / self.mel.hop))
        ov *= self.mel.hop
        if not 0 < ov <= seg // 2:
            raise ValueError(f"overlap: must lie in (0, {seg / 2 / SAMPLE_RATE:g}] s, got {overlap}")
        hop = seg - ov
        count = 1 + max(0, math.ceil((n - seg) / hop))
        joins = _Crossfade(ov, [_bin(c, ov) for c in cutoffs])
        merger = _BandMerger([_bin(c, LFR_FFT) for c in cutoffs], n)
        source = _Cursor(x48, channels)
        per_batch = max(1, batch // channels)
        for p0 in range(0, count, per_batch):
            positions = range(p0, min(count, p0 + per_batch))
            source.fill(positions[-1] * hop + seg)
            restored = self._windows(source, positions, hop, seg, steps, guidance, seed, sampler, batch)
            for p in positions:
                piece = joins.add(restored[p], first=p == 0, last=p == count - 1)
                a, b = p * hop, min(n, p * hop + piece.shape[1])
                yield from merger.push(source.get(a, b), piece[:, : b - a])
                source.drop(b)
            if progress:
                progress(positions[-1] + 1, count)
        yield merger.finish()

    def _windows(self, source: _Cursor, positions: range, hop: int, seg: int, steps: int, guidance: float,
                 seed: int, sampler: str, batch: int) -> dict[int, np.ndarray]:
        """Restore every channel's window at each position: {position: (C, seg)} at the input's level.
        Each window is scaled to the training peak and back; a silent window is not run (zeros)."""
        out = {p: np.zeros((source.channels, seg), np.float32) for p in positions}
        todo = []
        for p in positions:
            window = source.get(p * hop, p * hop + seg)
            for c, w in enumerate(window):
                peak = float(np.abs(w).max())
                if peak >= SILENCE:
                    todo.append((p, c, TRAINING_PEAK / peak, w))
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            windows = torch.from_numpy(np.stack([w * g for _, _, g, w in chunk]))
            gens = [torch.Generator().manual_seed(_window_seed(seed, p, c)) for p, c, _, _ in chunk]
            restored = self.restore_windows(windows, steps, guidance, sampler, gens).numpy()
            for (p, c, g, _), r in zip(chunk, restored, strict=True):
                out[p][c] = r / g
        return out


def _window_seed(seed: int, position: int, channel: int) -> int:
    """The noise seed of one window: results do not depend on the batch size or the other channels."""
    return int(np.random.SeedSequence([seed, position, channel]).generate_state(1, np.uint64)[0] >> 1)


def _bin(cutoff_hz: float, n_fft: int) -> int:
    """The rfft bin of an n_fft-point transform at 48 kHz nearest the cutoff: the first one taken from above."""
    return int(round(cutoff_hz / (SAMPLE_RATE / n_fft)))


# --------------------------------------------------------------------------------------------------
# Joining windows and the low-frequency replacement


class _Crossfade:
    """Joins consecutive restored windows (C, seg) that overlap by `ov` samples into one stream.

    Equal-power fades (cos, sin) normalised by the correlation r of the two windows in the overlap:
    a = cos / sqrt(1 + 2 r cos sin), b = sin / sqrt(...), so E[(a x + b y)²] keeps the level for
    uncorrelated (r = 0: plain equal power) and identical (r = 1: a + b = 1) content. r is measured on
    the band the output keeps (bins from `bins[c]` up; 0: all), clipped to [0, 1].
    """

    def __init__(self, ov: int, bins: list[int]):
        self.ov, self.bins = ov, bins
        theta = 0.5 * np.pi * (np.arange(ov) + 0.5) / ov
        self.fade_out, self.fade_in = np.cos(theta), np.sin(theta)
        self.tail: np.ndarray | None = None

    def correlation(self, x: np.ndarray, y: np.ndarray, lo: int) -> float:
        """x, y: (ov,) -> correlation of their parts above rfft bin `lo` (Parseval on one rfft each)."""
        fx, fy = np.fft.rfft(x.astype(np.float64))[lo:], np.fft.rfft(y.astype(np.float64))[lo:]
        den = math.sqrt(float(np.sum(np.abs(fx) ** 2) * np.sum(np.abs(fy) ** 2)))
        return 0.0 if den == 0 else float(np.clip(np.real(np.sum(fx * np.conj(fy))) / den, 0.0, 1.0))

    def add(self, window: np.ndarray, first: bool, last: bool) -> np.ndarray:
        """The next window (C, seg) -> the samples it completes: from its start (the overlap with the
        previous window, joined) up to the start of its own tail (all of it when `last`)."""
        window = window.astype(np.float64)
        head = window[:, : self.ov].copy()
        if not first:
            for c in range(len(window)):
                r = self.correlation(self.tail[c], head[c], self.bins[c])
                norm = np.sqrt(1.0 + 2.0 * r * self.fade_out * self.fade_in)
                head[c] = (self.tail[c] * self.fade_out + head[c] * self.fade_in) / norm
        body = window[:, self.ov :] if last else window[:, self.ov : -self.ov]
        self.tail = None if last else window[:, -self.ov :]
        return np.concatenate([head, body], axis=1).astype(np.float32)


def merge_bands(x: np.ndarray, y: np.ndarray, bins: Sequence[int], silence: float = 0.0,
                n_fft: int = LFR_FFT) -> np.ndarray:
    """x (input), y (generated): (C, T) at 48 kHz -> (C, T): x's STFT below bin bins[c], y's from it up.

    STFT: Hann n_fft, hop n_fft // 4, centred. With `silence` > 0, frames where x's windowed RMS is
    below it take nothing from y (the overlap-add of the inverse STFT smooths the gate's edges).
    """
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    window = torch.hann_window(n_fft, dtype=xt.dtype)
    pad_mode = "reflect" if x.shape[-1] > n_fft // 2 else "constant"  # reflect needs more than the pad

    def stft(v: torch.Tensor) -> torch.Tensor:
        return torch.stft(v, n_fft, n_fft // 4, window=window, return_complex=True, pad_mode=pad_mode)

    sx, sy = stft(xt), stft(yt)  # (C, n_fft // 2 + 1, frames)
    keep = torch.arange(sx.shape[1])[None, :, None] < torch.tensor(list(bins))[:, None, None]
    if silence > 0:
        # Parseval for an rfft: the frame's windowed energy is (|X_0|² + 2·Σ|X_k|² + |X_N/2|²) / N
        weight = torch.full((sx.shape[1], 1), 2.0, dtype=xt.dtype)
        weight[0] = weight[-1] = 1.0
        energy = (sx.abs() ** 2 * weight).sum(1) / n_fft
        rms = torch.sqrt(energy / window.pow(2).sum())
        sy = sy * (rms >= silence)[:, None, :]
    merged = torch.where(keep, sx, sy)
    return torch.istft(merged, n_fft, n_fft // 4, window=window, length=x.shape[-1]).numpy()


def replace_low_band(original: np.ndarray, generated: np.ndarray, cutoff_hz: float, n_fft: int = LFR_FFT) -> np.ndarray:
    """Keep `original`'s STFT below cutoff_hz and `generated`'s above it (AudioSR's post-processing).
    Both (samples,) at 48 kHz -> (samples,)."""
    return merge_bands(original[None], generated[None], [_bin(cutoff_hz, n_fft)], n_fft=n_fft)[0]


class _BandMerger:
    """merge_bands over a stream: (input, generated) pushed in pieces, merged blocks out, the same
    samples as merging the whole signals at once (each block is computed with LFR_FFT samples of
    context on either side, starting on the STFT's hop grid, so it sees exactly the frames the whole
    signal's STFT has there). The gate is SILENCE."""

    def __init__(self, bins: list[int], n: int):
        self.bins, self.n, self.margin = bins, n, LFR_FFT
        self.x = self.y = np.zeros((len(bins), 0), np.float32)
        self.start = 0  # the buffers' first sample
        self.done = 0  # samples emitted

    def push(self, x: np.ndarray, y: np.ndarray) -> Iterator[np.ndarray]:
        self.x, self.y = np.concatenate([self.x, x], 1), np.concatenate([self.y, y], 1)
        while self.done + BLOCK + self.margin <= self.start + self.x.shape[1]:
            yield self._emit(self.done + BLOCK)

    def finish(self) -> np.ndarray:
        return self._emit(self.n)

    def _emit(self, end: int) -> np.ndarray:
        lo, hi = max(0, self.done - self.margin), min(self.n, end + self.margin)
        part = slice(lo - self.start, hi - self.start)
        out = merge_bands(self.x[:, part], self.y[:, part], self.bins, SILENCE)[:, self.done - lo : end - lo]
        keep = max(0, end - self.margin) - self.start
        self.x, self.y, self.start, self.done = self.x[:, keep:], self.y[:, keep:], self.start + keep, end
        return out


# --------------------------------------------------------------------------------------------------
# Streams: reading, resampling, measuring, writing


class _Cursor:
    """Random access into a forward-only stream of (C, k) blocks, holding only what is still needed."""

    def __init__(self, blocks: Iterable[np.ndarray], channels: int):
        self.blocks, self.channels = iter(blocks), channels
        self.buf = np.zeros((channels, 0), np.float32)
        self.start = 0

    def fill(self, end: int) -> None:
        """Read until the buffer reaches sample `end` or the stream ends."""
        parts = [self.buf]
        have = self.start + self.buf.shape[1]
        while have < end:
            block = next(self.blocks, None)
            if block is None:
                break
            parts.append(block)
            have += block.shape[1]
        self.buf = np.concatenate(parts, 1)

    def get(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) (C, b - a), zeros past the end of the stream."""
        out = np.zeros((self.channels, b - a), np.float32)
        part = self.buf[:, a - self.start : b - self.start]
        out[:, : part.shape[1]] = part
        return out

    def drop(self, a: int) -> None:
        """Forget the samples before `a`."""
        self.buf = self.buf[:, a - self.start :]
        self.start = a


def _probe(path: Path) -> tuple[int, int, int]:
    """(sample rate, channels, frames) of an audio file; AudioError naming it when unreadable or empty."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for corrupt files
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from exc
    if info.frames <= 0:
        raise AudioError(f"{path}: has no samples (zero-length audio)")
    return int(info.samplerate), int(info.channels), int(info.frames)


def _file_blocks(path: Path) -> Iterator[np.ndarray]:
    """(channels, <= BLOCK) float32 blocks of an audio file; AudioError naming it when a block is
    unreadable or holds NaN or infinite samples."""
    try:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(BLOCK, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: contains NaN or infinite samples; repair or remove the file")
                yield np.ascontiguousarray(block.T)
    except (RuntimeError, sf.SoundFileError) as exc:
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from exc


def _resampled(blocks: Iterable[np.ndarray], sr_in: int, sr_out: int, channels: int) -> Iterator[np.ndarray]:
    """(C, k) blocks at sr_in -> (C, k') blocks at sr_out, soxr HQ as one stream (the same samples as
    resampling the whole signal at once)."""
    if sr_in == sr_out:
        yield from blocks
        return
    stream = soxr.ResampleStream(sr_in, sr_out, channels, "float32", "HQ")
    for block in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=False)
        if len(out):
            yield out.T
    yield stream.resample_chunk(np.zeros((0, channels), np.float32), last=True).T


def _exact(blocks: Iterable[np.ndarray], n: int, channels: int) -> Iterator[np.ndarray]:
    """Cut or zero-pad a stream to exactly n samples (a resampler may give one more or one less)."""
    done = 0
    for block in blocks:
        block = block[:, : n - done]
        done += block.shape[1]
        yield block
    if done < n:
        yield np.zeros((channels, n - done), np.float32)


class _Frames:
    """A stream of (C, k) blocks -> magnitude spectra of its Hann-windowed frames (C, frames, n_fft // 2 + 1),
    frames every `hop` samples that lie wholly inside the signal; a signal shorter than one frame gives
    one zero-padded frame."""

    def __init__(self, n_fft: int, hop: int):
        self.n_fft, self.hop = n_fft, hop
        self.window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic, as scipy / librosa
        self.buf: np.ndarray | None = None
        self.frames = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        self.buf = block if self.buf is None else np.concatenate([self.buf, block], 1)
        m = max(0, (self.buf.shape[1] - self.n_fft) // self.hop + 1)
        if m == 0:
            return np.zeros((len(self.buf), 0, self.n_fft // 2 + 1))
        frames = np.lib.stride_tricks.sliding_window_view(self.buf, self.n_fft, axis=1)[:, : m * self.hop : self.hop]
        mag = np.abs(np.fft.rfft(frames * self.window, axis=-1))
        self.buf = self.buf[:, m * self.hop :]
        self.frames += m
        return mag

    def finish(self) -> np.ndarray:
        if self.frames or self.buf is None:
            return np.zeros((0 if self.buf is None else len(self.buf), 0, self.n_fft // 2 + 1))
        pad = np.zeros((len(self.buf), self.n_fft), np.float32)
        pad[:, : self.buf.shape[1]] = self.buf[:, : self.n_fft]
        return np.abs(np.fft.rfft(pad * self.window, axis=-1))[:, None]


@dataclass
class Analysis:
    samples: int  # at 48 kHz
    peak: list[float]  # per channel
    cutoff_hz: list[float]  # per channel: the frequency under which CUTOFF_ENERGY of the magnitude spectrum lies


def analyse(blocks48: Iterable[np.ndarray], channels: int) -> Analysis:
    """One pass over a stream of (C, k) blocks at 48 kHz: its length, peaks and cutoffs.

    The cutoff is metrics.detect_cutoff's (AudioSR's: the bin at which the cumulative STFT magnitude,
    Hann 2048, hop 480, summed over frames, reaches CUTOFF_ENERGY of its total) on the frames inside the
    signal, so the same up to the edge frames; digital silence gives 0.
    """
    frames = _Frames(CUTOFF_FFT, SAMPLE_RATE // 100)
    spectrum = np.zeros((channels, CUTOFF_FFT // 2 + 1))
    peak = np.zeros(channels)
    n = 0
    for block in blocks48:
        n += block.shape[1]
        if block.shape[1]:
            peak = np.maximum(peak, np.abs(block).max(axis=1))
        spectrum += frames.push(block).sum(axis=1)
    spectrum += frames.finish().sum(axis=1)
    cutoffs = []
    for s in spectrum:
        cum = np.cumsum(s)
        k = int(np.searchsorted(cum, CUTOFF_ENERGY * cum[-1], side="left")) if cum[-1] > 0 else 0
        cutoffs.append(float(min(k, s.size - 1) * SAMPLE_RATE / CUTOFF_FFT))
    return Analysis(n, [float(p) for p in peak], cutoffs)


class Spectrograms:
    """Input and output spectrograms of a streamed file, pooled to at most `columns` time columns so a
    long file costs no more than a short one: name -> (bins, columns) mean power of the channels,
    Hann 1024, hop 480, at 48 kHz."""

    n_fft, hop = 1024, SAMPLE_RATE // 100

    def __init__(self, columns: int = 800):
        self.columns = columns
        self.images: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def start(self, samples: int) -> None:
        self.per_column = max(1, math.ceil(samples / self.hop / self.columns))
        self.seconds = samples / SAMPLE_RATE

    def tee(self, blocks: Iterable[np.ndarray], name: str) -> Iterator[np.ndarray]:
        """Pass the blocks through, adding their frames to image `name`."""
        frames, sums = _Frames(self.n_fft, self.hop), []
        for block in blocks:
            sums.append((frames.push(block) ** 2).mean(axis=0))
            yield block
        sums.append((frames.finish() ** 2).mean(axis=0))
        power = np.concatenate(sums)
        cols = math.ceil(len(power) / self.per_column)
        padded = np.zeros((cols * self.per_column, power.shape[1]))
        padded[: len(power)] = power
        counts = np.clip(len(power) - np.arange(cols) * self.per_column, 1, self.per_column)
        self.images[name] = (padded.reshape(cols, self.per_column, -1).sum(1) / counts[:, None]).T


def write_stream(path: Path, blocks: Iterable[np.ndarray], sr: int, channels: int) -> None:
    """Write (C, k) float blocks to `path` as they come, in the format its suffix names (24-bit where the
    format has it), under a temporary name renamed at the end: an interrupted write never leaves a file
    that looks complete."""
    path = Path(path)
    fmt = path.suffix[1:].upper()
    if fmt not in sf.available_formats():
        raise ValueError(f"{path}: unknown audio format {path.suffix!r}; use .wav or .flac")
    subtype = "PCM_24" if sf.check_format(fmt, "PCM_24") else None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with sf.SoundFile(str(tmp), "w", sr, channels, subtype, format=fmt) as f:
            for block in blocks:
                f.write(np.clip(block.T, -1.0, 1.0))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
