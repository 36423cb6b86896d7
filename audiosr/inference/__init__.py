"""Inference: a trained model as one object, apart from the training code (nothing here imports
audiosr.train; the networks are rebuilt by audiosr.models.load).

- `model`: the pipeline folder (written by audiosr.packaging, logged to MLflow by audiosr.registry), found
  from a path or an MLflow URI, read, described.
- `restore`: the `Pipeline` class: load a folder, restore windows, upsample arrays and files.
- `merge`: joining restored windows (correlation-normalised crossfade) and the low-frequency replacement.
- `stream`: reading, resampling and writing audio block by block; continuing a signal past its ends.
- `cutoff`: one streamed pass measuring a signal's length, peaks and cutoff.
- `spectrogram`: input and output spectrograms of a streamed file, for pictures.
"""

from audiosr.inference.model import ModelError, describe, resolve_model
from audiosr.inference.restore import FileResult, Pipeline, Result

__all__ = ["FileResult", "ModelError", "Pipeline", "Result", "describe", "resolve_model"]
