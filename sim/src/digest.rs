//! A stable 64-bit digest (FNV-1a): the same bytes give the same digest on every machine and
//! every run, unlike `std`'s randomly keyed hashers.

#[derive(Clone, Debug)]
pub struct Digest(u64);

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Digest {
    fn default() -> Self {
        Digest(OFFSET_BASIS)
    }
}

impl Digest {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(PRIME);
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value_and_boundaries() {
        let mut a = Digest::default();
        a.write(b"ab");
        a.write(b"c");
        let mut b = Digest::default();
        b.write(b"a");
        b.write(b"bc");
        assert_ne!(a.finish(), b.finish());
        let mut c = Digest::default();
        c.write(b"ab");
        c.write(b"c");
        assert_eq!(a.finish(), c.finish());
    }
}
