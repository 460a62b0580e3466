"""mmsim: model the kernel paths where GUP, direct I/O, writeback and reclaim meet.

The public API is small; everything else is importable by module (the kernel
model's modules are named after the kernel files they model).

>>> import mmsim
>>> result = mmsim.check("dio/001", policy="baseline")
>>> result.verdict
'Sometimes'
"""

from __future__ import annotations

from pathlib import Path as _Path
from typing import TYPE_CHECKING, Any

# In a source checkout strategies/ sits beside mmsim/ (an install puts it inside,
# as mmsim.strategies); let ``mmsim.strategies`` resolve the same way in both.
_here = _Path(__file__).resolve().parent
if (
    not (_here / "strategies").is_dir()
    and (_here.parent / "strategies" / "__init__.py").is_file()
):
    __path__.append(str(_here.parent))

# The public names, by the module that defines them. They are imported on first
# use (PEP 562), so ``import mmsim`` and the command line stay fast: pydantic's
# models are built only when something needs them.
_PUBLIC = {
    "ReplayError": "mmsim._api",
    "check": "mmsim._api",
    "cost": "mmsim._api",
    "replay_counterexample": "mmsim._api",
    "CostModel": "mmsim.cost_model",
    "Oracle": "mmsim.engine",
    "Bounds": "mmsim.explorer",
    "Verdict": "mmsim.explorer",
    "explore": "mmsim.explorer",
    "Kernel": "mmsim.machine",
    "ORACLES": "mmsim.oracles",
    "Objection": "mmsim.policy",
    "Policy": "mmsim.policy",
    "Stack": "mmsim.policy",
    "CheckResult": "mmsim.results",
    "CostResult": "mmsim.results",
    "CounterexampleFile": "mmsim.results",
    "load_counterexample": "mmsim.results",
    "SCENARIOS": "mmsim.scenarios",
    "WORKLOADS": "mmsim.workloads",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mmsim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


if TYPE_CHECKING:
    from mmsim._api import ReplayError, check, cost, replay_counterexample
    from mmsim.cost_model import CostModel
    from mmsim.engine import Oracle
    from mmsim.explorer import Bounds, Verdict, explore
    from mmsim.machine import Kernel
    from mmsim.oracles import ORACLES
    from mmsim.policy import Objection, Policy, Stack
    from mmsim.results import (
        CheckResult,
        CostResult,
        CounterexampleFile,
        load_counterexample,
    )
    from mmsim.scenarios import SCENARIOS
    from mmsim.workloads import WORKLOADS

__version__ = "0.1.0"

__all__ = [
    "ORACLES",
    "SCENARIOS",
    "WORKLOADS",
    "Bounds",
    "CheckResult",
    "CostModel",
    "CostResult",
    "CounterexampleFile",
    "Kernel",
    "Objection",
    "Oracle",
    "Policy",
    "ReplayError",
    "Stack",
    "Verdict",
    "check",
    "cost",
    "explore",
    "load_counterexample",
    "replay_counterexample",
]
