"""DVC stage package: models/{vae,ldm,vocoder} -> models/pipeline (the one folder `audiosr upsample` loads)."""

from pathlib import Path

from audiosr.data.store import SegmentSet
from audiosr.params import load_params
from audiosr.pipeline import package


def main() -> None:
    params = load_params()
    meta = SegmentSet.open("data/segments/train").meta
    package(Path("models"), Path("models/pipeline"),
            extra={"segment_frames": meta["segment_samples"] // meta["mel"]["hop"],
                   "training_data": {"source": params["data"]["source"], "segments": meta["segments"],
                                     "seconds": meta["seconds"]}})
    print("package: models/pipeline")


if __name__ == "__main__":
    main()
