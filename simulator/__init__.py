"""hybridsim: what an LLM-inference datacenter built from different hardware costs in energy and latency.

The data flows calibration -> profiles -> workload -> router -> nodes -> metrics -> reports; each
sub-package is one step of that path.
"""

__version__ = "0.1.0"
