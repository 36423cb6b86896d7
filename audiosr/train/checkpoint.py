"""Checkpoints and model folders: safetensors for tensors, JSON for everything else.

Nothing here unpickles: a checkpoint is ``state.safetensors`` (model, EMA and optimizer tensors, torch
RNG state) plus ``state.json`` (step, optimizer hyper-parameters, numpy/python RNG state, the run's
fingerprint, the training's totals so far). A model folder is ``model.safetensors`` + ``config.json``.
Both are written to a temporary folder and renamed, so a run killed mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from audiosr.data.store import atomic_dir, write_json
from audiosr.models.load import load_model as load_model  # a model folder's reader lives with the models


def fingerprint(obj: dict) -> str:
    """A stable hash of a run's identity (params, data meta): a checkpoint from another run is not resumed."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


PACKAGE = Path(__file__).resolve().parents[1]  # the audiosr package's folder


def code_fingerprint(package: Path = PACKAGE) -> str:
    """A hash of the package's Python sources (their paths and bytes), part of a training's identity: where
    a change to the code makes DVC run a training stage again, its last run's checkpoint, finished or not,
    is not resumed (a finished one would export the old weights unchanged)."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _optimizer_split(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    state = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}/{pid}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_join(opt: torch.optim.Optimizer, prefix: str, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "/"):
            pid, key = name[len(prefix) + 1 :].split("/", 1)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split("/", 1)
        state.setdefault(int(pid), {})[key] = value
    # JSON turned tuples (betas) into lists; the optimizer expects them back as they were
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    path: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    run_fingerprint: str,
    totals: dict | None = None,
) -> None:
    """Write the full training state at `step` to folder `path` (atomically); `totals`: the training's
    accumulated seconds, samples and invocations up to `step` (see `read_totals`)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value.detach().cpu().contiguous()
    opt_meta = {}
    for name, opt in optimizers.items():
        t, m = _optimizer_split(opt, f"optim/{name}")
        tensors.update(t)
        opt_meta[name] = m
    tensors["rng/torch"] = torch.get_rng_state()
    np_state = np.random.get_state()
    meta = {
        "step": step,
        "fingerprint": run_fingerprint,
        "optimizers": opt_meta,
        "rng": {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]], "python": random.getstate()},
        "totals": {**(totals or {}), "steps": step},
    }
    with atomic_dir(path) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"))
        write_json(tmp / "state.json", meta)


def load_checkpoint(
    path: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer], run_fingerprint: str
) -> int:
    """Restore a checkpoint written by save_checkpoint into modules and optimizers; returns its step,
    or 0 when there is none or it belongs to another run (other params or data)."""
    if not (path / "state.json").exists():
        return 0
    meta = json.loads((path / "state.json").read_text())
    if meta.get("fingerprint") != run_fingerprint:
        return 0
    tensors = load_file(str(path / "state.safetensors"))
    for name, module in modules.items():
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in optimizers.items():
        _optimizer_join(opt, f"optim/{name}", tensors, meta["optimizers"][name])
    torch.set_rng_state(tensors["rng/torch"])
    np_state = meta["rng"]["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    py = meta["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    return int(meta["step"])


def read_totals(path: Path, run_fingerprint: str) -> dict | None:
    """The totals a checkpoint of this run holds (steps, seconds, samples, invocations), or None when there
    is no checkpoint of this run; a checkpoint written before totals were kept counts as one invocation of
    unknown duration (seconds 0)."""
    if not (path / "state.json").exists():
        return None
    meta = json.loads((path / "state.json").read_text())
    if meta.get("fingerprint") != run_fingerprint:
        return None
    return {"seconds": 0.0, "samples": 0, "invocations": 1, **meta.get("totals", {}), "steps": int(meta["step"])}


def save_model(path: Path, state: dict[str, torch.Tensor], config: dict) -> None:
    """A finished model: `path`/model.safetensors + config.json, written atomically."""
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"))
        write_json(tmp / "config.json", config)


def init_from(module: torch.nn.Module, folder: str | None, part: str, arch: dict, where: str) -> None:
    """Start `module` from the `part` ("vae", "ldm" or "vocoder") of the pipeline folder `folder` (an
    imported AudioSR, a packaged model); None leaves it as built. A folder whose part is another
    architecture than `arch` (the profile's with the params' overrides) is one error line naming `where`."""
    if folder is None:
        return
    path = Path(folder)
    file, config_file = path / f"{part}.safetensors", path / "config.json"
    if not (file.is_file() and config_file.is_file()):
        raise ValueError(f"{where}: {folder} is not a pipeline folder (no {file.name} and config.json)")
    theirs = json.loads(config_file.read_text()).get(part, {}).get("arch")
    ours = {k: v for k, v in arch.items() if k != "hop"}
    if {k: v for k, v in (theirs or {}).items() if k != "hop"} != ours:
        raise ValueError(
            f"{where}: {folder}'s {part} is another architecture than this profile's; set profile (and the "
            f"block's size keys) to match it, e.g. profile: full for an imported AudioSR"
        )
    module.load_state_dict(load_file(str(file)))
