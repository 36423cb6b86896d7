"""params.yaml is read strictly (audiosr.config): every block typed, a typo names the nearest key, a wrong
type is an error, derived values (the vocoder's hop) cannot be set."""

import copy

import pytest
import yaml

from audiosr.config import Params, ParamsError
from audiosr.tracking import flatten
from tests.conftest import ROOT, tiny_params

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
