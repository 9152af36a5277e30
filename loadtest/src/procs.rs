//! Processes the harness starts: each in its own process group with its output in a log
//! file, recorded in a registry so they are stopped by PID on every exit path (normal end,
//! error, Ctrl-C); their CPU time and memory read from `/proc`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups still running, stopped by [`stop_all`].
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Highest open-file limit given to children (10,000 calls hold 40,000 RTP sockets).
const NOFILE: libc::rlim_t = 262_144;

/// A child process (and any process it forks, e.g. Kamailio's workers): stopped on drop.
pub struct Proc {
    pub name: String,
    pid: i32,
    log: PathBuf,
    exited: Option<Exit>,
}

/// How a process ended, with the CPU time it used.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: Option<i32>,
    pub cpu_secs: f64,
}

impl Proc {
    /// Starts `cmd` in a new process group, stdout and stderr to `<dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        cmd.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe setrlimit.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: NOFILE, rlim_max: NOFILE };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    // Not root: keep whatever the hard limit allows.
                    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur);
                    cur.rlim_cur = cur.rlim_max;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &cur);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        let pid = child.id() as i32;
        // The pid is reaped with wait4 below (for its CPU time), not through `child`.
        std::mem::forget(child);
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        Ok(Proc { name: name.to_owned(), pid, log, exited: None })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the process prints `needle`.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.output().contains(needle) {
            if let Some(exit) = self.try_wait() {
                anyhow::bail!("{} exited ({:?}) before printing {needle:?}:\n{}", self.name, exit.code, tail(&self.output()));
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} did not print {needle:?} within {timeout:?}:\n{}", self.name, tail(&self.output()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Reaps the process if it has exited.
    pub fn try_wait(&mut self) -> Option<Exit> {
        if self.exited.is_none() {
            let mut status = 0;
            // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on our own child with valid out-pointers.
            let r = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
            if r == self.pid {
                let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
                let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
                self.exited = Some(Exit { code, cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime) });
                forget_group(self.pid);
            } else if r < 0 {
                self.exited = Some(Exit { code: None, cpu_secs: 0.0 });
                forget_group(self.pid);
            }
        }
        self.exited
    }

    /// Waits for the process to end by itself, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<Exit> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.try_wait() {
                return Some(exit);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process only.
    pub fn signal(&self, signal: i32) {
        if self.exited.is_none() {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// SIGTERM to the whole group, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<Exit> {
        if self.try_wait().is_none() {
            signal_group(self.pid, libc::SIGTERM);
            if self.wait(grace).is_none() {
                signal_group(self.pid, libc::SIGKILL);
                self.wait(Duration::from_secs(5));
            }
        }
        // Workers a group leader forked may outlive it.
        signal_group(self.pid, libc::SIGKILL);
        self.exited
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
    unsafe { libc::kill(-pgid, signal) };
}

fn forget_group(pgid: i32) {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != pgid);
}

/// Stops every process group still running (Ctrl-C path): SIGTERM, a short grace, SIGKILL.
pub fn stop_all() {
    let groups = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    for g in &groups {
        signal_group(*g, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(500));
    for g in &groups {
        signal_group(*g, libc::SIGKILL);
    }
}

/// The last lines of a log, for error messages.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
