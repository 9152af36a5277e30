//! Getting what a run needs: the tools (SIPp, nats-server, tcpdump, Kamailio, rtpengine,
//! a font for the chart) from Debian's packages when missing, and a release build of the
//! `callmesh` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A program and the Debian package that provides it.
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
    /// A run can go on without it (with less information).
    pub optional: bool,
}

pub fn is_installed(program: &str) -> bool {
    std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())).unwrap_or(false)
}

/// Installs the missing tools with apt-get (when allowed), then fails on any required one
/// still missing.
pub fn ensure_tools(tools: &[Tool], install: bool) -> anyhow::Result<()> {
    let mut missing: Vec<&Tool> = tools.iter().filter(|t| !is_installed(t.program)).collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    if !Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists() {
        packages.push("fonts-dejavu-core");
    }
    packages.sort_unstable();
    packages.dedup();
    if install && !packages.is_empty() {
        eprintln!("installing {}", packages.join(" "));
        let apt = |args: &[&str]| Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status();
        let _ = apt(&["update", "-qq"]);
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&packages);
        if !apt(&args).is_ok_and(|s| s.success()) {
            eprintln!("warning: apt-get could not install {}", packages.join(" "));
        }
        missing.retain(|t| !is_installed(t.program));
    }
    for t in &missing {
        eprintln!("warning: {} not found (Debian package {})", t.program, t.package);
    }
    let required: Vec<String> =
        missing.iter().filter(|t| !t.optional).map(|t| format!("{} ({})", t.program, t.package)).collect();
    anyhow::ensure!(required.is_empty(), "missing: {}", required.join(", "));
    Ok(())
}

/// The workspace this crate belongs to.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("loadtest sits in the workspace").to_path_buf()
}

/// Builds `callmesh` in release mode and returns its path.
pub fn build_callmesh() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = workspace_dir();
    eprintln!("building callmesh (release)");
    let status = Command::new(cargo).args(["build", "--release", "--bin", "callmesh"]).current_dir(&workspace).status()?;
    anyhow::ensure!(status.success(), "cargo build --release --bin callmesh failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("release").join("callmesh");
    anyhow::ensure!(bin.is_file(), "no callmesh binary at {}", bin.display());
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path() {
        assert!(is_installed("sh"));
        assert!(!is_installed("surely-not-a-program-here"));
    }

    #[test]
    fn a_missing_required_tool_is_an_error_that_names_its_package() {
        let tools = [Tool { program: "surely-not-a-program-here", package: "some-package", optional: false }];
        let e = ensure_tools(&tools, false).unwrap_err().to_string();
        assert!(e.contains("some-package"), "{e}");
        let optional = [Tool { program: "surely-not-a-program-here", package: "x", optional: true }];
        assert!(ensure_tools(&optional, false).is_ok());
    }
}
