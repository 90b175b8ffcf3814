//! The peer wire protocol from anyone on the internet who knows an info hash: any bytes, in
//! any cuts, never a panic, never more than one bounded message held; what reads as a
//! message writes back as the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spheres_wire::{BLOCK, Decoder, Handshake, Message};

fuzz_target!(|data: &[u8]| {
    let _ = Handshake::parse(data);
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = usize::from(cut).max(1);
    let mut d = Decoder::new(BLOCK + 13);
    let mut read = Vec::new();
    for chunk in rest.chunks(cut) {
        d.push(chunk);
        loop {
            match d.next_message() {
                Ok(Some(m)) => read.push(m),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.buffered() <= rest.len());
    }
    // Each message read writes back as itself.
    for m in read {
        if matches!(m, Message::Unknown { .. }) {
            continue;
        }
        let mut out = Vec::new();
        m.encode(&mut out);
        let mut again = Decoder::new(u32::MAX);
        again.push(&out);
        assert_eq!(again.next_message(), Ok(Some(m)));
    }
});
