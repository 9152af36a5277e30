//! Call detail records after SIPp calls through `callmesh all`: answered calls, calls the
//! callee refuses (486) and calls the caller cancels while they ring — exactly one record
//! per call, exported by `callmesh cdr export`, each with the right disposition, status,
//! who hung up, and the SIP Call-IDs of both legs.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Callmesh, scenario};
use serde_json::Value;
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

const TOKEN: &str = "cdr-test-token-0123456789";

fn export(api: SocketAddr) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callmesh"))
        .args(["cdr", "export", "--since", "1h", "--api", &format!("http://{api}")])
        .env("CALLMESH_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "cdr export: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `calls` calls from a SIPp caller (`uac`, a built-in or a file) to `user` answered by a
/// SIPp callee (`uas`) at `far`.
fn calls(cm: &Callmesh, far: SocketAddr, (uac, uas): (&str, &str), user: &str, calls: u64) {
    let sipp = |name: &str| if name.ends_with(".xml") { Sipp::scenario_file(scenario(name)) } else { Sipp::builtin(name) };
    let callee = sipp(uas).local(far).calls(calls).timeout(Duration::from_secs(60)).spawn().unwrap();
    let caller = sipp(uac).remote(cm.sip[0]).local(free_local_addr()).calls(calls).rate(20.0).dial(user);
    caller.timeout(Duration::from_secs(60)).run().unwrap().assert_clean(calls);
    callee.finish().unwrap().assert_clean(calls);
}

#[test]
fn every_sipp_call_leaves_exactly_one_record() {
    let (answers, busy, rings, api) = (free_local_addr(), free_local_addr(), free_local_addr(), free_local_addr());
    let config = format!(
        "[api]\nlisten = \"{api}\"\ntokens = [\"{TOKEN}\"]\n\
         [[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{answers}\"\n\
         [[routes]]\nuser = '^2'\ntarget = \"sip:${{user}}@{busy}\"\n\
         [[routes]]\nuser = '^3'\ntarget = \"sip:${{user}}@{rings}\"\n"
    );
    let cm = Callmesh::all_in_one(&config);
    calls(&cm, answers, ("uac", "uas"), "1000", 20);
    calls(&cm, busy, ("uac_busy.xml", "uas_busy.xml"), "2000", 5);
    calls(&cm, rings, ("uac_cancel.xml", "uas_ring.xml"), "3000", 5);
    cm.wait_idle();

    let records = export(api);
    assert_eq!(records.len(), 30, "one record per call: {records:#?}");
    let ids: BTreeSet<&str> = records.iter().map(|r| r["session_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 30, "no session twice");
    let callers: BTreeSet<&str> = records.iter().map(|r| r["call_ids"][0].as_str().unwrap()).collect();
    assert_eq!(callers.len(), 30, "each a SIPp call of its own");
    let of = |user: &str| -> Vec<&Value> {
        records.iter().filter(|r| r["callee"].as_str().unwrap().starts_with(&format!("sip:{user}@"))).collect()
    };
    let want =
        [("1000", 20, "answered", 200, "caller"), ("2000", 5, "busy", 486, "callee"), ("3000", 5, "cancelled", 487, "caller")];
    for (user, n, disposition, status, by) in want {
        let mine = of(user);
        assert_eq!(mine.len(), n, "calls to {user}");
        for r in mine {
            assert_eq!(
                (r["disposition"].as_str(), r["status"].as_u64(), r["hangup_by"].as_str()),
                (Some(disposition), Some(status), Some(by)),
                "{r}"
            );
            assert_eq!(r["kind"], "call");
            assert!(r["caller"].as_str().unwrap().starts_with("sip:sipp@"), "{r}");
            assert_eq!(r["legs"].as_array().unwrap().len(), 2, "{r}");
            let callee = &r["legs"][1];
            assert!(
                callee["call_id"].as_str().is_some_and(|c| !c.is_empty()) && callee["call_id"] != r["legs"][0]["call_id"],
                "{r}"
            );
            let (start, answer, end) =
                (r["start_ms"].as_u64().unwrap(), r["answer_ms"].as_u64().unwrap(), r["end_ms"].as_u64().unwrap());
            match disposition {
                "answered" => assert!(start <= answer && answer <= end, "{r}"),
                _ => assert!(answer == 0 && start <= end, "{r}"),
            }
        }
    }
}
