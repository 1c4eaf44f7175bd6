"""One import namespace, `hybridsim`, over the repository's top-level folders.

The repository keeps simulator/ and calibration/ at its top (the layout follows the data's path), while an
installed hybridsim has a single top-level package: hybridsim/ is the package root (the CLI and the
neutral core), and each folder below is mapped to its place in the namespace. Everything else about the
package lives in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "hybridsim": "hybridsim",
    "hybridsim.simulator": "simulator",
    "hybridsim.calibration": "calibration",
}
"""Import name -> repository folder."""

setup(
    package_dir=FOLDERS,
    packages=[
        f"{name}.{sub}" if sub else name
        for name, folder in FOLDERS.items()
        for sub in ("", *find_packages(folder))
    ],
)
