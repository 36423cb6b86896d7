"""DVC stage segment: tracks of each split -> data/segments/<split>/ (clean 48 kHz segments + mels)."""

import json
from pathlib import Path

import pandas as pd

from audiosr.config import Params, mel_dict, stage_main, to_dict
from audiosr.data.segments import segment_split, with_stems
from audiosr.data.split import SPLITS
from audiosr.data.store import atomic_dir
from audiosr.params import workers
from audiosr.progress import track
from audiosr.tracking import repo_root, stage_run


def main() -> None:
    params = Params.load()
    audio, mel = params.audio, params.mel
    manifest = pd.read_csv("data/raw/manifest.csv", keep_default_na=False).set_index("track", drop=False)
    split = json.loads(Path("data/split.json").read_text())
    with (
        stage_run("segment", {"audio": to_dict(audio), "mel": mel_dict(mel)}) as mlflow,
        atomic_dir("data/segments") as tmp,
    ):
        for name in SPLITS:
            tracks = manifest.loc[split[name]]
            if name == "train":  # the stems alone too: solo, sparse and dark material the mixtures never are
                tracks = with_stems(tracks, audio.train_stems, repo_root())
            counts = segment_split(
                tracks,
                tmp / name,
                repo_root(),
                audio,
                mel,
                workers(),
                lambda it, n, name=name: track(it, n, f"segment {name}"),
            )
            mlflow.log_metrics({f"{name}/{k}": v for k, v in counts.items()})
            print(f"segment {name}: {counts}")


if __name__ == "__main__":
    stage_main(main)
