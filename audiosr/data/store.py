"""On-disk layout of segments and pairs, written atomically and read memory-mapped.

A split folder (``data/segments/train/``, ``data/pairs/train/``) holds:
  wave.npy   (N, samples) int16 PCM at 48 kHz, as a file would hold it
  mel.npy    (N, n_mels, frames) float16 log-mel (natural log; float16 keeps 1e-3 precision on values
             in [-11.6, 5], and halves the size of MUSDB18's mels to about 1.6 GB at 256 bands)
  index.csv  one row per segment (track, start, peak, rms; pairs add every drawn degradation value)
  meta.json  sample rate, segment length, mel settings: what a consumer checks before training
Rows are streamed to disk as they are made, so memory does not grow with the data set.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audiosr.audio import from_int16


class ArrayWriter:
    """Appends rows to a .npy file whose row count is known only at the end."""

    def __init__(self, path: Path, row_shape: tuple[int, ...], dtype: np.dtype | type):
        self.path, self.row_shape, self.dtype = Path(path), tuple(row_shape), np.dtype(dtype)
        self._raw_path = self.path.with_suffix(".raw")
        self._raw = open(self._raw_path, "wb")  # noqa: SIM115 - closed in close()
        self.rows = 0

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: row shape {rows.shape[1:]} != {self.row_shape}")
        self._raw.write(rows.tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        self._raw.close()
        out = np.lib.format.open_memmap(self.path, "w+", self.dtype, (self.rows, *self.row_shape))
        if self.rows:
            src = np.memmap(self._raw_path, self.dtype, "r", shape=(self.rows, *self.row_shape))
            step = max(1, (64 << 20) // max(1, src[0].nbytes))
            for i in range(0, self.rows, step):
                out[i : i + step] = src[i : i + step]
            del src
        out.flush()
        del out
        self._raw_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `path`, on failure it is removed,
    so an interrupted or failed run never leaves a half-written folder that looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, obj: dict) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


@dataclass
class SegmentSet:
    """A split folder opened for reading: waves and mels are memory-mapped."""

    path: Path
    wave: np.ndarray  # (N, samples) int16
    mel: np.ndarray  # (N, n_mels, frames) float16
    index: pd.DataFrame
    meta: dict

    @classmethod
    def open(cls, path: str | Path) -> SegmentSet:
        path = Path(path)
        missing = [n for n in ("wave.npy", "mel.npy", "index.csv", "meta.json") if not (path / n).exists()]
        if missing:
            raise FileNotFoundError(f"{path}: missing {', '.join(missing)}; run the stage that writes it (dvc repro)")
        return cls(
            path,
            np.load(path / "wave.npy", mmap_mode="r"),
            np.load(path / "mel.npy", mmap_mode="r"),
            pd.read_csv(path / "index.csv"),
            json.loads((path / "meta.json").read_text()),
        )

    def __len__(self) -> int:
        return len(self.index)

    def audio(self, i: int) -> np.ndarray:
        """Segment i as float32 (samples,)."""
        return from_int16(self.wave[i])
