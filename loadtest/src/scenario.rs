//! The load scenarios and the SIPp command lines that play them: the far end (SIPp UAS,
//! echoing RTP when media is on) and the callers (SIPp UAC) at a constant rate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

/// What a run measures.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// INVITE → 200 → ACK → hold → BYE, signaling only.
    Basic,
    /// The same with G.711 RTP both ways through the media relay (7 s calls).
    Media,
    /// Long calls ramped to a number of simultaneous calls.
    Concurrent,
    /// A registration storm with digest authentication.
    Register,
    /// Calls into an ACD queue served by SIPp agents.
    Queue,
    /// Calls with RTP through a cluster of two processes per role on three NATS servers,
    /// one node of each role killed in turn (`chaos/`).
    Chaos,
}

/// The G.711 A-law capture SIPp ships: 236 RTP packets over 7.05 s.
pub const PCAP: &str = "/usr/share/sip-tester/g711a.pcap";
pub const PCAP_PACKETS: u64 = 236;
const PCAP_MS: u64 = 7060;

/// Fixed addresses of a run (loopback, as the baseline measured).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ports {
    /// Where the callers send (the system under test, or the far end when direct).
    pub system_sip: SocketAddr,
    pub uas_sip: SocketAddr,
    pub uac_sip: SocketAddr,
    pub uas_media: SocketAddr,
    pub uac_media: SocketAddr,
    /// HTTP ports (metrics) of Callmesh's processes: all-in-one uses the first.
    pub http: [u16; 4],
    pub rtp_min: u16,
    pub rtp_max: u16,
}

impl Ports {
    pub fn standard() -> Ports {
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Ports {
            system_sip: at(5060),
            uas_sip: at(5070),
            uac_sip: at(5080),
            uas_media: at(6000),
            uac_media: at(7000),
            http: [9060, 9061, 9062, 9063],
            rtp_min: 20_000,
            rtp_max: 59_999,
        }
    }

    /// Free ports everywhere (and 250 RTP ports below the ephemeral range), so a run can go
    /// beside other servers on this machine; Kamailio's script needs the standard ones.
    pub fn free() -> Ports {
        let free = testkit::ports::free_local_addr;
        let rtp_min = 10_000 + (std::process::id() % 40) as u16 * 250;
        Ports {
            system_sip: free(),
            uas_sip: free(),
            uac_sip: free(),
            uas_media: testkit::ports::free_local_block(testkit::sipp::SIPP_MEDIA_PORTS),
            uac_media: testkit::ports::free_local_block(testkit::sipp::SIPP_MEDIA_PORTS),
            http: [free().port(), free().port(), free().port(), free().port()],
            rtp_min,
            rtp_max: rtp_min + 249,
        }
    }
}

/// A scenario with its parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub scenario: Scenario,
    /// Length of each constant-rate step.
    pub step_secs: u64,
    /// How long an answered call is held before BYE (signaling-only calls).
    pub hold_ms: u64,
    /// Times each call plays the G.711 capture (0: no RTP).
    pub plays: u32,
    /// Registering users (register scenario).
    pub users: u32,
    /// Agents of the queue, all answering at the far end (queue scenario).
    pub agents: u32,
}

impl Plan {
    pub fn has_rtp(&self) -> bool {
        self.plays > 0
    }

    /// Whether the system anchors media (Kamailio then needs rtpengine).
    pub fn anchors_media(&self) -> bool {
        matches!(self.scenario, Scenario::Media | Scenario::Concurrent)
    }

    /// Whether a far end answers calls (every scenario but the registration storm).
    pub fn has_far_end(&self) -> bool {
        self.scenario != Scenario::Register
    }

    /// How long one call lasts once answered, ms.
    pub fn call_ms(&self) -> u64 {
        if self.has_rtp() { u64::from(self.plays) * PCAP_MS + 440 } else { self.hold_ms }
    }

    /// The rate that keeps `concurrent` calls up (concurrent scenario).
    pub fn rate_for_concurrency(&self, concurrent: u32) -> u32 {
        (u64::from(concurrent) * 1000).div_ceil(self.call_ms().max(1)) as u32
    }

    /// Calls made in a step at `rate`: a concurrent step keeps creating calls for one call
    /// length more, so its target is held for the whole step.
    pub fn calls(&self, rate: u32) -> u64 {
        let secs = if self.scenario == Scenario::Concurrent { self.step_secs + self.call_ms() / 1000 } else { self.step_secs };
        u64::from(rate) * secs.max(1)
    }

    /// An upper bound for a whole step at `rate`, seconds.
    pub fn bound_secs(&self, rate: u32) -> u64 {
        let creating = self.calls(rate) / u64::from(rate.max(1));
        creating * 3 + self.call_ms() / 1000 + 30
    }

    /// Far-end SIPp: answers every call (echoing RTP when media is on).
    pub fn uas_command(&self, ports: &Ports, scenarios: &Path, bound_secs: u64) -> Command {
        let mut c = sipp(ports.uas_sip, ports.uas_media, bound_secs);
        c.args(["-trace_stat", "-stf", "uas_stat.csv"]);
        if self.has_rtp() {
            c.arg("-sf").arg(scenarios.join("uas_echo.xml")).args(["-rtp_echo", "-mb", "2048"]);
        } else {
            c.args(["-sn", "uas"]);
        }
        c
    }

    /// Caller SIPp at `rate` for `calls` calls to `target`. Files it needs are written to
    /// `dir` (its working directory).
    pub fn uac_command(
        &self,
        target: SocketAddr,
        rate: u32,
        ports: &Ports,
        scenarios: &Path,
        dir: &Path,
    ) -> std::io::Result<Command> {
        let calls = self.calls(rate);
        let mut c = sipp(ports.uac_sip, ports.uac_media, self.bound_secs(rate));
        c.current_dir(dir);
        c.arg(target.to_string());
        c.args(["-r", &rate.to_string(), "-rp", "1000", "-m", &calls.to_string()]);
        c.args(["-trace_stat", "-stf", "uac_stat.csv", "-trace_rtt", "-rtt_freq", &rate.max(1).to_string()]);
        c.args(["-default_behaviors", "all,-abortunexp"]);
        match self.scenario {
            Scenario::Register => {
                let users: String = (0..self.users)
                    .map(|i| format!("{0};[authentication username={0} password={1}]\n", user_name(i), user_password(i)))
                    .collect();
                std::fs::write(dir.join("users.csv"), format!("SEQUENTIAL\n{users}"))?;
                c.arg("-sf").arg(scenarios.join("register_storm.xml")).args(["-inf", "users.csv"]);
            }
            _ if self.has_rtp() => {
                let xml = std::fs::read_to_string(scenarios.join("uac_pcap.xml"))?;
                std::fs::write(dir.join("uac_media.xml"), repeat_plays(&xml, self.plays)?)?;
                c.args(["-sf", "uac_media.xml"]);
                // Limit simultaneous calls to what the rate and call length give, doubled.
                let limit = u64::from(rate) * (self.call_ms() / 1000 + 2) * 2;
                c.args(["-l", &limit.to_string()]);
            }
            _ => {
                c.args(["-sn", "uac", "-d", &self.hold_ms.to_string()]);
            }
        }
        Ok(c)
    }

    /// File-name prefix of the caller's SIPp output files (its scenario's name).
    pub fn uac_prefix(&self) -> &'static str {
        match self.scenario {
            Scenario::Register => "register_storm",
            _ if self.has_rtp() => "uac_media",
            _ => "uac",
        }
    }
}

/// SIPp with the options every run uses: bounded, no keyboard, statistics every second,
/// buffers large enough for bursts.
pub fn sipp(sip: SocketAddr, media: SocketAddr, bound_secs: u64) -> Command {
    let mut c = Command::new("sipp");
    c.args(["-i", &sip.ip().to_string(), "-p", &sip.port().to_string()]);
    c.args(["-mi", &media.ip().to_string(), "-mp", &media.port().to_string()]);
    c.args(["-nostdin", "-fd", "1", "-trace_screen", "-trace_err", "-max_socket", "10000", "-buff_size", "4194304"]);
    c.args(["-timeout", &format!("{bound_secs}s")]);
    c
}

/// The user names and passwords of the registration storm.
pub fn user_name(i: u32) -> String {
    format!("u{i:05}")
}

pub fn user_password(i: u32) -> String {
    format!("pw{i:05}x")
}

/// `uac_pcap.xml` with its pcap play repeated `plays` times (each play is followed by a
/// pause as long as the capture; the last pause lets the last packets arrive).
pub fn repeat_plays(xml: &str, plays: u32) -> std::io::Result<String> {
    let bad = || std::io::Error::other("uac_pcap.xml has no <nop> pcap play followed by a pause");
    let start = xml.find("  <nop>").ok_or_else(bad)?;
    let pause = "<pause milliseconds=\"7500\"/>";
    let end = xml[start..].find(pause).ok_or_else(bad)? + start + pause.len();
    let play = &xml[start..end];
    let between = play.replace(pause, &format!("<pause milliseconds=\"{PCAP_MS}\"/>"));
    let block = [vec![between.as_str(); plays.max(1) as usize - 1], vec![play]].concat().join("\n");
    Ok(format!("{}{}{}", &xml[..start], block, &xml[end..]))
}

/// Where the scenario files are: next to this crate's manifest.
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(scenario: Scenario, plays: u32) -> Plan {
        Plan { scenario, step_secs: 20, hold_ms: 60_000, plays, users: 10, agents: 10 }
    }

    #[test]
    fn the_media_caller_plays_the_capture_as_many_times_as_asked() {
        let xml = std::fs::read_to_string(scenarios_dir().join("uac_pcap.xml")).unwrap();
        let four = repeat_plays(&xml, 4).unwrap();
        assert_eq!(four.matches("play_pcap_audio").count(), 4);
        assert_eq!(four.matches("<pause milliseconds=\"7060\"/>").count(), 3);
        assert_eq!(four.matches("<pause milliseconds=\"7500\"/>").count(), 1);
        assert_eq!(repeat_plays(&xml, 1).unwrap(), xml);
        assert!(repeat_plays("<scenario/>", 2).is_err());
    }

    #[test]
    fn concurrency_targets_become_rates_and_longer_steps() {
        let p = plan(Scenario::Concurrent, 4);
        assert_eq!(p.call_ms(), 4 * 7060 + 440);
        assert_eq!(p.rate_for_concurrency(600), 21, "600 calls of 28.7 s need 21 new calls a second");
        assert_eq!(p.calls(21), 21 * (20 + 28));
        let quiet = plan(Scenario::Concurrent, 0);
        assert_eq!(quiet.rate_for_concurrency(10_000), 167);
    }

    #[test]
    fn a_basic_step_makes_rate_times_seconds_calls_within_a_bound() {
        let p = Plan { hold_ms: 0, ..plan(Scenario::Basic, 0) };
        assert_eq!(p.calls(500), 10_000);
        assert_eq!(p.bound_secs(500), 20 * 3 + 30);
        assert!(!p.anchors_media() && p.has_far_end());
        assert!(!plan(Scenario::Register, 0).has_far_end());
    }

    #[test]
    fn the_registration_storm_writes_its_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(Scenario::Register, 0);
        let c = p.uac_command(Ports::standard().system_sip, 50, &Ports::standard(), &scenarios_dir(), dir.path()).unwrap();
        let users = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
        assert_eq!(users.lines().count(), 11);
        assert_eq!(users.lines().nth(1), Some("u00000;[authentication username=u00000 password=pw00000x]"));
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(args.windows(2).any(|w| w == ["-inf", "users.csv"]), "{args:?}");
    }
}
