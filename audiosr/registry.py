"""A pipeline folder as an MLflow model: logged by the package stage, registered as "audiosr", loadable with
``mlflow.pyfunc.load_model("models:/audiosr@baseline")``.

The run artifact ``pipeline`` is the pipeline folder itself (what ``audiosr upsample --model
runs:/<run id>/pipeline`` or ``models:/audiosr/<version>`` loads) with an ``MLmodel`` file beside its
weights: a pyfunc model whose loader is this module (`_load_pyfunc`) and whose data is the folder, so
nothing is pickled. Its ``predict`` restores audio files:

    model = mlflow.pyfunc.load_model("models:/audiosr@baseline")
    model.predict(["take.wav"])                                   # -> ["take_48k.wav"]
    model.predict(pd.DataFrame({"input": ["a.flac"], "output": ["a_restored.wav"]}))

The evaluation puts the headline metrics on the version (`audiosr.tracking.tag_version`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from audiosr.tracking import MODEL_NAME

ARTIFACT_PATH = "pipeline"  # the run artifact: runs:/<run id>/pipeline
BASELINE_ALIAS = "baseline"  # the workspace's latest version; an experiment's carries its name


def alias_of(exp_name: str) -> str:
    return BASELINE_ALIAS if exp_name == "workspace" else re.sub(r"[^\w-]", "_", exp_name)


def write_mlmodel(folder: Path, run_id: str | None = None) -> None:
    """Add the MLmodel file that makes a pipeline folder a pyfunc model (loader: this module, data: the
    folder itself)."""
    from mlflow import pyfunc
    from mlflow.models import Model

    model = Model(artifact_path=ARTIFACT_PATH, run_id=run_id)
    pyfunc.add_to_model(model, loader_module="audiosr.registry", data=".")
    model.save(str(folder / "MLmodel"))
    (folder / "requirements.txt").write_text("audiosr\n")


def log_pipeline(path: Path, mlflow, register: str | None = MODEL_NAME, tags: dict | None = None) -> str:
    """Log a pipeline folder, as an MLflow model, as the active run's artifact "pipeline"; returns its URI,
    runs:/<run id>/pipeline.

    `register` makes it the next version of that registered model (created if new), with `tags` on the
    version and an alias from its `dvc.exp_name` tag: `baseline` for the workspace, the experiment's name
    otherwise (models:/audiosr@baseline, models:/audiosr@noise-tone)."""
    run_id = mlflow.active_run().info.run_id
    with tempfile.TemporaryDirectory(prefix="audiosr-mlmodel-") as tmp:
        folder = Path(tmp) / ARTIFACT_PATH
        shutil.copytree(path, folder)
        write_mlmodel(folder, run_id)
        mlflow.log_artifacts(str(folder), ARTIFACT_PATH)
    if register:
        client = mlflow.MlflowClient()
        if not client.search_registered_models(filter_string=f"name = '{register}'"):
            client.create_registered_model(register)
        version = client.create_model_version(
            register, mlflow.get_artifact_uri(ARTIFACT_PATH), run_id=run_id, tags=tags or {}
        )
        exp_name = (tags or {}).get("dvc.exp_name")
        if exp_name:
            client.set_registered_model_alias(register, alias_of(exp_name), version.version)
    return f"runs:/{run_id}/{ARTIFACT_PATH}"


class RestoreFiles:
    """The pyfunc model: `predict(files)` restores each audio file and returns the outputs' paths.

    files: a path, a list of paths, or a DataFrame with a column `input` (and optionally `output`); an
    output defaults to `<name>_48k.wav` beside its input. Each file is restored as `audiosr upsample`
    does by default (the model's own sampler, the band merge, 48 kHz, 24-bit)."""

    def __init__(self, folder: str):
        self.folder = folder
        self._pipe = None

    @property
    def pipe(self):
        if self._pipe is None:
            import torch

            from audiosr.inference.restore import Pipeline

            device = "cuda" if torch.cuda.is_available() else "cpu"
            self._pipe = Pipeline.load(self.folder, device, precision="auto")
        return self._pipe

    def predict(self, model_input, params: dict | None = None) -> list[str]:
        pairs = _pairs(model_input)
        for src, dst in pairs:
            self.pipe.upsample_file(Path(src), Path(dst))
        return [str(dst) for _, dst in pairs]


def _pairs(model_input) -> list[tuple[str, str]]:
    if hasattr(model_input, "columns"):  # a DataFrame
        inputs = [str(x) for x in model_input["input"]]
        outputs = [str(x) for x in model_input["output"]] if "output" in model_input.columns else [None] * len(inputs)
    else:
        inputs = [str(model_input)] if isinstance(model_input, str | Path) else [str(x) for x in model_input]
        outputs = [None] * len(inputs)
    return [(i, o or str(Path(i).with_name(f"{Path(i).stem}_48k.wav"))) for i, o in zip(inputs, outputs, strict=True)]


def _load_pyfunc(data_path: str) -> RestoreFiles:
    """MLflow's entry point for the pyfunc flavour: data_path is the pipeline folder."""
    return RestoreFiles(data_path)
