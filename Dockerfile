# rlhp image: the same image runs the Ray head, rollout workers, the learner and the jobs.
#
#   CPU:  docker build -t rlhp:cpu .
#   CUDA: docker build -t rlhp:cuda --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
#
# TORCH_SPEC pins torch; PIP_EXTRA_ARGS passes extra pip options for installing it, e.g. the
# index URL of PyTorch's CPU-only wheels for a smaller CPU image.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build stage: a virtual environment with rlhp and its dependencies -------------------
FROM ${BASE_IMAGE} AS build
ARG TORCH_SPEC="torch==2.13.0"
ARG PIP_EXTRA_ARGS=""
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-venv python3-dev) \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/rlhp
ENV PATH=/opt/rlhp/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY platform ./platform
# psycopg2 and mlflow[auth]: the MLflow server of deploy/k8s runs from this image, on a
# PostgreSQL store, behind MLflow's basic-auth app
RUN pip install --no-cache-dir ${PIP_EXTRA_ARGS} "${TORCH_SPEC}" \
    && pip install --no-cache-dir . "psycopg2-binary>=2.9" "mlflow[auth]>=3,<4"

# ---- runtime stage: the venv, headless GL for MuJoCo, no compilers ------------------------
FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libgl1 libosmesa6 libglib2.0-0 ca-certificates tini \
    && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-venv) \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/rlhp /opt/rlhp
ENV PATH=/opt/rlhp/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl

# non-root: uid/gid 1000, matching runAsUser in deploy/k8s
RUN groupadd --gid 1000 rlhp && useradd --uid 1000 --gid 1000 --create-home rlhp
USER 1000:1000
WORKDIR /home/rlhp
COPY --chown=1000:1000 jobs ./jobs
# Ray GCS, dashboard, client; labelling web app; MLflow server (deploy/k8s)
EXPOSE 6379 8265 10001 8000 5000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["rlhp", "--help"]
