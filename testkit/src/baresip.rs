//! baresip, a real softphone, for end-to-end tests: one instance per party, on free ports,
//! with a sine of its own as microphone, what it hears dumped to a WAV file per call (its
//! `sndfile` module), answering calls by itself, driven through its UDP console (`/dial`,
//! `/transfer`, `/hangup`), its log read for what happened. Killed when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::ports::{free_local_addr, free_local_block};
use crate::process::Spawned;

/// A running baresip.
pub struct Baresip {
    pub name: String,
    /// Where it takes SIP (UDP).
    pub sip: SocketAddr,
    console: SocketAddr,
    process: Spawned,
    dir: tempfile::TempDir,
}

impl Baresip {
    /// `name` at a free SIP address, sending a sine of `tone_hz` and answering every call.
    /// baresip binds TCP and TLS beside the UDP port it is given: when another test took one
    /// of those meanwhile, it starts again on other ports (three tries).
    pub fn start(name: &str, tone_hz: u32) -> Result<Baresip, String> {
        let mut tries = 0;
        loop {
            match Baresip::start_once(name, tone_hz) {
                Err(e) if e.contains("Address already in use") && tries < 2 => tries += 1,
                result => return result,
            }
        }
    }

    fn start_once(name: &str, tone_hz: u32) -> Result<Baresip, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (sip, console) = (free_local_addr(), free_local_addr());
        let rtp = free_local_block(8).port();
        let config = format!(
            "poll_method epoll\nsip_listen {sip}\nsip_transports udp\n\
             audio_source ausine,{tone_hz}\naudio_alert aufile,/dev/null\nsnd_path {dir}\n\
             ausrc_srate 48000\nauplay_srate 48000\nausrc_channels 2\nauplay_channels 1\n\
             rtp_ports {rtp}-{last}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule ausine.so\nmodule aufile.so\nmodule sndfile.so\nmodule cons.so\n\
             module account.so\nmodule menu.so\n\
             cons_listen {console}\n",
            dir = dir.path().display(),
            last = rtp + 7,
        );
        std::fs::write(dir.path().join("config"), config).map_err(|e| e.to_string())?;
        let account = format!("<sip:{name}@{sip};transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU\n");
        std::fs::write(dir.path().join("accounts"), account).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir.path());
        let mut process = Spawned::spawn(name, cmd)?;
        process.wait_for_line("baresip is ready", Duration::from_secs(10))?;
        Ok(Baresip { name: name.to_owned(), sip, console, process, dir })
    }

    /// Its address of record: `sip:<name>@<address>`.
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.name, self.sip)
    }

    /// Types a console command (`/dial sip:…`, `/transfer sip:…`, `/hangup`).
    pub fn command(&self, command: &str) -> Result<(), String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        socket.send_to(format!("{command}\n").as_bytes(), self.console).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Waits for a line of its log containing `needle` (after those already waited for).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        self.process.wait_for_line(needle, timeout)
    }

    /// What it heard in its latest call: 8 kHz mono WAV, growing while the call lasts and
    /// complete once it is over.
    pub fn heard(&self) -> Option<PathBuf> {
        let dumps = std::fs::read_dir(self.dir.path()).ok()?;
        let mut heard: Vec<PathBuf> =
            dumps.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().ends_with("-dec.wav")).collect();
        heard.sort();
        heard.pop()
    }

    /// Its whole log so far.
    pub fn output(&self) -> String {
        self.process.output()
    }
}
