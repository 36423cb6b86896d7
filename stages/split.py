"""DVC stage split: data/raw/manifest.csv -> data/split.json (train / valid / test track lists)."""

from pathlib import Path

import pandas as pd

from audiosr.data.split import make_split
from audiosr.data.store import write_json
from audiosr.params import load_params
from audiosr.tracking import stage_run


def main() -> None:
    params = load_params()["split"]
    with stage_run("split", {"split": params}) as mlflow:
        split = make_split(pd.read_csv("data/raw/manifest.csv", keep_default_na=False), params)
        write_json(Path("data/split.json"), split)
        mlflow.log_metrics({f"tracks_{name}": len(tracks) for name, tracks in split.items()})
        print("split: " + ", ".join(f"{name} {len(tracks)}" for name, tracks in split.items()))


if __name__ == "__main__":
    main()
