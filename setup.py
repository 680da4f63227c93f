"""OMG-Seg for Detectron2. Detectron2 itself is not declared (no distribution of that name
installs from the package index); `make test` / tools/setup_env.sh installs it."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#") and line.split("<")[0].split("=")[0].split(">")[0] not in ("pytest", "installer")
]

setup(
    name="omgseg",
    version="0.1.0",
    description="OMG-Seg (One Model that is Good enough for all segmentation) as a Detectron2 plugin",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["omgseg", "omgseg.*"]),
    python_requires=">=3.9",
    install_requires=requirements,
    extras_require={"test": ["pytest"]},
)
