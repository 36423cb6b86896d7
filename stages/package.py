"""DVC stage package: models/{vae,ldm,vocoder} -> models/pipeline (the one folder `audiosr upsample` loads),
logged to MLflow as the run's model (artifact `pipeline`, registered as the model "audiosr")."""

import json
from pathlib import Path

from audiosr.config import Params, stage_main
from audiosr.data.store import SegmentSet
from audiosr.inference.model import log_to_mlflow, package
from audiosr.tracking import stage_run

OUT = Path("models/pipeline")


def main() -> None:
    params = Params.load()
    meta = SegmentSet.open("data/segments/train").meta
    training = {p.stem[6:]: json.loads(p.read_text()) for p in sorted(Path("metrics").glob("train_*.json"))}
    with stage_run("package", {"profile": params.profile, "data.source": params.data.source}) as mlflow:
        package(
            Path("models"),
            OUT,
            extra={
                "segment_frames": meta["segment_samples"] // meta["mel"]["hop"],
                "training_data": {
                    "source": params.data.source,
                    "segments": meta["segments"],
                    "seconds": meta["seconds"],
                },
                "metrics": training,
            },
        )
        run = mlflow.active_run().data.tags
        tags = {k: run[k] for k in ("dvc.exp_name", "dvc.baseline_rev") if k in run}
        parent = mlflow.get_run(run["mlflow.parentRunId"]).data.tags if "mlflow.parentRunId" in run else {}
        tags["overrides"] = parent.get("overrides", "none")
        uri = log_to_mlflow(OUT, mlflow, register="audiosr", tags=tags)
    print(f"package: {OUT} (MLflow: {uri})")


if __name__ == "__main__":
    stage_main(main)
