# The callmesh image: one binary, every role (the Helm chart chooses it by argument).
# Build: docker build -t callmesh:0.1.0 .
# Run:   docker run --rm -p 5060:5060/udp -p 5060:5060/tcp callmesh:0.1.0 all --set sip.listen=0.0.0.0:5060

# Stage 1: build the release binary. Nothing but the Rust toolchain and a C compiler is
# needed (Opus is pure Rust; ring and mimalloc compile their C with cc).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin callmesh \
 && strip target/release/callmesh

# Stage 2: a small runtime without a shell or package manager, as a non-root user
# (distroless "cc": glibc and libgcc, which the binary links against).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/callmesh /usr/local/bin/callmesh
USER 65532:65532
# SIP (UDP and TCP), HTTP (metrics, probes, drain). RTP uses media.rtp_ports.
EXPOSE 5060/udp 5060/tcp 9060/tcp
ENTRYPOINT ["/usr/local/bin/callmesh"]
CMD ["all"]
