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

# In a source checkout strategies/ sits beside mmsim/ (an install puts it inside,
# as mmsim.strategies); let ``mmsim.strategies`` resolve the same way in both.
_here = _Path(__file__).resolve().parent
if (
    not (_here / "strategies").is_dir()
    and (_here.parent / "strategies" / "__init__.py").is_file()
):
    __path__.append(str(_here.parent))

from mmsim._api import ReplayError as ReplayError  # noqa: E402
from mmsim._api import check as check  # noqa: E402
from mmsim._api import cost as cost  # noqa: E402
from mmsim._api import replay_counterexample as replay_counterexample  # noqa: E402
from mmsim.cost_model import CostModel as CostModel  # noqa: E402
from mmsim.engine import Oracle as Oracle  # noqa: E402
from mmsim.explorer import Bounds as Bounds  # noqa: E402
from mmsim.explorer import Verdict as Verdict  # noqa: E402
from mmsim.explorer import explore as explore  # noqa: E402
from mmsim.machine import Kernel as Kernel  # noqa: E402
from mmsim.oracles import ORACLES as ORACLES  # noqa: E402
from mmsim.policy import Objection as Objection  # noqa: E402
from mmsim.policy import Policy as Policy  # noqa: E402
from mmsim.policy import Stack as Stack  # noqa: E402
from mmsim.results import CheckResult as CheckResult  # noqa: E402
from mmsim.results import CostResult as CostResult  # noqa: E402
from mmsim.results import CounterexampleFile as CounterexampleFile  # noqa: E402
from mmsim.results import load_counterexample as load_counterexample  # noqa: E402
from mmsim.scenarios import SCENARIOS as SCENARIOS  # noqa: E402
from mmsim.workloads import WORKLOADS as WORKLOADS  # noqa: E402

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
