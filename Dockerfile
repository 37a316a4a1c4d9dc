# syntax=docker/dockerfile:1
# Revoker operator image: a static (musl) `revoker` binary on distroless, running as non-root.
#
#   docker build -t revoker:0.1.0 .
#   docker run --rm revoker:0.1.0 crd          # print the CRDs
#
# The Helm chart (charts/revoker) runs `revoker run ...` with a read-only root filesystem as
# UID 65532; the image needs nothing else.

ARG RUST_VERSION=1.95
ARG TARGET=x86_64-unknown-linux-musl

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
ARG TARGET
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "${TARGET}"
# C code in dependencies (ring) is compiled with musl-gcc for the musl target.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "${TARGET}" --bin revoker \
 && install -D -m 0755 "target/${TARGET}/release/revoker" /out/revoker
# Fail the build if the binary is not static (distroless/static has no dynamic loader or libc).
RUN if readelf -l /out/revoker | grep -q 'program interpreter'; then \
      echo "revoker is dynamically linked" >&2; exit 1; \
    fi \
 && /out/revoker crd >/dev/null

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="revoker" \
      org.opencontainers.image.description="Kubernetes operator that revokes credentials at external identity and secret providers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/revoker /revoker
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/revoker"]
CMD ["run"]
