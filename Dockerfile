# ocrkit workbench: JupyterLab with the workbench notebooks and the Voila dashboard
# on port 8888, the store in the volume /app/storage.
#
#   docker build -t ocrkit .
#   docker run -p 8888:8888 -v "$PWD/storage:/app/storage" -e OCRKIT_TOKEN=... ocrkit
FROM python:3.11-slim-bookworm

# libgomp1: ONNX Runtime's OpenMP threads. libglib2.0-0: OpenCV's threading
# helpers. PyMuPDF's wheel bundles MuPDF and needs nothing more.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libgomp1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OCRKIT_STORAGE=/app/storage \
    OCRKIT_IP=0.0.0.0 \
    OCRKIT_PORT=8888

WORKDIR /app
COPY . /app
# The same install the README gives, into the image's Python instead of a venv.
RUN bash scripts/install.sh --system

RUN useradd --create-home --uid 1000 ocrkit \
    && mkdir -p /app/storage \
    && chown ocrkit:ocrkit /app/storage
USER ocrkit

EXPOSE 8888
VOLUME ["/app/storage"]

# Answers without the token; a 503 (store cannot be opened) fails the check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ocrkit/health' % os.environ.get('OCRKIT_PORT', '8888'), timeout=8)"

# JupyterLab without reload or file watching; the token comes from OCRKIT_TOKEN, or
# a random one is printed in the log (docker logs).
CMD ["ocrkit", "serve"]
