//! Which pieces someone has: one bit per piece, high bit first, as BEP 3 puts it on the wire.

use crate::SwarmError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    /// `len` pieces, none had.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bits: vec![0; len.div_ceil(8) as usize],
            len,
            ones: 0,
        }
    }

    /// `len` pieces, every one had.
    pub fn full(len: u32) -> Bitfield {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// A peer's bitfield message for a torrent of `len` pieces: exactly as many bytes as the
    /// pieces need, and the spare bits of the last byte zero (BEP 3: anything else is an error).
    pub fn from_wire(bytes: &[u8], len: u32) -> Result<Bitfield, SwarmError> {
        if bytes.len() != len.div_ceil(8) as usize {
            return Err(SwarmError::BadBitfield);
        }
        if !len.is_multiple_of(8) {
            let spare = 0xffu8 >> (len % 8);
            if bytes.last().is_some_and(|&last| last & spare != 0) {
                return Err(SwarmError::BadBitfield);
            }
        }
        Ok(Bitfield {
            bits: bytes.to_vec(),
            len,
            ones: bytes.iter().map(|b| b.count_ones()).sum(),
        })
    }

    pub fn as_wire(&self) -> &[u8] {
        &self.bits
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many pieces are had.
    pub fn count(&self) -> u32 {
        self.ones
    }

    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Piece `i` is had (`false` past the end).
    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bits[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Marks piece `i` had; returns whether it was new. Past the end does nothing.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bits[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    /// Marks piece `i` not had; returns whether it was had.
    pub fn clear(&mut self, i: u32) -> bool {
        if !self.get(i) {
            return false;
        }
        self.bits[(i / 8) as usize] &= !(0x80 >> (i % 8));
        self.ones -= 1;
        true
    }

    /// The pieces had, in order.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_high_first_and_spare_bits_must_be_zero() {
        let b = Bitfield::from_wire(&[0b1010_0000, 0b1000_0000], 9).unwrap();
        assert!(b.get(0) && !b.get(1) && b.get(2) && b.get(8) && !b.get(9));
        assert_eq!(b.count(), 3);
        assert_eq!(b.ones().collect::<Vec<_>>(), [0, 2, 8]);
        assert!(
            Bitfield::from_wire(&[0, 0b0100_0000], 9).is_err(),
            "spare bit set"
        );
        assert!(Bitfield::from_wire(&[0], 9).is_err(), "too short");
        assert!(Bitfield::from_wire(&[0, 0, 0], 9).is_err(), "too long");
        let mut f = Bitfield::full(9);
        assert!(f.is_full());
        assert_eq!(f.as_wire(), [0xff, 0x80]);
        assert!(f.clear(3) && !f.clear(3) && f.set(3) && !f.set(3) && !f.set(9));
        assert_eq!(Bitfield::from_wire(f.as_wire(), 9).unwrap(), f);
    }
}
