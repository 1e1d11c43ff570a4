"""Import ``wattledger.synthetic`` even before the Rust extension is built.

Why: the generator is pure Python, and the benchmarks' DuckDB/Polars parts (and the peer
cross-check test) must run where wattledger is not installed, e.g. before the Rust extension
is built. When the package imports, it is used; otherwise the module file is loaded on its own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SYNTHETIC_PY = Path(__file__).resolve().parents[1] / "python" / "wattledger" / "synthetic.py"


def load_synthetic() -> ModuleType:
    """``wattledger.synthetic``, from the installed package if possible, else from the source tree."""
    try:
        from wattledger import synthetic

        return synthetic
    except ImportError:
        name = "_wattledger_synthetic_standalone"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, SYNTHETIC_PY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
