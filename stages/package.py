"""DVC stage package: models/{vae,ldm,vocoder} -> models/pipeline (the one folder `audiosr upsample` loads),
logged to MLflow as the run's artifact `pipeline`, an MLflow model registered as "audiosr" (audiosr.registry)."""

from pathlib import Path

from audiosr import results
from audiosr.config import Params, stage_main
from audiosr.data.store import SegmentSet
from audiosr.packaging import package
from audiosr.registry import log_pipeline
from audiosr.tracking import stage_run

OUT = Path("models/pipeline")


def main() -> None:
    params = Params.load()
    meta = SegmentSet.open("data/segments/train").meta
    names = [p.stem[len("train_") :] for p in sorted(Path("metrics").glob("train_*.json"))]
    training = {name: results.training_summary(Path("."), name) for name in names}
    with stage_run("package", {"profile": params.profile, "data.source": params.data.source}) as mlflow:
        package(
            Path("models"),
            OUT,
            extra={
                "segment_frames": meta["segment_samples"] // meta["mel"]["hop"],
                "peak": params.audio.peak,
                "full_band_hz": float(max(params.filter.cutoff_hz)),
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
        uri = log_pipeline(OUT, mlflow, tags=tags)
    print(f"package: {OUT} (MLflow: {uri})")


if __name__ == "__main__":
    stage_main(main)
