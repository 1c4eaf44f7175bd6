"""Bundled model architectures, so that a machine can be calibrated with no weights and no network.

The energy and time of a forward pass depend on the shapes of the matrices (layers, hidden size, heads,
vocabulary), not on the values in them. A randomly initialised model with Llama-2 7B's architecture costs
what Llama-2 7B costs, to within the small effect that weight values have on power draw. Each JSON file in
`archs/` holds one transformers config (`hf_config`) plus a display name and where the numbers came from;
`tiny-*` configs exist for tests and smoke runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridsim.core.errors import HybridsimError

ARCHS_DIR = Path(__file__).resolve().parent / "archs"


@dataclass(frozen=True)
class Arch:
    """One bundled architecture."""

    name: str
    """The file's stem, what `--arch` takes, e.g. 'llama2-7b'."""
    display_name: str
    """What the profile's `model` field says, e.g. 'Llama-2 (7B)'."""
    description: str
    source: str
    hf_config: dict[str, Any]
    """Keyword arguments of the transformers config class, including `model_type`."""

    @property
    def model_type(self) -> str:
        return str(self.hf_config["model_type"])

    def build_config(self) -> Any:
        """The transformers `PretrainedConfig` for this architecture (imports transformers)."""
        from transformers import AutoConfig

        values = {key: value for key, value in self.hf_config.items() if key != "model_type"}
        return AutoConfig.for_model(self.model_type, **values)


def list_archs() -> list[str]:
    """Names of the bundled architectures, sorted."""
    return sorted(path.stem for path in ARCHS_DIR.glob("*.json"))


def load_arch(name: str) -> Arch:
    """The bundled architecture called `name`; `HybridsimError` listing the known names otherwise."""
    path = ARCHS_DIR / f"{name}.json"
    if not path.is_file():
        raise HybridsimError(f"--arch: unknown architecture {name!r} (known: {', '.join(list_archs())})")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        config = dict(document["hf_config"])
        if "model_type" not in config:
            raise KeyError("hf_config.model_type")
        return Arch(
            name=name,
            display_name=str(document.get("display_name", name)),
            description=str(document.get("description", "")),
            source=str(document.get("source", "")),
            hf_config=config,
        )
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise HybridsimError(f"{path}: malformed architecture file: {error}") from None
