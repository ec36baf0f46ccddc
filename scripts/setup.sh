#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv, or $HRPQCT_VENV) with every dependency
# at the versions in requirements/lock.txt. Idempotent: does nothing when the lock, pyproject.toml
# and this script are unchanged since the last successful run.
#   scripts/setup.sh            create / update the environment
#   scripts/setup.sh --relock   reinstall from the ranges in pyproject.toml and rewrite the lock
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HRPQCT_VENV:-.venv}
PYTHON=${PYTHON:-python3}
LOCK=requirements/lock.txt
relock=0
[[ ${1:-} == --relock ]] && relock=1

stamp_of() { cat "$LOCK" pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1; }
want=$(stamp_of)
if [[ $relock == 0 && -f $VENV/.hrpqct-stamp && $(cat "$VENV/.hrpqct-stamp") == "$want" ]]; then
  exit 0
fi

"$PYTHON" - <<'PY' || { echo "setup: Python >= 3.10 is required (found $($PYTHON --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
py=$VENV/bin/python
# (the grep drops this machine's pip-config notices about local mirror folders, nothing else)
pipi() {
  "$py" -m pip install --disable-pip-version-check --progress-bar off -q "$@" \
    2> >(grep -v "^WARNING: Location 'file://" >&2)
}

echo "setup: installing into $VENV (first time takes ~3 minutes and ~3.5 GB)"
if [[ $relock == 1 ]]; then C=(); else C=(-c "$LOCK"); fi
pipi "${C[@]}" pip setuptools wheel
# Build prerequisites of PyRadiomics, and torch first so that nothing pulls a CUDA build
# (torch==2.13.0 is the CPU wheel on the project's machines; see docs/install.md for GPUs).
pipi "${C[@]}" numpy versioneer "torch==2.13.0"
# PyRadiomics ships only an sdist for Python >= 3.10 and needs numpy at build time.
pipi "${C[@]}" --no-build-isolation "pyradiomics==3.0.1"
pipi "${C[@]}" -e ".[all,dev]"
# trame-slicer's displayable managers: the wheel declares slicer-core==5.11.*, but it runs on the
# locked slicer-core (checked by the import below and the browser test), hence --no-deps.
pipi "${C[@]}" --no-deps slicer-layer-dm

# Fail loudly if the compiled parts of PyRadiomics or the other native stacks do not import.
"$py" - <<'PY'
import importlib, sys
bad = []
for mod in ["radiomics._cmatrices", "radiomics._cshape", "torch", "transformers", "SimpleITK",
            "itk", "slicer", "trame_slicer.core", "xgboost", "sklearn", "skimage", "numba", "hrpqct"]:
    try:
        importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001
        bad.append(f"{mod}: {exc}")
if bad:
    sys.exit("setup: these imports failed:\n  " + "\n  ".join(bad))
PY

if [[ $relock == 1 ]]; then
  { sed -n '1,3p' "$LOCK"; "$py" -m pip freeze --all --exclude-editable | sed 's/+cpu$//' | grep -v '^hrpqct'; } > "$LOCK.new"
  mv "$LOCK.new" "$LOCK"
  want=$(stamp_of)
fi
echo "$want" > "$VENV/.hrpqct-stamp"
echo "setup: environment ready ($VENV)"
