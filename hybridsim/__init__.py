"""hybridsim: what an LLM-inference datacenter built from different hardware costs in energy and latency.

The data flows calibration -> profiles -> workload -> router -> nodes -> metrics -> reports. The installed
package has one top-level name and three layers (docs/architecture.md):

    hybridsim.cli           the `hybridsim` command (this folder)
    hybridsim.simulator     the repository's simulator/ folder      hybridsim.calibration  calibration/
    hybridsim.core          errors, atomic output, readers, the profile format (this folder's core/)

setup.py maps the repository's top-level simulator/ and calibration/ folders into this namespace.
"""

import os
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hybridsim")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

# Imported straight from a source checkout (python -m from the repository root), this folder shadows an
# installed copy; the sibling folders simulator/ and calibration/ are then its sub-packages, as setup.py maps
# them. In an installed copy there is no sibling simulator/ and this does nothing.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_checkout, "simulator", "__init__.py")) and _checkout not in __path__:
    __path__.append(_checkout)
