//! Generates the Rust types of the contracts (the bus, the registry, the call engine's
//! state) from `proto/` with protox (a pure-Rust
//! protobuf compiler, so no `protoc` is needed) and tonic-prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(
        ["callmesh/v1/callmesh.proto", "callmesh/v1/media.proto", "callmesh/v1/registry.proto", "callmesh/v1/acd.proto"],
        ["proto"],
    )?;
    // Byte fields as `bytes::Bytes`: SIP messages move between the bus and the engine without
    // copies (a clone is a reference count).
    tonic_prost_build::configure().build_client(false).build_server(false).bytes(".").compile_fds(descriptors)?;
    Ok(())
}
