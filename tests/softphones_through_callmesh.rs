//! Real softphones through Callmesh: three baresip instances, each sending a tone of its
//! own. Alice calls bob through Callmesh; bob transfers her to carol (blind: baresip's
//! `/transfer`, a REFER); alice and carol then hear each other — in one process and across
//! the cluster.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Callmesh;
use media::audio::tone::dominant_tone;
use session_core::peer::load_wav;
use testkit::baresip::Baresip;
use testkit::wait::blocking_until;

const WAIT: Duration = Duration::from_secs(10);
const TONES: [f64; 3] = [440.0, 660.0, 880.0];

/// The tone a WAV file's last half second is made of (among the three parties').
fn last_tone(path: &Path) -> f64 {
    let heard = load_wav(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let half_second = heard.sample_rate as usize / 2;
    let tail = &heard.samples[heard.samples.len().saturating_sub(half_second)..];
    dominant_tone(tail, heard.sample_rate, &TONES).map_or(0.0, |(f, _)| f)
}

/// Bytes heard so far in a party's latest call.
fn heard_bytes(party: &Baresip) -> u64 {
    party.heard().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
}

fn blind_transfer(start: impl FnOnce(&str) -> Callmesh) {
    let mut alice = Baresip::start("alice", 440).unwrap();
    let mut bob = Baresip::start("bob", 660).unwrap();
    let mut carol = Baresip::start("carol", 880).unwrap();
    let cm = start(&format!("[[routes]]\nuser = '^1\\d{{3}}$'\ntarget = \"{}\"\n", bob.uri()));

    alice.command(&format!("/dial sip:1000@{}", cm.sip[0])).unwrap();
    alice.wait_for("Call established", WAIT).unwrap_or_else(|e| panic!("{e}\n{}", alice.output()));
    bob.wait_for("Call established", WAIT).unwrap();

    bob.command(&format!("/transfer {}", carol.uri())).unwrap();
    carol.wait_for("Call established: sip:alice@", WAIT).unwrap_or_else(|e| panic!("{e}\n{}", carol.output()));

    // A second of the two talking (8 kHz, 16-bit), then alice hangs up.
    let goal = heard_bytes(&alice) + 16_000;
    let talking = std::panic::catch_unwind(|| {
        blocking_until("a second of alice and carol talking", WAIT, || {
            heard_bytes(&alice) >= goal && heard_bytes(&carol) >= 16_000
        })
    });
    if talking.is_err() {
        panic!(
            "alice heard {} bytes, carol {}\nalice:\n{}\ncallmesh:\n{}",
            heard_bytes(&alice),
            heard_bytes(&carol),
            alice.output(),
            cm.output()
        );
    }
    alice.command("/hangup").unwrap();
    alice.wait_for("terminated", WAIT).unwrap();
    carol.wait_for("terminated", WAIT).unwrap();
    assert_eq!(last_tone(&alice.heard().unwrap()), 880.0, "alice hears carol's tone, not bob's");
    assert_eq!(last_tone(&carol.heard().unwrap()), 440.0, "carol hears alice's tone");
    // Bob's leg went when carol answered (his BYE and ours cross): nothing is left.
    cm.wait_idle();
}

#[test]
fn a_softphone_transfers_a_call_to_another_in_one_process() {
    blind_transfer(Callmesh::all_in_one);
}

#[test]
fn a_softphone_transfers_a_call_to_another_across_the_cluster() {
    blind_transfer(Callmesh::cluster);
}
