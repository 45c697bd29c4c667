# The runner image of the Kubernetes executor: Python 3.11 slim, evalhub, and one Provider's
# framework. Build it per Provider and pin the digest in the Provider's `image` (identity):
#
#   docker build -f deploy/kubernetes/runner.Dockerfile \
#     --build-arg REQUIREMENTS="lm-eval[api]==0.4.13 transformers" -t REGISTRY/evalhub-lm-eval:0.4.13 .
#   docker push REGISTRY/evalhub-lm-eval:0.4.13      # prints the digest: name it as image@sha256:...
#
# REQUIREMENTS are the Provider's `requirements`; TORCH (the CPU wheel) goes first when the
# framework needs torch, so pip does not pull the 2 GB CUDA build.
FROM python:3.11-slim

ARG TORCH=""
ARG REQUIREMENTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

COPY pyproject.toml README.md /src/
COPY evalhub /src/evalhub
RUN if [ -n "$TORCH" ]; then \
      pip install --index-url https://download.pytorch.org/whl/cpu "torch==$TORCH"; \
    fi \
 && pip install /src \
 && if [ -n "$REQUIREMENTS" ]; then pip install $REQUIREMENTS; fi \
 && rm -rf /src

# The Job runs as this user with a read-only root filesystem; it writes only to /evalhub/out
# and /tmp (emptyDirs).
RUN useradd --uid 65532 --user-group --home-dir /evalhub/out/home --no-create-home nonroot \
 && mkdir -p /evalhub && chown 65532:65532 /evalhub
USER 65532:65532
WORKDIR /evalhub
ENTRYPOINT []
CMD ["evalhub", "--help"]
