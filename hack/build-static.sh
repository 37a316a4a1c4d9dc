#!/usr/bin/env bash
# Build the static `revoker` binary the container image ships (the Dockerfile runs this script):
# glibc with crt-static, so it runs on distroless/static (no dynamic loader, no libc).
#   hack/build-static.sh [OUT]     default OUT: target/static/revoker
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-target/static/revoker}
TARGET=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$TARGET" --bin revoker
install -D -m 0755 "target/$TARGET/release/revoker" "$OUT"
if readelf -l "$OUT" | grep -q 'program interpreter'; then
  echo "$OUT is dynamically linked" >&2
  exit 1
fi
"$OUT" crd >/dev/null
echo "static binary: $OUT ($(du -h "$OUT" | cut -f1))" >&2
