"""The real-recordings test set: recorded audio that no training song is made from, scored by the
evaluation beside the rendered test songs.

Built-in test songs are dense, bright mixes made the way the training songs are, so they cannot show
how a model behaves on what they lack. This set holds it, each clip mono at 48 kHz, at most
`realset.seconds` long, peak-normalised to `realset.peak`:

- `strum`: an acoustic guitar's strummed chords, recorded at 96 kHz / 24 bit (the Hydrogen kit
  belofilms_GuitarStrums, Debian's hydrogen-drumkits-effects, CC BY 3.0): decays, a real room.
- `hit`: single hits of the held-out drum kits (`realset.kits`, Debian's hydrogen-drumkits) at their
  loudest layer: kicks (dark), snares, hats and cymbals (bright), each followed by its own decay.
- `sparse`: a few hits of a held-out kit with silence between them (digital silence, as a sample
  library's one-shots end), so gaps, tails and onsets after silence are scored.
- `stem`: the bass, drums, other (pads, keys) and vocals of held-out test songs, each alone (its
  loudest `seconds` on a 1 s grid): solo and dark material the mixtures never expose.

Every clip's bandwidth is measured (`edge_hz`: under which 99.9 % of its energy lies; `top_db`: its
16-20 kHz band against its total, as the rendered source measures its instruments) and listed in the
manifest with its source file and licence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from audiosr.audio import SAMPLE_RATE, read, resample, write
from audiosr.config import RealsetConfig
from audiosr.data import instruments as ins
from audiosr.data.score import STEMS

KIT_LICENCES = {"The Black Pearl 1.0": "GPL-2+", "HardElectro1": "GPL-2+"}  # debian/copyright of hydrogen-drumkits
STRUM_LICENCE = "CC-BY-3.0 (Gabriel Verdugo Soto)"
HITS = ("kick", "snare", "hat", "open", "ride", "crash")
# the sparse pattern: (drum, time in s) over a clip, silence between the hits' own tails
SPARSE = (("kick", 0.1), ("crash", 0.9), ("snare", 3.0), ("hat", 3.8), ("kick", 4.3))


class RealsetError(RuntimeError):
    """A source of the real set that is missing or unusable; the message says what to install or set."""


def _clip(wave: np.ndarray, cfg: RealsetConfig) -> np.ndarray:
    """Mono (samples,) at 48 kHz -> at most cfg.seconds from its first sound, peak-normalised."""
    peak = np.abs(wave).max()
    if peak == 0:
        raise RealsetError("a silent clip")
    start = max(0, int(np.argmax(np.abs(wave) > peak * 1e-3)) - SAMPLE_RATE // 100)  # 10 ms before the onset
    wave = wave[start : start + round(cfg.seconds * SAMPLE_RATE)]
    return (wave * (cfg.peak / peak)).astype(np.float32)


def _band(wave: np.ndarray) -> tuple[float, float]:
    """(edge_hz, top_db) of a clip, as `instruments.band_measures` measures an instrument."""
    n = 1 << 16
    frames = [wave[i : i + n] for i in range(0, max(1, len(wave) - n // 2), n // 2)]
    return ins.band_measures([ins._spectrum(f, n) for f in frames if np.any(f)], n)


def _strums(cfg: RealsetConfig) -> list[dict]:
    if cfg.strum_clips == 0:
        return []
    folder = Path(cfg.strums)
    files = sorted(folder.glob("*.flac")) if folder.is_dir() else []
    if not files:
        raise RealsetError(
            f"realset.strums: no recordings in {folder}; install them (apt-get install hydrogen-drumkits-effects) "
            "or set realset.strum_clips: 0"
        )
    picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(cfg.strum_clips, len(files)))]
    out = []
    for path in picks:
        wave, sr = read(path)
        out.append(
            {
                "kind": "strum",
                "name": f"strum_{path.stem.replace(' ', '_')}",
                "source": str(path),
                "licence": STRUM_LICENCE,
                "wave": resample(wave.mean(axis=0), sr),
            }
        )
    return out


def _kit_clips(cfg: RealsetConfig) -> list[dict]:
    out = []
    for kit_name in cfg.kits:
        try:
            kit = ins.load_kit(cfg.drumkits, kit_name)
        except ins.InstrumentError as exc:
            raise RealsetError(f"realset.kits: {exc} (apt-get install hydrogen-drumkits)") from exc
        slug = re.sub(r"[^a-z0-9]+", "_", kit_name.lower()).strip("_")
        loudest = {d: max(kit[d], key=lambda layer: layer.high) for d in HITS if d in kit}
        seen: set[int] = set()
        common = {"source": f"{cfg.drumkits}/{kit_name}", "licence": KIT_LICENCES.get(kit_name, "see the kit")}
        for drum, layer in loudest.items():
            if id(layer) in seen:  # a fallback (no open hat: the closed one) is not scored twice
                continue
            seen.add(id(layer))
            wave = resample(layer.audio.mean(axis=0), ins.SAMPLE_RATE)
            out.append({"kind": "hit", "name": f"hit_{slug}_{drum}", "wave": wave, **common})
        n = round(cfg.seconds * SAMPLE_RATE)
        pattern = np.zeros(n, np.float32)
        for drum, at in SPARSE:
            hit = resample(loudest[drum if drum in loudest else "kick"].audio.mean(axis=0), ins.SAMPLE_RATE)
            a = round(at * SAMPLE_RATE)
            pattern[a : a + len(hit)] += hit[: n - a]
        out.append({"kind": "sparse", "name": f"sparse_{slug}", "wave": pattern, **common})
    return out


def _stems(cfg: RealsetConfig, manifest: pd.DataFrame, split: dict, root: Path) -> list[dict]:
    """The stems of the first cfg.stem_songs test songs that have stems beside their mixture."""
    out = []
    rows = manifest[manifest.track.isin(split["test"]) & (manifest.status == "ok")].sort_values("track")
    n = round(cfg.seconds * SAMPLE_RATE)
    for _, row in rows.iterrows():
        if len({o["track"] for o in out}) >= cfg.stem_songs:
            break
        folder = (root / row.path).parent
        if not all((folder / f"{s}.wav").is_file() for s in STEMS):
            continue
        for stem in STEMS:
            wave, sr = read(folder / f"{stem}.wav")
            wave = resample(wave.mean(axis=0), sr)
            # its loudest n samples on a 1 s grid: a stem may rest for bars at a time
            starts = range(0, max(1, len(wave) - n + 1), SAMPLE_RATE)
            best = max(starts, key=lambda s: float(np.sum(wave[s : s + n] ** 2)))
            out.append(
                {
                    "kind": "stem",
                    "name": f"stem_{row.track}_{stem}",
                    "track": row.track,
                    "source": str(folder / f"{stem}.wav"),
                    "licence": "generated by this project",
                    "wave": wave[best : best + n],
                }
            )
    if cfg.stem_songs and not out:
        raise RealsetError("realset.stem_songs: no test song has stems (bass, drums, other, vocals) beside its mixture")
    return out


def build(cfg: RealsetConfig, manifest: pd.DataFrame, split: dict, root: Path, out: Path) -> pd.DataFrame:
    """Write the set into the folder `out`: clips/<name>.wav (48 kHz, 24-bit) and manifest.csv (name,
    kind, seconds, edge_hz, top_db, source, licence). Returns the manifest."""
    items = _strums(cfg) + _kit_clips(cfg) + _stems(cfg, manifest, split, root)
    if not items:
        raise RealsetError("realset: every source is turned off; the real set would be empty")
    rows = []
    for item in items:
        wave = _clip(item["wave"], cfg)
        write(out / "clips" / f"{item['name']}.wav", wave, SAMPLE_RATE, subtype="PCM_24")
        edge, top = _band(wave)
        rows.append(
            {
                "name": item["name"],
                "kind": item["kind"],
                "seconds": round(len(wave) / SAMPLE_RATE, 3),
                "edge_hz": round(edge),
                "top_db": round(top, 1),
                "source": item["source"],
                "licence": item["licence"],
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(out / "manifest.csv", index=False)
    (out / "meta.json").write_text(json.dumps({"clips": len(table), "kinds": table.kind.value_counts().to_dict()}))
    return table


def load(folder: str | Path) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The set written by `build`: its manifest and each clip (samples,) at 48 kHz, in manifest order."""
    folder = Path(folder)
    table = pd.read_csv(folder / "manifest.csv")
    return table, [read(folder / "clips" / f"{name}.wav")[0][0] for name in table.name]
