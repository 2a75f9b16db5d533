#!/usr/bin/env bash
# Build the action's image and run it the way GitHub's runner runs a Docker action, on a
# machine with no Docker daemon and no container registry (root, Debian or Ubuntu), against
# local fakes of GitHub and Gemini on 127.0.0.1:
#   1. tools: podman, buildah, mmdebstrap, runc from the distribution's packages (apt-get);
#   2. a base image built locally with mmdebstrap from this machine's own apt sources (the
#      mirrors it can reach) and `podman import`ed; the Dockerfile's BASE build argument
#      points at it (its default stays the official python:3.12-slim pinned by digest);
#   3. `podman build` of the project's Dockerfile, with the host's pip configuration and CA
#      bundle passed as build secrets (never stored in a layer); prints build time and size;
#   4. one pull-request review end to end inside the container (/github/workspace,
#      GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, INPUT_*): one comment, statuses
#      pending then success, outputs, step summary, and a report that uid 1001 (the runner's
#      user) can read — checked with setpriv;
#   5. a dry run on a checked-out rulebook: no token, no key, no call to either fake, nothing written.
# Why podman and these flags: /work/shared/CONTAINER.md-style facts of such machines —
# crun refuses hybrid cgroups (so --isolation chroot to build, --runtime runc to run), the
# default rlimits are not permitted (explicit --ulimit), no registry resolves (--pull=never).
#
# Usage: bash docker/selftest.sh     (from .ci/run, with the project's venv active: the fakes
#        are the suite's own, tests/fixtures/selftest/selftest.py)
# Environment: DESIGNSIM_SELFTEST_DIR (work dir, default /var/tmp/designsim-selftest; the base
#   image tarball is kept there), DESIGNSIM_SELFTEST_BASE (use this base image instead of
#   building one, e.g. a pulled python:3.12-slim), DESIGNSIM_SELFTEST_FLAVOURS ("review" by
#   default; "review batch" also builds the batch image and prints its size).
# Exit: 0 all checks passed; 1 a check failed or the container part cannot run here (the
#   reason is printed on one line starting "selftest: cannot").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
WORK="${DESIGNSIM_SELFTEST_DIR:-/var/tmp/designsim-selftest}"
IMAGE="localhost/designsim-selftest:latest"
PY="${PYTHON:-python3}"
HOST_PY="$(command -v "$PY")"
STARTED=$SECONDS

say() { printf 'selftest: %s\n' "$*" >&2; }
cannot() { say "cannot run the container selftest here: $*"; exit 1; }
fail() { say "FAILED: $*"; exit 1; }
mkdir -p "$WORK"
chmod 755 "$WORK"

# --- 1. tools ---------------------------------------------------------------------------
need=()
tools="podman runc setpriv"; [ -n "${DESIGNSIM_SELFTEST_BASE:-}" ] || tools="$tools mmdebstrap"
for tool in $tools; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || cannot "missing ${need[*]} and not root, so they cannot be installed (apt-get needs root)"
  command -v apt-get >/dev/null || cannot "missing ${need[*]} and no apt-get (this script installs them from Debian/Ubuntu packages)"
  say "installing podman buildah mmdebstrap runc from the distribution's packages"
  t=$SECONDS
  apt-get update -qq || cannot "apt-get update failed (no package mirror reachable?)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah mmdebstrap runc uidmap util-linux ca-certificates </dev/null >/dev/null \
    || cannot "apt-get install of podman buildah mmdebstrap runc failed"
  say "tools installed in $((SECONDS - t)) s"
fi
[ "$(id -u)" = 0 ] || cannot "podman builds here as root only (rootless podman needs subuid ranges this script does not set up)"
"$HOST_PY" -c 'import designsim, responses, openapi_core' 2>/dev/null \
  || cannot "$HOST_PY lacks the project and its test extra (activate the venv .ci/run creates, or pip install -e '.[test]')"

# --- 2. base image -----------------------------------------------------------------------
apt_sources() {  # one-line "deb URI SUITE COMPONENTS" entries of this machine's enabled apt sources
  "$HOST_PY" - <<'PY'
import glob, re
out = []
for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for block in re.split(r"\n\s*\n", open(f, encoding="utf-8").read()):
        kv = {}
        for line in block.splitlines():
            if line.startswith(("#", " ", "\t")) or ":" not in line:
                continue
            k, v = line.split(":", 1)
            kv[k.strip().lower()] = v.split()
        if kv.get("enabled", ["yes"])[0].lower() == "no" or "uris" not in kv or "deb" not in kv.get("types", ["deb"]):
            continue
        out += [f"deb {u} {s} {' '.join(kv.get('components', []))}".strip() for u in kv["uris"] for s in kv.get("suites", [])]
for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(f, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    out += [re.sub(r"\s+", " ", l.split("#", 1)[0].strip()) for l in lines if l.split("#", 1)[0].strip().startswith("deb ")]
print("\n".join(out))
PY
}
if [ -n "${DESIGNSIM_SELFTEST_BASE:-}" ]; then
  BASE="$DESIGNSIM_SELFTEST_BASE"
  podman image exists "$BASE" || podman pull --quiet "$BASE" >/dev/null || cannot "cannot pull the base image $BASE"
else
  . /etc/os-release
  SUITE="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"
  BASE="localhost/designsim-base:$SUITE"
  if ! podman image exists "$BASE"; then
    sources="$(apt_sources)"
    [ -n "$sources" ] || cannot "no enabled apt sources to build a base image from"
    say "building base image $BASE with mmdebstrap from: $(echo "$sources" | awk '{print $2}' | sort -u | tr '\n' ' ')"
    t=$SECONDS
    echo "$sources" | mmdebstrap --quiet --variant=minbase --include=ca-certificates,python3,python3-venv \
      "$SUITE" "$WORK/base.tar" - || cannot "mmdebstrap could not build a $SUITE root file system"
    podman import --quiet --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' "$WORK/base.tar" "$BASE" >/dev/null
    rm -f "$WORK/base.tar"
    say "base image built in $((SECONDS - t)) s"
  fi
fi

# --- 3. build ----------------------------------------------------------------------------
# The host's pip settings the build may need (an index URL, a CA bundle for a TLS-re-signing
# proxy), as build secrets: a pip.conf with only the http(s) index settings, and the bundle.
secrets="$(mktemp -d "$WORK/secrets.XXXXXX")"
trap 'rm -rf "$secrets"' EXIT
cert="${PIP_CERT:-$("$HOST_PY" -m pip config get global.cert 2>/dev/null || true)}"
cert="${cert:-${SSL_CERT_FILE:-${REQUESTS_CA_BUNDLE:-}}}"
{
  echo "[global]"
  for key in index-url extra-index-url trusted-host; do
    value="$("$HOST_PY" -m pip config get "global.$key" 2>/dev/null || true)"
    env_name="PIP_$(echo "$key" | tr 'a-z-' 'A-Z_')"
    value="${!env_name:-$value}"
    value="$(printf '%s\n' $value | grep -E '^(https?://|[A-Za-z0-9.-]+$)' | tr '\n' ' ' || true)"
    [ -n "${value// }" ] && echo "$key = $value"
  done
  [ -n "$cert" ] && [ -f "$cert" ] && echo "cert = /run/secrets/pipcert"
} > "$secrets/pip.conf"
if [ -n "$cert" ] && [ -f "$cert" ]; then cp "$cert" "$secrets/pipcert"; else : > "$secrets/pipcert"; fi

podman_build() {  # $1 flavour, $2 tag
  podman build --quiet --isolation chroot --network host --pull=never \
    --build-arg "BASE=$BASE" --build-arg "FLAVOUR=$1" \
    --secret "id=pipconf,src=$secrets/pip.conf" --secret "id=pipcert,src=$secrets/pipcert" \
    -t "$2" "$REPO" >/dev/null
}
image_mb() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f", $1 / 1e6}'; }
base_mb="$(image_mb "$BASE")"
for flavour in ${DESIGNSIM_SELFTEST_FLAVOURS:-review}; do
  tag="$IMAGE"; [ "$flavour" = review ] || tag="localhost/designsim-selftest:$flavour"
  t=$SECONDS
  podman_build "$flavour" "$tag" || fail "podman build (FLAVOUR=$flavour) failed"
  size="$(image_mb "$tag")"
  say "image $tag (FLAVOUR=$flavour): built in $((SECONDS - t)) s, $size MB ($((size - base_mb)) MB over the $base_mb MB base $BASE)"
done
podman run --rm --runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
  --entrypoint python3 "$IMAGE" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ("pandas", "pyarrow", "numpy")))' \
  || fail "the review image contains pandas, pyarrow or numpy"

# --- 4. fakes and the runner's directories -------------------------------------------------
run="$(mktemp -d "$WORK/run.XXXXXX")"
chmod 755 "$run"
"$HOST_PY" tests/fixtures/selftest/selftest.py serve --ports "$run/ports.json" >"$run/fakes.log" 2>&1 &
fakes=$!
trap 'kill "$fakes" 2>/dev/null || true; rm -rf "$secrets"' EXIT
for _ in $(seq 100); do [ -s "$run/ports.json" ] && break; kill -0 "$fakes" 2>/dev/null || break; sleep 0.1; done
[ -s "$run/ports.json" ] || { cat "$run/fakes.log" >&2; fail "the local fakes did not start"; }
GITHUB_URL="$("$HOST_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["github"])' "$run/ports.json")"

container() {  # $1 mode (review|dry-run), $2 run directory; stdout and stderr go to files there
  local dir="$2"
  mkdir -p "$dir"/{workspace,home,workflow,file_commands}
  cp tests/fixtures/action/selftest-event.json "$dir/workflow/event.json"
  : > "$dir/file_commands/set_output"; : > "$dir/file_commands/step_summary"
  # a dry run reads the rulebook from the checked-out workspace, as selftest.yml's does
  [ "$1" = review ] || cp tests/fixtures/action/simulation.yml "$dir/workspace/.simulation.yml"
  chown -R 1001:1001 "$dir"  # the runner's user owns what it mounts
  "$HOST_PY" tests/fixtures/selftest/selftest.py env --ports "$run/ports.json" --mode "$1" > "$dir/env"
  podman --runtime runc run --rm --network host --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
    --workdir /github/workspace --env-file "$dir/env" \
    -v "$dir/workspace:/github/workspace" -v "$dir/home:/github/home" \
    -v "$dir/workflow:/github/workflow" -v "$dir/file_commands:/github/file_commands" \
    "$IMAGE" </dev/null >"$dir/stdout" 2>"$dir/stderr"
}

t=$SECONDS
code=0; container review "$run/review" || code=$?
[ "$code" = 0 ] || { tail -n 30 "$run/review/stdout" "$run/review/stderr" >&2; fail "the containerised review exited $code"; }
"$HOST_PY" tests/fixtures/selftest/selftest.py check-review --github "$GITHUB_URL" --workspace "$run/review/workspace" \
  --output "$run/review/file_commands/set_output" --summary "$run/review/file_commands/step_summary" \
  || { tail -n 30 "$run/review/stdout" "$run/review/stderr" >&2; fail "the containerised review left the wrong results"; }
report="$run/review/workspace/designsim-report.json"
setpriv --reuid 1001 --regid 1001 --clear-groups cat "$report" >/dev/null \
  || fail "uid 1001 (the runner's user) cannot read $report ($(stat -c '%A %U' "$report"))"
say "review in the container: ok in $((SECONDS - t)) s (comment, statuses pending→success, outputs, step summary; report $(stat -c '%a' "$report") readable by uid 1001)"

curl_reset() { "$HOST_PY" -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/_reset", method="POST"), timeout=10)' "$GITHUB_URL"; }
curl_reset
t=$SECONDS
code=0; container dry-run "$run/dry-run" || code=$?
[ "$code" = 0 ] || { tail -n 30 "$run/dry-run/stdout" "$run/dry-run/stderr" >&2; fail "the containerised dry run exited $code"; }
"$HOST_PY" tests/fixtures/selftest/selftest.py check-dry-run --github "$GITHUB_URL" --workspace "$run/dry-run/workspace" \
  --stdout "$run/dry-run/stdout" || { cat "$run/dry-run/stderr" >&2; fail "the containerised dry run misbehaved"; }
say "dry run in the container: ok in $((SECONDS - t)) s (no call to GitHub or Gemini, nothing written)"

rm -rf "$run"
say "passed in $((SECONDS - STARTED)) s"
