//! Generates the Rust types of the contracts (the bus, the registry, the call engine's
//! state, the API) from `proto/` with protox (a pure-Rust protobuf compiler, so no `protoc`
//! is needed) and tonic-prost-build. With the `grpc` feature, the API's gRPC services too
//! (client and server), and the descriptor set that server reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(
        [
            "callmesh/v1/callmesh.proto",
            "callmesh/v1/media.proto",
            "callmesh/v1/registry.proto",
            "callmesh/v1/acd.proto",
            "callmesh/v1/events.proto",
            "callmesh/v1/api.proto",
        ],
        ["proto"],
    )?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    if grpc {
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(out.join("callmesh_descriptor.bin"), prost::Message::encode_to_vec(&descriptors))?;
    }
    // Byte fields as `bytes::Bytes`: SIP messages move between the bus and the engine without
    // copies (a clone is a reference count).
    tonic_prost_build::configure().build_client(grpc).build_server(grpc).bytes(".").compile_fds(descriptors)?;
    Ok(())
}
