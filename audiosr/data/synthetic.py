"""Built-in synthetic multitrack songs in the MUSDB18-HQ layout: the fast source the tests use.

The songs of `audiosr.data.score` rendered by oscillators, with no dependency beyond numpy and scipy
(the default data set, `rendered`, plays the same scores on recorded instruments). Each song is
music-like and full band (energy up to 20 kHz): a drum kit
with hi-hats and cymbals, a filtered bass, chords (pads, plucks or keys) from additive partials that
reach the top of the band, and a formant-filtered, vibrato-carrying voice. Tempo, key, scale, chord
progression, timbres, panning, reverb and loudness vary from song to song.

Layout (as MUSDB18-HQ)::

    root/train/synth_000/{mixture,drums,bass,other,vocals}.wav   stereo, 16-bit PCM
    root/test/synth_100/...

A song depends only on ``(seed, index)``, so the number of worker processes never changes the output.
Harmonic parts are wavetable oscillators (one band-limited cycle per note from an inverse FFT of its
partial amplitudes, read with linear interpolation), so the cost per sample does not grow with the
number of partials and no partial ever lies above ``min(20 kHz, 0.95 * Nyquist)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import signal

from audiosr.data.score import FILES, STEM_LEVEL, STEMS, Score, compose, song_params, write_songs

__all__ = ["FILES", "STEMS", "SAMPLE_RATE", "generate", "generate_track", "song_params"]

SAMPLE_RATE = 44_100
TOP_HZ = 20_000.0  # highest partial of any harmonic instrument
TABLE = 8192  # wavetable length; >> 2x the partial count, so linear interpolation stays clean

VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (300.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (320.0, 870.0, 2240.0),
}


# ---------------------------------------------------------------------------------------------------------
# building blocks


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _top(sr: int) -> float:
    """Highest partial frequency: 20 kHz, or just under Nyquist for low sample rates."""
    return min(TOP_HZ, 0.95 * sr / 2)


def _n_partials(f0_max: float, sr: int) -> int:
    return int(np.clip(_top(sr) // f0_max, 1, TABLE // 2 - 1))


def _table(amps: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """amps: (K,) amplitudes of harmonics 1..K -> one cycle, (TABLE + 1,) with a wrap-around guard sample."""
    spec = np.zeros(TABLE // 2 + 1, complex)
    ph = np.zeros(len(amps)) if phases is None else phases[: len(amps)]
    spec[1 : len(amps) + 1] = amps * (TABLE / 2) * np.exp(1j * (ph - np.pi / 2))  # sine phase
    cycle = np.fft.irfft(spec, TABLE)
    return np.append(cycle, cycle[0])


def _read(
    table: np.ndarray, phase: np.ndarray, table2: np.ndarray | None = None, mix: np.ndarray | float | None = None
) -> np.ndarray:
    """Wavetable read-out; phase in cycles. With ``table2``, returns ``table + mix * table2`` (a crossfade
    between two timbres with one index computation, used for filter envelopes)."""
    x = phase - np.floor(phase)
    x *= TABLE
    i = x.astype(np.intp)
    x -= i
    y = table[i] + x * (table[i + 1] - table[i])
    if table2 is not None:
        y += mix * (table2[i] + x * (table2[i + 1] - table2[i]))
    return y


def _phase(f0: np.ndarray | float, n: int, sr: int, start: float) -> np.ndarray:
    if np.ndim(f0) == 0:
        return start + np.arange(n) * (float(f0) / sr)
    return start + np.cumsum(f0) / sr


def _envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack from 0 and release to 0 at the last sample (clicks would put false energy up high)."""
    t = np.arange(n) / sr
    return np.clip(np.minimum(t / max(attack, 1e-4), (n / sr - t) / max(release, 1e-4)), 0.0, 1.0)


def _pan(pan: float) -> tuple[float, float]:
    """Constant-power gains, pan in [-1, 1]; 1 each in the centre."""
    theta = (pan + 1.0) * np.pi / 4
    return float(np.sqrt(2) * np.cos(theta)), float(np.sqrt(2) * np.sin(theta))


def _add(out: np.ndarray, start: int, x: np.ndarray, gains: tuple[float, ...] | None = None) -> None:
    """Add mono ``x`` into ``out`` ((n,) or (2, n)) at ``start``, clipped to the song."""
    n = out.shape[-1]
    if start >= n or start + len(x) <= 0:
        return
    lo = max(0, -start)
    hi = min(len(x), n - start)
    if out.ndim == 1:
        out[start + lo : start + hi] += x[lo:hi]
    else:
        for c, g in enumerate(gains or (1.0, 1.0)):
            out[c, start + lo : start + hi] += g * x[lo:hi]


def _lowpass_gain(f: np.ndarray, fc: float, q: float = 0.707) -> np.ndarray:
    """Magnitude of a resonant 2-pole low-pass at frequencies f."""
    r = f / fc
    return 1.0 / np.sqrt((1.0 - r**2) ** 2 + (r / q) ** 2)


def _body(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random ripple over log-frequency (+-4 dB): the resonances that colour an instrument."""
    rate, phase, depth = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.5)
    return lambda f: np.exp(depth * np.sin(2 * np.pi * rate * np.log2(f) + phase))


def _partials_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float, count: int) -> np.ndarray:
    """``count`` steady inharmonic partials between lo and hi Hz, random amplitudes and phases, peak ~1.

    Built with one inverse FFT: cheaper than a sum of sines, and exact enough for a decaying cymbal."""
    m = max(n, 2)
    spec = np.zeros(m // 2 + 1, complex)
    bins = np.round(np.exp(rng.uniform(np.log(lo), np.log(min(hi, _top(sr))), count)) * m / sr).astype(int)
    bins = np.clip(bins, 1, m // 2)
    tilt = (bins / bins.min()) ** -rng.uniform(0.3, 1.0)  # the upper partials are weaker, as on a real cymbal
    spec[bins] = tilt * rng.uniform(0.3, 1.0, count) * np.exp(2j * np.pi * rng.random(count))
    x = np.fft.irfft(spec, m)[:n]
    return x / (np.abs(x).max() + 1e-12)


@lru_cache(maxsize=32)
def _sos(kind: str, fc: float | tuple[float, float], sr: int, order: int = 2) -> np.ndarray:
    # corner frequencies are chosen for 44.1 kHz; at lower sample rates they stop short of Nyquist
    corners = np.minimum(fc, [0.4 * sr, 0.45 * sr] if np.ndim(fc) else 0.45 * sr)
    return signal.butter(order, corners if np.ndim(fc) else float(corners), kind, fs=sr, output="sos")


def _highpass(x: np.ndarray, fc: float, sr: int, order: int = 2) -> np.ndarray:
    return signal.sosfilt(_sos("highpass", round(fc), sr, order), x)


class _Song:
    """A score being rendered: its grid (timing, harmony), length in samples and sample rate."""

    def __init__(self, score: Score, n: int, sr: int) -> None:
        self.score, self.p, self.n, self.sr = score, score.params, n, sr


# ---------------------------------------------------------------------------------------------------------
# drums


def _decay(tau: float, sr: int, longest: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """(t, envelope) of an exponential decay lasting to -60 dB, faded to zero over its last 20 %:
    a sample cut off while still sounding would put a broadband click into every hit."""
    n = max(int(min(6.9 * tau, longest) * sr), 2)
    t = np.arange(n) / sr
    return t, np.exp(-t / tau) * np.minimum(1.0, (n - np.arange(n)) / (0.2 * n))


def _kick(rng: np.random.Generator, sr: int) -> np.ndarray:
    t, env = _decay(rng.uniform(0.06, 0.2), sr)
    f = rng.uniform(40, 60) + rng.uniform(80, 200) * np.exp(-t / rng.uniform(0.015, 0.05))
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * env
    drive = rng.uniform(1.0, 3.0)
    # the beater click is what carries a kick into the top octave
    click = rng.standard_normal(len(t)) * np.exp(-t / 0.0015) * rng.uniform(0.1, 0.4)
    return np.tanh(drive * body) / np.tanh(drive) + click


def _snare(rng: np.random.Generator, sr: int) -> np.ndarray:
    t, env = _decay(rng.uniform(0.05, 0.14), sr)
    f = rng.uniform(160, 250)
    tone = np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * 1.6 * f * t)  # drum head modes
    tone *= np.exp(-t / rng.uniform(0.03, 0.06))
    wires = _highpass(rng.standard_normal(len(t)), rng.uniform(800, 2500), sr)
    wires = signal.sosfilt(_sos("lowpass", round(rng.uniform(6000, 12000), -2), sr, 1), wires)
    return (rng.uniform(0.3, 0.7) * tone + wires * rng.uniform(0.6, 1.0)) * env


def _metal(rng: np.random.Generator, sr: int, decay: float, lo: float) -> np.ndarray:
    """Hi-hat / cymbal: high-passed noise plus inharmonic partials, decaying; real energy up to 20 kHz."""
    t, env = _decay(decay, sr)
    noise = _highpass(rng.standard_normal(len(t)), lo, sr, order=4)
    # real cymbals fall off gently above ~10 kHz rather than staying white up to Nyquist
    noise = signal.sosfilt(_sos("lowpass", round(rng.uniform(8000, 14000), -2), sr, 1), noise)
    noise /= np.abs(noise).max()
    partials = _partials_noise(rng, len(t), sr, lo * 0.6, TOP_HZ, int(rng.integers(20, 60)))
    mix = rng.uniform(0.3, 0.7)
    return (mix * noise + (1 - mix) * partials) * env * np.minimum(1.0, t / 0.0005)


def _drums(song: _Song, rng: np.random.Generator) -> np.ndarray:
    p, sr, n = song.p, song.sr, song.n
    sounds = {
        "kick": [_kick(rng, sr) for _ in range(2)],
        "snare": [_snare(rng, sr) for _ in range(3)],
        "hat": [_metal(rng, sr, rng.uniform(0.02, 0.06), rng.uniform(5000, 8000)) for _ in range(3)],
        "open": [_metal(rng, sr, rng.uniform(0.12, 0.3), rng.uniform(4000, 7000)) for _ in range(2)],
    }
    if p.ride:
        sounds["hat"] = [_metal(rng, sr, rng.uniform(0.3, 0.6), rng.uniform(2500, 4500)) for _ in range(2)]
    sounds["crash"] = [_metal(rng, sr, rng.uniform(0.4, 0.8), rng.uniform(2500, 4000))]
    tracks = {name: np.zeros(n) for name in sounds}
    level = {
        "kick": 1.0,
        "snare": rng.uniform(0.6, 0.9),
        "hat": rng.uniform(0.15, 0.35),
        "open": rng.uniform(0.15, 0.3),
        "crash": rng.uniform(0.2, 0.4),
    }
    if p.ride:
        level["hat"] *= 0.7
    for hit in song.score.drums:
        name = "hat" if hit.drum == "ride" else hit.drum  # the ride's sounds replace the hats' when p.ride
        hits = sounds[name]
        _add(tracks[name], int(hit.time * sr), hit.velocity * level[name] * hits[int(rng.integers(len(hits)))])
    hat_pan = rng.uniform(-0.6, 0.6)
    pans = {
        "kick": 0.0,
        "snare": rng.uniform(-0.1, 0.1),
        "hat": hat_pan,
        "open": hat_pan,
        "crash": -np.sign(hat_pan) * rng.uniform(0.2, 0.6),
    }
    out = np.zeros((2, n))
    for name, x in tracks.items():
        gl, gr = _pan(pans[name])
        out[0] += gl * x
        out[1] += gr * x
    return out


# ---------------------------------------------------------------------------------------------------------
# bass


def _bass(song: _Song, rng: np.random.Generator) -> np.ndarray:
    """A saw/square bass through a resonant low-pass whose envelope closes after each attack."""
    sr, n = song.sr, song.n
    out = np.zeros(n)
    square = rng.uniform(0.0, 1.0)  # 0 = saw, 1 = square
    fc_hi, fc_lo, q = rng.uniform(1200, 5000), rng.uniform(150, 500), rng.uniform(0.7, 2.5)
    env_tau, sustain = rng.uniform(0.04, 0.3), rng.uniform(0.3, 0.8)
    tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for note in song.score.bass:
        m = note.pitch
        if m not in tables:
            f0 = _hz(m)
            k = np.arange(1, _n_partials(f0, sr) + 1)
            amps = np.where(k % 2 == 1, 1.0, 1.0 - square) / k
            dark = amps * _lowpass_gain(k * f0, fc_lo, q)
            tables[m] = (_table(dark), _table(amps * _lowpass_gain(k * f0, fc_hi, q)) - _table(dark))
        dark, diff = tables[m]
        nn = int(note.dur * sr)
        t = np.arange(nn) / sr
        filt = np.exp(-t / env_tau)  # filter envelope: bright attack closing down
        amp = note.velocity * (sustain + (1 - sustain) * filt) * _envelope(nn, sr, 0.003, 0.02)
        _add(out, int(note.start * sr), amp * _read(dark, _phase(_hz(m), nn, sr, rng.random()), diff, filt))
    return np.stack([out, out])


# ---------------------------------------------------------------------------------------------------------
# other: chords


class _Timbre:
    """The wavetables of one chord instrument, made on first use of each MIDI note.

    Partials fall as k ** -tilt under a body ripple, optionally through a low-pass (the dark end of a
    filter envelope); organ-like timbres add drawbar harmonics on top of the tilted series."""

    def __init__(
        self,
        sr: int,
        tilt: float,
        body: Callable[[np.ndarray], np.ndarray],
        phases: np.ndarray,
        organ: bool = False,
        lowpass: float | None = None,
    ) -> None:
        self.sr, self.tilt, self.body, self.phases = sr, tilt, body, phases
        self.organ, self.lowpass = organ, lowpass
        self.tables: dict[int, np.ndarray] = {}

    def __call__(self, m: int) -> np.ndarray:
        if m not in self.tables:
            # detune and vibrato stay within 1 %: partials counted at 1.02 f0 stay under the top
            f0 = _hz(m) * 1.02
            k = np.arange(1, _n_partials(f0, self.sr) + 1).astype(float)
            amps = k**-self.tilt * self.body(k * f0)
            if self.organ:
                for h in (1, 2, 3, 4, 6, 8):  # drawbar footages
                    if h <= len(k):
                        amps[h - 1] += 0.5 / h
            if self.lowpass is not None:
                amps *= np.minimum(1.0, _lowpass_gain(k * f0, self.lowpass))
            self.tables[m] = _table(amps, self.phases)
        return self.tables[m]


def _other(song: _Song, rng: np.random.Generator) -> np.ndarray:
    """Each chord layer of the score on its own additive timbre: pads (two detuned voices spread left
    and right), plucks (a string losing its top first) or keys (organ-like stabs)."""
    sr, n = song.sr, song.n
    out = np.zeros((2, n))
    for layer_score in song.score.other:
        kind = layer_score.kind
        layer = np.zeros((2, n))
        body = _body(rng)
        tilt = song.p.tilt + rng.uniform(-0.15, 0.15)
        phases = rng.uniform(0, 2 * np.pi, TABLE // 2)  # fixed per layer: a stable timbre
        table = _Timbre(sr, tilt, body, phases, organ=kind == "keys")
        if kind == "pad":
            attack, release = rng.uniform(0.05, 0.6), rng.uniform(0.2, 0.5)
            detune, width = rng.uniform(4, 12), rng.uniform(0.3, 0.9)
            for note in layer_score.notes:
                nn = int((note.dur + release) * sr)
                env = note.velocity * _envelope(nn, sr, attack, release)
                for side in (-1, 1):  # two detuned voices spread left and right: a chorus
                    f0 = _hz(note.pitch) * 2 ** (side * detune / 1200)
                    x = env * _read(table(note.pitch), _phase(f0, nn, sr, rng.random()))
                    _add(layer, int(note.start * sr), x, _pan(side * width))
        elif kind == "pluck":
            tau = rng.uniform(0.12, 0.5)
            dark = _Timbre(sr, tilt, body, phases, lowpass=rng.uniform(1000, 3000))
            for note in layer_score.notes:
                nn = int(min(5 * tau, 1.2, note.dur + 0.05) * sr)
                t = np.arange(nn) / sr
                env = np.exp(-t / tau) * _envelope(nn, sr, 0.002, 0.05)
                bright = np.exp(-t / (0.3 * tau))  # a plucked string loses its top first
                m = note.pitch
                x = env * _read(dark(m), _phase(_hz(m), nn, sr, rng.random()), table(m) - dark(m), bright)
                _add(layer, int(note.start * sr), x * note.velocity, _pan(note.pan))
        else:  # keys: chord stabs
            decay = rng.uniform(0.1, 0.6)
            pan = rng.uniform(-0.4, 0.4)
            for note in layer_score.notes:
                nn = int(note.dur * sr)
                t = np.arange(nn) / sr
                env = note.velocity * np.exp(-t / decay) * _envelope(nn, sr, 0.004, 0.06)
                _add(
                    layer,
                    int(note.start * sr),
                    env * _read(table(note.pitch), _phase(_hz(note.pitch), nn, sr, rng.random())),
                    _pan(pan),
                )
        out += layer / (np.sqrt(np.mean(layer**2)) + 1e-9) * rng.uniform(0.5, 1.0)
    return out


# ---------------------------------------------------------------------------------------------------------
# vocals


def _formant_envelope(f: np.ndarray, vowel: str, scale: float) -> np.ndarray:
    """Parallel resonances F1-F5 (F4, F5 fixed) over a small floor that keeps some energy up high."""
    f1, f2, f3 = VOWELS[vowel]
    env = np.full_like(f, 0.02)
    for fr, bw, g in ((f1, 80, 1.0), (f2, 100, 0.6), (f3, 150, 0.35), (3300, 200, 0.2), (4200, 250, 0.12)):
        env += g / np.sqrt(1.0 + ((f - fr * scale) / (bw * scale / 2)) ** 2)
    return env


def _vocals(song: _Song, rng: np.random.Generator) -> np.ndarray:
    p, sr, n = song.p, song.sr, song.n
    out = np.zeros(n)
    line = np.zeros(n)  # loudness of the voice, drives the breath noise
    scale = 1.17 if p.female else 1.0
    rate, depth = rng.uniform(5.0, 7.0), rng.uniform(15.0, 60.0)  # vibrato (Hz, cents)
    tilt = rng.uniform(0.9, 1.3)  # glottal source + radiation: about -6 dB/octave
    legato = rng.uniform(1.0, 1.15)
    prev: float | None = None
    prev_end = -1.0
    vowels = list(VOWELS)
    for note in song.score.vocals:
        start, dur, m = note.start, note.dur, note.pitch
        f0 = _hz(m)
        nn = int(dur * legato * sr)
        t = np.arange(nn) / sr
        # slide from the previous note when joined, else a small scoop up into the pitch
        joined = prev is not None and start - prev_end < 0.05
        glide = 1200 * np.log2(prev / f0) if joined else -rng.uniform(20, 80)
        cents = glide * np.exp(-t / rng.uniform(0.02, 0.06))
        cents += depth * np.minimum(1.0, t / 0.3) * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        f0_max = f0 * 2 ** ((max(glide, 0.0) + depth) / 1200)
        k = np.arange(1, _n_partials(f0_max, sr) + 1)
        f = k * f0
        # the source's top octaves roll off faster still (steep tilt above 4 kHz)
        amps = k**-tilt * _formant_envelope(f, vowels[int(rng.integers(5))], scale)
        amps /= 1 + (f / 4000.0) ** 1.5
        x = _read(_table(amps), _phase(f0 * 2 ** (cents / 1200), nn, sr, 0.0))
        env = _envelope(nn, sr, rng.uniform(0.02, 0.07), rng.uniform(0.04, 0.12)) * note.velocity
        i = int(start * sr)
        _add(out, i, env * x / (np.abs(x).max() + 1e-9))
        _add(line, i, env)
        if rng.random() < 0.3:  # a consonant ("s", "t"): a short hiss just before the vowel
            hiss_n = int(rng.uniform(0.03, 0.08) * sr)
            hiss = signal.sosfilt(_sos("bandpass", (4000, 10000), sr), rng.standard_normal(hiss_n))
            hiss *= np.hanning(hiss_n) * rng.uniform(0.1, 0.3)
            _add(out, i - hiss_n, hiss)
        prev, prev_end = f0, start + dur
    # breath: band noise following the voice's loudness
    breath = signal.sosfilt(_sos("bandpass", (1000, 6000), sr, 1), rng.standard_normal(n))
    breath *= line * rng.uniform(0.01, 0.04)
    mono = out + breath
    return np.stack([mono, mono])


# ---------------------------------------------------------------------------------------------------------
# mix


def _impulse_responses(rng: np.random.Generator, rt60: float, sr: int) -> np.ndarray:
    """(2, L) decorrelated room responses: exponentially decaying noise, highs dying faster than lows."""
    n = int(min(rt60, 1.2) * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal((2, n))
    low = signal.sosfilt(_sos("lowpass", 3000, sr), noise, axis=1)
    ir = low * np.exp(-6.9 * t / rt60) + 0.5 * noise * np.exp(-6.9 * t / (rt60 / 3))
    ir = np.concatenate([np.zeros((2, int(rng.uniform(0.005, 0.04) * sr))), ir], axis=1)  # pre-delay
    return ir / np.sqrt(np.sum(ir**2, axis=1, keepdims=True))


_PARTS: dict[str, Callable[[_Song, np.random.Generator], np.ndarray]] = {
    "drums": _drums,
    "bass": _bass,
    "other": _other,
    "vocals": _vocals,
}
REVERB_SEND = {"drums": 0.15, "bass": 0.0, "other": 0.4, "vocals": 0.35}  # per stem; a dry bass, as usually mixed


def generate_track(index: int, seconds: float, seed: int, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """The stems of one song: {'drums','bass','other','vocals','mixture'} -> (2, samples) float32.

    The mixture is the sum of the stems; it peaks at ``song_params(index, seed).peak`` unless a stem
    would then pass 0.98, in which case everything is turned down until it does not."""
    score = compose(index, seconds, seed)
    p = score.params
    sr = sample_rate
    n = int(round(seconds * sr))
    song = _Song(score, n, sr)
    mix_rng = np.random.default_rng([seed, index, 1, 0])
    irs = _impulse_responses(mix_rng, p.reverb_s, sr)
    # the room's spectrum is computed once for all stems; single precision halves the FFT time
    size = sfft.next_fast_len(n + irs.shape[1] - 1, real=True)
    room = sfft.rfft(irs.astype(np.float32), size, axis=1)
    stems: dict[str, np.ndarray] = {}
    for part, name in enumerate(STEMS, start=1):
        # one random stream per stem: changing one part's code leaves the others' audio as it was
        dry = _PARTS[name](song, np.random.default_rng([seed, index, 1, part]))
        dry /= np.sqrt(np.mean(dry**2)) + 1e-9
        wet = REVERB_SEND[name] * mix_rng.uniform(0.3, 1.2)
        if wet > 0:
            send = sfft.rfft(dry.mean(axis=0).astype(np.float32), size)
            dry += wet * sfft.irfft(send * room, size, axis=1)[:, :n]
        level = STEM_LEVEL[name] * 10 ** (mix_rng.uniform(-4, 4) / 20)  # +-4 dB: every song balanced differently
        stems[name] = dry * (level / (np.sqrt(np.mean(dry**2)) + 1e-9))
    mixture = sum(stems.values())
    gain = p.peak / max(np.abs(mixture).max(), 1e-9)
    # a stem can outgrow the mixture where others cancel it; keep every file below full scale
    gain = min(gain, 0.98 / max(np.abs(x).max() for x in stems.values()))
    out = {name: (x * gain).astype(np.float32) for name, x in stems.items()}
    out["mixture"] = np.sum([out[name] for name in STEMS], axis=0, dtype=np.float64).astype(np.float32)
    return out


def generate(
    root: Path,
    tracks: int = 150,
    seconds: float = 24.0,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``tracks`` songs under root/train/ and root/test/ (`score.write_songs`); folders ``synth_000``..."""
    make = partial(generate_track, seconds=seconds, seed=seed, sample_rate=sample_rate)
    return write_songs(root, "synth", tracks, make, sample_rate, workers, progress)
