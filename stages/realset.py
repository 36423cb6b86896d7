"""DVC stage realset: the real-recordings test set -> data/real/ (clips/*.wav, manifest.csv), from `realset`."""

import json
from pathlib import Path

import pandas as pd

from audiosr.config import Params, stage_main, to_dict
from audiosr.data.realset import RealsetError, build
from audiosr.data.store import atomic_dir
from audiosr.tracking import stage_run

OUT = Path("data/real")


def main() -> None:
    cfg = Params.load().realset
    manifest = pd.read_csv("data/raw/manifest.csv")
    split = json.loads(Path("data/split.json").read_text())
    with stage_run("realset", {"realset": to_dict(cfg)}) as mlflow, atomic_dir(OUT) as tmp:
        table = build(cfg, manifest, split, Path("."), tmp)
        mlflow.log_metrics({"clips": len(table), "seconds": float(table.seconds.sum())})
        mlflow.log_artifact(str(tmp / "manifest.csv"))
        kinds = ", ".join(f"{n} {k}" for k, n in table.kind.value_counts().items())
        print(f"realset: {len(table)} clips ({kinds}), {table.seconds.sum():.0f} s")


if __name__ == "__main__":
    stage_main(main, RealsetError, ValueError)
