# syntax=docker/dockerfile:1
# designsim GitHub Action image: `designsim action` in a virtual environment on python:3.12-slim.
#
# Two stages: the builder turns the repository into a wheel (hatchling, hash-pinned in
# docker/requirements-build.txt, runs there only); the runtime stage installs the pinned
# dependencies from docker/requirements.txt with --require-hashes as binary wheels
# (--only-binary: nothing is compiled, no compiler is installed or left) and then the wheel
# with --no-deps, so the image contains exactly the pinned set. Regenerate the locks with
# docker/lock.sh.
#
# BASE: the official image pinned by digest (the multi-arch index of python:3.12-slim, as read
# from public Dockerfiles on 2026-12-01, not checked against Docker Hub from here: no registry
# is reachable; bump it with `docker buildx imagetools inspect python:3.12-slim`). A machine
# with no registry builds its own base and passes --build-arg BASE=... (docker/selftest.sh).
# The base needs python3 with venv (Debian's python3 + python3-venv will do).
#
# FLAVOUR: `review` (default; what action.yml builds) leaves out pandas, pyarrow and numpy,
# which only batch mode imports (about 400 MB); `batch` installs docker/requirements-batch.txt
# for `mode: batch|recover`. The release workflow publishes both.
#
# Package index access: a build behind a TLS-re-signing proxy gets the host's pip
# configuration and CA bundle as build secrets (`--secret id=pipconf,src=...`,
# `--secret id=pipcert,src=...`), mounted for one RUN and never stored in a layer.
# A GitHub runner needs neither; the mounts are then empty.
#
# USER: GitHub's "Dockerfile support for GitHub Actions" says Docker actions must run
# as the default Docker user (root) and must not use USER, because the runner mounts
# GITHUB_WORKSPACE (and the files behind GITHUB_OUTPUT / GITHUB_STEP_SUMMARY) owned by
# the runner's user and writes through them; a non-root user here could not write the
# report, the outputs or the summary. So the action runs as root, in the throwaway
# container the runner starts for this step; nothing in it listens on a port, and the
# token it gets is the job's scoped GITHUB_TOKEN. Files it writes honour the umask (0644),
# so the runner's user (uid 1001) can read the report in the next step.
ARG BASE=python:3.12-slim@sha256:2fe5997d249a808b8eeea52c58a1dbffbba28754dc11699ef5c029f2d818ce79

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY docker/requirements-build.txt /tmp/requirements-build.txt
COPY pyproject.toml README.md ./
COPY src ./src
COPY prompts ./prompts
COPY examples ./examples
RUN --mount=type=secret,id=pipconf,target=/etc/pip.conf \
    --mount=type=secret,id=pipcert,target=/run/secrets/pipcert \
    python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: --no-deps -r /tmp/requirements-build.txt \
    && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${BASE}
ARG FLAVOUR=review
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8 \
    PATH=/opt/designsim/bin:$PATH
COPY docker/requirements.txt docker/requirements-batch.txt /tmp/requirements/
COPY --from=build /wheels /tmp/wheels
RUN --mount=type=secret,id=pipconf,target=/etc/pip.conf \
    --mount=type=secret,id=pipcert,target=/run/secrets/pipcert \
    case "$FLAVOUR" in review) lock=requirements.txt ;; batch) lock=requirements-batch.txt ;; \
      *) echo "FLAVOUR must be review or batch, not $FLAVOUR" >&2; exit 2 ;; esac \
    && python3 -m venv /opt/designsim \
    && /opt/designsim/bin/pip install --require-hashes --only-binary=:all: --no-deps -r "/tmp/requirements/$lock" \
    && /opt/designsim/bin/pip install --no-deps /tmp/wheels/*.whl \
    && /opt/designsim/bin/pip check \
    && rm -rf /tmp/wheels /tmp/requirements \
    && designsim --version
ENTRYPOINT ["designsim", "action"]
