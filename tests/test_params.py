"""params.yaml is read strictly (audiosr.config): every block typed, a typo names the nearest key, a wrong
type or a value out of its key's range is an error, a repeated key and a syntax error name their line,
derived values (the vocoder's hop) cannot be set, and every stage script says so in one line."""

import copy
import os
import re
import subprocess

import pytest
import yaml

from audiosr.config import Params, ParamsError, stage_main
from audiosr.tracking import flatten
from tests.conftest import ROOT, stage, tiny_params

RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def changed(path: str, value, raw: dict = RAW) -> dict:
    """params with `path` (a.b.c) set to value."""
    out = copy.deepcopy(raw)
    *parents, key = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    node[key] = value
    return out


def test_params_yaml_loads_typed() -> None:
    p = Params.load(ROOT / "params.yaml")
    assert p.profile == "small" and p.data.synthetic.tracks == 150 and p.split.proportions == (90, 10, 50)
    assert p.mel.hop == 480 and p.filter.order == (2, 10) and p.eval.perceptual is True
    assert p.vae.betas == (0.5, 0.9) and p.vocoder.mel_weight == 45.0 and p.ldm.validate_timesteps[0] == 100
    # the profile's architecture, resolved into the block, and the vocoder's hop from mel.hop
    assert p.vae.arch["channels"] == 32 and p.vocoder.arch["hop"] == 480
    assert Params.from_dict(tiny_params()).vae.arch["channels"] == 8  # an override in the block


def test_logged_params_carry_the_resolved_architecture() -> None:
    flat = flatten(Params.load(ROOT / "params.yaml").to_dict())
    assert flat["vae.arch.channels"] == "32" and flat["ldm.arch.width"] == "64"
    assert flat["vocoder.arch.istft.dim"] == "256" and flat["vocoder.arch.hop"] == "480"
    assert flat["noise.type"] == "mixed" and flat["mel.hop"] == "480" and "mel.floor" not in flat


TYPOS = [  # (where, typo, the key it should name)
    ("", "nosie", "noise"),
    ("data", "on_eror", "data.on_error"),
    ("data.synthetic", "trakcs", "data.synthetic.tracks"),
    ("split", "valid_track", "split.valid_tracks"),
    ("audio", "segment_second", "audio.segment_seconds"),
    ("mel", "n_mel", "mel.n_mels"),
    ("filter", "cutof_hz", "filter.cutoff_hz"),
    ("noise", "tone_amplitud", "noise.tone_amplitude"),
    ("vae", "chanels", "vae.channels"),  # an architecture key of the profile
    ("vae", "kl_wieght", "vae.kl_weight"),
    ("vocoder", "mel_wieght", "vocoder.mel_weight"),
    ("vocoder.istft", "dimm", "vocoder.istft.dim"),
    ("ldm", "cond_dorp", "ldm.cond_drop"),
    ("eval", "guidence", "eval.guidance"),
]


@pytest.mark.parametrize(("where", "typo", "near"), TYPOS, ids=[f"{w}.{t}" if w else t for w, t, _ in TYPOS])
def test_a_typo_names_the_nearest_key(where, typo, near) -> None:
    raw = (
        changed(f"{where}.{typo}" if where else typo, 1)
        if where != "vocoder.istft"
        else changed("vocoder.istft", {typo: 1})
    )
    full = f"{where}.{typo}" if where else typo
    with pytest.raises(
        ParamsError,
        match=rf"^params\.yaml: {full} is not a known (key|block); did you mean "
        rf"{near}\?$",
    ):
        Params.from_dict(raw)


WRONG_TYPES = [  # (path, value, what the message says)
    ("profile", "medium", "not one of small, full"),
    ("seed", 1.5, "expected an integer, got 1.5"),
    ("data.on_error", 1, "not one of fail, skip"),
    ("data.source", "musdb", "did you mean musdb18"),
    ("data.synthetic.seconds", "long", "expected a number, got 'long'"),
    ("split.seed", "zero", "expected an integer"),
    ("split.proportions", [90, 10], "expected a list of 3 values"),
    ("audio.peak", "loud", "expected a number"),
    ("mel.hop", 480.5, "expected an integer"),
    ("filter.order", 4, "expected a list"),
    ("filter.types", ["cheby"], r"filter\.types\[0\]: 'cheby' is not one of .*did you mean chebyshev"),
    ("noise.tone_hz", ["low", "high"], r"noise\.tone_hz\[0\]: expected a number"),
    ("vae.lr", "fast", r"vae\.lr: expected a number, got 'fast' \(str\)"),
    ("vae.channels", "wide", r"vae\.channels: expected an integer"),  # an architecture key keeps its type
    ("vae.attention", 1, r"vae\.attention: expected true or false"),
    ("vocoder.discriminators", "mpd", "expected a list"),
    ("vocoder.betas", [0.8], "expected a list of 2 values"),
    ("ldm.validate_timesteps", [100, "x"], r"ldm\.validate_timesteps\[1\]: expected an integer"),
    ("eval.perceptual", "yes", "expected true or false"),
]


@pytest.mark.parametrize(("path", "value", "message"), WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_a_wrong_type_is_an_error(path, value, message) -> None:
    with pytest.raises(ParamsError, match=message):
        Params.from_dict(changed(path, value))


def test_missing_keys_and_blocks_are_errors() -> None:
    raw = copy.deepcopy(RAW)
    del raw["vocoder"]["mel_weight"]
    with pytest.raises(ParamsError, match=r"vocoder lacks vocoder\.mel_weight"):
        Params.from_dict(raw)
    raw = copy.deepcopy(RAW)
    del raw["eval"]
    with pytest.raises(ParamsError, match="lacks the block.*eval"):
        Params.from_dict(raw)


def test_numbers_pyyaml_reads_as_strings_are_numbers() -> None:
    # YAML 1.1 (PyYAML) reads `lr: 1e-4` as the string '1e-4'
    assert yaml.safe_load("lr: 1e-4")["lr"] == "1e-4"
    assert Params.from_dict(changed("vae.lr", "1e-4")).vae.lr == 1e-4


def test_the_vocoder_hop_is_the_mel_hop() -> None:
    with pytest.raises(ParamsError, match=r"vocoder\.istft\.hop is not a known key: it is derived from mel\.hop"):
        Params.from_dict(changed("vocoder.istft", {"hop": 240}))
    p = Params.from_dict(changed("mel.hop", 240))
    assert p.vocoder.arch["hop"] == 240
    hifigan = changed("vocoder.arch", "hifigan", changed("mel.hop", 240))
    with pytest.raises(ParamsError, match=r"upsample_rates: \[6, 5, 4, 2, 2\] multiply to 480.*mel\.hop \(240\)"):
        Params.from_dict(hifigan)
    ok = changed("vocoder.hifigan", {"upsample_rates": [6, 5, 4, 2], "upsample_kernel_sizes": [12, 10, 8, 4]}, hifigan)
    assert Params.from_dict(ok).vocoder.arch["hifigan"]["upsample_rates"] == [6, 5, 4, 2]


def test_block_functions_check_plain_dicts_too() -> None:
    from audiosr.data.split import make_split
    from audiosr.evaluate import grid

    assert len(grid(RAW["eval"])) == 60
    with pytest.raises(ParamsError, match=r"eval\.cutoff_hz is not a known key; did you mean eval\.cutoffs_hz\?"):
        grid({**RAW["eval"], "cutoff_hz": [4000]})
    with pytest.raises(ParamsError, match=r"split\.valid_trakcs .*did you mean split\.valid_tracks\?"):
        make_split(None, {**RAW["split"], "valid_trakcs": 3})


NYQUIST = "is not below the Nyquist frequency (24000 Hz at 48 kHz); use values below 24000"
BAD_VALUES = [  # (path: block.key, a value out of range, what the message says)
    ("seed", -1, "seed: -1 must be at least 0"),
    ("data.synthetic.tracks", 2, "data.synthetic.tracks: 2 must be at least 3"),
    ("data.synthetic.seed", -1, "data.synthetic.seed: -1 must be at least 0"),
    ("data.rendered.seconds", 0, "data.rendered.seconds: 0.0 must be positive"),
    ("data.rendered.min_top_db", 5, "data.rendered.min_top_db: 5 must be at most 0"),
    ("data.rendered.test_programs", [43, 128], "data.rendered.test_programs: 128 is not a General MIDI program"),
    ("split.valid_tracks", -1, "split.valid_tracks: -1 must be at least 0"),
    ("split.proportions", [0, 10, 50], "split.proportions: [0.0, 10.0, 50.0] must be three non-negative"),
    ("split.seed", -1, "split.seed: -1 must be at least 0"),
    ("audio.segment_seconds", 0, "audio.segment_seconds: 0.0 must be positive"),
    ("audio.peak", 1.5, "audio.peak: 1.5 must be in (0, 1]"),
    ("audio.silence_db", 0, "audio.silence_db: 0 must be below 0 (dBFS)"),
    ("mel.hop", 0, "mel.hop: 0 must be at least 1"),
    ("mel.n_mels", 0, "mel.n_mels: 0 must be at least 1"),
    ("mel.n_fft", 0, "mel.n_fft: 0 must be at least 1"),
    ("mel.win", 4096, "mel.win: 4096 must be at most mel.n_fft (2048)"),
    ("mel.fmax", 30000, "mel.fmin, mel.fmax: 20, 30000 must be 0 <= fmin < fmax <= 24000"),
    ("mel.fmin", 24000, "mel.fmin, mel.fmax: 24000, 24000 must be 0 <= fmin < fmax"),
    ("mel.fmin", -1, "mel.fmin, mel.fmax: -1, 24000 must be 0 <= fmin"),
    ("filter.types", [], "filter.types: name at least one of"),
    ("filter.order", [2, 1000], "filter.order: 1000 is not an order audiosr.degrade's filters take; use 1 to 32"),
    ("filter.order", [10, 2], "filter.order: [10, 2] must be [low, high] with low <= high"),
    ("filter.cutoff_hz", [2000, 30000], f"filter.cutoff_hz: 30000 {NYQUIST}"),
    ("filter.cutoff_hz", [0.5, 4000], "filter.cutoff_hz: [0.5, 4000.0] must be at least 1"),
    ("noise.tone_hz", [100, 30000], f"noise.tone_hz: 30000 {NYQUIST}"),
    ("noise.tone_amplitude", [0.2, 0.1], "noise.tone_amplitude: [0.2, 0.1] must be [low, high]"),
    ("noise.gaussian_amplitude", [0.001, 5], "noise.gaussian_amplitude: [0.001, 5.0] must be at most 1"),
    ("vae.steps", 0, "vae.steps: 0 must be at least 1"),
    ("vae.batch", 0, "vae.batch: 0 must be at least 1"),
    ("vae.lr", 0, "vae.lr: 0.0 must be positive"),
    ("vae.warmup", -1, "vae.warmup: -1 must be at least 0"),
    ("vae.betas", [0.5, 1.0], "vae.betas: [0.5, 1.0] must be in [0, 1)"),
    ("vae.weight_decay", -0.1, "vae.weight_decay: -0.1 must be at least 0"),
    ("vae.grad_clip", 0, "vae.grad_clip: 0.0 must be positive"),
    ("vae.validate_every", 0, "vae.validate_every: 0 must be at least 1"),
    ("vae.seed", -1, "vae.seed: -1 must be at least 0"),
    ("vae.crop_frames", 0, "vae.crop_frames: 0 must be at least 1"),
    ("vae.kl_weight", -1, "vae.kl_weight: -1.0 must be at least 0"),
    ("vae.adv_start", -1, "vae.adv_start: -1 must be at least 0"),
    ("vae.disc_channels", 0, "vae.disc_channels: 0 must be at least 1"),
    ("vae.channels", 0, "vae.channels: 0 must be at least 1"),  # an architecture key of the profile
    ("vae.multipliers", [1, 0], "vae.multipliers: 0 must be at least 1"),
    ("vocoder.crop_frames", 0, "vocoder.crop_frames: 0 must be at least 1"),
    ("vocoder.mel_weight", -1, "vocoder.mel_weight: -1.0 must be at least 0"),
    ("vocoder.fm_weight", -1, "vocoder.fm_weight: -1.0 must be at least 0"),
    ("vocoder.discriminators", [], "vocoder.discriminators: name at least one of mpd, msd, mrd"),
    ("vocoder.disc_channels_scale", 0, "vocoder.disc_channels_scale: 0.0 must be positive"),
    ("vocoder.istft", {"dim": 0}, "vocoder.istft.dim: 0 must be at least 1"),
    (
        "vocoder.hifigan",
        {"resblock_dilation_sizes": [[1, 3], [1, 0]]},
        "vocoder.hifigan.resblock_dilation_sizes: 0 must be at least 1",
    ),
    ("ldm.batch", 0, "ldm.batch: 0 must be at least 1"),
    ("ldm.crop_frames", 0, "ldm.crop_frames: 0 must be at least 1"),
    ("ldm.cond_drop", 1.0, "ldm.cond_drop must be in [0, 1)"),
    ("ldm.ema_decay", 1.0, "ldm.ema_decay: 1 must be in [0, 1)"),
    ("ldm.validate_timesteps", [-1, 100], "ldm.validate_timesteps: [-1, 100] must be at least 0"),
    ("ldm.heads", 0, "ldm.heads: 0 must be at least 1"),
    ("ldm.attention_levels", [-1], "ldm.attention_levels: -1 must be at least 0"),
    ("distill.steps", -1, "distill.steps must be >= 0"),
    ("distill.crop_frames", 0, "distill.crop_frames: 0 must be at least 1"),
    ("distill.examples", 0, "distill.examples: 0 must be at least 1"),
    ("distill.teacher_steps", 1, "distill.teacher_steps must be at least 2"),
    ("distill.guidance", 0.5, "distill.guidance: 0.5 must be at least 1"),
    ("realset.strum_clips", -1, "realset.strum_clips: -1 must be at least 0"),
    ("realset.stem_songs", -1, "realset.stem_songs: -1 must be at least 0"),
    ("realset.seconds", 0, "realset.seconds: 0.0 must be positive"),
    ("realset.peak", 0, "realset.peak: 0.0 must be in (0, 1]"),
    ("eval.cutoffs_hz", [4000, 30000], f"eval.cutoffs_hz: 30000 {NYQUIST}"),
    ("eval.cutoffs_hz", [0, 4000], "eval.cutoffs_hz: 0 must be positive"),
    ("eval.real_cutoffs_hz", [30000], f"eval.real_cutoffs_hz: 30000 {NYQUIST}"),
    ("eval.filters", [], "eval.filters: needs at least one value"),
    ("eval.order", 0, "eval.order: 0 is not an order audiosr.degrade's filters take; use 1 to 32"),
    ("eval.real_order", 40, "eval.real_order: 40 is not an order audiosr.degrade's filters take"),
    ("eval.tone_hz", 30000, f"eval.tone_hz: 30000 {NYQUIST}"),
    ("eval.tone_amplitude", 0, "eval.tone_amplitude: 0.0 must be in (0, 1]"),
    ("eval.gaussian_amplitude", 2, "eval.gaussian_amplitude: 2.0 must be in (0, 1]"),
    ("eval.clips", 0, "eval.clips: 0 must be at least 1"),
    ("eval.steps", 0, "eval.steps: 0 must be at least 1"),
    ("eval.guidance", -2, "eval.guidance: -2.0 must be at least 1"),
    ("eval.seed", -1, "eval.seed: -1 must be at least 0"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), BAD_VALUES, ids=[f"{path}={value}" for path, value, _ in BAD_VALUES]
)
def test_a_value_out_of_range_is_refused(path, value, message) -> None:
    with pytest.raises(ParamsError, match="^" + re.escape(f"params.yaml: {message}")) as error:
        Params.from_dict(changed(path, value))
    assert "\n" not in str(error.value)


def with_line(after: str, line: str | None = None, instead: str | None = None) -> tuple[str, int]:
    """params.yaml's text with `line` inserted after the first line that is `after` (or that line replaced
    by `instead`), and the (1-based) number of the new line."""
    lines = (ROOT / "params.yaml").read_text().splitlines()
    at = lines.index(after)
    if instead is None:
        lines.insert(at + 1, line)
        return "\n".join(lines) + "\n", at + 2
    lines[at] = instead
    return "\n".join(lines) + "\n", at + 1


DUPLICATES = [  # (the line after which a repeated key goes, the repeated key's line, the message's end)
    ("  order: [2, 10]", "  order: [2, 4]", "duplicate key 'order' in block 'filter'"),
    ("    seed: 0", "    seed: 1", "duplicate key 'seed' in block 'data.rendered'"),
    ("seed: 0                   # seeds the degradation draws", "seed: 1", "duplicate key 'seed' at the top level"),
]


@pytest.mark.parametrize(("after", "line", "message"), DUPLICATES, ids=[m.split("'")[1] for *_, m in DUPLICATES])
def test_a_repeated_key_is_an_error_naming_its_line(tmp_path, after, line, message) -> None:
    text, number = with_line(after, line)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=f"^{re.escape(f'params.yaml: line {number}: {message}')}$"):
        Params.load(tmp_path / "params.yaml")


def test_a_syntax_error_is_one_line_with_its_line_number(tmp_path) -> None:
    text, number = with_line("  order: [2, 10]", instead="  order: 2: 10")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(
        ParamsError, match=rf"^params\.yaml: line {number}: could not parse YAML: mapping values are not allowed here$"
    ):
        Params.load(tmp_path / "params.yaml")


def test_the_stage_entry_point_makes_a_params_error_one_line() -> None:
    def bad_params() -> None:
        raise ParamsError("params.yaml: filter.order: 0 is not an order")

    def broken() -> None:
        raise KeyError("k")

    with pytest.raises(SystemExit) as exit:
        stage_main(bad_params)
    assert exit.value.code == "test_params: params.yaml: filter.order: 0 is not an order"  # the file's name
    with pytest.raises(KeyError):  # any other error keeps its traceback
        stage_main(broken)
    with pytest.raises(SystemExit, match="^test_params: 'k'$"):  # unless the stage expects it
        stage_main(broken, KeyError)


STAGES = sorted(path.stem for path in (ROOT / "stages").glob("*.py"))


@pytest.fixture(scope="module")
def stages_on_bad_params(tmp_path_factory) -> dict[str, subprocess.Popen]:
    """Every stage script started at once (each takes seconds to import torch), each in a folder whose
    params.yaml has a filter order out of range, as DVC starts them: `python stages/<name>.py`."""
    text = (ROOT / "params.yaml").read_text()
    assert text.count("order: [2, 10]") == 1
    bad = text.replace("order: [2, 10]", "order: [2, 1000]")
    started = {}
    for name in STAGES:
        wd = tmp_path_factory.mktemp(name)
        (wd / "params.yaml").write_text(bad)
        # were the check to miss, the stage would run here, not in the repository's store
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{wd / 'mlflow.db'}"}
        started[name] = subprocess.Popen(
            stage(name), cwd=wd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_refuses_bad_params_in_one_line(stages_on_bad_params, name) -> None:
    process = stages_on_bad_params[name]
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert err.splitlines() == [
        f"{name}: params.yaml: filter.order: 1000 is not an order audiosr.degrade's filters take; use 1 to 32"
    ]


def test_a_missing_params_yaml_is_a_params_error(tmp_path) -> None:
    """So every stage says it in one line, as any other params error."""
    with pytest.raises(ParamsError, match="params.yaml: not found; run stages from the repository root"):
        Params.load(tmp_path / "params.yaml")
