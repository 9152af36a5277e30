//! Paths of programs built by cargo for the test run (examples, binaries).

use std::path::PathBuf;

/// The target directory of the running test binary (`target/<profile>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps directory");
    deps.parent().expect("profile directory").to_path_buf()
}

/// An example of the workspace, built by `cargo test` alongside the tests. A run limited to
/// one test target (`--test x`) does not rebuild examples: add `--examples` to it.
pub fn example(name: &str) -> PathBuf {
    let path = target_dir().join("examples").join(name);
    assert!(path.exists(), "example {name} not built at {} (cargo test builds examples)", path.display());
    path
}
