#!/usr/bin/env bash
# Your own task, end to end: a small image folder made from the CIFAR-10 images under $NASX_DATA, a search of the
# mobile space under a parameter limit, the found network exported as ONNX and as a standalone Python file, and one
# epoch of training to see that it learns. Run from anywhere with nasx installed (make install): bash run.sh [WORKDIR]
set -euo pipefail
: "${NASX_DATA:?set NASX_DATA to the benchmark data directory (../shared/data in a checkout)}"
work="${1:-own-task}"
mkdir -p "$work" && cd "$work"

# 1. an ImageFolder: one sub-folder per class, PNG files (512 CIFAR-10 test images, 51-52 per class)
python - "$NASX_DATA/cifar10_test_512_jpeg.npz" <<'PY'
import pathlib, sys
import numpy as np
from PIL import Image
data = np.load(sys.argv[1])
for i, (image, label) in enumerate(zip(data["x"], data["y"])):
    folder = pathlib.Path("photos") / str(data["class_names"][label])
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / f"{i:04d}.png")
print(f"photos/: {len(data['y'])} images in {len(set(data['y'].tolist()))} class folders")
PY

# 2. the best MobileNetV2-style network under 3 M parameters, by FreeREA's proxies, on these images
nasx run --space mobile --data photos/ --proxy freerea --max-params 3.0 --max-evals 40 --seed 0 \
    --out results.json --export exported/

# 3. what was exported (ONNX checked against PyTorch by onnxruntime, Python needing torch only)
ls exported/

# 4. one epoch of training, to see the network learn on the images (use more epochs to compare candidates)
nasx train --from results.json --epochs 1 --batch-size 64 --out runs/found/
