//! SIPp as a test peer: a builder for its command line (built-in or XML scenario, UDP or
//! TCP, call count and rate, a hard timeout) and a report read from its statistics file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::Spawned;

/// How many ports SIPp binds from its `-mp` port: audio RTP, RTCP, video RTP, RTCP.
pub const SIPP_MEDIA_PORTS: u16 = 4;

/// A SIPp run to configure.
pub struct Sipp {
    scenario: Vec<String>,
    remote: Option<SocketAddr>,
    local: SocketAddr,
    tcp: bool,
    calls: Option<u64>,
    rate: Option<f64>,
    timeout: Duration,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

/// What SIPp reported.
#[derive(Debug)]
pub struct SippReport {
    pub exit_code: Option<i32>,
    /// Columns of the last line of SIPp's statistics file.
    pub stats: HashMap<String, String>,
    pub output: String,
}

impl Sipp {
    /// A built-in scenario: `uac`, `uas`, `regexp`…
    pub fn builtin(name: &str) -> Sipp {
        Sipp::with_scenario(vec!["-sn".into(), name.into()])
    }

    /// An XML scenario file.
    pub fn scenario_file(path: impl Into<PathBuf>) -> Sipp {
        Sipp::with_scenario(vec!["-sf".into(), path.into().display().to_string()])
    }

    fn with_scenario(scenario: Vec<String>) -> Sipp {
        Sipp {
            scenario,
            remote: None,
            local: "127.0.0.1:0".parse().expect("literal address"),
            tcp: false,
            calls: None,
            rate: None,
            timeout: Duration::from_secs(60),
            extra: Vec::new(),
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn remote(mut self, addr: SocketAddr) -> Self {
        self.remote = Some(addr);
        self
    }

    /// Local IP and port (port 0 lets the test pick one with `crate::ports`).
    pub fn local(mut self, addr: SocketAddr) -> Self {
        self.local = addr;
        self
    }

    /// One TCP connection for all calls (`-t t1`).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Stop after this many calls (`-m`).
    pub fn calls(mut self, n: u64) -> Self {
        self.calls = Some(n);
        self
    }

    /// Calls per second (`-r`).
    pub fn rate(mut self, cps: f64) -> Self {
        self.rate = Some(cps);
        self
    }

    /// SIPp exits with an error after this long (`-timeout`).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra.push(a.into());
        self
    }

    fn stat_file(&self) -> PathBuf {
        self.dir.path().join("stat.csv")
    }

    fn screen_file(&self) -> PathBuf {
        self.dir.path().join("screen.log")
    }

    /// The user part of the Request-URI the UAC dials (`-s`).
    pub fn dial(self, user: &str) -> Self {
        self.arg("-s").arg(user)
    }

    /// The scenarios' default pause (`-d`): how long the built-in UAC talks before its BYE.
    pub fn hold(self, d: Duration) -> Self {
        self.arg("-d").arg(d.as_millis().to_string())
    }

    /// A value for a `[key]` the scenario reads (`-key`).
    pub fn key(self, name: &str, value: impl ToString) -> Self {
        self.arg("-key").arg(name).arg(value.to_string())
    }

    /// RTP on 127.0.0.1 from free ports (`-mi`, `-mp`): SIPp binds four from the one it is
    /// given, and exits with 254 when any of them is taken.
    pub fn media(self) -> Self {
        let addr = crate::ports::free_local_block(SIPP_MEDIA_PORTS);
        self.arg("-mi").arg(addr.ip().to_string()).arg("-mp").arg(addr.port().to_string())
    }

    /// The command line SIPp runs with.
    pub fn command(&self) -> Command {
        let mut c = Command::new("sipp");
        c.current_dir(self.dir.path());
        c.args(&self.scenario);
        if let Some(r) = self.remote {
            c.arg(r.to_string());
        }
        c.args(["-i", &self.local.ip().to_string(), "-p", &self.local.port().to_string()]);
        if self.tcp {
            c.args(["-t", "t1"]);
        }
        if let Some(n) = self.calls {
            c.args(["-m", &n.to_string()]);
        }
        if let Some(r) = self.rate {
            c.args(["-r", &r.to_string()]);
        }
        c.args(["-nostdin", "-trace_stat", "-fd", "1", "-trace_err", "-timeout_error"]);
        c.arg("-stf").arg(self.stat_file());
        c.arg("-trace_screen").arg("-screen_file").arg(self.screen_file());
        c.args(["-timeout", &format!("{}s", self.timeout.as_secs().max(1))]);
        c.args(&self.extra);
        c
    }

    /// Starts SIPp in the background (for a UAS side) and, with a fixed local port, waits
    /// until it is bound.
    pub fn spawn(self) -> Result<RunningSipp, String> {
        let process = Spawned::spawn("sipp", self.command())?;
        if self.local.port() != 0 && !crate::ports::wait_until_bound(self.local, self.tcp, Duration::from_secs(10)) {
            return Err(format!("SIPp did not bind {} within 10 s; output:\n{}", self.local, process.output()));
        }
        Ok(RunningSipp { process, config: self })
    }

    /// Runs SIPp to completion (bounded by its timeout plus a margin).
    pub fn run(self) -> Result<SippReport, String> {
        self.spawn()?.finish()
    }
}

/// A SIPp process started by [`Sipp::spawn`].
pub struct RunningSipp {
    process: Spawned,
    config: Sipp,
}

impl RunningSipp {
    /// Waits for SIPp to exit by itself (it was given a call count and a timeout).
    pub fn finish(mut self) -> Result<SippReport, String> {
        let status = self.process.wait(self.config.timeout + Duration::from_secs(10))?;
        self.report(status.code())
    }

    /// Kills SIPp at once, as a far end that vanishes mid-call.
    pub fn kill(mut self) {
        self.process.kill();
    }

    /// Stops SIPp (SIGUSR1 makes it dump its statistics and quit) and reads its report.
    pub fn stop(mut self) -> Result<SippReport, String> {
        self.process.signal(libc::SIGUSR1);
        let status = self.process.wait(Duration::from_secs(10)).or_else(|_| self.process.terminate(Duration::from_secs(5)))?;
        self.report(status.code())
    }

    /// A number from SIPp's live screen, e.g. `Total echo RTP pckts 1st stream`: SIGUSR2
    /// makes SIPp append its current screen to the screen file, which is then read (bounded
    /// wait for the dump).
    pub fn screen_counter(&mut self, label: &str) -> Result<u64, String> {
        let file = self.config.screen_file();
        let before = std::fs::read_to_string(&file).map(|t| t.len()).unwrap_or(0);
        self.process.signal(libc::SIGUSR2);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let fresh = text.get(before..).unwrap_or("");
            if let Some(line) = fresh.lines().rev().find(|l| l.contains(label)) {
                return line.split_whitespace().next().and_then(|n| n.parse().ok()).ok_or(format!("no number in {line:?}"));
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("SIPp's screen dump has no {label:?}; output:\n{}", self.process.output()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn report(&self, exit_code: Option<i32>) -> Result<SippReport, String> {
        let output = self.process.output();
        let errors = std::fs::read_dir(self.config.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect::<Vec<_>>()
            .join("\n");
        let text = std::fs::read_to_string(self.config.stat_file())
            .map_err(|e| format!("SIPp wrote no statistics ({e}); exit {exit_code:?}; output:\n{output}\nerrors:\n{errors}"))?;
        let mut rows = text.lines().filter(|l| !l.trim().is_empty());
        let header = rows.next().ok_or("empty SIPp statistics")?;
        let last = rows.next_back().ok_or("SIPp statistics have no data row")?;
        let stats = header.split(';').zip(last.split(';')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
        Ok(SippReport { exit_code, stats, output: format!("{output}\n{errors}") })
    }
}

impl SippReport {
    /// A cumulative counter, e.g. `SuccessfulCall` for the column `SuccessfulCall(C)`.
    pub fn counter(&self, name: &str) -> u64 {
        self.stats.get(&format!("{name}(C)")).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn successful(&self) -> u64 {
        self.counter("SuccessfulCall")
    }

    pub fn failed(&self) -> u64 {
        self.counter("FailedCall")
    }

    pub fn retransmissions(&self) -> u64 {
        self.counter("Retransmissions")
    }

    /// Messages SIPp did not expect: unexpected in a call, out of any call, or for a call
    /// already finished.
    pub fn unexpected(&self) -> u64 {
        self.counter("FailedUnexpectedMessage") + self.counter("OutOfCallMsgs") + self.counter("DeadCallMsgs")
    }

    /// Asserts `calls` calls succeeded with no failure, no unexpected message and no
    /// retransmission; the panic message carries SIPp's output.
    pub fn assert_clean(&self, calls: u64) {
        let summary = format!(
            "successful={} failed={} unexpected={} retransmissions={} exit={:?}",
            self.successful(),
            self.failed(),
            self.unexpected(),
            self.retransmissions(),
            self.exit_code
        );
        let clean = self.successful() == calls && self.failed() == 0 && self.unexpected() == 0 && self.retransmissions() == 0;
        assert!(clean, "SIPp: expected {calls} clean calls, got {summary}\n{}", self.output);
    }
}
