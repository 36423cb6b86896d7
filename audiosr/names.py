"""The names that params.yaml, the code and its messages share, one definition each. A leaf module: it
imports nothing of the package, so anything may import it."""

FILTERS = ("chebyshev", "elliptic", "butterworth", "boxcar")  # the low-pass families of audiosr.degrade
NOISE_TYPES = ("none", "tone", "gaussian", "mixed")  # `noise.type`: mixed draws one of the others per segment
PRECISIONS = ("fp32", "bf16", "int8", "auto")  # inference: auto is bf16 where native; int8 is a CPU's 8-bit kernels
# what is read as audio by suffix (soundfile: libsndfile's formats, MP3 and Opus included), in a folder
# given to `audiosr upsample` and in a `folder` data source
AUDIO_SUFFIXES = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".aifc",
    ".au",
    ".caf",
    ".w64",
    ".rf64",
)
