"""Audio as a stream of (channels, samples) blocks: reading a file, resampling, cutting to length,
random access into a forward-only stream, STFT frames of a stream, writing a file as it is made.
Every step holds a bounded number of samples, so memory does not grow with the input's length."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiosr.audio import AudioError

BLOCK = 1 << 17  # samples per streamed block (2.7 s at 48 kHz); a multiple of the replacement STFT's hop


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
