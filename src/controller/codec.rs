//! Kafka's flexible message encoding (KIP-482) as the generated `*Record.write`/`read` methods use
//! it for metadata records: big-endian fixed-width integers, unsigned varints
//! (`ByteUtils.writeUnsignedVarint`), compact strings and arrays (unsigned varint length + 1, 0
//! for null), and a trailing tagged-field section (varint count, then `tag`, `size`, bytes for
//! each, in ascending tag order), plus the checks the generated reader makes.
//!
//! kafka-protocol 0.18 has these primitives (`protocol::types`) but keeps their `Encoder` and
//! `Decoder` traits crate-private, so they cannot be called from here; the few lines below stand
//! in for them.

use bytes::{BufMut, Bytes, BytesMut};

use super::records::RecordError;
use super::uuid::Uuid;

/// The generated code refuses strings longer than this (`0x7fff`) on both sides.
pub const MAX_STRING_BYTES: usize = 0x7fff;

/// A tagged field to write: its tag, and the writer of its value.
pub type TaggedField<'a> = (u32, &'a dyn Fn(&mut Writer));

/// Writes one message body.
#[derive(Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// `ByteUtils.writeUnsignedVarint`: seven bits at a time, low group first.
    pub fn unsigned_varint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.buf.put_u8((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.put_u8(value as u8);
    }

    pub fn i8(&mut self, value: i8) {
        self.buf.put_i8(value);
    }

    pub fn i16(&mut self, value: i16) {
        self.buf.put_i16(value);
    }

    pub fn u16(&mut self, value: u16) {
        self.buf.put_u16(value);
    }

    pub fn i32(&mut self, value: i32) {
        self.buf.put_i32(value);
    }

    pub fn i64(&mut self, value: i64) {
        self.buf.put_i64(value);
    }

    pub fn bool(&mut self, value: bool) {
        self.buf.put_u8(u8::from(value));
    }

    /// Kafka's `writeUuid`: most significant long, then least significant long.
    pub fn uuid(&mut self, value: Uuid) {
        self.i64(value.most_significant_bits as i64);
        self.i64(value.least_significant_bits as i64);
    }

    /// A compact string; `None` is written as length 0. Kafka throws on strings above 0x7fff
    /// bytes ("field is too long to be serialized"): so do we, as a caller's bug.
    pub fn compact_string(&mut self, value: Option<&str>) {
        let Some(s) = value else {
            self.unsigned_varint(0);
            return;
        };
        assert!(
            s.len() <= MAX_STRING_BYTES,
            "a string of {} bytes is too long to be serialized (max {MAX_STRING_BYTES})",
            s.len()
        );
        self.unsigned_varint(s.len() as u32 + 1);
        self.buf.put_slice(s.as_bytes());
    }

    /// A compact array: length + 1 (0 for null), then each element.
    pub fn compact_array<T>(&mut self, items: Option<&[T]>, mut item: impl FnMut(&mut Self, &T)) {
        match items {
            None => self.unsigned_varint(0),
            Some(items) => {
                let len = u32::try_from(items.len() + 1).expect("array length fits an int");
                self.unsigned_varint(len);
                for value in items {
                    item(self, value);
                }
            }
        }
    }

    pub fn i32_array(&mut self, items: Option<&[i32]>) {
        self.compact_array(items, |w, &v| w.i32(v));
    }

    pub fn uuid_array(&mut self, items: Option<&[Uuid]>) {
        self.compact_array(items, |w, &v| w.uuid(v));
    }

    /// The tagged-field section. `fields` holds the fields that differ from their defaults (the
    /// only ones Kafka writes), each as (tag, writer of its value); they must come in ascending
    /// tag order, as the generated code writes them.
    pub fn tagged_fields(&mut self, fields: &[TaggedField<'_>]) {
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0), "tags ascend");
        self.unsigned_varint(u32::try_from(fields.len()).expect("few tags"));
        for (tag, write) in fields {
            let mut value = Writer::default();
            write(&mut value);
            self.unsigned_varint(*tag);
            self.unsigned_varint(u32::try_from(value.buf.len()).expect("small field"));
            self.buf.put_slice(&value.buf);
        }
    }
}

/// Reads one message body, never panicking whatever the bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes, or an error naming the field if fewer remain.
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if n > self.buf.len() {
            return Err(Self::error(
                field,
                format!("needs {n} bytes, {} remain", self.buf.len()),
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array_of<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// `ByteUtils.readUnsignedVarint`: at most five bytes; a fifth byte with its continuation
    /// bit set is an illegal varint (bits above 32 are dropped, as Java's shift drops them).
    pub fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut value = 0u32;
        for i in 0..5 {
            let [byte] = self.array_of::<1>(field)?;
            value |= u32::from(byte & 0x7f).wrapping_shl(7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Self::error(
            field,
            "varint is too long (more than 5 bytes)".to_owned(),
        ))
    }

    pub fn i8(&mut self, field: &'static str) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.array_of(field)?))
    }

    pub fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array_of(field)?))
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_be_bytes(self.array_of(field)?))
    }

    pub fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array_of(field)?))
    }

    pub fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array_of(field)?))
    }

    /// Kafka's `readByte() != 0`.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, RecordError> {
        Ok(self.i8(field)? != 0)
    }

    pub fn uuid(&mut self, field: &'static str) -> Result<Uuid, RecordError> {
        let msb = self.i64(field)? as u64;
        let lsb = self.i64(field)? as u64;
        Ok(Uuid::from_parts(msb, lsb))
    }

    fn error(field: &'static str, detail: String) -> RecordError {
        RecordError::Malformed { field, detail }
    }

    /// The length of a compact string or array, `None` for null. Java reads the varint into an
    /// `int` and subtracts one, so any negative result (0, or a varint above 2^31) is null.
    fn compact_length(&mut self, field: &'static str) -> Result<Option<usize>, RecordError> {
        let length = (self.unsigned_varint(field)? as i32).wrapping_sub(1);
        Ok(usize::try_from(length).ok())
    }

    /// A compact string as the generated reader takes it: length 0 is null, a length above
    /// 0x7fff is an error, and the bytes are decoded as Java's `new String(bytes, UTF_8)` does,
    /// malformed sequences becoming U+FFFD rather than an error.
    pub fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let Some(len) = self.compact_length(field)? else {
            return Ok(None);
        };
        if len > MAX_STRING_BYTES {
            return Err(Self::error(
                field,
                format!("string had invalid length {len}"),
            ));
        }
        let bytes = self.take(len, field)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    pub fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?.ok_or_else(|| {
            Self::error(
                field,
                "non-nullable field was serialized as null".to_owned(),
            )
        })
    }

    /// A compact array; as the generated reader, a length larger than the bytes left is refused
    /// before anything is allocated ("Tried to allocate a collection of size ...").
    pub fn nullable_array<T>(
        &mut self,
        field: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Option<Vec<T>>, RecordError> {
        let Some(len) = self.compact_length(field)? else {
            return Ok(None);
        };
        if len > self.remaining() {
            return Err(Self::error(
                field,
                format!(
                    "tried to allocate a collection of size {len}, but there are only {} bytes remaining",
                    self.remaining()
                ),
            ));
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(item(self)?);
        }
        Ok(Some(items))
    }

    pub fn array<T>(
        &mut self,
        field: &'static str,
        item: impl FnMut(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Vec<T>, RecordError> {
        self.nullable_array(field, item)?.ok_or_else(|| {
            Self::error(
                field,
                "non-nullable field was serialized as null".to_owned(),
            )
        })
    }

    pub fn nullable_i32_array(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<i32>>, RecordError> {
        self.nullable_array(field, |r| r.i32(field))
    }

    pub fn i32_array(&mut self, field: &'static str) -> Result<Vec<i32>, RecordError> {
        self.array(field, |r| r.i32(field))
    }

    pub fn uuid_array(&mut self, field: &'static str) -> Result<Vec<Uuid>, RecordError> {
        self.array(field, |r| r.uuid(field))
    }

    pub fn nullable_uuid_array(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<Uuid>>, RecordError> {
        self.nullable_array(field, |r| r.uuid(field))
    }

    /// The tagged-field section: for each field, `known(tag, reader over exactly its bytes)`
    /// returns `Ok(true)` when it took the field. Unknown tags are skipped, as Kafka keeps them
    /// aside (`_unknownTaggedFields`) without interpreting them. A known field must fill its
    /// declared size exactly.
    pub fn tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, RecordError>,
    ) -> Result<(), RecordError> {
        let count = self.unsigned_varint("tagged fields")?;
        for _ in 0..count {
            let tag = self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tagged field size")? as usize;
            if size > self.remaining() {
                return Err(Self::error(
                    "tagged field size",
                    format!("tag {tag} claims {size} bytes, {} remain", self.remaining()),
                ));
            }
            let (field, rest) = self.buf.split_at(size);
            self.buf = rest;
            let mut field_reader = Reader::new(field);
            if known(tag, &mut field_reader)? && field_reader.remaining() != 0 {
                return Err(Self::error(
                    "tagged field",
                    format!(
                        "tag {tag} left {} of its {size} bytes",
                        field_reader.remaining()
                    ),
                ));
            }
        }
        Ok(())
    }
}
