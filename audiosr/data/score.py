"""The composer shared by the built-in sources: a song as a score (notes and drum hits), no sound yet.

`compose(index, seconds, seed)` draws a song's tempo, key, scale, progression, drum pattern, bass
line, chord layers and melody from ``(seed, index)`` alone. Two renderers turn the same score into
audio: `synthetic` (oscillators, fast, no dependencies) and `rendered` (recorded instrument samples
through FluidSynth and Hydrogen drum kits). Times are in seconds, pitches MIDI note numbers,
velocities in (0, 1].
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

STEMS = ("drums", "bass", "other", "vocals")  # MUSDB18's
# a stem's RMS relative to the drums', in the songs of both renderers (synthetic and rendered)
STEM_LEVEL = {"drums": 1.0, "bass": 0.8, "other": 0.6, "vocals": 0.8}
FILES = ("mixture", *STEMS)

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
}
# scale degrees (0 = tonic) of the chord roots, one chord per `bars_per_chord` bars
PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 4, 5, 3),
    (5, 3, 0, 4),
    (0, 5, 3, 4),
    (1, 4, 0, 0),
    (0, 3, 4, 3),
    (0, 3, 0, 4),
    (0, 6, 5, 4),
    (0, 2, 3, 4),
    (3, 4, 2, 5),
    (0, 0, 3, 4),
)
DRUM_STYLES = ("rock", "four", "halftime", "break")
DRUMS = ("kick", "snare", "hat", "open", "ride", "crash")
OTHER_KINDS = ("pad", "pluck", "keys")  # sustained chords, arpeggios, chord stabs


@dataclass(frozen=True)
class SongParams:
    """The musical choices of one song, drawn from ``(seed, index)`` alone."""

    tempo: float  # beats per minute, 4/4
    key: int  # pitch class of the tonic, 0 = C
    scale: str  # a key of SCALES
    progression: tuple[int, ...]  # chord roots as scale degrees
    bars_per_chord: int
    swing: float  # delay of the off-beat 16ths, as a fraction of a 16th
    drum_style: str
    ride: bool  # ride cymbal instead of hi-hats
    other: tuple[str, ...]  # the layers of the `other` stem, from OTHER_KINDS
    tilt: float  # partial amplitudes of the synthetic chord instruments fall as k ** -tilt
    voice_low: int  # lowest MIDI note of the melody (its range is 14 semitones)
    female: bool  # a higher voice
    reverb_s: float  # RT60 of the room
    peak: float  # peak of the mixture


def song_params(index: int, seed: int = 0) -> SongParams:
    """The musical choices of song ``index`` (cheap; `compose` uses the same ones)."""
    rng = np.random.default_rng([seed, index, 0])
    kinds = [str(rng.choice(OTHER_KINDS))]
    if rng.random() < 0.5:
        kinds.append(str(rng.choice([k for k in OTHER_KINDS if k != kinds[0]])))
    female = bool(rng.random() < 0.5)
    return SongParams(
        tempo=float(np.round(rng.uniform(70.0, 170.0), 1)),
        key=int(rng.integers(12)),
        scale=str(rng.choice(list(SCALES))),
        progression=PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))],
        bars_per_chord=int(rng.choice([1, 1, 2])),
        swing=float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.1, 0.35)])),
        drum_style=str(rng.choice(DRUM_STYLES)),
        ride=bool(rng.random() < 0.3),
        other=tuple(kinds),
        tilt=float(rng.uniform(0.8, 1.6)),
        voice_low=int(rng.integers(57, 63) if female else rng.integers(45, 52)),
        female=female,
        reverb_s=float(rng.uniform(0.4, 2.5)),
        peak=float(rng.uniform(0.3, 0.95)),
    )


@dataclass(frozen=True)
class Note:
    start: float  # s
    dur: float  # s, from note-on to note-off (a renderer may add its release after it)
    pitch: int  # MIDI
    velocity: float  # (0, 1]
    pan: float = 0.0  # [-1, 1], for parts that spread their notes (arpeggios)


@dataclass(frozen=True)
class Hit:
    time: float  # s, humanised
    drum: str  # one of DRUMS
    velocity: float  # (0, 1], humanised


@dataclass(frozen=True)
class Layer:
    kind: str  # one of OTHER_KINDS
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Score:
    params: SongParams
    seconds: float
    drums: tuple[Hit, ...]
    bass: tuple[Note, ...]
    other: tuple[Layer, ...]
    vocals: tuple[Note, ...]


class Grid:
    """Timing and harmony of one song: the grid is 16ths, 16 to a bar."""

    def __init__(self, p: SongParams, seconds: float) -> None:
        self.p = p
        self.step = 60.0 / p.tempo / 4
        self.bars = int(np.ceil(seconds / (16 * self.step))) + 1
        self.scale = SCALES[p.scale]

    def time(self, step: float) -> float:
        """Seconds of a (fractional) 16th step, with swing on the off-beat 16ths."""
        swing = self.p.swing if int(step) % 2 == 1 and step == int(step) else 0.0
        return (step + swing) * self.step

    def midi(self, degree: int, base: int) -> int:
        """MIDI note of a scale degree (any integer; 7 = an octave up) over the tonic near ``base``."""
        return base + self.p.key + 12 * (degree // 7) + self.scale[degree % 7]

    def chord(self, bar: int) -> int:
        """Scale degree of the chord root in ``bar``."""
        prog = self.p.progression
        return prog[(bar // self.p.bars_per_chord) % len(prog)]

    def voicing(self, bar: int, base: int, rng: np.random.Generator) -> list[int]:
        root = self.chord(bar)
        degrees = [root, root + 2, root + 4] + ([root + 6] if rng.random() < 0.3 else [])
        return [self.midi(d, base) for d in degrees]


# ---------------------------------------------------------------------------------------------------------
# parts


def _drum_pattern(style: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """16-step velocity patterns of one bar (0 = no hit)."""
    k, s, h, o = (np.zeros(16) for _ in range(4))
    if style == "rock":
        k[[0, 8]] = 1.0
        k[int(rng.choice([6, 10, 11, 14]))] = 0.8
        s[[4, 12]] = 1.0
        h[::2] = 0.7
    elif style == "four":
        k[::4] = 1.0
        s[[4, 12]] = 0.9
        h[:] = 0.45
        o[[2, 6, 10, 14]] = 0.7
    elif style == "halftime":
        k[[0, int(rng.choice([3, 10, 11]))]] = 1.0
        s[8] = 1.0
        h[::2] = 0.7
    else:  # break
        k[[0, 10]] = 1.0
        k[int(rng.choice([2, 3, 7]))] = 0.8
        s[[4, 12]] = 1.0
        s[int(rng.choice([7, 9, 15]))] = 0.3  # ghost note
        h[:] = 0.5
    h[::4] = np.maximum(h[::4], 0.85 * (h[::4] > 0))  # accent the beats
    return {"kick": k, "snare": s, "hat": h, "open": o}


def _drums(g: Grid, rng: np.random.Generator) -> list[Hit]:
    """The kit's hits, humanised: timing +-3 ms (s.d.), velocity 80-100 % of the pattern's."""
    hits = []
    base = _drum_pattern(g.p.drum_style, rng)
    for bar in range(g.bars):
        pattern = {name: v.copy() for name, v in base.items()}
        if rng.random() < 0.25:  # an extra kick now and then keeps the groove from looping
            pattern["kick"][int(rng.integers(16))] = 0.7
        if bar % 4 == 3 and rng.random() < 0.6:  # a fill into the next phrase
            pattern["snare"][12:] = rng.uniform(0.4, 1.0, 4)
        for name, vel in pattern.items():
            drum = "ride" if (name == "hat" and g.p.ride) else name
            for step in np.flatnonzero(vel):
                t = max(0.0, g.time(bar * 16 + step) + rng.normal(0, 0.003))
                hits.append(Hit(t, drum, float(vel[step] * rng.uniform(0.8, 1.0))))
        if bar % 4 == 0 and (bar > 0 or rng.random() < 0.5):
            hits.append(Hit(g.time(bar * 16), "crash", float(rng.uniform(0.7, 1.0))))
    return sorted(hits, key=lambda h: h.time)


def _bass(g: Grid, rng: np.random.Generator) -> list[Note]:
    rhythms = (
        [(0, 4), (4, 4), (8, 4), (12, 4)],
        [(i, 2) for i in range(0, 16, 2)],
        [(0, 3), (3, 3), (6, 2), (8, 4), (12, 2), (14, 2)],
        [(0, 6), (6, 2), (8, 6), (14, 2)],
        [(0, 8), (8, 8)],
    )
    rhythm = rhythms[int(rng.integers(len(rhythms)))]
    gate = rng.uniform(0.55, 0.95)  # articulation: how much of its length a note sounds
    base = int(rng.integers(28, 36)) - g.p.key  # tonic between E1 and B1 (41-62 Hz)
    notes = []
    for bar in range(g.bars):
        root = g.chord(bar)
        for step, length in rhythm:
            degree = root + int(rng.choice([0, 0, 0, 0, 4, 7])) if step else root  # root on the downbeat
            notes.append(
                Note(
                    g.time(bar * 16 + step), length * g.step * gate, g.midi(degree, base), float(rng.uniform(0.75, 1.0))
                )
            )
    return notes


def _layer(kind: str, g: Grid, rng: np.random.Generator) -> Layer:
    base = int(rng.integers(52, 60)) - g.p.key
    notes: list[Note] = []
    if kind == "pad":  # a chord held for each chord of the progression
        for bar in range(0, g.bars, g.p.bars_per_chord):
            dur = g.p.bars_per_chord * 16 * g.step
            notes += [Note(g.time(bar * 16), dur, m, 0.8) for m in g.voicing(bar, base, rng)]
    elif kind == "pluck":  # arpeggios over two octaves, 16ths or 8ths, spread left and right
        every = int(rng.choice([1, 2, 2]))
        order = str(rng.choice(["up", "down", "random"]))
        spread = rng.uniform(0.2, 0.7)
        length = float(rng.uniform(0.3, 1.2))
        for bar in range(g.bars):
            chord = g.voicing(bar, base, rng)
            chord = chord + [m + 12 for m in chord]
            for i, step in enumerate(range(0, 16, every)):
                m = (
                    chord[i % len(chord)]
                    if order == "up"
                    else (chord[-1 - i % len(chord)] if order == "down" else int(rng.choice(chord)))
                )
                notes.append(
                    Note(
                        g.time(bar * 16 + step), length, m, float(rng.uniform(0.7, 1.0)), spread * (1 if i % 2 else -1)
                    )
                )
    else:  # keys: chord stabs
        rhythms = ([2, 6, 10, 14], [0, 3, 6, 10], [0, 4, 8, 12], [0, 6, 12], [0, 3, 8, 11, 14])
        rhythm = rhythms[int(rng.integers(len(rhythms)))]
        length = float(rng.uniform(0.12, 0.5))
        for bar in range(g.bars):
            chord = g.voicing(bar, base, rng)
            for step in rhythm:
                vel = float(rng.uniform(0.7, 1.0))
                notes += [Note(g.time(bar * 16 + step), length, m, vel) for m in chord]
    return Layer(kind, tuple(notes))


def _melody(g: Grid, rng: np.random.Generator) -> list[Note]:
    """Phrases of a random walk on the scale, leaning on chord tones, in the voice's 14-semitone range."""
    lo = g.p.voice_low
    degrees_in_range = [d for d in range(80) if lo <= g.midi(d, 0) <= lo + 14]
    notes: list[Note] = []
    d = degrees_in_range[len(degrees_in_range) // 2]
    first = 1 if g.bars > 6 and rng.random() < 0.5 else 0  # sometimes an instrumental first bar
    phrase = int(rng.choice([2, 4]))
    for bar in range(first, g.bars):
        if (bar - first) % (2 * phrase) >= phrase and rng.random() < 0.8:  # rests between phrases
            continue
        step = 0 if bar == first else int(rng.choice([0, 0, 2]))
        while step < 16:
            length = int(rng.choice([2, 2, 2, 4, 4, 3, 6, 8]))
            if step > 0 and rng.random() < 0.12:  # a breath
                step += 2
                continue
            d += int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
            d = min(max(d, degrees_in_range[0]), degrees_in_range[-1])
            if step % 4 == 0 and rng.random() < 0.6:  # strong beats land on the chord
                root = g.chord(bar)
                tones = [x for x in degrees_in_range if (x - root) % 7 in (0, 2, 4)]
                d = min(tones, key=lambda x: abs(x - d))
            notes.append(
                Note(
                    g.time(bar * 16 + step), min(length, 16 - step) * g.step, g.midi(d, 0), float(rng.uniform(0.7, 1.0))
                )
            )
            step += length
    return notes


def compose(index: int, seconds: float, seed: int = 0) -> Score:
    """The score of song ``index``: a pure function of ``(index, seconds, seed)``.

    Each part draws from its own random stream, so changing one part's code leaves the others as
    they were. Events past ``seconds`` may be present; renderers cut at the song's length."""
    p = song_params(index, seed)
    g = Grid(p, seconds)

    def rng(part: int) -> np.random.Generator:
        return np.random.default_rng([seed, index, 2, part])

    layers = tuple(_layer(kind, g, rng(10 + i)) for i, kind in enumerate(p.other))
    return Score(p, seconds, tuple(_drums(g, rng(1))), tuple(_bass(g, rng(2))), layers, tuple(_melody(g, rng(4))))


# ---------------------------------------------------------------------------------------------------------
# the MUSDB18-HQ layout both built-in sources write


def _write_track(job: tuple[int, Path, Callable[[int], dict[str, np.ndarray]], int]) -> Path:
    index, folder, make, sr = job
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in make(index).items():
        # written under a temporary name, so an interrupted run never leaves a truncated file that looks whole
        tmp = folder / f".{name}.tmp.wav"
        sf.write(tmp, audio.T, sr, subtype="PCM_16")
        os.replace(tmp, folder / f"{name}.wav")
    return folder


def write_songs(
    root: Path,
    prefix: str,
    tracks: int,
    make: Callable[[int], dict[str, np.ndarray]],
    sample_rate: int,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``make(i)`` (stem name -> (2, samples) float) for i < tracks as 16-bit WAVs under
    root/train/<prefix>_<i>/ and root/test/<prefix>_<i>/; return the track folders in index order.

    The test split gets ``round(tracks / 3)`` songs (150 -> 100 train / 50 test, as MUSDB18), numbered
    after the training songs. ``make`` must be picklable (a module-level function or a partial of one)
    and depend only on the index, so the output is the same for any number of ``workers`` (processes).
    ``progress(1)`` is called as each track is finished."""
    root = Path(root)
    jobs = [(i, root / split_of(i, tracks) / f"{prefix}_{i:03d}", make, sample_rate) for i in range(tracks)]
    done: list[Path] = []
    if workers > 1 and tracks > 1:
        # spawn, not fork: the caller may hold threads (torch, MLflow) that a fork would copy half-locked
        with multiprocessing.get_context("spawn").Pool(min(workers, tracks)) as pool:
            for folder in pool.imap(_write_track, jobs):
                done.append(folder)
                if progress:
                    progress(1)
    else:
        for job in jobs:
            done.append(_write_track(job))
            if progress:
                progress(1)
    return done


def split_of(index: int, tracks: int) -> str:
    """'train' or 'test': the last ``round(tracks / 3)`` songs are the test songs."""
    return "test" if index >= tracks - round(tracks / 3) else "train"
