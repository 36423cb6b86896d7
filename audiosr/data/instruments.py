"""Recorded instruments for the `rendered` source: General MIDI programs of a SoundFont played by
FluidSynth, Hydrogen drum kits, and the measurement of where each one's energy ends.

Sampled instruments often stop below the top of the band (a sample recorded or stored at 22 kHz has
nothing above 11 kHz). `measure_programs` / `measure_kits` play each program over its range of notes
(each kit over its hits), normalise every note to the same energy and sum their power spectra; per
instrument they report the frequency under which 99.9 % of that energy lies (``edge_hz``) and the
level of the 16-20 kHz band relative to the whole (``top_db``). Only instruments whose ``top_db``
reaches ``data.rendered.min_top_db`` are used (docs/data.md says where the line is and why).

Debian packages: fluid-soundfont-gm (FluidR3_GM.sf2, MIT), hydrogen-drumkits (GPL-2+ / CC licences per
kit), libfluidsynth3 (LGPL-2.1); Python: pyfluidsynth.
"""

from __future__ import annotations

import ctypes
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 44_100
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DRUMKITS = "/usr/share/hydrogen/data/drumkits"
PACKAGES = {"soundfont": "fluid-soundfont-gm", "drumkits": "hydrogen-drumkits", "fluidsynth": "libfluidsynth3"}
TOP_BAND = (16_000.0, 20_000.0)  # the band whose level decides whether an instrument reaches the top
EDGE_SHARE = 0.999

# General MIDI programs (0-based) by family, as the roles of a song use them
FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": tuple(range(0, 8)),
    "chromatic percussion": tuple(range(8, 16)),
    "organ": tuple(range(16, 24)),
    "guitar": (*range(24, 32), 104, 105, 106, 107),  # with sitar, banjo, shamisen, koto
    "bass": (*range(32, 40), 43),  # with the contrabass
    "strings": (40, 41, 42, 44, 45, 46, 48, 49, 50, 51, 110),
    "brass": tuple(range(56, 64)),
    "reed": (*range(64, 72), 109),  # with the bagpipe
    "pipe": tuple(range(72, 80)),
    "synth lead": tuple(range(80, 88)),
    "synth pad": tuple(range(88, 96)),
    "voice": (52, 53, 54),  # choir aahs, voice oohs, synth voice
}
# which families may play a part: the bass, each kind of chord layer of `other`, and the lead line
# that stands in for the vocals (voices, reeds, pipes and synth leads: what carries a melody)
ROLES: dict[str, tuple[str, ...]] = {
    "bass": ("bass",),
    "pad": ("organ", "strings", "brass", "synth pad"),
    "pluck": ("guitar", "piano", "chromatic percussion"),
    "keys": ("piano", "organ", "guitar", "brass"),
    "vocals": ("voice", "reed", "pipe", "synth lead"),
}
# the notes each family is measured over: its usual range (MIDI)
RANGES: dict[str, tuple[int, int]] = {
    "bass": (28, 60),
    "strings": (48, 84),
    "synth pad": (48, 84),
    "voice": (48, 84),
    "brass": (55, 84),
    "reed": (55, 84),
    "pipe": (60, 90),
}
DEFAULT_RANGE = (40, 90)
# Hydrogen instrument names -> the drums of a score (first match wins, checked in this order)
DRUM_NAMES: dict[str, str] = {
    "open": r"(hat|hh).*\bop|open.*(hat|hh)|\bop(en)?\b.*(hat|hh)",
    "hat": r"(hat|hh).*(closed|\bcl\b)|closed.*(hat|hh)",
    "kick": r"kick|bass ?drum|\bbd\b",
    "snare": r"snare(?!.*(roll|rim))",
    "ride": r"ride(?!.*(bell|cup))",
    "crash": r"crash",
}
FALLBACK = {"open": "hat", "ride": "crash", "crash": "ride"}
NEEDED = ("kick", "snare", "hat")


class InstrumentError(RuntimeError):
    """A SoundFont, kit or program that cannot be used; the message says what to do."""


def need_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not (path.is_dir() if what == "drumkits" else path.is_file()):
        package = PACKAGES[what]
        raise InstrumentError(
            f"{path}: not found; install Debian's {package} (sudo apt-get install {package}) "
            f"or set data.rendered.{what} to another path"
        )
    return path


# ---------------------------------------------------------------------------------------------------------
# FluidSynth


class Synth:
    """A FluidSynth instance with the SoundFont loaded, rendering float stereo (2, n) at 44.1 kHz;
    its own reverb and chorus are off (the mix adds a room). A context manager: deleted on exit."""

    def __init__(self, soundfont: str | Path) -> None:
        path = need_file(soundfont, "soundfont")
        try:
            import fluidsynth
        except (ImportError, OSError) as exc:
            raise InstrumentError(f"FluidSynth cannot be loaded ({exc}): sudo apt-get install libfluidsynth3") from exc
        self.fs = fluidsynth.Synth(gain=0.5, samplerate=float(SAMPLE_RATE))
        self.fs.setting("synth.reverb.active", 0)
        self.fs.setting("synth.chorus.active", 0)
        self.fs.setting("synth.dynamic-sample-loading", 1)  # read a program's samples when selected: 18 ms a synth
        self.sfid = self.fs.sfload(str(path))
        if self.sfid < 0:
            raise InstrumentError(f"{path}: FluidSynth cannot read this SoundFont; reinstall fluid-soundfont-gm")
        self._write = fluidsynth._fl.fluid_synth_write_float
        self._write.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]

    def name(self, program: int) -> str:
        return str(self.fs.sfpreset_name(self.sfid, 0, program) or "")

    def program(self, channel: int, program: int, pan: float = 0.0) -> None:
        if self.fs.program_select(channel, self.sfid, 0, program) != 0:
            raise InstrumentError(f"program {program} is not in the SoundFont; General MIDI programs are 0-127")
        self.fs.cc(channel, 7, 100)
        self.fs.cc(channel, 10, int(np.clip(64 + 63 * pan, 0, 127)))

    def render(self, n: int) -> np.ndarray:
        buf = np.zeros((n, 2), np.float32)
        if n > 0:
            self._write(self.fs.synth, n, buf.ctypes.data, 0, 2, buf.ctypes.data, 1, 2)
        return buf.T

    def play(self, events: list[tuple[float, int, int, int, int]], n: int) -> np.ndarray:
        """events: (time s, order, channel, pitch, velocity 1-127 or 0 for note-off), sorted -> (2, n).

        FluidSynth applies an event at its next 64-sample block, so the result depends on everything
        this synth rendered before: a part gets a fresh Synth (`with Synth(...)`) to sound the same
        wherever it is rendered."""
        out = np.zeros((2, n), np.float32)
        pos = 0
        for t, _, channel, pitch, velocity in events:
            at = min(int(round(t * SAMPLE_RATE)), n)
            if at > pos:
                out[:, pos:at] = self.render(at - pos)
                pos = at
            if velocity:
                self.fs.noteon(channel, pitch, velocity)
            else:
                self.fs.noteoff(channel, pitch)
        out[:, pos:] = self.render(n - pos)
        return out

    def __enter__(self) -> Synth:
        return self

    def __exit__(self, *exc) -> None:
        self.fs.delete()


# ---------------------------------------------------------------------------------------------------------
# Hydrogen kits


@dataclass(frozen=True)
class Layer:
    low: float  # velocity range [low, high] in 0-1
    high: float
    gain: float
    audio: np.ndarray  # (2, n) float32 at 44.1 kHz


def kit_names(root: str | Path) -> list[str]:
    root = need_file(root, "drumkits")
    return sorted(p.name for p in root.iterdir() if (p / "drumkit.xml").is_file())


def _text(node: ET.Element, tag: str, default: str = "") -> str:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text else default


def _load_sample(path: Path) -> np.ndarray:
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise InstrumentError(f"{path}: unreadable drum sample ({exc}); reinstall hydrogen-drumkits") from exc
    if sr != SAMPLE_RATE:
        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="HQ")
    audio = audio[:, :2] if audio.shape[1] >= 2 else np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio.T)


@lru_cache(maxsize=4)
def load_kit(root: str, name: str) -> dict[str, tuple[Layer, ...]]:
    """The kit's drums (kick, snare, hat, open, ride, crash) -> velocity layers, from its drumkit.xml."""
    folder = Path(root) / name
    xml = folder / "drumkit.xml"
    if not xml.is_file():
        raise InstrumentError(
            f"data.rendered: drum kit {name!r} not found under {root}; kits there: {', '.join(kit_names(root))}"
        )
    tree = ET.parse(xml).getroot()
    tree = _strip_namespaces(tree)
    found: dict[str, tuple[Layer, ...]] = {}
    for inst in tree.iter("instrument"):
        label = _text(inst, "name").lower()
        drum = next((d for d, pattern in DRUM_NAMES.items() if re.search(pattern, label)), None)
        if drum is None or drum in found:
            continue
        volume = float(_text(inst, "volume", "1")) * float(_text(inst, "gain", "1"))
        layers = []
        for layer in inst.iter("layer"):
            file = _text(layer, "filename")
            if file and (folder / file).is_file():
                layers.append(
                    Layer(
                        float(_text(layer, "min", "0")),
                        float(_text(layer, "max", "1")),
                        volume * float(_text(layer, "gain", "1")),
                        _load_sample(folder / file),
                    )
                )
        file = _text(inst, "filename")  # the older format: one sample, no layers
        if not layers and file and (folder / file).is_file():
            layers.append(Layer(0.0, 1.0, volume, _load_sample(folder / file)))
        if layers:
            found[drum] = tuple(sorted(layers, key=lambda x: x.low))
    for drum, other in FALLBACK.items():
        if drum not in found and other in found:
            found[drum] = found[other]
    missing = [d for d in NEEDED if d not in found]
    if missing:
        raise InstrumentError(f"drum kit {name!r} has no {', '.join(missing)}; choose another kit")
    return found


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for node in root.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    return root


def pick_layer(layers: tuple[Layer, ...], velocity: float) -> Layer:
    """The layer whose velocity range holds ``velocity`` (else the nearest)."""
    for layer in layers:
        if layer.low <= velocity <= layer.high:
            return layer
    return min(layers, key=lambda x: min(abs(x.low - velocity), abs(x.high - velocity)))


# ---------------------------------------------------------------------------------------------------------
# where the energy ends


def _spectrum(x: np.ndarray, n: int) -> np.ndarray:
    """Energy-normalised power spectrum of mono x over an n-point FFT (x cut or zero-padded)."""
    x = x[:n] * np.hanning(min(len(x), n))
    p = np.abs(np.fft.rfft(x, n)) ** 2
    return p / (p.sum() + 1e-30)


def band_measures(spectra: list[np.ndarray], n: int) -> tuple[float, float]:
    """(edge_hz, top_db) of a sum of energy-normalised spectra on an n-point FFT grid."""
    total = np.sum(spectra, axis=0)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    share = np.cumsum(total) / total.sum()
    edge = float(f[min(np.searchsorted(share, EDGE_SHARE), len(f) - 1)])
    top = total[(f >= TOP_BAND[0]) & (f < TOP_BAND[1])].sum() / total.sum()
    return edge, float(10 * np.log10(top + 1e-30))


def measure_programs(soundfont: str, programs: list[int]) -> list[dict]:
    """Per program: its family, name, edge_hz and top_db, each note of its range (every 3 semitones,
    velocity 100) held 1 s and released for 0.5 s."""
    n = int(1.5 * SAMPLE_RATE)
    rows = []
    for program in programs:
        family = next(f for f, members in FAMILIES.items() if program in members)
        lo, hi = RANGES.get(family, DEFAULT_RANGE)
        spectra = []
        with Synth(soundfont) as s:
            s.program(0, program)
            for pitch in range(lo, hi + 1, 3):
                audio = s.play([(0.0, 0, 0, pitch, 100), (1.0, 0, 0, pitch, 0)], n)
                if np.any(audio):
                    spectra.append(_spectrum(audio.mean(axis=0), n))
            name = s.name(program)
        edge, top = band_measures(spectra, n) if spectra else (0.0, -300.0)
        rows.append(
            {
                "kind": "program",
                "id": program,
                "family": family,
                "name": name,
                "edge_hz": round(edge),
                "top_db": round(top, 1),
            }
        )
    return rows


def measure_kits(root: str, names: list[str]) -> list[dict]:
    """Per kit: edge_hz and top_db over every layer of its kick, snare, hats, ride and crash."""
    n = 2 * SAMPLE_RATE
    rows = []
    for name in names:
        try:
            kit = load_kit(root, name)
        except InstrumentError as exc:
            rows.append(
                {
                    "kind": "kit",
                    "id": name,
                    "family": "drums",
                    "name": name,
                    "edge_hz": 0,
                    "top_db": -300.0,
                    "note": str(exc),
                }
            )
            continue
        spectra = [_spectrum(layer.audio.mean(axis=0), n) for layers in kit.values() for layer in layers]
        edge, top = band_measures(spectra, n)
        rows.append(
            {
                "kind": "kit",
                "id": name,
                "family": "drums",
                "name": name,
                "edge_hz": round(edge),
                "top_db": round(top, 1),
            }
        )
    return rows


def markdown_table(measured) -> str:
    """The measurement (a DataFrame of measure_programs / measure_kits rows, with the `split` column
    `rendered.generate` adds) as the Markdown table of docs/data.md."""
    lines = [
        "| family | instrument | 99.9 % of energy below (kHz) | 16-20 kHz band (dB) | used for |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in measured.itertuples():
        label = f"{int(r.id)} {r.name}" if r.kind == "program" else r.name
        used = r.split if isinstance(r.split, str) and r.split else "—"
        if r.top_db <= -300:  # a kit with no kick, snare or hi-hat: not measured
            lines.append(f"| {r.family} | {label} | — | — | — (no kick, snare or hi-hat) |")
        else:
            lines.append(f"| {r.family} | {label} | {r.edge_hz / 1000:.1f} | {r.top_db:.1f} | {used} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    import pandas as pd

    print(markdown_table(pd.read_csv(sys.argv[1] if len(sys.argv) > 1 else "data/raw/rendered/instruments.csv")))
