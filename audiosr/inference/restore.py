"""The `Pipeline`: the networks of a pipeline folder, and restoration of audio of any length.

Upsampling streams: the audio is resampled to 48 kHz block by block and cut into windows of the model's
segment length that overlap by `overlap` seconds. Each window is scaled to the training peak (0.5),
restored (mel -> VAE latent -> diffusion sampling, by default the teacher's single unguided step, or the
one-step student where it is loaded -> VAE decoder -> vocoder) in batches, and scaled back, so the output
keeps the input's loudness; quiet frames are lifted before the model and lowered after it (`level_lift`).
The windows are joined and the input's own low band kept (`audiosr.inference.merge`). A file longer than
KEEP_SECONDS is read twice (once to measure its length, peaks and cutoff, once to restore it), a shorter
one restored from the first pass's blocks, kept in memory; the output is written as it is made. The
evaluation stage and the `audiosr upsample` command both run this code: one code path.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from audiosr.audio import SAMPLE_RATE, MelConfig, log_mel
from audiosr.inference import int8
from audiosr.inference.cutoff import Analysis, analyse
from audiosr.inference.merge import LFR_FFT, SILENCE, BandMerger, Crossfade, cutoff_bin
from audiosr.inference.model import FORMAT_1, load_networks
from audiosr.inference.spectrogram import Spectrograms
from audiosr.inference.stream import (
    BLOCK,
    ClipCounter,
    Cursor,
    Kept,
    continuation,
    exact,
    file_blocks,
    probe_file,
    resampled,
    write_stream,
)
from audiosr.models.diffusion import SAMPLERS, STOCHASTIC, Schedule, guided, one_step
from audiosr.models.layers import Upsample
from audiosr.names import PRECISIONS

# The default sampler: the teacher's own single step without guidance, one U-Net pass per window. On the
# small profile it beats 20 DPM-Solver++ steps at guidance 2 and the one-step student on both test sets
# (README: the recipe study, Results).
DEFAULT_STEPS = 1
DEFAULT_GUIDANCE = 1.0
OUTPUT_RATES = (48_000, 44_100)
# Within a window, frames more than LIFT_BELOW_DB under its loudest are lifted to that level (by at most
# MAX_LIFT_DB) before the model and lowered again after it, so the restored band follows the input's level
# frame by frame: the model's output has a floor of its own about 50 dB under a window's peak, which stays
# put on a fade-out or a decay while the input falls away beneath it. The level is each mel hop's RMS,
# held at the maximum over +-LIFT_HOLD hops, so a transient's attack is never lifted.
LIFT_BELOW_DB = 30.0
MAX_LIFT_DB = 60.0
LIFT_HOLD = 5
# a file of at most this many seconds is resampled once: the restore reads the analysis pass's 48 kHz blocks
# (11 MB for a minute of stereo), a longer one is read and resampled again, so memory stays bounded
KEEP_SECONDS = 60
PROGRESS = Callable[[int, int], None]


@dataclass(frozen=True)
class Sampling:
    """How a file's windows are sampled: the teacher's `steps`, `guidance` and `sampler` (None: the model's
    own, `Pipeline.sampling`), the `seed` of each window's noise (with its position and channel), how many
    windows go through the networks at once, and the windows' `overlap` in seconds (None: a tenth of the
    segment)."""

    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None
    seed: int = 0
    batch: int = 4
    overlap: float | None = None


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
    clipped_input: float = 0.0  # the fraction of the input's samples that were clipped (see ClipCounter)
    clipped_output: float = 0.0  # the fraction of the output's samples beyond full scale, clipped in the file
    output_peak: float = 0.0  # the output's largest magnitude before clipping

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio."""
        return self.elapsed_s / self.seconds


def bf16_native(device: torch.device) -> bool:
    """Whether bfloat16 autocast is the faster precision on `device`: a GPU that supports it, or a CPU with
    AMX tiles, where it is about twice as fast. A CPU with AVX-512 BF16 but no AMX runs the networks
    slower in bf16 than in fp32 (measured: 1.1-1.7x per network, docs/performance.md), so it gets fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and amx is not None and bool(amx())


class Pipeline:
    """The models and what is needed to run them. `bf16` runs the VAE, the U-Nets and the vocoder under
    bfloat16 autocast, `int8` restores with 8-bit copies of them (`audiosr.inference.int8`; the sampler's
    arithmetic stays in float32 in both, and `vae` and `vocoder` themselves stay float32). `student`, where it is loaded
    (`load(..., student=True)` on a model that has one), is the LDM distilled to one step: it restores
    when `steps` is at most its steps (the default, `steps=None`), the teacher (`unet`) when more are
    asked for. Without it the teacher samples DEFAULT_STEPS by default."""

    def __init__(
        self, config: dict, vae, unet, vocoder, device: torch.device, bf16: bool = False, student=None, int8=False
    ):
        self.config, self.vae, self.unet, self.vocoder, self.device = config, vae, unet, vocoder, device
        self.bf16, self.student, self.int8 = bf16, student, int8
        self._int8_nets: tuple | None = None
        self.student_steps = int(config["student"]["sampling_steps"]) if student is not None else 0
        self.mel = MelConfig(**config["mel"])
        self.scale = float(config["latent_scale"])
        self.schedule = Schedule.of(config["ldm"])
        self.null = float(config["ldm"].get("null_latent", 0.0)) * self.scale  # the dropped condition
        # how the model samples when a call does not say: its config's (an imported AudioSR: DDIM, 50 steps,
        # guidance 3.5), else the teacher's own single step
        self.sampling = {"steps": DEFAULT_STEPS, "guidance": DEFAULT_GUIDANCE, "sampler": "dpmpp_2m"}
        self.sampling.update(config.get("sampling", {}))
        # what the model was trained on (the model folder says; a folder written before it did: FORMAT_1):
        # its window, the peak its segments were normalised to, the top of its training cutoffs (a 48 kHz
        # input whose cutoff is above it needs no model)
        trained = {**FORMAT_1, **config}
        self.segment_frames = int(trained["segment_frames"])
        self.peak, self.full_band_hz = float(trained["peak"]), float(trained["full_band_hz"])
        self.unit = vae.factor * unet.factor * self.mel.hop  # samples of one latent position through both networks

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32", student: bool = False
    ) -> Pipeline:
        """Load a pipeline folder; one clear error for a missing folder or part. `precision`: fp32, bf16,
        int8 (a CPU only), or auto (bf16 where the device runs it natively, see bf16_native). `student`:
        restore with the model's one-step student, where it has one, instead of the teacher."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
        device = torch.device(device)
        if precision == "int8" and (device.type != "cpu" or not int8.available()):
            raise ValueError("precision: int8 runs on a CPU with oneDNN's quantized kernels only; use fp32 or bf16")
        config, nets = load_networks(Path(path), device)
        bf16 = precision == "bf16" or (precision == "auto" and bf16_native(device))
        return cls(
            config,
            nets["vae"],
            nets["unet"],
            nets["vocoder"],
            device,
            bf16,
            nets["student"] if student else None,
            int8=precision == "int8",
        )

    def teacher_only(self) -> Pipeline:
        """The same networks without the student: every number of steps, also 1, samples with the teacher."""
        teacher = Pipeline(self.config, self.vae, self.unet, self.vocoder, self.device, self.bf16, int8=self.int8)
        if self.int8:
            teacher._int8_nets = self.networks()  # the same 8-bit copies (its student is not used)
        return teacher

    def networks(self) -> tuple:
        """(vae, unet, student, vocoder) as the restore runs them: in their inference form, and 8-bit copies
        of them with `int8` (made once)."""
        inference_form(self.vae, self.unet, self.student)
        nets = (self.vae, self.unet, self.student, self.vocoder)
        if not self.int8:
            return nets
        if self._int8_nets is None:
            self._int8_nets = tuple(int8.int8_form(net) for net in nets)
        return self._int8_nets

    def steps_for(self, steps: int | None) -> int:
        """The sampling steps a request means: None is the student's steps where there is a student,
        else DEFAULT_STEPS; a number is checked."""
        if steps is None:
            return self.student_steps or int(self.sampling["steps"])
        if steps < 1:
            raise ValueError(f"steps: must be at least 1, got {steps}")
        return steps

    def uses_student(self, steps: int | None) -> bool:
        return self.student is not None and self.steps_for(steps) <= self.student_steps

    @torch.no_grad()
    def restore_windows(
        self,
        windows: torch.Tensor,
        steps: int | None,
        guidance: float,
        sampler: str,
        generator: torch.Generator | Sequence[torch.Generator],
    ) -> torch.Tensor:
        """windows: (B, samples) at 48 kHz, peak ~0.5, whole latent positions long -> restored (B, samples).

        `generator` draws the initial noise of the whole batch, or one generator per window (then a
        window's result does not depend on the batch it runs in). With a student and `steps` at most its
        steps, the student samples in one U-Net pass (its guidance was fixed when it was distilled, so
        `guidance` and `sampler` do not apply).
        """
        mel = log_mel(windows.to(self.device), self.mel)
        vae, unet, student, vocoder = self.networks()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            cond = vae.encode(mel)[0].float() * self.scale

            # a window's noise is drawn for a whole segment and cut to its length, so a window that runs
            # shorter (at the signal's end) starts from the same noise as a whole one
            shape = (*cond.shape[1:-1], max(cond.shape[-1], self.segment_frames // vae.factor))

            def draw() -> torch.Tensor:  # the batch's noise: per window from its own generator where given
                if isinstance(generator, torch.Generator):
                    return torch.randn((len(cond), *shape), generator=generator)[..., : cond.shape[-1]]
                return torch.stack([torch.randn(shape, generator=g)[..., : cond.shape[-1]] for g in generator])

            noise = draw()
            if self.uses_student(steps):
                z = one_step(student, noise.to(self.device), cond, self.schedule)
            else:
                null = torch.full_like(cond[:1], self.null)
                fn = guided(lambda x, t: unet(x, t).float(), cond, null, guidance)
                timesteps = self.schedule.timesteps(self.steps_for(steps))
                # a stochastic sampler's fresh noise of every step, drawn like the initial noise
                extra = {"noises": [draw() for _ in timesteps]} if sampler in STOCHASTIC else {}
                z = SAMPLERS[sampler](fn, noise.to(self.device), timesteps, self.schedule, **extra)
            # the vocoder under the same autocast: bf16 is 2x faster for it, its error 40 dB under the signal,
            # less than a tenth of what bf16 in the VAE and the U-Net gives
            return vocoder(vae.decode(z / self.scale).float()).float().cpu()

    def upsample(
        self,
        wave: np.ndarray,
        sr: int,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        cutoff_hz: float | None = None,
        sampler: str | None = None,
        batch: int = 4,
        overlap: float | None = None,
        progress: PROGRESS | None = None,
        output_rate: int = SAMPLE_RATE,
    ) -> Result:
        """wave: (samples,) or (channels, samples) at sr -> Result at output_rate, same channels and duration.

        cutoff_hz None keeps the input's bins where they agree with the generated ones (the adaptive band
        merge, `audiosr.inference.merge`; each channel's detected bandwidth is still reported); a number
        keeps the input below it in every channel; 0 turns the replacement off. Windows overlap by
        `overlap` seconds, by default a tenth of the segment (0.51 s of 5.12 s). Each window's noise is
        seeded by (seed, position, channel), so the batch size does not change the result.
        """
        x = np.atleast_2d(np.asarray(wave, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"upsample: expected a non-empty (samples,) or (channels, samples) wave, got {x.shape}")

        def blocks() -> Iterator[np.ndarray]:
            return (x[:, i : i + BLOCK] for i in range(0, x.shape[1], BLOCK))

        kept = Kept(KEEP_SECONDS * SAMPLE_RATE)
        info = analyse(kept.tee(resampled(blocks(), sr, SAMPLE_RATE, len(x))), len(x))
        x48 = kept.blocks if kept.blocks is not None else resampled(blocks(), sr, SAMPLE_RATE, len(x))
        sampling = Sampling(steps, guidance, sampler, seed, batch, overlap)
        y48, cutoffs = self._restore(x48, info, cutoff_hz, sampling, progress)
        out = at_rate(y48, output_rate, x.shape[1], sr, len(x))
        return Result(np.concatenate(list(out), axis=1), output_rate, cutoffs)

    def upsample_file(
        self,
        src: Path,
        dst: Path,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        cutoff_hz: float | None = None,
        output_rate: int = SAMPLE_RATE,
        copy_full_band: bool = True,
        sampler: str | None = None,
        batch: int = 4,
        overlap: float | None = None,
        progress: PROGRESS | None = None,
        spectrogram: Spectrograms | None = None,
    ) -> FileResult:
        """Restore the audio file `src` into `dst` (any format soundfile writes, chosen by its suffix),
        streaming: memory does not grow with the file's length. `dst` is written under a temporary name
        and renamed. A file already at 48 kHz (or more) whose every non-silent channel has a cutoff above
        the model's full_band_hz is written unchanged (resampled to output_rate) when copy_full_band is set.
        `spectrogram`, if given, collects the input's and the output's spectrograms at 48 kHz. Clipping is
        counted, not hidden: the output keeps the input's level (no limiter, no normalisation), samples
        beyond full scale are clipped in the file, and the result says how many, and how many of the
        input's were clipped already."""
        if output_rate not in OUTPUT_RATES:
            raise ValueError(f"output rate: {output_rate} Hz is not one of {', '.join(map(str, OUTPUT_RATES))}")
        start = time.perf_counter()
        sr, channels, frames = probe_file(src)
        clips = ClipCounter()
        kept = Kept(KEEP_SECONDS * SAMPLE_RATE)
        info = analyse(kept.tee(resampled(clips.tee(file_blocks(src)), sr, SAMPLE_RATE, channels)), channels)
        heard = [c for c, p in zip(info.cutoff_hz, info.peak, strict=True) if p >= SILENCE]
        copied = copy_full_band and sr >= SAMPLE_RATE and bool(heard) and min(heard) >= self.full_band_hz
        x48 = kept.blocks if kept.blocks is not None else resampled(file_blocks(src), sr, SAMPLE_RATE, channels)
        if spectrogram is not None:
            spectrogram.start(info.samples)
            x48 = spectrogram.tee(x48, "input")
        if copied:
            y48: Iterable[np.ndarray] = x48
            cutoffs = info.cutoff_hz if cutoff_hz is None else [float(cutoff_hz)] * channels
        else:
            sampling = Sampling(steps, guidance, sampler, seed, batch, overlap)
            y48, cutoffs = self._restore(x48, info, cutoff_hz, sampling, progress)
        if spectrogram is not None:
            y48 = spectrogram.tee(y48, "output")
        written = write_stream(dst, at_rate(y48, output_rate, frames, sr, channels), output_rate, channels)
        return FileResult(
            Path(src),
            Path(dst),
            frames / sr,
            channels,
            sr,
            cutoffs,
            time.perf_counter() - start,
            copied,
            clips.clipped / max(1, clips.samples),
            written.clipped / max(1, written.samples * channels),
            written.peak,
        )

    def _restore(
        self,
        x48: Iterable[np.ndarray],
        info: Analysis,
        cutoff_hz: float | None,
        sampling: Sampling,
        progress: PROGRESS | None,
    ) -> tuple[Iterator[np.ndarray], list[float]]:
        """The chain both `upsample` and `upsample_file` run: blocks (C, k) at 48 kHz of the signal `info`
        describes -> (restored blocks (C, k') of as many samples, each channel's cutoff). cutoff_hz None
        keeps the input where it agrees with the generated band (the adaptive merge, each channel's band);
        a number keeps it below that frequency."""
        own = self.sampling
        s = replace(
            sampling,
            guidance=float(own["guidance"]) if sampling.guidance is None else sampling.guidance,
            sampler=own["sampler"] if sampling.sampler is None else sampling.sampler,
        )
        if s.sampler not in SAMPLERS:
            raise ValueError(f"sampler: {s.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if s.batch < 1:
            raise ValueError(f"batch: must be at least 1, got {s.batch}")
        channels = len(info.cutoff_hz)
        cutoffs = info.cutoff_hz if cutoff_hz is None else [float(cutoff_hz)] * channels
        bands = info.band if cutoff_hz is None else None
        n = info.samples
        seg = self.segment_frames * self.mel.hop
        frames = round(self.segment_frames / 10) if s.overlap is None else round(s.overlap * SAMPLE_RATE / self.mel.hop)
        ov = frames * self.mel.hop
        if not 0 < ov <= seg // 2:
            raise ValueError(f"overlap: must lie in (0, {seg / 2 / SAMPLE_RATE:g}] s, got {s.overlap}")
        hop = seg - ov
        count = 1 + max(0, math.ceil((n - seg) / hop))
        joins = Crossfade(ov, [cutoff_bin(c, ov) for c in cutoffs])
        if bands is None:
            merger = BandMerger([cutoff_bin(c, LFR_FFT) for c in cutoffs], n)
        else:
            merger = BandMerger([cutoff_bin(b.cutoff_hz, LFR_FFT) for b in bands], n, [b.floor for b in bands])

        def restored() -> Iterator[np.ndarray]:
            source = Cursor(x48, channels)
            per_batch = max(1, s.batch // channels)
            for p0 in range(0, count, per_batch):
                positions = range(p0, min(count, p0 + per_batch))
                source.fill(positions[-1] * hop + seg)
                windows = self._windows(source, n, positions, hop, seg, ov, s)
                # the batch's pieces go to the merge as one: each merge pays for its context once
                pieces = []
                for p in positions:
                    piece = joins.add(windows[p], first=p == 0, last=p == count - 1)
                    pieces.append(piece[:, : min(n, p * hop + piece.shape[1]) - p * hop])
                a, b = positions[0] * hop, positions[-1] * hop + pieces[-1].shape[1]
                yield from merger.push(source.get(a, b), np.concatenate(pieces, axis=1))
                source.drop(b)
                if progress:
                    progress(positions[-1] + 1, count)
            yield merger.finish()

        return restored(), cutoffs

    def _windows(
        self,
        source: Cursor,
        n: int,
        positions: range,
        hop: int,
        seg: int,
        ov: int,
        s: Sampling,
    ) -> dict[int, np.ndarray]:
        """Restore every channel's window at each position: {position: (C, samples)} at the input's level.
        Each window is scaled to the training peak and back, its quiet frames lifted and lowered again
        (`level_lift`); a digitally silent window is not run (zeros). A window reaching past the signal's
        end (of n samples) is filled by its continuation, not silence (a cut to silence is a click whose
        band the model would restore into the output's last milliseconds), and runs only `ov` samples of
        it (`window_length`): a short file, or a long one's last window, costs what it covers."""
        out, todo = {}, []
        for p in positions:
            real = n - p * hop
            length = window_length(real, seg, ov, self.unit)
            window = source.get(p * hop, p * hop + length)
            if real < length:
                window[:, real:] = np.stack([continuation(w[:real], length - real) for w in window])
            out[p] = np.zeros_like(window)
            for c, w in enumerate(window):
                peak = float(np.abs(w).max())
                if peak >= SILENCE:
                    todo.append((p, c, self.peak / peak * level_lift(w, self.mel.hop), w))
        # batches of equal lengths: the windows in order, the end's (shorter) ones in a batch of their own
        chunks = [
            group[i : i + s.batch]
            for group in (list(g) for _, g in itertools.groupby(todo, key=lambda t: len(t[3])))
            for i in range(0, len(group), s.batch)
        ]
        for chunk in chunks:
            windows = torch.from_numpy(np.stack([w * g for _, _, g, w in chunk]))
            gens = [torch.Generator().manual_seed(_window_seed(s.seed, p, c)) for p, c, _, _ in chunk]
            restored = self.restore_windows(windows, s.steps, s.guidance, s.sampler, gens).numpy()
            for (p, c, g, _), r in zip(chunk, restored, strict=True):
                out[p][c] = r / g
        return out


def window_length(remaining: int, seg: int, margin: int, unit: int) -> int:
    """The samples of a window that starts `remaining` samples before the signal's end: the segment `seg`,
    or, where the rest is shorter, the rest and `margin` samples of its continuation (as far as the
    crossfade keeps an inner window's edge from its output), rounded up to whole `unit`s."""
    return min(seg, -(-(remaining + margin) // unit) * unit)


def at_rate(y48: Iterable[np.ndarray], rate: int, frames: int, sr: int, channels: int) -> Iterator[np.ndarray]:
    """Blocks at 48 kHz -> blocks at `rate`, exactly the length `frames` samples at `sr` have there."""
    return exact(resampled(y48, SAMPLE_RATE, rate, channels), round(frames * rate / sr), channels)


def inference_form(*nets: torch.nn.Module | None) -> None:
    """Put the 2-D networks into the form that restores fastest, in place, keeping their state dicts (names
    and values): weights channels-last (NHWC), so oneDNN's convolutions run without reordering every
    activation (about 1.3x faster for the VAE and the U-Net on a CPU), and the upsampling layers as
    transposed convolutions (`layers.Upsample.transposed`: the VAE decoder 1.3x faster). The outputs are
    the same to float rounding; a network already so is left as it is."""
    for net in nets:
        if net is None:
            continue
        if any(p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters()):
            net.to(memory_format=torch.channels_last)
        for module in net.modules():
            if isinstance(module, Upsample):
                module.transposed = True


def level_lift(w: np.ndarray, hop: int) -> np.ndarray | float:
    """w: (samples,) -> (samples,) gains >= 1 that lift the frames (of `hop` samples) more than LIFT_BELOW_DB
    under the window's loudest to that level, by at most MAX_LIFT_DB, interpolated between frame centres;
    1.0 where no frame is that quiet (most windows of music)."""
    n = len(w)
    frames = -(-n // hop)
    padded = np.zeros(frames * hop, np.float64)
    padded[:n] = w
    rms = np.sqrt(np.mean(padded.reshape(frames, hop) ** 2, axis=1))
    held = np.lib.stride_tricks.sliding_window_view(np.pad(rms, LIFT_HOLD), 2 * LIFT_HOLD + 1).max(axis=1)
    level_db = 20 * np.log10(np.maximum(held, 1e-30) / max(held.max(), 1e-30))
    lift_db = np.clip(-LIFT_BELOW_DB - level_db, 0.0, MAX_LIFT_DB)
    if not lift_db.any():
        return 1.0
    centres = (np.arange(frames) + 0.5) * hop
    return np.interp(np.arange(n), centres, 10 ** (lift_db / 20)).astype(np.float32)


def _window_seed(seed: int, position: int, channel: int) -> int:
    """The noise seed of one window: results do not depend on the batch size or the other channels."""
    return int(np.random.SeedSequence([seed, position, channel]).generate_state(1, np.uint64)[0] >> 1)
