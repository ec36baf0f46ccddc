"""Training checkpoints: weights, optimizer, scheduler and RNG state as safetensors + JSON.

A run's checkpoint is the folder ``<out>/checkpoint`` (:data:`CHECKPOINT`): ``config.json`` and
``model.safetensors`` (the network), ``training_state.safetensors`` (optimizer tensors and the
torch RNG state) and ``state.json`` (epoch, step, history, config, optimizer scalars, scheduler).
It is written to a temporary folder and swapped in whole (:func:`hrpqct.io.atomic.atomic_folder`:
the previous checkpoint stays if the write fails); no pickle is read or written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ModelError

__all__ = ["CHECKPOINT", "save_checkpoint", "load_checkpoint", "load_checkpoint_state",
           "checkpoint_folder"]

CHECKPOINT = "checkpoint"


def save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict[str, Any]) -> None:
    """Write the checkpoint folder ``folder`` (replacing the previous one) from the live objects."""
    import torch
    from safetensors.torch import save_file

    from ..io.atomic import atomic_folder

    with atomic_folder(folder) as tmp:
        model.config.to_json_file(str(tmp / "config.json"))
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        opt_sd = optimizer.state_dict()
        tensors, scalars = {}, {}
        for pid, st in opt_sd["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"state.{pid}.{k}"] = v.detach().contiguous().cpu()
                else:
                    scalars[f"{pid}.{k}"] = v
        tensors["rng.torch"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "training_state.safetensors"))
        meta = dict(state)
        meta["optimizer"] = {"param_groups": opt_sd["param_groups"], "scalars": scalars}
        meta["scheduler"] = scheduler.state_dict()
        (tmp / "state.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def checkpoint_folder(out: Path) -> Path | None:
    """The checkpoint folder, or the previous one if a crash hit between the two renames."""
    ck = out / CHECKPOINT
    if (ck / "state.json").is_file():
        return ck
    olds = sorted(out.glob(f".{CHECKPOINT}.old-*"))
    return olds[-1] if olds and (olds[-1] / "state.json").is_file() else None


def load_checkpoint_state(out: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON part of a run's checkpoint (epoch, step, history, config...), or ``None``."""
    ck = checkpoint_folder(Path(out))
    if ck is None:
        return None
    try:
        return json.loads((ck / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{ck}: unreadable checkpoint state: {exc}") from exc


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore the model, optimizer, scheduler and torch RNG from ``folder``; returns ``state.json``."""
    import torch
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    tensors = load_file(str(folder / "training_state.safetensors"))
    opt_state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = v
    for key, v in state["optimizer"]["scalars"].items():
        pid, name = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["optimizer"]["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    return state
