"""Audio as a stream of (channels, samples) blocks: reading a file, resampling, cutting to length,
random access into a forward-only stream, STFT frames of a stream, counting clipped samples, writing a
file as it is made; and the continuation of a signal past its ends by linear prediction, for the
filters that need samples there. Every step holds a bounded number of samples, so memory does not
grow with the input's length."""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from scipy import signal

from audiosr.audio import AudioError, temporary

BLOCK = 1 << 17  # samples per streamed block (2.7 s at 48 kHz); a multiple of the replacement STFT's hop
FULL_SCALE = 0.999  # an input sample at or above it, in a run of CLIP_RUN or more, was clipped
CLIP_RUN = 3  # a lone sample at full scale is a peak that happens to reach it; three in a row are a flat top
LPC_ORDER = 32  # the linear predictor that continues a signal past its ends (see `continuation`)
LPC_CONTEXT = 2048  # the samples at an end it is fitted on
WHITE_NOISE = 1e-3  # its regularisation, as a fraction of the context's power (see `_predictor`)


class OutputError(OSError):
    """An output that cannot be written: the message names it and the system's reason."""


def _why(exc: OSError) -> str:
    """The system's reason for an OSError as a short phrase: 'permission denied: <the path it was about>'."""
    reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return f"{reason}: {exc.filename}" if exc.filename else reason


def _predictor(context: np.ndarray, order: int) -> np.ndarray | None:
    """The linear predictor of a signal (autocorrelation method on a Hann-windowed context, Levinson-Durbin
    recursion: a minimum-phase, so stable, all-pole filter) -> a (order + 1,) with a[0] = 1; None for silence."""
    w = context * np.hanning(len(context))
    r = np.array([w[: len(w) - k] @ w[k:] for k in range(order + 1)])  # the lags it needs, not all 2 len - 1
    if r[0] <= 0:
        return None
    # white noise at -30 dB keeps the recursion well conditioned: on a pure tone, and on a decoded lossy file,
    # whose empty top band otherwise gives poles at the unit circle there that ring at 55 times its peak
    r[0] *= 1 + WHITE_NOISE
    a, e = np.zeros(order + 1), r[0]
    a[0] = 1.0
    for i in range(1, order + 1):
        k = -(r[i] + a[1:i] @ r[i - 1 : 0 : -1]) / e
        a[1 : i + 1] += k * a[i - 1 :: -1][:i]
        e *= 1 - k * k
    return a


def continuation(v: np.ndarray, n: int) -> np.ndarray:
    """v: (T,) -> the n samples after its end, predicted by a linear predictor of its last LPC_CONTEXT
    samples (zeros for a silent or very short v), bounded by the context's peak."""
    context = np.asarray(v[-LPC_CONTEXT:], np.float64)
    order = min(LPC_ORDER, len(context) // 2)
    a = _predictor(context, order) if order > 0 else None
    if a is None:
        return np.zeros(n)
    state = signal.lfiltic([1.0], a, context[::-1][:order])
    out = signal.lfilter([1.0], a, np.zeros(n), zi=state)[0]
    bound = np.abs(context).max()
    return np.clip(np.nan_to_num(out), -bound, bound)


def extend(x: np.ndarray, n: int) -> np.ndarray:
    """(C, T) -> (C, n + T + n): each channel continued past both ends by linear prediction (computed in
    float64 from the ends alone, stored in x's dtype)."""
    t = x.shape[-1]
    out = np.empty((x.shape[0], t + 2 * n), x.dtype)
    out[:, n : n + t] = x
    for row, c in zip(out, x, strict=True):
        row[:n] = continuation(c[::-1], n)[::-1]
        row[n + t :] = continuation(c, n)
    return out


class Cursor:
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


def probe_file(path: Path) -> tuple[int, int, int]:
    """(sample rate, channels, frames) of an audio file; AudioError naming it when unreadable or empty."""
    try:
        with open(path, "rb"):  # the system's reason (permission denied...): soundfile says only "System error"
            pass
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({(exc.strerror or str(exc)).lower()})") from exc
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for corrupt files
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from exc
    if info.frames <= 0:
        raise AudioError(f"{path}: has no samples (zero-length audio)")
    return int(info.samplerate), int(info.channels), int(info.frames)


def file_blocks(path: Path) -> Iterator[np.ndarray]:
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


def resampled(blocks: Iterable[np.ndarray], sr_in: int, sr_out: int, channels: int) -> Iterator[np.ndarray]:
    """(C, k) blocks at sr_in, n samples in all -> (C, k') blocks at sr_out, round(n * sr_out / sr_in) samples
    in all: soxr HQ as one stream. The signal is continued past both ends (`continuation`, at least 10 ms)
    and what the resampler makes of the continuations dropped, so its filter sees the signal going on
    where it would otherwise see a cut to silence, which rings at the first and last milliseconds."""
    if sr_in == sr_out:
        yield from blocks
        return
    g = math.gcd(sr_in, sr_out)
    lead = sr_in // g * math.ceil(max(512, sr_in // 100) / (sr_in // g))  # whole output samples: lead * sr_out / sr_in
    skip = lead * sr_out // sr_in
    stream = soxr.ResampleStream(sr_in, sr_out, channels, "float32", "HQ")
    tail = np.zeros((channels, 0), np.float32)  # the last LPC_CONTEXT input samples, for the end's continuation
    n = emitted = 0

    def run(x: np.ndarray, last: bool = False) -> np.ndarray:
        nonlocal skip, emitted
        out = stream.resample_chunk(np.ascontiguousarray(x.T, dtype=np.float32), last=last).T
        cut = min(skip, out.shape[1])
        skip -= cut
        out = out[:, cut:]
        emitted += out.shape[1]
        return out

    for block in blocks:
        if n == 0 and block.shape[1]:
            run(np.stack([continuation(c[::-1], lead)[::-1] for c in block]).astype(np.float32))
        n += block.shape[1]
        tail = np.concatenate([tail, block], 1)[:, -LPC_CONTEXT:]
        if (out := run(block)).shape[1]:
            yield out
    if n == 0:
        return
    total = round(n * sr_out / sr_in)
    ending = np.stack([continuation(c, lead) for c in tail]).astype(np.float32)
    before = emitted
    out = np.concatenate([run(ending), run(np.zeros((channels, 0), np.float32), last=True)], 1)
    yield out[:, : max(0, total - before)]


class Kept:
    """A stream of (C, k) blocks passed through `tee`, its blocks kept while they hold at most `limit`
    samples per channel: a short file's restore reads its first pass's 48 kHz blocks from memory instead of
    decoding and resampling the file again (the same samples), a long one's keeps nothing."""

    def __init__(self, limit: int):
        self.limit = limit
        self.blocks: list[np.ndarray] | None = []
        self.samples = 0

    def tee(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            self.samples += block.shape[1]
            if self.samples > self.limit:
                self.blocks = None
            elif self.blocks is not None:
                self.blocks.append(block)
            yield block


def exact(blocks: Iterable[np.ndarray], n: int, channels: int) -> Iterator[np.ndarray]:
    """Cut or zero-pad a stream to exactly n samples (a resampler may give one more or one less)."""
    done = 0
    for block in blocks:
        block = block[:, : n - done]
        done += block.shape[1]
        yield block
    if done < n:
        yield np.zeros((channels, n - done), np.float32)


class Frames:
    """A stream of (C, k) blocks -> magnitude spectra of its Hann-windowed frames (C, frames, n_fft // 2 + 1),
    frames every `hop` samples that lie wholly inside the signal; a signal shorter than one frame gives
    one zero-padded frame. The transforms are torch's (float32, on every core)."""

    def __init__(self, n_fft: int, hop: int):
        self.n_fft, self.hop = n_fft, hop
        self.window = torch.hann_window(n_fft)  # periodic, as scipy / librosa
        self.buf: np.ndarray | None = None
        self.frames = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        self.buf = block if self.buf is None else np.concatenate([self.buf, block], 1)
        m = max(0, (self.buf.shape[1] - self.n_fft) // self.hop + 1)
        if m == 0:
            return np.zeros((len(self.buf), 0, self.n_fft // 2 + 1), np.float32)
        used = torch.from_numpy(np.ascontiguousarray(self.buf[:, : (m - 1) * self.hop + self.n_fft], np.float32))
        spec = torch.stft(used, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        self.buf = self.buf[:, m * self.hop :]
        self.frames += m
        return spec.abs().transpose(1, 2).numpy()

    def finish(self) -> np.ndarray:
        if self.frames or self.buf is None:
            return np.zeros((0 if self.buf is None else len(self.buf), 0, self.n_fft // 2 + 1), np.float32)
        pad = torch.zeros(len(self.buf), self.n_fft)
        pad[:, : self.buf.shape[1]] = torch.from_numpy(np.asarray(self.buf[:, : self.n_fft], np.float32))
        return torch.fft.rfft(pad * self.window).abs()[:, None].numpy()


class ClipCounter:
    """Counts the clipped samples of a stream of (C, k) blocks as they pass through `tee`: samples beyond
    full scale, and runs of CLIP_RUN or more consecutive samples at FULL_SCALE (a flattened peak; runs
    across two blocks are not seen, which only undercounts)."""

    def __init__(self):
        self.clipped = 0
        self.samples = 0  # over all channels

    def tee(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            hot = np.abs(block) >= FULL_SCALE
            run = np.ones_like(hot[:, CLIP_RUN - 1 :])
            for k in range(CLIP_RUN):
                run &= hot[:, k : hot.shape[1] - CLIP_RUN + 1 + k]
            flat = np.abs(block) > 1.0
            for k in range(CLIP_RUN):
                flat[:, k : flat.shape[1] - CLIP_RUN + 1 + k] |= run
            self.clipped += int(flat.sum())
            self.samples += block.size
            yield block


@dataclass
class Written:
    samples: int  # per channel
    clipped: int  # samples (all channels) beyond full scale, clipped in the file
    peak: float  # the largest magnitude before clipping


@contextmanager
def claimed(path: Path) -> Iterator[None]:
    """Hold `path` for writing against other runs of this machine: an exclusive lock on a lock file beside
    it (`.<name>.lock`, removed after; the system releases the lock of a run that dies). OutputError when
    another run holds it."""
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{path}: another run is writing it now; wait for it to finish or choose another output"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:  # not a lock file its last holder just removed
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def write_stream(path: Path, blocks: Iterable[np.ndarray], sr: int, channels: int) -> Written:
    """Write (C, k) float blocks to `path` as they come, in the format its suffix names (24-bit where the
    format has it), under a temporary name of its own renamed at the end: an interrupted write never leaves
    a file that looks complete, and a second run writing the same path at the same time is refused
    (`claimed`). Samples beyond full scale are clipped, and counted; a non-finite sample is an OutputError
    and nothing is written. OutputError naming `path` when its folder cannot be made or written to, before
    any block is asked for."""
    path = Path(path)
    fmt = path.suffix[1:].upper()
    if fmt not in sf.available_formats():
        raise ValueError(f"{path}: unknown audio format {path.suffix!r}; use .wav or .flac")
    subtype = "PCM_24" if sf.check_format(fmt, "PCM_24") else None
    written = Written(0, 0, 0.0)
    with ExitStack() as stack:
        try:  # the system's reason, which soundfile reduces to "System error"
            path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(claimed(path))
            tmp = temporary(path)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"{path}: cannot be written ({_why(exc)})") from exc
        stack.callback(tmp.unlink, missing_ok=True)
        with sf.SoundFile(str(tmp), "w", sr, channels, subtype, format=fmt) as f:
            for block in blocks:
                if not np.isfinite(block).all():
                    raise OutputError(
                        f"{path}: the model gave non-finite samples (NaN or infinity); nothing was written "
                        "(try --precision fp32, or check the model folder)"
                    )
                if block.size:
                    magnitude = np.abs(block)
                    written.peak = max(written.peak, float(magnitude.max()))
                    written.clipped += int(np.count_nonzero(magnitude > 1.0))
                written.samples += block.shape[1]
                f.write(np.clip(block.T, -1.0, 1.0))
        tmp.replace(path)
    return written
