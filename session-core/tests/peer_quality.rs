//! `on_media_quality` made to fire for real: a SIPp callee plays G.711 from SIPp's own
//! capture with a quarter of its packets taken out (the lossy link), and the caller's quality
//! monitor, with the seed's default thresholds but a one-second check, reports the loss.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use session_core::peer::{CallHandler, MediaQualityEvent, QualityThresholds, SimplePeer};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

const WAIT: Duration = Duration::from_secs(15);
const CAPTURE: &str = "/usr/share/sip-tester/g711a.pcap";

#[derive(Default)]
struct Alerts(Mutex<Vec<MediaQualityEvent>>);

#[async_trait]
impl CallHandler for Alerts {
    async fn on_media_quality(&self, event: &MediaQualityEvent) -> bool {
        self.0.lock().unwrap().push(event.clone());
        true
    }
}

/// SIPp's capture with every fourth packet left out (pcap: a 24-byte header, then records
/// of a 16-byte header and the packet).
fn lossy_capture(to: &std::path::Path) {
    let pcap = std::fs::read(CAPTURE).expect("SIPp's G.711 capture");
    let mut out = pcap[..24].to_vec();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let record = &pcap[at..at + 16 + len];
        if n % 4 != 3 {
            out.extend_from_slice(record);
        }
        (at, n) = (at + 16 + len, n + 1);
    }
    assert!(n > 200, "the capture has its 236 packets ({n})");
    std::fs::write(to, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_stream_raises_a_quality_alert_at_the_default_thresholds() {
    let defaults = QualityThresholds::default();
    assert_eq!((defaults.min_mos, defaults.max_packet_loss, defaults.max_jitter_ms), (3.0, 5.0, 50.0));
    assert_eq!(defaults.check_interval, Duration::from_secs(5));

    let dir = tempfile::tempdir().unwrap();
    let lossy = dir.path().join("lossy.pcap");
    lossy_capture(&lossy);
    let scenario = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../loadtest/scenarios/uas_pcap.xml")).unwrap();
    let scenario_path = dir.path().join("uas_lossy.xml");
    std::fs::write(&scenario_path, scenario.replace(CAPTURE, &lossy.display().to_string())).unwrap();
    let callee = free_local_addr();
    let player = tokio::task::spawn_blocking(move || {
        Sipp::scenario_file(scenario_path).local(callee).media().calls(1).timeout(Duration::from_secs(30)).spawn().unwrap()
    })
    .await
    .unwrap();

    let alerts = Arc::new(Alerts::default());
    let alice = SimplePeer::builder("alice").handler(alerts.clone()).build().await.unwrap();
    let call = alice.call(&format!("sip:service@{callee}")).await.expect("SIPp answers");
    call.monitor_quality(QualityThresholds { check_interval: Duration::from_secs(1), ..defaults });
    testkit::wait::until("a quality alert", WAIT, || !alerts.0.lock().unwrap().is_empty()).await;
    let alert = alerts.0.lock().unwrap()[0].clone();
    assert!(alert.breached.contains(&"max_packet_loss"), "{alert:?}");
    assert!(alert.packet_loss > 15.0, "a quarter of the packets were taken out: {alert:?}");
    call.hangup().await.unwrap();
    tokio::task::spawn_blocking(move || player.finish().unwrap().assert_clean(1)).await.unwrap();
}
