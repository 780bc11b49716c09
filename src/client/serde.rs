//! Kafka's serializers and deserializers (`org.apache.kafka.common.serialization`): the bytes a
//! key or value becomes on the wire, bit for bit as the Java client writes them.
//!
//! Numbers are big-endian (Java's `ByteBuffer` order); floats are their IEEE 754 bits; a UUID is
//! its canonical text form in UTF-8 (Kafka's `UUIDSerializer` writes `uuid.toString()`); `None`
//! is Kafka's null, which every serializer passes through. `Json` is the usual companion of
//! Kafka's clients (Spring's and Confluent's `JsonSerializer`), here through serde.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;

/// A value that could not be turned back from bytes (`SerializationException`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerdeError(pub String);

impl fmt::Display for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Kafka's `Serializer<T>`: `None` in, `None` out.
pub trait Serializer<T: ?Sized>: Send + Sync {
    fn serialize(&self, data: &T) -> Result<Bytes, SerdeError>;
}

/// Kafka's `Deserializer<T>`.
pub trait Deserializer<T>: Send + Sync {
    fn deserialize(&self, data: &[u8]) -> Result<T, SerdeError>;
}

/// `ByteArraySerializer` / `BytesSerializer`: the bytes as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesSerde;

impl Serializer<[u8]> for BytesSerde {
    fn serialize(&self, data: &[u8]) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(data))
    }
}

impl Serializer<Bytes> for BytesSerde {
    fn serialize(&self, data: &Bytes) -> Result<Bytes, SerdeError> {
        Ok(data.clone())
    }
}

impl Deserializer<Bytes> for BytesSerde {
    fn deserialize(&self, data: &[u8]) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(data))
    }
}

/// `StringSerializer` with its default `UTF8` encoding.
#[derive(Clone, Copy, Debug, Default)]
pub struct StringSerde;

impl Serializer<str> for StringSerde {
    fn serialize(&self, data: &str) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(data.as_bytes()))
    }
}

impl Serializer<String> for StringSerde {
    fn serialize(&self, data: &String) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(data.as_bytes()))
    }
}

impl Deserializer<String> for StringSerde {
    fn deserialize(&self, data: &[u8]) -> Result<String, SerdeError> {
        String::from_utf8(data.to_vec())
            .map_err(|e| SerdeError(format!("StringDeserializer: not UTF-8: {e}")))
    }
}

/// The fixed-width number serializers: `ShortSerializer`, `IntegerSerializer`, `LongSerializer`,
/// `FloatSerializer`, `DoubleSerializer`, each big-endian, each refusing a deserialize of the
/// wrong length ("Size of data received by ... is not N").
macro_rules! number_serde {
    ($name:ident, $kafka:literal, $t:ty) => {
        #[doc = concat!("Kafka's `", $kafka, "Serializer` / `", $kafka, "Deserializer`.")]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Serializer<$t> for $name {
            fn serialize(&self, data: &$t) -> Result<Bytes, SerdeError> {
                Ok(Bytes::copy_from_slice(&data.to_be_bytes()))
            }
        }

        impl Deserializer<$t> for $name {
            fn deserialize(&self, data: &[u8]) -> Result<$t, SerdeError> {
                const N: usize = std::mem::size_of::<$t>();
                let bytes: [u8; N] = data.try_into().map_err(|_| {
                    SerdeError(format!(
                        "Size of data received by {}Deserializer is not {N}",
                        $kafka
                    ))
                })?;
                Ok(<$t>::from_be_bytes(bytes))
            }
        }
    };
}

number_serde!(ShortSerde, "Short", i16);
number_serde!(IntegerSerde, "Integer", i32);
number_serde!(LongSerde, "Long", i64);
number_serde!(FloatSerde, "Float", f32);
number_serde!(DoubleSerde, "Double", f64);

/// `UUIDSerializer`: the canonical lowercase text form (36 characters), UTF-8.
#[derive(Clone, Copy, Debug, Default)]
pub struct UuidSerde;

impl Serializer<uuid::Uuid> for UuidSerde {
    fn serialize(&self, data: &uuid::Uuid) -> Result<Bytes, SerdeError> {
        Ok(Bytes::from(data.hyphenated().to_string()))
    }
}

impl Deserializer<uuid::Uuid> for UuidSerde {
    fn deserialize(&self, data: &[u8]) -> Result<uuid::Uuid, SerdeError> {
        let text = std::str::from_utf8(data)
            .map_err(|e| SerdeError(format!("UUIDDeserializer: not UTF-8: {e}")))?;
        uuid::Uuid::try_parse(text)
            .map_err(|e| SerdeError(format!("UUIDDeserializer: {text:?} is not a UUID: {e}")))
    }
}

/// JSON through serde, as the JSON serializers that ship beside Kafka's clients write it.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json(PhantomData)
    }
}

impl<T: serde::Serialize> Serializer<T> for Json<T> {
    fn serialize(&self, data: &T) -> Result<Bytes, SerdeError> {
        serde_json::to_vec(data)
            .map(Bytes::from)
            .map_err(|e| SerdeError(format!("JSON: {e}")))
    }
}

impl<T: serde::de::DeserializeOwned> Deserializer<T> for Json<T> {
    fn deserialize(&self, data: &[u8]) -> Result<T, SerdeError> {
        serde_json::from_slice(data).map_err(|e| SerdeError(format!("JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes Kafka's own serializer tests expect (`SerializationTest`): big-endian numbers,
    /// IEEE 754 floats, UUIDs as text.
    #[test]
    fn serializers_write_what_kafkas_write() {
        assert_eq!(&ShortSerde.serialize(&-2).unwrap()[..], &[0xff, 0xfe]);
        assert_eq!(
            &IntegerSerde.serialize(&423_412_424).unwrap()[..],
            &[0x19, 0x3c, 0xc2, 0xc8]
        );
        assert_eq!(
            &LongSerde.serialize(&-1).unwrap()[..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        // Float.floatToRawIntBits(1.5f) = 0x3fc00000.
        assert_eq!(
            &FloatSerde.serialize(&1.5).unwrap()[..],
            &[0x3f, 0xc0, 0, 0]
        );
        // Double.doubleToRawLongBits(-2.0) = 0xc000000000000000.
        assert_eq!(
            &DoubleSerde.serialize(&-2.0).unwrap()[..],
            &[0xc0, 0, 0, 0, 0, 0, 0, 0]
        );
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            &UuidSerde.serialize(&id).unwrap()[..],
            b"01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(&StringSerde.serialize("été").unwrap()[..], "été".as_bytes());
    }

    #[test]
    fn every_serde_round_trips() {
        fn round<T: PartialEq + fmt::Debug, S: Serializer<T> + Deserializer<T>>(s: S, v: T) {
            let bytes = s.serialize(&v).unwrap();
            assert_eq!(s.deserialize(&bytes).unwrap(), v);
        }
        round(ShortSerde, i16::MIN);
        round(IntegerSerde, i32::MAX);
        round(LongSerde, i64::MIN);
        round(FloatSerde, f32::MIN_POSITIVE);
        round(DoubleSerde, std::f64::consts::PI);
        round(UuidSerde, uuid::Uuid::from_u128(7));
        round(StringSerde, "k1".to_string());
        round(BytesSerde, Bytes::from_static(b"\0\x01"));
        round(Json::<Vec<u32>>::default(), vec![1, 2, 3]);
    }

    #[test]
    fn wrong_sizes_and_bad_text_are_errors_not_panics() {
        assert!(IntegerSerde.deserialize(&[1, 2, 3]).is_err());
        assert!(LongSerde.deserialize(&[]).is_err());
        assert!(StringSerde.deserialize(&[0xff]).is_err());
        assert!(UuidSerde.deserialize(b"not-a-uuid").is_err());
        assert!(Json::<u32>::default().deserialize(b"{").is_err());
    }
}
