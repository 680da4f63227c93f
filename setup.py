"""OMG-Seg for Detectron2. Detectron2 itself is not declared (no distribution of that name
installs from the package index); `make test` / tools/setup_env.sh installs it."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
_TEST_ONLY = ("pytest", "ruff", "installer")


def _name(requirement: str) -> str:
    return requirement.split("<")[0].split("=")[0].split(">")[0].strip()


requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#") and _name(line) not in _TEST_ONLY
]

setup(
    name="omgseg",
    version="0.1.0",
    description="OMG-Seg (One Model that is Good enough for all segmentation), Detectron2 plugin",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["omgseg", "omgseg.*"]),
    # Data read at run time: the official class lists and the tiny OpenCLIP model configs.
    package_data={
        "omgseg.data.datasets": ["official_class_names.json"],
        "omgseg.modeling.clip": ["model_configs/*.json"],
    },
    python_requires=">=3.9",
    install_requires=requirements,
    extras_require={"test": ["pytest", "ruff"]},
)
