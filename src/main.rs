//! `callmesh`: one binary for every role of the cluster.

fn main() {
    println!("callmesh {}", env!("CARGO_PKG_VERSION"));
}
