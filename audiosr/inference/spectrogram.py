"""Input and output spectrograms of a streamed file, for `audiosr upsample --spectrogram`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from audiosr.audio import SAMPLE_RATE
from audiosr.inference.stream import Frames


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
        frames, sums = Frames(self.n_fft, self.hop), []
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
