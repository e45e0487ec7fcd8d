# syntax=docker/dockerfile:1
# One image for every service; the command picks which one runs:
#   python -m profile_api | python -m dispatcher | python -m reporter
#   python -m callbacks init     (migrations and topics; the Kubernetes Job and compose "init")
# Build:  docker build -t callback-profiles:dev .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: resolve and install the project into a self-contained virtualenv ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Every runtime dependency ships manylinux wheels, so no compiler is needed here.
# The exact versions come from the lock, each file checked against its hash
# (make lock regenerates it); the project itself is installed on top without resolving.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
# A regular (non-editable) install without the dev extra: the image carries no test tools,
# and no dev tools (devtools/ is a project of its own, outside the build context).
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime: the interpreter, the virtualenv, and an unprivileged user ---------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="callback-profiles" \
      org.opencontainers.image.description="profile-api, dispatcher and reporter of the callback profiles platform"
# Bytecode was compiled at build time; the root filesystem is read-only in Kubernetes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLBACKS_LOG_FORMAT=json
RUN groupadd --system --gid 10001 callbacks \
    && useradd --system --uid 10001 --gid callbacks --no-create-home --shell /usr/sbin/nologin callbacks
COPY --from=build /opt/venv /opt/venv
WORKDIR /tmp
USER 10001:10001
# profile-api, dispatcher metrics, reporter metrics (contract §1 defaults).
EXPOSE 8080 9101 9102
# Every service drains gracefully on SIGTERM; the exec-form CMD lets Python receive it directly.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "profile_api"]
