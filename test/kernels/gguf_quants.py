"""llama.cpp's own Python package `gguf` as an independent oracle for the block formats.

Usage: python gguf_quants.py DIR
  DIR/x.f32             float32 values (a multiple of 256)
  DIR/<TYPE>.ours       sparrow's quantization of x in TYPE (every type sparrow reads)
writes
  DIR/<TYPE>.gguf       gguf's quantization of x (the types gguf quantizes)
  DIR/<TYPE>.deq        gguf's dequantization of DIR/<TYPE>.ours, float32
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

QUANTIZES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4"]


def main(d):
    x = np.fromfile(os.path.join(d, "x.f32"), dtype=np.float32).reshape(1, -1)
    for name in QUANTIZES:
        q = quantize(x, GGMLQuantizationType[name])
        q.tofile(os.path.join(d, name + ".gguf"))
    for f in sorted(os.listdir(d)):
        if not f.endswith(".ours"):
            continue
        name = f[: -len(".ours")]
        raw = np.fromfile(os.path.join(d, f), dtype=np.uint8).reshape(1, -1)
        dequantize(raw, GGMLQuantizationType[name]).astype(np.float32).tofile(os.path.join(d, name + ".deq"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
