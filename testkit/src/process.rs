//! Child processes for tests: output collected line by line, bounded waits that say what
//! they waited for, graceful stop with SIGTERM, and a kill when the guard is dropped so no
//! test leaves a process behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A running child process; killed on drop.
pub struct Spawned {
    name: String,
    child: Option<Child>,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Spawned {
    /// Starts `cmd` with stdout and stderr captured.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Spawned, String> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let (tx, log) = (tx.clone(), log.clone());
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Spawned { name: name.to_owned(), child: Some(child), lines, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// Waits until an output line (stdout or stderr) contains `needle`; the error names
    /// what was awaited and shows the output.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{} did not print {needle:?} within {timeout:?}; output:\n{}", self.name, self.output()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} exited before printing {needle:?}; output:\n{}", self.name, self.output()));
                }
            }
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().ok_or("already reaped")?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Give the output threads a moment to drain the pipes.
                    thread::sleep(Duration::from_millis(20));
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => return Err(format!("{} still running after {timeout:?}; output:\n{}", self.name, self.output())),
                Err(e) => return Err(format!("{}: {e}", self.name)),
            }
        }
    }

    /// Sends SIGTERM and waits for a graceful exit (then SIGKILL).
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        self.signal(libc::SIGTERM);
        let status = self.wait(timeout);
        if status.is_err() {
            self.kill();
        }
        status
    }

    /// Sends SIGTERM without waiting (a graceful stop the test watches).
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// Stops the process where it stands (SIGSTOP): its sockets stay open and fill up, as
    /// with a node that stalls.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}
