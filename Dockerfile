# syntax=docker/dockerfile:1
# Revoker operator image: a static `revoker` binary (hack/build-static.sh) on distroless, running as non-root.
#
#   docker build -t revoker:0.1.0 .
#   docker run --rm revoker:0.1.0 crd          # print the CRDs
#
# The Helm chart (charts/revoker) runs `revoker run ...` with a read-only root filesystem as
# UID 65532; the image needs nothing else.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
ENV CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# The same script CI runs: a glibc crt-static build, checked to have no program interpreter.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    hack/build-static.sh /out/revoker

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="revoker" \
      org.opencontainers.image.description="Kubernetes operator that revokes credentials at external identity and secret providers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/revoker /revoker
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/revoker"]
CMD ["run"]
