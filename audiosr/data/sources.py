"""Where the audio comes from (`data.source`) and the manifest every source produces.

  rendered       built-in songs played on recorded instruments (FluidSynth + a General MIDI SoundFont,
                 Hydrogen drum kits), written to data/raw/rendered in the MUSDB18-HQ layout; the
                 test songs use held-out instruments (audiosr.data.rendered)
  synthetic      the same songs on built-in oscillators, written to data/raw/synthetic (fast; tests)
  musdb18hq      a MUSDB18-HQ folder (train/ and test/, one folder per track with mixture.wav),
                 read in place; root from `data.root` or $MUSDB_PATH
  musdb18        the .stem.mp4 release (root/train/*.stem.mp4, root/test/*.stem.mp4) via stempeg
                 (the `musdb` package's reader), which needs the ffmpeg binary
  musdb-preview  MUSDB18's 7-second previews, downloaded by the `musdb` package into data/raw
  folder         any folder of audio files (recursively), a user's own library

The manifest (data/raw/manifest.csv) has one row per track: track, subset (train/test, or empty
where the source has no official split), duration, sample_rate, channels, path, size, mtime,
status ("ok" or "skipped: <reason>"). Size and mtime of sources read in place make a changed
source show up as a changed manifest.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from audiosr.audio import AudioError, read
from audiosr.config import SOURCES, RenderConfig, block
from audiosr.names import AUDIO_SUFFIXES

COLUMNS = ["track", "subset", "duration", "sample_rate", "channels", "path", "size", "mtime", "status"]


class SourceError(RuntimeError):
    """A data source that cannot be used; the message says what to do."""


def _row(
    track: str,
    subset: str,
    path: Path,
    sr: int,
    frames: int,
    channels: int,
    in_place: bool,
    status: str = "ok",
    shown_path: str | None = None,
) -> dict:
    stat = path.stat() if path.exists() else None
    return {
        "track": track,
        "subset": subset,
        "duration": round(frames / sr, 6) if sr else 0.0,
        "sample_rate": sr,
        "channels": channels,
        "path": shown_path or str(path),
        "size": stat.st_size if stat else 0,
        # generated files get no mtime: it would change on every regeneration of identical audio
        "mtime": round(stat.st_mtime, 3) if (stat and in_place) else "",
        "status": status,
    }


def _shown(path: Path, moved: tuple[Path, Path] | None) -> str:
    """A path as the manifest names it: generated files are written to a temporary folder
    (moved[0]) that becomes moved[1] once the stage succeeds."""
    return str(moved[1] / path.relative_to(moved[0])) if moved else str(path)


def _wav_rows(root: Path, in_place: bool, moved: tuple[Path, Path] | None) -> list[dict]:
    rows = []
    for subset in ("train", "test"):
        sub = root / subset
        if not sub.is_dir():
            continue
        for folder in sorted(p for p in sub.iterdir() if p.is_dir()):
            mix = folder / "mixture.wav"
            if not mix.exists():
                raise SourceError(f"{folder}: no mixture.wav; is this a MUSDB18-HQ folder?")
            info = sf.info(str(mix))
            rows.append(
                _row(
                    folder.name,
                    subset,
                    mix,
                    info.samplerate,
                    info.frames,
                    info.channels,
                    in_place,
                    shown_path=_shown(mix, moved),
                )
            )
    if not rows:
        raise SourceError(f"{root}: no tracks found under train/ or test/; expected the MUSDB18-HQ layout")
    return rows


def musdb_root(root: str | None, source: str) -> Path:
    """The dataset folder from `data.root`, else $MUSDB_PATH; a clear error when neither is usable."""
    value = root or os.environ.get("MUSDB_PATH")
    if not value:
        raise SourceError(
            f"data.source={source} needs the dataset folder: set data.root in params.yaml "
            "(dvc exp run -S data.root=/path/to/musdb) or the MUSDB_PATH environment variable"
        )
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise SourceError(f"data.root / MUSDB_PATH: {path} is not a folder; point it at the dataset")
    return path


def _need_ffmpeg(source: str) -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise SourceError(
            f"data.source={source} decodes .stem.mp4 with ffmpeg, which is not installed: "
            "apt-get install ffmpeg (or use musdb18hq, the WAV release)"
        )


def _stem_rows(root: Path, in_place: bool, moved: tuple[Path, Path] | None) -> list[dict]:
    import stempeg

    rows = []
    for subset in ("train", "test"):
        for f in sorted((root / subset).glob("*.stem.mp4")):
            info = stempeg.Info(str(f))
            sr = int(info.sample_rate(0))
            rows.append(
                _row(
                    f.name[: -len(".stem.mp4")],
                    subset,
                    f,
                    sr,
                    int(round(info.duration(0) * sr)),
                    int(info.channels(0)),
                    in_place,
                    shown_path=_shown(f, moved),
                )
            )
    if not rows:
        raise SourceError(f"{root}: no .stem.mp4 files under train/ or test/; expected the MUSDB18 layout")
    return rows


def _folder_rows(root: Path, on_error: str) -> list[dict]:
    if not root.is_dir():
        raise SourceError(f"data.root: {root} is not a folder; point it at your audio library")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise SourceError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    rows = []
    for f in files:
        track = str(f.relative_to(root).with_suffix(""))
        try:
            # read it all: a file whose header is fine can still hold corrupt or NaN data
            wave, sr = read(f)
            rows.append(_row(track, "", f, sr, wave.shape[1], wave.shape[0], True))
        except AudioError as exc:
            if on_error != "skip":
                raise AudioError(f"{exc} (set data.on_error: skip to skip such files)") from exc
            rows.append(_row(track, "", f, 0, 0, 0, True, status=f"skipped: {str(exc).split(': ', 1)[-1]}"))
    return rows


def build_manifest(
    data: dict, raw_dir: Path, final_raw_dir: Path, progress: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """Make the manifest for the `data` block of params.yaml. Generated or downloaded audio is
    written under raw_dir and named in the manifest as under final_raw_dir (where raw_dir will be
    renamed to; relative to the repo root, so the manifest is the same in any copy of the repo)."""
    moved = (raw_dir, final_raw_dir)
    source = data.get("source", "rendered")
    on_error = data.get("on_error", "fail")
    if on_error not in ("fail", "skip"):
        raise SourceError(f"data.on_error: {on_error!r} is not one of fail, skip")
    if source == "rendered":
        from audiosr.data import rendered

        out = raw_dir / "rendered"
        rendered.generate(
            out,
            block(RenderConfig, data.get("rendered"), "data.rendered"),
            workers=os.cpu_count() or 1,
            progress=progress,
        )
        rows = _wav_rows(out, in_place=False, moved=moved)
    elif source == "synthetic":
        from audiosr.data import synthetic

        syn = data.get("synthetic", {})
        out = raw_dir / "synthetic"
        synthetic.generate(
            out,
            tracks=int(syn.get("tracks", 150)),
            seconds=float(syn.get("seconds", 24.0)),
            seed=int(syn.get("seed", 0)),
            workers=os.cpu_count() or 1,
            progress=progress,
        )
        rows = _wav_rows(out, in_place=False, moved=moved)
    elif source == "musdb18hq":
        rows = _wav_rows(musdb_root(data.get("root"), source), in_place=True, moved=None)
    elif source == "musdb18":
        _need_ffmpeg(source)
        rows = _stem_rows(musdb_root(data.get("root"), source), in_place=True, moved=None)
    elif source == "musdb-preview":
        _need_ffmpeg(source)
        rows = _stem_rows(_download_preview(raw_dir / "musdb-preview"), in_place=False, moved=moved)
    elif source == "folder":
        if not data.get("root"):
            raise SourceError("data.source=folder needs data.root: the folder of your audio files")
        rows = _folder_rows(Path(data["root"]).expanduser().resolve(), on_error)
    else:
        raise SourceError(f"data.source: unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return pd.DataFrame(rows, columns=COLUMNS)


def _download_preview(root: Path) -> Path:
    import musdb

    try:
        musdb.DB(root=str(root), download=True)
    except Exception as exc:
        raise SourceError(
            f"data.source=musdb-preview: downloading MUSDB18's previews failed ({type(exc).__name__}: {exc}); "
            "this source needs internet access: use musdb18hq, musdb18 or folder with a local copy"
        ) from exc
    return root


def load_track(path: str | Path, repo_root: Path) -> tuple[np.ndarray, int]:
    """A manifest row's audio: (channels, samples) float32 and its sample rate."""
    path = Path(path)
    if not path.is_absolute():
        path = repo_root / path
    if path.name.endswith(".stem.mp4"):
        import stempeg

        try:
            audio, sr = stempeg.read_stems(str(path), stem_id=0, dtype=np.float32)
        except Exception as exc:
            raise AudioError(f"{path}: cannot be decoded ({exc})") from exc
        audio = np.ascontiguousarray(audio.T, dtype=np.float32)
        if not np.isfinite(audio).all():
            raise AudioError(f"{path}: contains NaN or infinite samples; repair or remove the file")
        return audio, int(sr)
    return read(path)
