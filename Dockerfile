# designsim GitHub Action image: `designsim action` on python:3.12-slim.
#
# Two stages: the builder turns the repository into a wheel (hatchling runs there only);
# the runtime stage installs the pinned dependencies from docker/requirements.txt as
# binary wheels (--only-binary: nothing is compiled, no compiler is installed or left)
# and then the wheel with --no-deps, so the image contains exactly the pinned set.
# Regenerate the pins with docker/lock.sh.
#
# USER: GitHub's "Dockerfile support for GitHub Actions" says Docker actions must run
# as the default Docker user (root) and must not use USER, because the runner mounts
# GITHUB_WORKSPACE (and the files behind GITHUB_OUTPUT / GITHUB_STEP_SUMMARY) owned by
# the runner's user and writes through them; a non-root user here could not write the
# report, the outputs or the summary. So the action runs as root, in the throwaway
# container the runner starts for this step; nothing in it listens on a port, and the
# token it gets is the job's scoped GITHUB_TOKEN.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY prompts ./prompts
COPY examples ./examples
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY docker/requirements.txt /tmp/requirements.txt
COPY --from=build /wheels /tmp/wheels
RUN python -m pip install --only-binary=:all: -r /tmp/requirements.txt \
    && python -m pip install --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/requirements.txt \
    && designsim --version
ENTRYPOINT ["designsim", "action"]
