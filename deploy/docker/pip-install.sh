#!/bin/sh
# Installs requirement groups (see requirements.py) into the image's virtual environment /opt/elm: from the
# wheelhouse alone when it has wheels (deploy/scripts/bootstrap.sh fills it; no package index needed), else
# from the package index, with torch from TORCH_INDEX_URL when that build argument is set.
set -eu
python3 /build/requirements.py /build/pyproject.toml "$@" > /tmp/requirements.txt
if ls /wheels/*.whl >/dev/null 2>&1; then
  /opt/elm/bin/pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.txt
else
  torch=$(grep '^torch' /tmp/requirements.txt || true)
  if [ -n "$torch" ] && [ -n "${TORCH_INDEX_URL:-}" ]; then
    /opt/elm/bin/pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "$torch"
  fi
  /opt/elm/bin/pip install --no-cache-dir -r /tmp/requirements.txt
fi
rm /tmp/requirements.txt
