# syntax=docker/dockerfile:1
# One image for every crmflow role (receiver, worker, sandbox); docker-compose.yml picks the command. Multi-stage:
# the build stage installs the pinned dependencies and crmflow into a virtual environment, the runtime stage
# copies only that environment, the rule files and nothing else, and runs as a user without privileges.
#
# Dependencies come from requirements.lock only (`make lock` regenerates it from pyproject.toml): exact versions,
# checked against their hashes, wheels only. Every one is pure Python or has a manylinux wheel for both x86_64
# and aarch64, so the image builds for linux/amd64 and linux/arm64 alike:
#   docker buildx build --platform linux/amd64,linux/arm64 -t crmflow:latest .
# (docs/operations.md, "The image", says how that was checked.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock requirements-build.lock ./
# The runtime's environment gets the locked dependencies; a separate one gets the locked build tool (setuptools).
RUN python -m venv /opt/crmflow \
    && /opt/crmflow/bin/pip install --require-hashes --only-binary=:all: --no-deps -r requirements.lock \
    && python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: --no-deps -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY crmflow ./crmflow
COPY receiver ./receiver
COPY workers ./workers
COPY sandbox ./sandbox
COPY console ./console
# crmflow itself, built with the locked setuptools; --no-deps: everything it needs is installed from the lock.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/crmflow/bin/pip install --no-deps /wheels/crmflow-*.whl \
    && /opt/crmflow/bin/pip check

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/crmflow/bin:$PATH
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin crmflow
COPY --from=build /opt/crmflow /opt/crmflow
WORKDIR /app
# The default rules; docker-compose.yml mounts ./rules over them for the workers.
COPY rules ./rules
USER 10001:10001
ENTRYPOINT ["crmflow"]
CMD ["--help"]
