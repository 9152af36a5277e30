//! A fake Kubernetes API server for tests: the few requests Callmesh makes — get a Node, get
//! a Pod, watch a Pod by name — answered over plain HTTP/1.1 on loopback the way the real API
//! server answers them (JSON objects, `Status` for a 404, a chunked stream of watch events).
//! The test adds Nodes and Pods, deletes a Pod (its watchers see `deletionTimestamp` set),
//! and writes a kubeconfig pointing at the fake for the program under test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// What the fake holds.
#[derive(Default)]
struct State {
    /// Node name → its JSON.
    nodes: HashMap<String, String>,
    /// (namespace, name) → (resource version, deleting).
    pods: HashMap<(String, String), (u64, bool)>,
    /// Every request line received, in order (`GET /api/v1/nodes/n1`).
    requests: Vec<String>,
    /// Bumped on every change, to wake watchers.
    generation: u64,
}

/// A running fake API server; stops accepting when dropped.
pub struct FakeKubeApi {
    pub addr: SocketAddr,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl FakeKubeApi {
    pub fn start() -> FakeKubeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Kubernetes API");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let state = Arc::downgrade(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let (Ok(stream), Some(state)) = (stream, state.upgrade()) else { return };
                thread::spawn(move || serve(stream, &state));
            }
        });
        FakeKubeApi { addr, shared }
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
        s.generation += 1;
        cv.notify_all();
    }

    /// Adds a Node with `addresses` (type, address) and `annotations`.
    pub fn add_node(&self, name: &str, addresses: &[(&str, &str)], annotations: &[(&str, &str)]) {
        let addresses: Vec<String> = addresses.iter().map(|(t, a)| format!(r#"{{"type":"{t}","address":"{a}"}}"#)).collect();
        let annotations: Vec<String> = annotations.iter().map(|(k, v)| format!(r#""{k}":"{v}""#)).collect();
        let json = format!(
            r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}","resourceVersion":"7","annotations":{{{}}}}},"status":{{"addresses":[{}]}}}}"#,
            annotations.join(","),
            addresses.join(",")
        );
        self.change(|s| {
            s.nodes.insert(name.to_owned(), json);
        });
    }

    /// Adds a running Pod.
    pub fn add_pod(&self, namespace: &str, name: &str) {
        self.change(|s| {
            s.pods.insert((namespace.to_owned(), name.to_owned()), (100, false));
        });
    }

    /// Marks a Pod as being deleted (sets `deletionTimestamp`), as `kubectl delete` does.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.change(|s| {
            if let Some((version, deleting)) = s.pods.get_mut(&(namespace.to_owned(), name.to_owned())) {
                *version += 1;
                *deleting = true;
            }
        });
    }

    /// The request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).requests.clone()
    }

    /// Whether a watch on `pod` is open now (the program under test is watching).
    pub fn watching(&self, pod: &str) -> bool {
        self.requests().iter().any(|r| r.contains("watch=") && r.contains(pod))
    }

    /// Writes a kubeconfig for this server in `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: test\n  user:\n    token: test-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: test\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }
}

fn pod_json(namespace: &str, name: &str, version: u64, deleting: bool) -> String {
    let deletion = if deleting { r#","deletionTimestamp":"2026-12-01T00:00:00Z","deletionGracePeriodSeconds":30"# } else { "" };
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","resourceVersion":"{version}"{deletion}}},"spec":{{"containers":[{{"name":"callmesh","image":"callmesh"}}]}}}}"#
    )
}

fn not_found(what: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Status","metadata":{{}},"status":"Failure","message":"{what} not found","reason":"NotFound","code":404}}"#
    )
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// One connection: requests in turn (keep-alive), a watch streams until the pod is deleted.
fn serve(stream: TcpStream, shared: &(Mutex<State>, Condvar)) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = line.trim().to_owned();
        shared.0.lock().unwrap_or_else(|e| e.into_inner()).requests.push(request.clone());
        let target = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result = match parts.as_slice() {
            ["api", "v1", "nodes", name] => {
                let node = shared.0.lock().unwrap_or_else(|e| e.into_inner()).nodes.get(*name).cloned();
                match node {
                    Some(json) => respond(&mut writer, "200 OK", &json),
                    None => respond(&mut writer, "404 Not Found", &not_found(&format!("nodes \\\"{name}\\\""))),
                }
            }
            ["api", "v1", "namespaces", ns, "pods", name] => {
                let pod =
                    shared.0.lock().unwrap_or_else(|e| e.into_inner()).pods.get(&(ns.to_string(), name.to_string())).copied();
                match pod {
                    Some((v, deleting)) => respond(&mut writer, "200 OK", &pod_json(ns, name, v, deleting)),
                    None => respond(&mut writer, "404 Not Found", &not_found(&format!("pods \\\"{name}\\\""))),
                }
            }
            ["api", "v1", "namespaces", ns, "pods"] if query.contains("watch=") => {
                let name = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("fieldSelector="))
                    .map(|v| v.replace("%3D", "=").replace("%3d", "="))
                    .and_then(|v| v.strip_prefix("metadata.name=").map(str::to_owned))
                    .unwrap_or_default();
                watch(&mut writer, shared, ns, &name);
                return;
            }
            _ => respond(&mut writer, "404 Not Found", &not_found(path)),
        };
        if result.is_err() {
            return;
        }
    }
}

/// Streams the pod's changes as watch events until it is being deleted (then the stream
/// ends), or for at most a minute.
fn watch(writer: &mut TcpStream, shared: &(Mutex<State>, Condvar), ns: &str, name: &str) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    let (lock, cv) = shared;
    let key = (ns.to_owned(), name.to_owned());
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen = state.generation;
    loop {
        let (next, timeout) =
            cv.wait_timeout_while(state, Duration::from_secs(60), |s| s.generation == seen).unwrap_or_else(|e| e.into_inner());
        state = next;
        if timeout.timed_out() {
            break;
        }
        seen = state.generation;
        if let Some((version, true)) = state.pods.get(&key).copied() {
            let event = format!("{{\"type\":\"MODIFIED\",\"object\":{}}}\n", pod_json(ns, name, version, true));
            let _ = write!(writer, "{:x}\r\n{event}\r\n", event.len());
            break;
        }
    }
    drop(state);
    let _ = writer.write_all(b"0\r\n\r\n");
}
