//! Kafka's `Uuid` (`org.apache.kafka.common.Uuid`): 128 bits held as two longs, written on the wire
//! as the most significant long then the least significant one (big-endian, 16 bytes), printed as
//! URL-safe base64 without padding (22 characters). Topic ids, broker incarnation ids and log
//! directory ids are all of this type.

use std::fmt;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid {
    pub most_significant_bits: u64,
    pub least_significant_bits: u64,
}

const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Uuid {
    /// `Uuid.ZERO_UUID`: reserved, never a topic id ("no topic id").
    pub const ZERO: Uuid = Uuid::from_parts(0, 0);
    /// `Uuid.METADATA_TOPIC_ID`: reserved for `__cluster_metadata`.
    pub const METADATA_TOPIC_ID: Uuid = Uuid::from_parts(0, 1);

    pub const fn from_parts(most_significant_bits: u64, least_significant_bits: u64) -> Uuid {
        Uuid {
            most_significant_bits,
            least_significant_bits,
        }
    }

    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.most_significant_bits.to_be_bytes());
        bytes[8..].copy_from_slice(&self.least_significant_bits.to_be_bytes());
        bytes
    }

    /// `Uuid.randomUuid()` from the caller's seeded stream: a version-4 UUID (as
    /// `java.util.UUID.randomUUID` makes), drawn again while it is reserved (`ZERO`,
    /// `METADATA_TOPIC_ID`) or its string form starts with '-' (which would read as a command-line
    /// flag; Kafka rejects those too).
    pub fn random(rng: &mut ChaCha8Rng) -> Uuid {
        loop {
            // RFC 4122 version 4: version nibble 0100, variant bits 10.
            let msb = (rng.next_u64() & !0xF000) | 0x4000;
            let lsb = (rng.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
            let uuid = Uuid::from_parts(msb, lsb);
            let starts_with_dash = BASE64_URL[(msb >> 58) as usize] == b'-';
            if uuid != Uuid::ZERO && uuid != Uuid::METADATA_TOPIC_ID && !starts_with_dash {
                return uuid;
            }
        }
    }
}

/// Kafka's `Uuid.toString()`: URL-safe base64 of the 16 bytes, no padding.
impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let mut out = String::with_capacity(22);
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
            // A full chunk gives 4 characters; the last (1 byte) gives 2, as unpadded base64 does.
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(BASE64_URL[((n >> (18 - 6 * i)) & 0x3F) as usize] as char);
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The `uuid` crate's type, as `kafka-protocol`'s messages carry it: the same 16 bytes.
impl From<Uuid> for uuid::Uuid {
    fn from(id: Uuid) -> uuid::Uuid {
        uuid::Uuid::from_bytes(id.to_bytes())
    }
}

impl From<uuid::Uuid> for Uuid {
    fn from(id: uuid::Uuid) -> Uuid {
        let (msb, lsb) = id.as_u64_pair();
        Uuid::from_parts(msb, lsb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn displays_as_kafka_does() {
        // Kafka: new Uuid(0L, 1L).toString() is "AAAAAAAAAAAAAAAAAAAAAQ" (METADATA_TOPIC_ID).
        assert_eq!(
            Uuid::METADATA_TOPIC_ID.to_string(),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        let all_ones = Uuid::from_parts(u64::MAX, u64::MAX);
        assert_eq!(all_ones.to_string(), "_____________________w");
    }

    #[test]
    fn random_is_version_4_never_reserved_and_deterministic() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let uuid = Uuid::random(&mut a);
            assert_eq!(uuid, Uuid::random(&mut b));
            assert_eq!((uuid.most_significant_bits >> 12) & 0xF, 4);
            assert_eq!(uuid.least_significant_bits >> 62, 0b10);
            assert!(!uuid.to_string().starts_with('-'));
            assert_eq!(uuid.to_string().len(), 22);
        }
    }
}
