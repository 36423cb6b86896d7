"""The full profile against AudioSR's reference implementation (PyPI audiosr 0.0.7), through the importer.

The fixtures in tests/fixtures/audiosr/ were written by tools/audiosr_reference.py, which runs the
reference in a throwaway environment: its networks at a tiny width with seeded random weights saved in
its checkpoint layout, fixed inputs and the reference's outputs, and the key names and shapes of the
published checkpoint. The reference lays mels out time first, (B, T, F), and latents (B, C, T, F); this
pipeline's are (B, F, T) and (B, C, F, T), hence the transposes. Tolerance: fp32, 1e-4 relative to each
output's largest magnitude (the differences measured are about 1e-6: summation order).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from audiosr.audio import MelConfig, log_mel
from audiosr.inference.model import ModelError
from audiosr.inference.restore import Pipeline
from audiosr.models.diffusion import Schedule, guided, sample_ddim
from audiosr.models.unet import build_unet
from audiosr.models.vae import build_vae
from audiosr.models.vocoder import build_vocoder
from audiosr.published import NULL_LATENT, architecture, convert, full_architecture, import_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "audiosr"
TOLERANCE = 1e-4


def _reference_config() -> dict:
    return json.loads((FIXTURES / "tiny_config.json").read_text())


def tiny_architecture() -> dict:
    cfg = _reference_config()
    params = cfg["latent_diffusion_params"]
    first = params["first_stage_config"]["params"]
    return architecture(params["unet_config"]["params"], first["ddconfig"], first["embed_dim"], cfg["vocoder"])


def close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    err = float((ours - theirs).abs().max())
    assert err <= TOLERANCE * float(theirs.abs().max()), f"max error {err:.3g}"


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / "tiny_io.safetensors"))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("import") / "audiosr_tiny"
    import_checkpoint(FIXTURES / "tiny_checkpoint.bin", out, tiny_architecture(), n_mels=16)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_folder) -> Pipeline:
    return Pipeline.load(tiny_folder)


def test_the_full_profile_has_audiosrs_parameter_counts() -> None:
    counts = json.loads((FIXTURES / "full_layout.json").read_text())["counts"]
    arch = full_architecture()
    with torch.device("meta"):
        vae, unet = build_vae(arch["vae"], 256), build_unet(arch["ldm"], 16)
        vocoder = build_vocoder(arch["vocoder"], 256, 480)
    vocoder.remove_weight_norm()  # AudioSR folds it away when it builds its vocoder

    def n(*modules: torch.nn.Module) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    assert n(unet) == counts["unet"] == 258_195_088
    assert n(vae.encoder, vae.quant_conv) == counts["vae_encoder"]
    assert n(vae.decoder, vae.post_quant_conv) == counts["vae_decoder"]
    assert n(vocoder) == counts["vocoder"]


def test_the_importer_maps_every_key_of_the_published_layout() -> None:
    """The published checkpoint's layout (names and shapes, as meta tensors: no memory) converts with
    nothing left over: every group it does not import is one of the deliberately unused ones."""
    layout = json.loads((FIXTURES / "full_layout.json").read_text())["keys"]
    state = {k: torch.empty(v["shape"], device="meta") for k, v in layout.items()}
    for key in [k for k in state if k.startswith("cond_stage_models.0.vae.")]:  # AudioSR's copy of the VAE
        twin = "first_stage_model." + key[len("cond_stage_models.0.vae.") :]
        state[key] = state[twin]
    state["alphas_cumprod"] = Schedule(kind="cosine").alphas_cumprod.float()
    state["scale_factor"] = torch.tensor(0.5)
    parts, config, notes = convert(state, Path("pytorch_model.bin"))
    assert set(parts) == {"vae", "ldm", "vocoder"} and not notes
    unused = config["imported"]["unused"]
    condition = "cond_stage_models.0.vae."
    first = ["first_stage_model.encoder.", "first_stage_model.quant_conv."]  # the condition VAE's encodes
    assert set(unused) == {"model_ema.", "schedule buffers", "logvar", "clap.", *first} | {
        f"{condition}{p}" for p in ("decoder.", "post_quant_conv.", "vocoder.")
    }
    imported = sum(len(state) for state, _ in parts.values())
    vocoder_norms = sum(k.endswith("original0") for k in parts["vocoder"][0])  # a plain weight gives g and v
    assert imported - vocoder_norms + sum(unused.values()) + 1 == len(layout)  # + scale_factor


def test_the_mel_front_end_is_audiosrs(io) -> None:
    mel = log_mel(io["mel_waveform"][None], MelConfig(n_mels=256))[0]
    close(mel.T, io["mel_log_mel"])


def test_the_vae_reproduces_the_reference(tiny, io) -> None:
    mel = io["vae_input"][:, 0].transpose(1, 2)  # (B, T, F) -> (B, F, T)
    with torch.no_grad():
        mean, logvar = tiny.vae.encode(mel)
        close(mean.transpose(2, 3), io["vae_mean"])
        close(logvar.transpose(2, 3), io["vae_logvar"])
        decoded = tiny.vae.decode(io["vae_mean"].transpose(2, 3))
    close(decoded.transpose(1, 2)[:, None], io["vae_decoded"])


@pytest.mark.parametrize("t", [1, 500, 999])
def test_the_unet_reproduces_the_reference(tiny, io, t) -> None:
    x = io["unet_x"].transpose(2, 3)
    with torch.no_grad():
        v = tiny.unet(x, torch.full((len(x),), float(t)))
    close(v.transpose(2, 3), io[f"unet_out_t{t}"])


def test_the_vocoder_reproduces_the_reference(tiny, io) -> None:
    with torch.no_grad():
        wave = tiny.vocoder(io["vocoder_mel"])
    assert wave.shape == (1, 10 * 480)
    close(wave, io["vocoder_waveform"][:, 0, : 10 * 480])  # AudioSR's HiFi-GAN gives 16 samples more


@pytest.mark.parametrize("eta", [0, 1])
def test_ddim_with_guidance_reproduces_the_reference(tiny, io, eta) -> None:
    """AudioSR's sampler: 5 DDIM steps at its uniform spacing, guidance 3.5 against its constant null
    condition, the condition scaled by the latent scale; eta 1 with the noise the reference drew."""
    assert tiny.schedule.timesteps(5) == [801, 601, 401, 201, 1]
    assert tiny.null == pytest.approx(NULL_LATENT * 0.75)
    cond = io["ddim_c"].transpose(2, 3) * tiny.scale
    fn = guided(lambda x, t: tiny.unet(x, t), cond, torch.full_like(cond, tiny.null), 3.5)
    noises = [z.transpose(2, 3) for z in io["ddim_eta1_noise"]] if eta else None
    with torch.no_grad():
        z = sample_ddim(
            fn, io["ddim_x_T"].transpose(2, 3), tiny.schedule.timesteps(5), tiny.schedule, eta=eta, noises=noises
        )
    close(z.transpose(2, 3), io[f"ddim_eta{eta}_sample"])


def test_an_imported_model_restores_audio_with_its_own_sampler(tiny) -> None:
    """The CLI's path on the imported model: a stereo clip at 16 kHz, every channel restored to 48 kHz
    with AudioSR's sampler (DDIM at eta 1 and guidance 3.5; 50 steps by default, 3 here to keep the test
    short). Its fresh noise of each step is drawn per window, so the batch does not change the result."""
    assert tiny.sampling == {"sampler": "ddim_eta1", "steps": 50, "guidance": 3.5}
    assert tiny.steps_for(None) == 50
    t = np.arange(8000) / 16000
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)]).astype(np.float32)
    out = tiny.upsample(x, 16000, steps=3, cutoff_hz=7000)
    assert out.wave.shape == (2, 24000) and np.isfinite(out.wave).all()
    one_by_one = tiny.upsample(x, 16000, steps=3, cutoff_hz=7000, batch=1).wave  # the same, to rounding
    assert np.abs(out.wave - one_by_one).max() < 1e-5
    deterministic = tiny.upsample(x, 16000, steps=3, cutoff_hz=7000, sampler="ddim").wave
    assert np.abs(out.wave - deterministic).max() > 1e-3
    # below the cutoff the output keeps the input (the band merge ran): the 440 Hz sine's level (random
    # weights: the adaptive merge would take a pure tone the model does not make for hum)
    spectrum = np.abs(np.fft.rfft(out.wave[0])) / (len(out.wave[0]) / 2)
    assert spectrum[220] == pytest.approx(0.3, rel=0.1)


def test_the_importer_refuses_what_is_not_an_audiosr_checkpoint(tmp_path) -> None:
    good = torch.load(FIXTURES / "tiny_checkpoint.bin", weights_only=True)["state_dict"]
    arch = tiny_architecture()

    def refused(state, pattern: str, name: str = "bad.bin") -> None:
        path = tmp_path / name
        torch.save({"state_dict": state}, path)
        with pytest.raises(ModelError, match=pattern):
            import_checkpoint(path, tmp_path / "out", arch, n_mels=16)
        assert not (tmp_path / "out").exists()  # nothing half-written

    refused({k: v for k, v in good.items() if k != "model.diffusion_model.out.2.weight"}, r"U-Net .*missing 1")
    refused({**good, "model.diffusion_model.extra.weight": torch.zeros(1)}, r"U-Net .*unexpected 1")
    refused({**good, "first_stage_model.decoder.conv_in.weight": torch.zeros(3)}, r"VAE tensor decoder.conv_in")
    refused({**good, "something.else": torch.zeros(1)}, r"does not know \(something.else\)")
    refused({k: v for k, v in good.items() if k != "scale_factor"}, r"no scale_factor")
    refused({k: v for k, v in good.items() if not k.startswith("model.")}, r"not an AudioSR checkpoint")
    refused({**good, "alphas_cumprod": torch.linspace(1, 0, 1000)}, r"schedule is not AudioSR's")
    (tmp_path / "text.bin").write_text("not a checkpoint")
    with pytest.raises(ModelError, match=r"text.bin: not a PyTorch checkpoint"):
        import_checkpoint(tmp_path / "text.bin", tmp_path / "out", arch, n_mels=16)
    with pytest.raises(ModelError, match=r"missing.bin: no such file"):
        import_checkpoint(tmp_path / "missing.bin", tmp_path / "out", arch, n_mels=16)


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path) -> None:
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    torch.save({"state_dict": Payload()}, tmp_path / "evil.bin")
    with pytest.raises(ModelError, match=r"evil.bin: not a PyTorch checkpoint that loads without running code"):
        import_checkpoint(tmp_path / "evil.bin", tmp_path / "out", tiny_architecture(), n_mels=16)
    assert not (tmp_path / "ran").exists()


def test_the_command_line_restores_and_describes_an_imported_model(tiny_folder, tmp_path) -> None:
    """`audiosr info` and `audiosr upsample --model FOLDER` on the imported model, as a user runs them."""
    from tests.test_upsample import music, run, write

    folder = tmp_path / "imported"
    shutil.copytree(tiny_folder, folder)
    info = run("info", folder)
    assert info.exit_code == 0, info.output
    assert "50 ddim_eta1 steps at guidance 3.5" in info.output
    src = write(tmp_path / "take.wav", np.stack([music(20_000), music(20_000, seed=1)]), 24_000)
    r = run("upsample", src, "--model", folder, "--steps", 2, "--cutoff", 6000, "-q")
    assert r.exit_code == 0, r.output
    out, sr = sf.read(tmp_path / "take_48k.wav", always_2d=True)
    assert sr == 48_000 and out.shape == (40_000, 2)


def test_import_on_the_command_line_fails_in_one_line(tmp_path) -> None:
    from tests.test_upsample import run

    (tmp_path / "notes.txt").write_text("hello")
    r = run("import-audiosr", tmp_path / "notes.txt", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "notes.txt: not a PyTorch checkpoint" in r.output
    (tmp_path / "out").mkdir()
    r = run("import-audiosr", tmp_path / "notes.txt", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "out: exists; choose another --output or pass --force" in r.output
    # the tiny checkpoint is AudioSR's layout at other widths than the published one: named as such
    r = run("import-audiosr", FIXTURES / "tiny_checkpoint.bin", "-o", tmp_path / "full")
    assert r.exit_code == 1 and "is not AudioSR's layout" in r.output and not (tmp_path / "full").exists()


def _segments(n_mels: int, n: int = 4, frames: int = 64):
    """n random segments of `frames` mel frames: enough for a training task to start."""
    import pandas as pd

    from audiosr.data.store import SegmentSet

    rng = np.random.default_rng(0)
    mel = MelConfig(n_mels=n_mels)
    wave = (rng.standard_normal((n, frames * mel.hop)) * 3000).astype(np.int16)
    mels = rng.normal(-4, 2, (n, n_mels, frames)).astype(np.float16)
    table = pd.DataFrame({"track": ["t"] * n, "start": 0.0})
    return mel, SegmentSet(Path("."), wave, mels, table, {"mel": mel.to_dict(), "segments": n})


def test_training_starts_from_an_imported_model(tiny_folder) -> None:
    """vae.init / vocoder.init / ldm.init: each task starts from the folder's part (the fine-tuning path);
    a part of another architecture is one line naming the key."""
    import yaml

    from audiosr.config import model_block
    from audiosr.train.distributed import Dist
    from audiosr.train.ldm import LDMTask
    from audiosr.train.vae import VAETask
    from audiosr.train.vocoder import VocoderTask

    arch = tiny_architecture()
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    mel, data = _segments(16)
    d = Dist()

    def block(part: str, **extra) -> object:
        sizes = {k: v for k, v in arch[part].items() if k not in ("design", "schedule", "null_latent", "arch")}
        return model_block(part, {**params[part], **sizes, "init": str(tiny_folder), **extra}, "full", mel.hop)

    imported = {part: load_file(str(tiny_folder / f"{part}.safetensors")) for part in ("vae", "ldm", "vocoder")}
    vae = VAETask(block("vae", crop_frames=32, disc_channels=32), mel, data, data, d)
    assert all(torch.equal(v, imported["vae"][k]) for k, v in vae.vae.state_dict().items())
    vocoder = VocoderTask(block("vocoder", crop_frames=8), mel, data, data, d)
    assert all(torch.equal(v, imported["vocoder"][k]) for k, v in vocoder.gen.state_dict().items())
    config = json.loads((tiny_folder / "config.json").read_text())
    ldm = LDMTask(block("ldm", crop_frames=32), imported["vae"], config["vae"], data, data, data, data, d)
    assert all(torch.equal(v, imported["ldm"][k]) for k, v in ldm.unet.state_dict().items())
    assert ldm.null == pytest.approx(NULL_LATENT * 0.75) and ldm.schedule.kind == "cosine"
    with pytest.raises(ValueError, match=r"vae.init: .* is another architecture than this profile's"):
        VAETask(block("vae", crop_frames=32, channels=64), mel, data, data, d)
