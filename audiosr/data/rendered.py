"""The default data set: the composer's songs played on recorded instruments and mixed as a producer would.

Each song of `audiosr.data.score` is rendered with sampled instruments: the bass, the chord layers of
`other` and a lead line standing in for the vocals (a voice-like program: choir, voice oohs, synth
voice, a reed, a pipe or a synth lead) through FluidSynth with a General MIDI SoundFont, the drums
from a Hydrogen kit's multi-velocity samples. Programs are drawn per song from the families a part
may use (`instruments.ROLES`), among those whose rendered notes reach the top of the band.

The test split is played only on held-out instruments (`test_programs`, `test_kits`), the training
split only on the others, so the test measures generalisation to instruments the model never heard.

Mixing, per stem: a high-pass, a bell and a high shelf of random gain (EQ), a compressor, a pan, and a
send to a shared room (Freeverb, via pedalboard); then stem levels +-4 dB, a loudness drawn per song
and a bus limiter (ceiling -1 dBFS) whose gain curve is computed from the mixture and applied to every
stem, so the stems still sum to the mixture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from audiosr.config import RenderConfig
from audiosr.data import instruments as ins
from audiosr.data.score import STEM_LEVEL, STEMS, Hit, Note, Score, compose, song_params, split_of, write_songs

SAMPLE_RATE = ins.SAMPLE_RATE
CEILING = 10 ** (-1 / 20)  # the limiter's ceiling, -1 dBFS
# reverb send per stem, a dry bass as usually mixed; lower than the synthetic songs' (audiosr.data.synthetic):
# the plate here is denser than their decaying-noise rooms
REVERB_SEND = {"drums": 0.12, "bass": 0.0, "other": 0.35, "vocals": 0.3}


@dataclass(frozen=True)
class Instruments:
    """The programs each role may use and the kits, for one split."""

    roles: dict[str, tuple[int, ...]]
    kits: tuple[str, ...]


def choose_instruments(cfg: RenderConfig, measured: pd.DataFrame) -> dict[str, Instruments]:
    """{'train': ..., 'test': ...}: the instruments that reach the top of the band, held-out ones for test.

    A held-out program or kit that is not General MIDI / not installed, or a role left without an
    instrument in either split, is an error that lists what there is."""
    programs = measured[measured["kind"] == "program"]
    kits = measured[measured["kind"] == "kit"]
    known = {int(p) for p in programs["id"]}
    for p in cfg.test_programs:
        if p not in known:
            raise ValueError(
                f"data.rendered.test_programs: {p} is not a program of the families used "
                f"({', '.join(f'{f}: {list(m)}' for f, m in ins.FAMILIES.items())})"
            )
    for k in cfg.test_kits:
        if k not in set(kits["id"]):
            raise ValueError(f"data.rendered.test_kits: no kit {k!r}; kits: {', '.join(sorted(kits['id']))}")
    full = measured[measured["top_db"] >= cfg.min_top_db]
    full_programs = {int(p) for p in full.loc[full["kind"] == "program", "id"]}
    full_kits = set(full.loc[full["kind"] == "kit", "id"])
    out = {}
    for split in ("train", "test"):
        held = set(cfg.test_programs)
        use = full_programs & held if split == "test" else full_programs - held
        roles = {}
        for role, families in ins.ROLES.items():
            members = sorted(p for f in families for p in ins.FAMILIES[f] if p in use)
            if not members:
                raise ValueError(
                    f"data.rendered: no {split} program for the {role} part among families {list(families)} "
                    f"(held out: {sorted(held)}; reaching {cfg.min_top_db} dB at 16-20 kHz: {sorted(full_programs)})"
                )
            roles[role] = tuple(members)
        split_kits = sorted(full_kits & set(cfg.test_kits) if split == "test" else full_kits - set(cfg.test_kits))
        if not split_kits:
            raise ValueError(f"data.rendered: no {split} drum kit reaches {cfg.min_top_db} dB at 16-20 kHz")
        out[split] = Instruments(roles, tuple(split_kits))
    return out


def measure(cfg: RenderConfig) -> pd.DataFrame:
    """The band measurement of every program of `instruments.FAMILIES` and every installed kit."""
    programs = sorted({p for members in ins.FAMILIES.values() for p in members})
    rows = ins.measure_programs(cfg.soundfont, programs) + ins.measure_kits(cfg.drumkits, ins.kit_names(cfg.drumkits))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# parts


def _velocity(v: float) -> int:
    return int(np.clip(round(1 + 126 * v), 1, 127))


def _events(notes: tuple[Note, ...], channel: int, seconds: float) -> list[tuple[float, int, int, int, int]]:
    """Note-on / note-off events of the notes that start within the song; offs sort before ons at one time."""
    ev = []
    for note in notes:
        if note.start < seconds:
            ev.append((note.start, 1, channel, note.pitch, _velocity(note.velocity)))
            ev.append((note.start + note.dur, 0, channel, note.pitch, 0))
    return sorted(ev)


def _pitched(soundfont: str, parts: list[tuple[int, tuple[Note, ...], float]], n: int, seconds: float) -> np.ndarray:
    """parts: (program, notes, pan) on channels 0, 1, ... of a fresh synth -> (2, n)."""
    with ins.Synth(soundfont) as synth:
        events = []
        for channel, (program, notes, pan) in enumerate(parts):
            synth.program(channel, program, pan)
            events += _events(notes, channel, seconds)
        return synth.play(sorted(events), n)


def _drums(
    hits: tuple[Hit, ...], kit: dict[str, tuple[ins.Layer, ...]], n: int, rng: np.random.Generator
) -> np.ndarray:
    """The score's hits on the kit's samples: the velocity picks the layer (and scales it), +-1.5 dB of
    random gain per hit; hats and cymbals panned to one side, kick and snare near the centre."""
    hat_pan = rng.uniform(-0.6, 0.6)
    pans = {
        "kick": 0.0,
        "snare": rng.uniform(-0.1, 0.1),
        "hat": hat_pan,
        "open": hat_pan,
        "ride": -hat_pan,
        "crash": -np.sign(hat_pan) * rng.uniform(0.2, 0.6),
    }
    level = {
        "kick": 1.0,
        "snare": rng.uniform(0.6, 0.9),
        "hat": rng.uniform(0.2, 0.4),
        "open": rng.uniform(0.2, 0.35),
        "ride": rng.uniform(0.2, 0.35),
        "crash": rng.uniform(0.25, 0.45),
    }
    out = np.zeros((2, n), np.float32)
    for hit in hits:
        drum = hit.drum if hit.drum in kit else ("open" if "open" in kit else "hat")
        layer = ins.pick_layer(kit[drum], hit.velocity)
        start = int(hit.time * SAMPLE_RATE)
        if start >= n:
            continue
        x = layer.audio[:, : n - start]
        theta = (pans[hit.drum if hit.drum in pans else drum] + 1.0) * np.pi / 4
        gain = layer.gain * level[drum] * hit.velocity * 10 ** (rng.uniform(-1.5, 1.5) / 20)
        out[0, start : start + x.shape[1]] += gain * np.sqrt(2) * np.cos(theta) * x[0]
        out[1, start : start + x.shape[1]] += gain * np.sqrt(2) * np.sin(theta) * x[1]
    return out


# ---------------------------------------------------------------------------------------------------------
# mix


def _channel_strip(stem: str, rng: np.random.Generator):
    """The stem's EQ and compressor (pedalboard), drawn per song."""
    import pedalboard as pb

    highpass = {"drums": 30.0, "bass": 30.0, "other": rng.uniform(80, 150), "vocals": rng.uniform(90, 140)}[stem]
    ratio = {
        "drums": rng.uniform(2, 4),
        "bass": rng.uniform(3, 6),
        "other": rng.uniform(1.5, 3),
        "vocals": rng.uniform(3, 5),
    }[stem]
    return pb.Pedalboard(
        [
            pb.HighpassFilter(highpass),
            pb.PeakFilter(float(np.exp(rng.uniform(np.log(200), np.log(5000)))), float(rng.uniform(-3, 4)), 1.0),
            pb.HighShelfFilter(float(rng.uniform(6000, 10000)), float(rng.uniform(-1.5, 3.0)), 0.7),
            pb.Compressor(
                float(rng.uniform(-24, -12)), float(ratio), float(rng.uniform(3, 20)), float(rng.uniform(80, 250))
            ),
        ]
    )


def limiter_gain(mix: np.ndarray, ceiling: float = CEILING, attack: float = 0.002, hold: float = 0.05) -> np.ndarray:
    """(channels, n) -> (n,) gain <= 1 such that |mix * gain| <= ceiling at every sample.

    The gain each sample needs is held for ``hold`` after it and reached ``attack`` before it (a
    minimum filter over [t - hold, t + attack]), then smoothed by a moving average over
    [t - attack, t + attack]: every term of that average covers t, so none exceeds the need at t and
    the ceiling holds exactly, with no clipping and no step in the gain."""
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(mix).max(axis=0), 1e-12))
    r, h = max(1, int(attack * SAMPLE_RATE)), max(1, int(hold * SAMPLE_RATE))
    size = h + r + 1
    held = ndimage.minimum_filter1d(need, size=size, origin=h - size // 2, mode="nearest")  # min of [t-h, t+r]
    smooth = ndimage.uniform_filter1d(held, size=2 * r + 1, mode="nearest")  # mean of [t-r, t+r]
    return np.minimum(smooth, need)  # a no-op but for rounding: every term of the mean is <= need[t]


def song_instruments(index: int, cfg: RenderConfig, pools: dict[str, Instruments]) -> dict:
    """What song ``index`` is played on: {'split', 'kit', 'bass', 'other' (one program per chord layer),
    'vocals'}, drawn from its split's instruments."""
    split = split_of(index, cfg.tracks)
    pool = pools[split]
    rng = np.random.default_rng([cfg.seed, index, 4])
    layers = song_params(index, cfg.seed).other
    return {
        "split": split,
        "kit": str(rng.choice(pool.kits)),
        "bass": int(rng.choice(pool.roles["bass"])),
        "other": [int(rng.choice(pool.roles[kind])) for kind in layers],
        "vocals": int(rng.choice(pool.roles["vocals"])),
    }


def render_track(index: int, cfg: RenderConfig, pools: dict[str, Instruments]) -> dict[str, np.ndarray]:
    """The stems and mixture of song ``index``: {'drums','bass','other','vocals','mixture'} -> (2, n) float32."""
    import pedalboard as pb

    score: Score = compose(index, cfg.seconds, cfg.seed)
    use = song_instruments(index, cfg, pools)
    rng = np.random.default_rng([cfg.seed, index, 3])
    n = int(round(cfg.seconds * SAMPLE_RATE))
    kit = ins.load_kit(cfg.drumkits, use["kit"])
    dry = {
        "drums": _drums(score.drums, kit, n, rng),
        "bass": _pitched(cfg.soundfont, [(use["bass"], score.bass, 0.0)], n, cfg.seconds),
        "other": _pitched(
            cfg.soundfont,
            [
                (program, layer.notes, float(rng.uniform(-0.5, 0.5)))
                for program, layer in zip(use["other"], score.other, strict=True)
            ],
            n,
            cfg.seconds,
        ),
        "vocals": _pitched(cfg.soundfont, [(use["vocals"], score.vocals, 0.0)], n, cfg.seconds),
    }
    room = pb.Reverb(
        room_size=float(rng.uniform(0.3, 0.85)),
        damping=float(rng.uniform(0.2, 0.6)),
        wet_level=1.0,
        dry_level=0.0,
        width=1.0,
    )
    stems = {}
    for name in STEMS:
        x = dry[name] / (np.sqrt(np.mean(dry[name] ** 2)) + 1e-9) * 0.1
        x = _channel_strip(name, rng)(x.astype(np.float32), SAMPLE_RATE)
        wet = REVERB_SEND[name] * rng.uniform(0.5, 1.3)
        if wet > 0:
            x = x + wet * room(x, SAMPLE_RATE, reset=True)
        level = STEM_LEVEL[name] * 10 ** (rng.uniform(-4, 4) / 20)  # every song balanced differently
        stems[name] = x.astype(np.float64) * level / (np.sqrt(np.mean(x**2)) + 1e-9)
    mix = sum(stems.values())
    loudness = 10 ** (rng.uniform(-24, -13) / 20)  # mixture RMS, dBFS: a spread of masters
    gain = loudness / (np.sqrt(np.mean(mix**2)) + 1e-12)
    gain = gain * limiter_gain(mix * gain)
    out = {name: x * gain for name, x in stems.items()}
    # a stem can outgrow the mixture where others cancel it; keep every file below full scale
    scale = min(1.0, 0.98 / max(np.abs(x).max() for x in out.values()))
    out = {name: (x * scale).astype(np.float32) for name, x in out.items()}
    out["mixture"] = np.sum([out[name] for name in STEMS], axis=0, dtype=np.float64).astype(np.float32)
    return out


def generate(root: Path, cfg: RenderConfig, workers: int = 1, progress=None) -> tuple[list[Path], pd.DataFrame]:
    """Measure the instruments, write ``cfg.tracks`` songs under root/{train,test}/rendered_<i>/ (the
    MUSDB18-HQ layout), root/instruments.csv (the measurement, with the split each one serves) and
    root/songs.csv (what each song is played on)."""
    root = Path(root)
    measured = measure(cfg)
    pools = choose_instruments(cfg, measured)
    used = {
        split: {*pool.kits, *(str(p) for members in pool.roles.values() for p in members)}
        for split, pool in pools.items()
    }
    measured["split"] = [
        "test" if str(i) in used["test"] else "train" if str(i) in used["train"] else "" for i in measured["id"]
    ]
    root.mkdir(parents=True, exist_ok=True)
    songs = pd.DataFrame([{"track": f"rendered_{i:03d}", **song_instruments(i, cfg, pools)} for i in range(cfg.tracks)])
    for name, table in (("instruments", measured), ("songs", songs)):
        tmp = root / f".{name}.tmp.csv"
        table.to_csv(tmp, index=False)
        os.replace(tmp, root / f"{name}.csv")
    make = partial(render_track, cfg=cfg, pools=pools)
    return write_songs(root, "rendered", cfg.tracks, make, SAMPLE_RATE, workers, progress), measured
