//! Fuzzes stream framing: the input is split into reads at arbitrary points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::message::framing::{Frame, StreamFramer};
use sip::message::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut framer = StreamFramer::new();
    for chunk in rest.chunks(split.max(1) as usize) {
        framer.buffer_mut().extend_from_slice(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    let _ = Message::parse_stream_message(m);
                }
                Ok(Some(Frame::Ping)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
