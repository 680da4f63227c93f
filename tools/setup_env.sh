#!/usr/bin/env bash
# Create / update the project virtual environment. Installs only what is missing:
# a second run with nothing changed prints "environment up to date" and installs nothing.
#   VENV   virtual environment folder (default .venv)
#   PYTHON interpreter used to create it (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PY="$VENV/bin/python"

stamp_key() {
  cat requirements.txt setup.py tools/setup_env.sh | sha1sum | cut -c1-16
}
STAMP="$VENV/.omgseg-env-$(stamp_key)"

REPO=$(pwd)
PY="$REPO/$VENV/bin/python"
[ "${VENV:0:1}" = "/" ] && PY="$VENV/bin/python"
# Import checks run outside the repository so the source tree itself does not count as installed.
importable() { (cd / && "$PY" -c "$1") >/dev/null 2>&1; }

if [ -f "$STAMP" ] && importable "import detectron2, omgseg"; then
  echo "[setup] environment up to date ($VENV)"
  exit 0
fi

if [ ! -x "$PY" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# 1. Requirements that are not yet satisfied (checked against installed metadata, so nothing
#    already present is downloaded or reinstalled).
missing=$("$PY" - <<'PYEOF'
import re
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
for line in open("requirements.txt"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    req = Requirement(line)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        print(line)
        continue
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        print(line)
PYEOF
)
if [ -n "$missing" ]; then
  echo "[setup] installing missing requirements:" $missing
  "$PY" -m pip install --quiet -r requirements.txt
else
  echo "[setup] all requirements already satisfied"
fi

# 2. Detectron2: an importable one, else the official source build when reachable, else the
#    registry's build of upstream Detectron2 (sal-detectron2, a py3.10 pure-Python wheel whose
#    Python code runs on 3.11; its compiled _C is optional at run time).
if importable "import detectron2"; then
  echo "[setup] detectron2 already importable"
else
  installed=0
  if timeout 15 git ls-remote https://github.com/facebookresearch/detectron2.git HEAD >/dev/null 2>&1; then
    echo "[setup] building detectron2 from the official source"
    if "$PY" -m pip install --no-build-isolation "git+https://github.com/facebookresearch/detectron2.git"; then
      installed=1
    fi
  fi
  if [ "$installed" = 0 ]; then
    echo "[setup] official source unreachable: installing the registry build sal-detectron2==0.7.2"
    tmp=$(mktemp -d)
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.10 -d "$tmp" sal-detectron2==0.7.2
    "$PY" -m installer "$tmp"/sal_detectron2-*.whl
    rm -rf "$tmp"
  fi
fi

# 3. The plugin itself, editable, without touching its (already installed) dependencies.
if ! importable "import omgseg, os, sys; sys.exit(0 if os.path.samefile(os.path.dirname(omgseg.__file__), '$REPO/omgseg') else 1)"; then
  echo "[setup] pip install -e ."
  "$PY" -m pip install --quiet --no-deps --no-build-isolation -e .
fi

# 4. A system Chromium for the web demo's browser test (optional: the test skips without it).
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "[setup] chromium already installed"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] no apt-get: install Chromium yourself to run the browser test (it is skipped)"
else
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO="sudo -n"
  if [ -n "$SUDO" ] && ! sudo -n true >/dev/null 2>&1; then
    echo "[setup] not root and no passwordless sudo: chromium not installed (browser test skipped)"
  elif $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; }; then
    echo "[setup] installed chromium"
  else
    echo "[setup] could not install chromium with apt-get (browser test skipped)"
  fi
fi

(cd / && "$PY" -W ignore -c "import detectron2, torch, open_clip, omgseg; print('[setup] ok: torch', torch.__version__, '| detectron2', detectron2.__version__, '| open_clip', open_clip.__version__)")
rm -f "$VENV"/.omgseg-env-*
touch "$STAMP"
