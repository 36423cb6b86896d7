"""DVC stage split: data/raw/manifest.csv -> data/split.json (train / valid / test track lists)."""

from pathlib import Path

import pandas as pd

from audiosr.config import Params, stage_main, to_dict
from audiosr.data.split import make_split
from audiosr.data.store import write_json
from audiosr.tracking import stage_run


def main() -> None:
    cfg = Params.load().split
    with stage_run("split", {"split": to_dict(cfg)}) as mlflow:
        split = make_split(pd.read_csv("data/raw/manifest.csv", keep_default_na=False), cfg)
        write_json(Path("data/split.json"), split)
        mlflow.log_metrics({f"tracks_{name}": len(tracks) for name, tracks in split.items()})
        print("split: " + ", ".join(f"{name} {len(tracks)}" for name, tracks in split.items()))


if __name__ == "__main__":
    stage_main(main)
