#!/usr/bin/env bash
# Builds the libFuzzer harness for the GGUF reader with ASan+UBSan and runs it.
#   scripts/fuzz-gguf.sh [seconds]      (default 60; needs clang: apt-get install clang)
# Seeds: the real GGUF files in ../shared (truncated to their first 64 KiB) and any
# synthetic models in the cache. Crashes are written to build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
out=build-fuzz
mkdir -p "$out/corpus" "$out/crashes"
CXX="${CXX_FUZZ:-clang++}"
command -v "$CXX" >/dev/null || { echo "fuzz-gguf: $CXX not found (apt-get install clang)" >&2; exit 2; }
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Inative \
  native/fuzz/gguf_fuzzer.cpp native/core/gguf.cpp native/core/ggml_types.cpp native/core/mapped_file.cpp \
  -o "$out/gguf_fuzzer"
for f in ../shared/models/*.gguf ../shared/vocab/*.gguf; do
  [ -f "$f" ] && head -c 65536 "$f" > "$out/corpus/$(basename "$f").head"
done
# Whole small files too, so the fuzzer sees valid complete inputs.
for f in ../shared/models/stories260K-q8_0.gguf; do [ -f "$f" ] && cp "$f" "$out/corpus/"; done
"$out/gguf_fuzzer" "$out/corpus" -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 \
  -artifact_prefix="$out/crashes/" -print_final_stats=1 2>&1 | tail -n 25
