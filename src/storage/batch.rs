//! Kafka's record batch, format v2 (magic 2): the unit a producer sends, the broker appends and a
//! consumer fetches, and byte for byte what a segment file holds (Kafka's `DefaultRecordBatch`,
//! KIP-98; the "Record Batch" section of Kafka's protocol documentation).
//!
//! All integers are big-endian; inside a record, lengths and deltas are zigzag varints.
//!
//! ```text
//! pos  field                  type  CRC-covered
//!   0  baseOffset             i64   no  (assigned by the broker on append)
//!   8  batchLength            i32   no  (bytes after this field)
//!  12  partitionLeaderEpoch   i32   no  (stamped by the broker on append)
//!  16  magic                  i8    no  (= 2)
//!  17  crc                    u32   -   CRC-32C (Castagnoli) of attributes..end
//!  21  attributes             i16   yes (0-2 compression, 3 timestamp type, 4 transactional,
//!                                        5 control, 6 delete horizon)
//!  23  lastOffsetDelta        i32   yes
//!  27  baseTimestamp          i64   yes
//!  35  maxTimestamp           i64   yes
//!  43  producerId             i64   yes
//!  51  producerEpoch          i16   yes
//!  53  baseSequence           i32   yes
//!  57  recordsCount           i32   yes
//!  61  records                      yes (compressed as one stream, if a codec is set)
//! ```
//!
//! Each record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//! keyLength varint (-1: null) key, valueLength varint value, headersCount varint, then per
//! header keyLength varint, key (UTF-8), valueLength varint (-1: null), value.

use std::fmt;

use bytes::Bytes;

use crate::storage::compression;
pub use crate::storage::compression::Compression;

/// Bytes before the first record (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes not counted by batchLength (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format Samsa reads or writes.
pub const MAGIC: i8 = 2;
/// Kafka's `RecordBatch.NO_PRODUCER_ID`, `NO_PRODUCER_EPOCH`, `NO_SEQUENCE`.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`: what a producer sends.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

// Field positions, as Kafka's `DefaultRecordBatch` names them.
const BASE_OFFSET_OFFSET: usize = 0;
const LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

// Attribute bits (Kafka's `DefaultRecordBatch` masks).
const COMPRESSION_CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
const CONTROL_FLAG_MASK: i16 = 0x20;
const DELETE_HORIZON_FLAG_MASK: i16 = 0x40;

/// The smallest record: length, attributes, timestampDelta, offsetDelta, keyLength,
/// valueLength, headersCount, one byte each. Bounds recordsCount before anything is allocated.
const MIN_RECORD_LEN: usize = 7;

/// Kafka's `TimestampType` (attributes bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    /// The broker's clock at append; every record's timestamp is then the batch's maxTimestamp.
    LogAppendTime,
}

/// Why bytes are not a valid batch. Kafka reports all of these as `CorruptRecordException`
/// (CORRUPT_MESSAGE) or `InvalidRecordException` (INVALID_RECORD); recovery truncates at them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// The buffer ends before the header or the batch does (a torn write, or a short read).
    Truncated {
        needed: usize,
        have: usize,
    },
    BadMagic(i8),
    /// batchLength below the header's own size.
    BadLength(i32),
    CrcMismatch {
        stored: u32,
        computed: u32,
    },
    /// Anything else that cannot be: unknown codec, counts, record framing, a records section
    /// that does not decompress.
    Corrupt(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { needed, have } => {
                write!(f, "truncated batch: needs {needed} bytes, {have} present")
            }
            BatchError::BadMagic(magic) => write!(f, "magic {magic}, expected {MAGIC}"),
            BatchError::BadLength(len) => write!(
                f,
                "batch length {len} is below the minimum {}",
                BATCH_HEADER_LEN - LOG_OVERHEAD
            ),
            BatchError::CrcMismatch { stored, computed } => write!(
                f,
                "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            BatchError::Corrupt(why) => write!(f, "corrupt batch: {why}"),
        }
    }
}

impl std::error::Error for BatchError {}

fn corrupt(why: impl Into<String>) -> BatchError {
    BatchError::Corrupt(why.into())
}

/// The 61 bytes before the records, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The whole batch on disk: batchLength plus the 12 bytes it does not count.
    pub fn size_in_bytes(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }

    /// When set, baseTimestamp holds the delete horizon of a compacted batch (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG_MASK != 0
    }

    /// Fails only on a header that `validate` would refuse (codec ids 5-7).
    pub fn compression(&self) -> Result<Compression, BatchError> {
        let id = self.attributes & COMPRESSION_CODEC_MASK;
        Compression::from_id(id).ok_or_else(|| corrupt(format!("unknown compression codec {id}")))
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_MASK != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

fn get_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

fn get_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn get_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// The largest base offset whose batch offsets (base + lastOffsetDelta + 1) cannot overflow.
pub const MAX_BASE_OFFSET: i64 = i64::MAX - i32::MAX as i64 - 1;

/// Decodes the header at the start of `buf`, checking only what the header alone can tell:
/// that all 61 bytes are there, the magic, a batchLength that covers at least the header, and
/// a base offset in range.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < BATCH_HEADER_LEN {
        return Err(BatchError::Truncated {
            needed: BATCH_HEADER_LEN,
            have: buf.len(),
        });
    }
    let magic = buf[MAGIC_OFFSET] as i8;
    if magic != MAGIC {
        return Err(BatchError::BadMagic(magic));
    }
    let batch_length = get_i32(buf, LENGTH_OFFSET);
    if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::BadLength(batch_length));
    }
    // The base offset is not covered by the CRC: a corrupt one must be refused here, before any
    // offset arithmetic (base + an i32 delta + 1) can overflow.
    let base_offset = get_i64(buf, BASE_OFFSET_OFFSET);
    if !(0..=MAX_BASE_OFFSET).contains(&base_offset) {
        return Err(BatchError::Corrupt(format!(
            "baseOffset {base_offset} is out of range"
        )));
    }
    let last_offset_delta = get_i32(buf, LAST_OFFSET_DELTA_OFFSET);
    Ok(BatchHeader {
        base_offset,
        batch_length,
        partition_leader_epoch: get_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
        magic,
        crc: get_i32(buf, CRC_OFFSET) as u32,
        attributes: get_i16(buf, ATTRIBUTES_OFFSET),
        last_offset_delta,
        base_timestamp: get_i64(buf, BASE_TIMESTAMP_OFFSET),
        max_timestamp: get_i64(buf, MAX_TIMESTAMP_OFFSET),
        producer_id: get_i64(buf, PRODUCER_ID_OFFSET),
        producer_epoch: get_i16(buf, PRODUCER_EPOCH_OFFSET),
        base_sequence: get_i32(buf, BASE_SEQUENCE_OFFSET),
        records_count: get_i32(buf, RECORDS_COUNT_OFFSET),
    })
}

/// Checks the batch at the start of `buf` (trailing bytes are the next batch's business): the
/// header, that the whole batch is present, its CRC-32C (Kafka's `DefaultRecordBatch.ensureValid`),
/// then what must hold of any v2 batch, compacted ones included: a known codec, and recordsCount
/// within 0..=lastOffsetDelta+1 (compaction removes records but keeps lastOffsetDelta).
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = parse_header(buf)?;
    let size = header.size_in_bytes();
    if buf.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            have: buf.len(),
        });
    }
    let computed = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..size]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let compression = header.compression()?;
    if header.last_offset_delta < 0 {
        return Err(corrupt(format!(
            "negative lastOffsetDelta {}",
            header.last_offset_delta
        )));
    }
    let count = header.records_count;
    if count < 0 || i64::from(count) > i64::from(header.last_offset_delta) + 1 {
        return Err(corrupt(format!(
            "recordsCount {count} does not fit lastOffsetDelta {}",
            header.last_offset_delta
        )));
    }
    if compression == Compression::None
        && count as usize > (size - BATCH_HEADER_LEN) / MIN_RECORD_LEN
    {
        return Err(corrupt(format!(
            "recordsCount {count} cannot fit in {} bytes of records",
            size - BATCH_HEADER_LEN
        )));
    }
    Ok(header)
}

/// Assigns offsets: the broker's rewrite on append. Not CRC-covered, so the CRC stays valid.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps the leader's epoch on append (KIP-101). Not CRC-covered.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    let at = PARTITION_LEADER_EPOCH_OFFSET;
    buf[at..at + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// For topics with `message.timestamp.type=LogAppendTime`: as Kafka's
/// `DefaultRecordBatch.setMaxTimestamp`, sets the timestamp-type bit and maxTimestamp (which
/// every record then reads as its timestamp), leaves baseTimestamp and the record deltas alone,
/// and recomputes the CRC. `buf` must hold the whole batch.
pub fn set_max_timestamp_log_append_time(buf: &mut [u8], timestamp: i64) {
    let size = get_i32(buf, LENGTH_OFFSET) as usize + LOG_OVERHEAD;
    assert!(buf.len() >= size, "set_max_timestamp on a partial batch");
    let attributes = get_i16(buf, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_MASK;
    buf[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..size]);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A record as a producer writes it, relative to its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record as a consumer sees it, with absolute offset and timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The batch-level fields of a batch to encode; `Default` is a plain, non-idempotent producer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSpec {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    /// The codec of the records section (Kafka's producer `compression.type`).
    pub compression: Compression,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            base_timestamp: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            compression: Compression::None,
        }
    }
}

/// Encodes `records`, CreateTime, into one whole batch, the records section compressed with
/// `spec.compression`. lastOffsetDelta is the last record's offset delta and maxTimestamp the
/// largest record timestamp, as Kafka's `MemoryRecordsBuilder` writes them. Panics on no
/// records or non-increasing offset deltas: a producer never builds such a batch.
pub fn encode_batch(spec: &BatchSpec, records: &[Record]) -> Bytes {
    let last = records.last().expect("a batch holds at least one record");
    assert!(records[0].offset_delta >= 0, "negative offset delta");
    assert!(
        records
            .windows(2)
            .all(|w| w[0].offset_delta < w[1].offset_delta),
        "offset deltas must increase"
    );
    let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
    let mut attributes: i16 = spec.compression.id();
    if spec.transactional {
        attributes |= TRANSACTIONAL_FLAG_MASK;
    }
    if spec.control {
        attributes |= CONTROL_FLAG_MASK;
    }

    let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + records.len() * 16);
    buf.extend_from_slice(&spec.base_offset.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes()); // batchLength, filled below
    buf.extend_from_slice(&spec.partition_leader_epoch.to_be_bytes());
    buf.push(MAGIC as u8);
    buf.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    buf.extend_from_slice(&attributes.to_be_bytes());
    buf.extend_from_slice(&last.offset_delta.to_be_bytes());
    buf.extend_from_slice(&spec.base_timestamp.to_be_bytes());
    buf.extend_from_slice(&spec.base_timestamp.wrapping_add(max_delta).to_be_bytes());
    buf.extend_from_slice(&spec.producer_id.to_be_bytes());
    buf.extend_from_slice(&spec.producer_epoch.to_be_bytes());
    buf.extend_from_slice(&spec.base_sequence.to_be_bytes());
    buf.extend_from_slice(&len_i32(records.len()).to_be_bytes());
    debug_assert_eq!(buf.len(), BATCH_HEADER_LEN);
    if spec.compression == Compression::None {
        for record in records {
            encode_record(&mut buf, record);
        }
    } else {
        let mut section = Vec::with_capacity(records.len() * 16);
        for record in records {
            encode_record(&mut section, record);
        }
        buf.extend_from_slice(&compression::compress(spec.compression, &section));
    }
    Bytes::from(seal(buf))
}

/// Fills in batchLength and the CRC of a whole batch whose other fields are written.
fn seal(mut buf: Vec<u8>) -> Vec<u8> {
    let batch_length = len_i32(buf.len() - LOG_OVERHEAD);
    buf[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("length fits a Kafka i32")
}

fn encode_record(out: &mut Vec<u8>, record: &Record) {
    let mut body = Vec::with_capacity(32);
    body.push(0); // attributes: unused by v2 records
    put_varlong(&mut body, record.timestamp_delta);
    put_varint(&mut body, record.offset_delta);
    put_nullable(&mut body, record.key.as_deref());
    put_nullable(&mut body, record.value.as_deref());
    put_varint(&mut body, len_i32(record.headers.len()));
    for (key, value) in &record.headers {
        put_varint(&mut body, len_i32(key.len()));
        body.extend_from_slice(key.as_bytes());
        put_nullable(&mut body, value.as_deref());
    }
    put_varint(out, len_i32(body.len()));
    out.extend_from_slice(&body);
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, len_i32(bytes.len()));
            out.extend_from_slice(bytes);
        }
    }
}

/// Zigzag then base-128, low group first (Kafka's `ByteUtils.writeVarint`).
fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A read position over a record's bytes; every read checks the bound.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], BatchError> {
        if len > self.remaining() {
            return Err(corrupt(format!(
                "field of {len} bytes overruns its record ({} left)",
                self.remaining()
            )));
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    /// Base-128 groups, at most `max_bytes` of them (Kafka: "Varint is too long").
    fn unsigned_varint(&mut self, max_bytes: usize) -> Result<u64, BatchError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(format!("varint longer than {max_bytes} bytes")))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let raw = self.unsigned_varint(5)? as u32;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.unsigned_varint(10)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A length-prefixed field where -1 means null.
    fn nullable(&mut self, what: &str) -> Result<Option<&'a [u8]>, BatchError> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < 0 => Err(corrupt(format!("{what} length {len}"))),
            len => Ok(Some(self.take(len as usize)?)),
        }
    }
}

/// A record as it lies in its batch: borrowed, nothing copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl RecordRef<'_> {
    pub fn to_owned(&self) -> DecodedRecord {
        let bytes = |b: Option<&[u8]>| b.map(Bytes::copy_from_slice);
        DecodedRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            key: bytes(self.key),
            value: bytes(self.value),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), bytes(*v)))
                .collect(),
        }
    }
}

/// Validates the batch at the start of `buf` and walks its records, handing each to `visit`:
/// borrowed from `buf` when the batch is uncompressed, from the decompressed records otherwise
/// (so `visit` cannot keep them). Record framing is checked as Kafka's `DefaultRecord.readFrom`
/// does: each record must consume exactly its length, offset deltas must increase up to
/// lastOffsetDelta, and no bytes may follow the last record. A compressed batch of no records
/// (a cleaned-out one) is not decompressed, as Kafka's `DefaultRecordBatch.iterator` skips it.
pub fn for_each_record(
    buf: &[u8],
    mut visit: impl FnMut(RecordRef<'_>),
) -> Result<BatchHeader, BatchError> {
    let header = validate(buf)?;
    let section = &buf[BATCH_HEADER_LEN..header.size_in_bytes()];
    match header.compression()? {
        Compression::None => walk_records(section, &header, &mut visit)?,
        _ if header.records_count == 0 => {}
        codec => {
            let records = compression::decompress(codec, section).map_err(corrupt)?;
            walk_records(&records, &header, &mut visit)?;
        }
    }
    Ok(header)
}

/// The records section, uncompressed: `header.records_count` records and nothing after them.
fn walk_records<'a>(
    records: &'a [u8],
    header: &BatchHeader,
    visit: &mut impl FnMut(RecordRef<'a>),
) -> Result<(), BatchError> {
    let mut cursor = Cursor {
        buf: records,
        pos: 0,
    };
    let mut previous_delta = -1;
    for index in 0..header.records_count {
        let (offset_delta, record) = parse_record(&mut cursor, header)
            .map_err(|e| corrupt(format!("record {index}: {e}")))?;
        if offset_delta <= previous_delta || offset_delta > header.last_offset_delta {
            return Err(corrupt(format!(
                "record {index}: offset delta {offset_delta} after {previous_delta}, \
                 lastOffsetDelta {}",
                header.last_offset_delta
            )));
        }
        previous_delta = offset_delta;
        visit(record);
    }
    if cursor.remaining() != 0 {
        return Err(corrupt(format!(
            "{} bytes remain after the last record",
            cursor.remaining()
        )));
    }
    Ok(())
}

/// Kafka's `LogValidator` when the topic's `compression.type` names another codec than the
/// batch's: the same batch, every header field kept but the codec bits, its records section
/// decompressed and compressed again with `codec` (the records' bytes themselves unchanged),
/// its length and CRC recomputed. A batch already in `codec`, or of no records, is returned as
/// it is. `buf` must hold exactly one batch.
pub fn recompress(buf: &[u8], codec: Compression) -> Result<Vec<u8>, BatchError> {
    let header = validate(buf)?;
    assert_eq!(
        header.size_in_bytes(),
        buf.len(),
        "recompress takes one whole batch"
    );
    let source = header.compression()?;
    if source == codec || header.records_count == 0 {
        return Ok(buf.to_vec());
    }
    let records = compression::decompress(source, &buf[BATCH_HEADER_LEN..]).map_err(corrupt)?;
    let mut out = buf[..BATCH_HEADER_LEN].to_vec();
    let attributes = (header.attributes & !COMPRESSION_CODEC_MASK) | codec.id();
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&compression::compress(codec, &records));
    Ok(seal(out))
}

/// Validates the batch and every record's framing (the broker's append path), copying nothing
/// but a compressed batch's records, which are decompressed.
pub fn validate_records(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    for_each_record(buf, |_| {})
}

/// Validates the batch at the start of `buf` and decodes its records into owned values.
pub fn decode_records(buf: &[u8]) -> Result<(BatchHeader, Vec<DecodedRecord>), BatchError> {
    let mut records = Vec::new();
    let header = for_each_record(buf, |r| records.push(r.to_owned()))?;
    Ok((header, records))
}

fn parse_record<'a>(
    cursor: &mut Cursor<'a>,
    header: &BatchHeader,
) -> Result<(i32, RecordRef<'a>), BatchError> {
    let len = cursor.varint()?;
    if len < 0 {
        return Err(corrupt(format!("record length {len}")));
    }
    let mut body = Cursor {
        buf: cursor.take(len as usize)?,
        pos: 0,
    };
    let _attributes = body.take(1)?;
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.nullable("key")?;
    let value = body.nullable("value")?;
    let headers_count = body.varint()?;
    if headers_count < 0 || headers_count as usize > body.remaining() {
        return Err(corrupt(format!("headers count {headers_count}")));
    }
    let mut headers = Vec::with_capacity(headers_count as usize);
    for _ in 0..headers_count {
        let key_len = body.varint()?;
        if key_len < 0 {
            return Err(corrupt(format!("header key length {key_len}")));
        }
        let key = std::str::from_utf8(body.take(key_len as usize)?)
            .map_err(|e| corrupt(format!("header key is not UTF-8: {e}")))?;
        headers.push((key, body.nullable("header value")?));
    }
    if body.remaining() != 0 {
        return Err(corrupt(format!(
            "record length {len} leaves {} bytes unread",
            body.remaining()
        )));
    }
    // Java's long arithmetic wraps; so does ours.
    let timestamp = match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
    };
    let record = RecordRef {
        offset: header.base_offset + i64::from(offset_delta),
        timestamp,
        key,
        value,
        headers,
    };
    Ok((offset_delta, record))
}

/// Walks concatenated batches (a segment file, a fetch response), validating each; see `batches`.
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    stopped: Option<(usize, BatchError)>,
}

/// Iterates `(position, header)` over the whole, valid batches at the start of `buf`. It stops
/// at the end of `buf` or at the first batch that is invalid or incomplete; `stopped_at` then
/// says where and why, which is what recovery truncates at.
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buf,
        position: 0,
        stopped: None,
    }
}

impl BatchIter<'_> {
    /// Where and why iteration stopped before the end of the buffer; `None` while iterating and
    /// after a clean end.
    pub fn stopped_at(&self) -> Option<(usize, BatchError)> {
        self.stopped.clone()
    }

    /// The position of the next batch to read: after a stop, the end of the valid prefix.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Iterator for BatchIter<'_> {
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped.is_some() || self.position == self.buf.len() {
            return None;
        }
        match validate(&self.buf[self.position..]) {
            Ok(header) => {
                let position = self.position;
                self.position += header.size_in_bytes();
                Some((position, header))
            }
            Err(error) => {
                self.stopped = Some((self.position, error));
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
