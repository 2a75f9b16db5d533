#!/usr/bin/env bash
# Regenerate docker/requirements.txt: designsim's runtime dependencies (pyproject.toml
# [project.dependencies], no test extras), resolved in a clean virtual environment and
# pinned with `pip freeze`. Run it inside the image's base so the pins match the image:
#
#   docker run --rm -v "$PWD":/src -w /src python:3.12-slim bash docker/lock.sh
#
# (Without Docker, `bash docker/lock.sh` resolves with the local python3; check the
# result installs on 3.12 — tests/action/test_action_packaging.py does the install.)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet .
{
  sed -n '1,/^# ---- pins ----$/p' docker/requirements.txt
  "$tmp/venv/bin/python" -m pip freeze --exclude designsim
} > "$tmp/requirements.txt"
mv "$tmp/requirements.txt" docker/requirements.txt
echo "docker/requirements.txt: $(grep -c '==' docker/requirements.txt) pins"
