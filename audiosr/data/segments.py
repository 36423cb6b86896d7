"""The segment and degrade steps: tracks -> clean 48 kHz segments + mels -> degraded pairs + mels.

Both spread their work over a pool of processes (audiosr.parallel). Each unit of work is a
pure function of its inputs (a track; a range of segments whose draws are seeded by
(seed, split, index)), and results are written in order, so the worker count never changes the
output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from audiosr import degrade as deg
from audiosr.audio import SAMPLE_RATE, MelConfig, from_int16, log_mel, resample, to_int16
from audiosr.config import AudioConfig, FilterConfig, NoiseConfig, block, to_dict
from audiosr.data.sources import load_track
from audiosr.data.store import ArrayWriter, SegmentSet, atomic_dir, write_json
from audiosr.parallel import pool_map

DEGRADE_CHUNK = 8  # segments per unit of degrade work: small enough to balance, big enough to batch


def segment_samples(audio: AudioConfig | dict, mel: MelConfig) -> int:
    audio = block(AudioConfig, audio, "audio")
    samples = round(audio.segment_seconds * SAMPLE_RATE)
    if samples <= 0 or samples % mel.hop:
        raise ValueError(
            f"audio.segment_seconds: {audio.segment_seconds} s is not a whole number of mel frames "
            f"(hop {mel.hop} samples = {1000 * mel.hop / SAMPLE_RATE:g} ms); 5.12 is the default"
        )
    return samples


def _mels(pcm: np.ndarray, mel: MelConfig) -> np.ndarray:
    """(k, samples) int16 -> (k, n_mels, frames) float16, computed from the quantised audio."""
    if len(pcm) == 0:
        return np.zeros((0, mel.n_mels, pcm.shape[-1] // mel.hop), np.float16)
    return log_mel(torch.from_numpy(from_int16(pcm)), mel).numpy().astype(np.float16)


def with_stems(tracks: pd.DataFrame, stems: tuple[str, ...], repo_root: Path) -> pd.DataFrame:
    """The tracks, then each track's `stems` (files named <stem>.wav beside its mixture, as MUSDB18-HQ and the
    built-in sources write them) as tracks of their own, named <track>/<stem>."""
    rows = []
    for stem in stems:
        for r in tracks.itertuples():
            path = Path(r.path).with_name(f"{stem}.wav")
            if not (repo_root / path).is_file() and not path.is_file():
                raise ValueError(
                    f"audio.train_stems: {r.track} has no {stem} stem ({path}); this source has no stems, "
                    "set audio.train_stems: []"
                )
            rows.append({"track": f"{r.track}/{stem}", "path": str(path)})
    return pd.concat([tracks[["track", "path"]], pd.DataFrame(rows, columns=["track", "path"])], ignore_index=True)


def cut_track(task: tuple) -> tuple[np.ndarray, np.ndarray, list[dict], dict]:
    """One track -> (waves (k, L) int16, mels (k, M, F) float16, index rows, counts)."""
    track, path, repo_root, samples, audio, mel = task
    wave, sr = load_track(path, Path(repo_root))
    mono = resample(wave.mean(axis=0), sr, SAMPLE_RATE)
    peak_target = audio.peak
    silence = 10 ** (audio.silence_db / 20)
    waves, rows = [], []
    n = len(mono) // samples
    for k in range(n):
        seg = mono[k * samples : (k + 1) * samples]
        peak, rms = float(np.abs(seg).max()), float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))
        if rms < silence or peak == 0:
            continue
        waves.append(to_int16(seg * (peak_target / peak)))
        rows.append({"track": track, "start": round(k * samples / SAMPLE_RATE, 6), "peak": peak, "rms": rms})
    pcm = np.stack(waves) if waves else np.zeros((0, samples), np.int16)
    counts = {"short": int(n == 0), "silent": n - len(rows)}
    return pcm, _mels(pcm, mel), rows, counts


def segment_split(
    tracks: pd.DataFrame,
    out: Path,
    repo_root: Path,
    audio: AudioConfig | dict,
    mel: MelConfig,
    workers: int,
    progress: Callable[[Iterable, int], Iterable] = lambda it, n: it,
) -> dict:
    """Cut the tracks of one split into out/ (see store.py for the layout); returns counts."""
    audio = block(AudioConfig, audio, "audio")
    samples = segment_samples(audio, mel)
    frames = samples // mel.hop
    tasks = [(r.track, r.path, str(repo_root), samples, audio, mel) for r in tracks.itertuples()]
    counts = {"tracks": len(tasks), "segments": 0, "short_tracks": 0, "silent_segments": 0}
    with atomic_dir(out) as tmp:
        waves = ArrayWriter(tmp / "wave.npy", (samples,), np.int16)
        mels = ArrayWriter(tmp / "mel.npy", (mel.n_mels, frames), np.float16)
        rows: list[dict] = []
        for pcm, m, r, c in progress(pool_map(cut_track, tasks, workers), len(tasks)):
            waves.append(pcm)
            mels.append(m)
            rows += r
            counts["short_tracks"] += c["short"]
            counts["silent_segments"] += c["silent"]
        waves.close()
        mels.close()
        pd.DataFrame(rows, columns=["track", "start", "peak", "rms"]).to_csv(tmp / "index.csv", index=False)
        counts["segments"] = len(rows)
        counts["seconds"] = round(len(rows) * samples / SAMPLE_RATE, 3)
        write_json(
            tmp / "meta.json", {"sample_rate": SAMPLE_RATE, "segment_samples": samples, "mel": mel.to_dict(), **counts}
        )
    return counts


def degrade_chunk(task: tuple) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Segments [start, stop) of a clean split -> degraded (int16 waves, float16 mels, drawn values)."""
    clean_dir, split, start, stop, filter_params, noise_params, seed, mel = task
    clean = SegmentSet.open(clean_dir)
    out, rows = [], []
    for i in range(start, stop):
        rng = deg.segment_rng(seed, split, i)
        d = deg.draw(rng, filter_params, noise_params)
        y = deg.apply(clean.audio(i), SAMPLE_RATE, d, rng)
        out.append(to_int16(y))
        rows.append(
            {
                "segment": i,
                "track": clean.index.track[i],
                "start": clean.index.start[i],
                **d.to_dict(),
                "clipped": float(np.mean(np.abs(y) > 1.0)),
            }
        )
    pcm = np.stack(out)
    return pcm, _mels(pcm, mel), rows


def degrade_split(
    clean_dir: Path,
    out: Path,
    split: str,
    filter_params: FilterConfig | dict,
    noise_params: NoiseConfig | dict,
    seed: int,
    mel: MelConfig,
    workers: int,
    progress: Callable[[Iterable, int], Iterable] = lambda it, n: it,
) -> pd.DataFrame:
    """Degrade every segment of one clean split into out/; returns the table of drawn values."""
    # check the params once here so a bad value fails before any work is spread out
    filter_params = block(FilterConfig, filter_params, "filter")
    noise_params = block(NoiseConfig, noise_params, "noise")
    clean = SegmentSet.open(clean_dir)
    if clean.meta["mel"] != mel.to_dict():
        raise ValueError(
            f"{clean_dir}: its mels were made with {clean.meta['mel']}, the params ask for "
            f"{mel.to_dict()}; re-run the segment stage (dvc repro)"
        )
    n, samples = clean.wave.shape
    tasks = [
        (str(clean_dir), split, i, min(i + DEGRADE_CHUNK, n), filter_params, noise_params, seed, mel)
        for i in range(0, n, DEGRADE_CHUNK)
    ]
    with atomic_dir(out) as tmp:
        waves = ArrayWriter(tmp / "wave.npy", (samples,), np.int16)
        mels = ArrayWriter(tmp / "mel.npy", clean.mel.shape[1:], np.float16)
        rows: list[dict] = []
        for pcm, m, r in progress(pool_map(degrade_chunk, tasks, workers), len(tasks)):
            waves.append(pcm)
            mels.append(m)
            rows += r
        waves.close()
        mels.close()
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "index.csv", index=False)
        write_json(
            tmp / "meta.json",
            {
                **clean.meta,
                "segments": len(rows),
                "seed": seed,
                "filter": to_dict(filter_params),
                "noise": to_dict(noise_params),
            },
        )
    return table
