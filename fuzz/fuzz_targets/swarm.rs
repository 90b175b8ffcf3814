//! The piece picker driven by arbitrary events (what peers have and send, what the driver
//! releases, pieces that hash right or wrong, readers moving, priorities changing): never a
//! panic, and every invariant checked after each event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spheres_swarm::{Bitfield, Has, Layout, Picker, Priority, Received};
use spheres_wire::Block;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let (Some(a), Some(b)) = (next(), next()) else { return };
    let piece_length = 16 * 1024 * u32::from(a % 4 + 1) - u32::from(b % 3);
    let Some(len) = next() else { return };
    let Ok(layout) = Layout::new(piece_length, u64::from(len) * 7919 + 1) else { return };
    let n = layout.pieces();
    let mut pk = Picker::new(layout, u64::from(a));
    let mut peers: Vec<Bitfield> = (0..4).map(|_| Bitfield::new(n)).collect();
    let mut asked: Vec<(u64, Block)> = Vec::new();
    while let Some(op) = next() {
        let arg = u32::from(next().unwrap_or(0));
        let peer = usize::from(op >> 4) % 5;
        match op % 10 {
            0 if peer < 4 => {
                if peers[peer].set(arg % n.max(1)) {
                    pk.peer_has(arg % n.max(1));
                }
            }
            1 => {
                let has = if peer == 4 { Has::All } else { Has::Some(&peers[peer]) };
                let mut out = Vec::new();
                pk.pick(peer as u64, has, (arg % 40) as usize, &mut out);
                asked.extend(out.into_iter().map(|b| (peer as u64, b)));
            }
            2 | 3 if !asked.is_empty() => {
                let (who, block) = asked.swap_remove(arg as usize % asked.len());
                if let Received::Kept { piece_done: true, .. } = pk.received(who, &block) {
                    if op & 0x80 != 0 { pk.failed(block.piece) } else { pk.verified(block.piece) }
                }
            }
            4 if !asked.is_empty() => {
                let (who, block) = asked.swap_remove(arg as usize % asked.len());
                pk.release(who, &block);
            }
            5 => {
                // A block nobody asked for, with any coordinates.
                let block = Block { piece: arg % (n + 2), begin: u32::from(op) * 1024, length: arg * 64 };
                let _ = pk.received(peer as u64, &block);
            }
            6 => {
                pk.set_reader(u64::from(op & 1), arg, u32::from(op >> 5));
            }
            7 => pk.remove_reader(u64::from(op & 1)),
            8 => {
                let priority = [Priority::Skip, Priority::Normal, Priority::High][(op >> 6) as usize % 3];
                pk.set_priority(arg..arg + u32::from(op >> 3), priority);
            }
            9 if peer < 4 => {
                pk.peer_left(Has::Some(&peers[peer]));
                peers[peer] = Bitfield::new(n);
                let gone = peer as u64;
                for (_, b) in asked.iter().filter(|(w, _)| *w == gone) {
                    pk.release(gone, b);
                }
                asked.retain(|(w, _)| *w != gone);
            }
            _ => {}
        }
        pk.check();
    }
});
