//! A real browser for tests: headless Chromium (Debian `chromium`) driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: messages as JSON, each ended by a NUL
//! byte, commands on the child's fd 3, answers and events on its fd 4). One page, opened on
//! a URL and left running, so a test reads its live DOM as things happen.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    answers: BufReader<std::io::PipeReader>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium and opens `url` in a page of its own.
    pub fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (to_child, commands) = std::io::pipe().unwrap();
        let (answers, from_child) = std::io::pipe().unwrap();
        let (child_in, child_out) = (to_child.as_raw_fd(), from_child.as_raw_fd());
        let mut cmd = Command::new("chromium");
        cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--window-size=1280,800")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec; dup2 clears
        // close-on-exec on the new descriptors, which are the protocol's.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts (Debian package chromium)");
        drop((to_child, from_child));
        let mut browser =
            Browser { child, commands, answers: BufReader::new(answers), session: String::new(), next_id: 0, _profile: profile };
        let target = browser.call(None, "Target.createTarget", json!({ "url": url }));
        let target = target["targetId"].as_str().expect("a page").to_owned();
        let attached = browser.call(None, "Target.attachToTarget", json!({ "targetId": target, "flatten": true }));
        browser.session = attached["sessionId"].as_str().expect("a session on the page").to_owned();
        browser
    }

    /// Sends a command and returns its result (events in between are skipped).
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("chromium takes commands");
        loop {
            let mut raw = Vec::new();
            let n = self.answers.read_until(0, &mut raw).expect("chromium answers");
            assert!(n > 0, "chromium closed the protocol pipe");
            raw.pop();
            let answer: Value = serde_json::from_slice(&raw).expect("a DevTools message");
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let params = json!({ "expression": expression, "returnByValue": true });
        let result = self.call(Some(&session), "Runtime.evaluate", params);
        result["result"]["value"].clone()
    }

    /// The page as a PNG.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let session = self.session.clone();
        let shot = self.call(Some(&session), "Page.captureScreenshot", json!({ "format": "png" }));
        base64(shot["data"].as_str().expect("image data"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64, decoded.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
