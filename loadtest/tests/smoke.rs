//! The harness end to end, briefly: two-second steps at a low rate against the debug build
//! of `callmesh` all-in-one, alternating with SIPp direct (the load generator's ceiling),
//! then the table, `results.json` and the chart, and no process left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `callmesh` binary cargo built for this test run.
fn callmesh_bin() -> PathBuf {
    let bin = testkit::bins::target_dir().join("callmesh");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --bin callmesh` (the workspace test run does)",
        bin.display()
    );
    bin
}

/// Processes whose command line or working directory is inside `dir`.
fn processes_inside(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = entry.path();
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cwd = std::fs::read_link(p.join("cwd")).unwrap_or_default();
        if cmdline.contains(&*dir.to_string_lossy()) || cwd.starts_with(dir) {
            found.push(format!("{}: {cmdline}", p.display()));
        }
    }
    found
}

#[test]
fn a_short_ladder_measures_callmesh_and_sipp_direct_and_cleans_up() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "--scenario",
            "basic",
            "--rates",
            "10,20",
            "--step-secs",
            "2",
            "--ceiling",
            "full",
            "--no-install",
            "--free-ports",
        ])
        .args(["--quiet-secs", "0"])
        .arg("--callmesh-bin")
        .arg(callmesh_bin())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "loadtest failed\nstdout:\n{stdout}\nstderr:\n{stderr}");

    // A row per step, alternating systems, each passing.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains(" PASS") || l.contains(" FAIL")).collect();
    let systems: Vec<&str> = rows.iter().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        &systems[..4],
        ["callmesh-all-in-one", "sipp-direct", "callmesh-all-in-one", "sipp-direct"],
        "steps alternate between systems:\n{stdout}"
    );
    assert!(rows.iter().all(|r| r.contains("PASS")), "every step passes at 20 cps:\n{stdout}");
    assert!(stdout.contains("callmesh-all-in-one  max sustained 20 cps"), "{stdout}");

    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let steps = results["steps"].as_array().unwrap();
    let callmesh = steps.iter().find(|s| s["system"] == "callmesh-all-in-one" && s["offered_cps"] == 20).unwrap();
    assert_eq!(callmesh["uac"]["successful"], 40, "20 cps for 2 s");
    assert_eq!(callmesh["uac"]["failed"], 0);
    assert!(callmesh["system_usage"][0]["cpu_pct"].as_f64().unwrap() > 0.0, "callmesh's CPU was measured");
    assert!(callmesh["system_usage"][0]["peak_rss_kib"].as_u64().unwrap() > 1000, "callmesh's memory was measured");
    assert!(callmesh["setup"]["samples"].as_u64().unwrap() >= 40, "every call's setup time was read");
    assert_eq!(results["systems"][0]["max_sustained_cps"], 20);
    let png = std::fs::read(out.path().join("chart.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let left = processes_inside(out.path());
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// The RTP blaster against `callmesh all`: a few calls relayed, then transcoded (G.711 to
/// Opus); every packet sent is delivered and the relay's CPU is measured.
#[test]
fn the_rtp_blaster_measures_the_relay_and_transcoding() {
    for (calls, extra) in [(6, None), (2, Some("--transcode"))] {
        let out = tempfile::tempdir().unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args(["rtp", "--relay", "callmesh", "--calls", &calls.to_string(), "--secs", "2"])
            .args(extra)
            .arg("--callmesh-bin")
            .arg(callmesh_bin())
            .arg("--out")
            .arg(out.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "loadtest rtp failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
        let r = &results[0];
        assert_eq!((r["relay"].as_str(), r["transcode"].as_bool()), (Some("callmesh"), Some(extra.is_some())));
        // 50 packets a second each way per call, over the 2 s window (± a packet per stream at its edges).
        let delivered = r["delivered_pps"].as_f64().unwrap() * 2.0;
        let expected = f64::from(calls * 2 * 50 * 2);
        assert!((delivered - expected).abs() <= f64::from(calls * 2) * 2.0, "{delivered} of {expected} packets: {stdout}");
        assert_eq!(r["loss_percent"].as_f64(), Some(0.0), "{stdout}");
        assert!(r["relay_cpu_cores"].as_f64().unwrap() > 0.0, "the relay's CPU was measured: {stdout}");
        let left = processes_inside(out.path());
        assert!(left.is_empty(), "processes left running: {left:?}");
    }
}
