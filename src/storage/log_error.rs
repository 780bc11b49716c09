//! What a partition log's operations fail with, by Kafka's exception names and error codes.

use std::fmt;
use std::io;

use crate::storage::batch::BatchError;
pub use crate::storage::producer_state::ProducerError;

#[derive(Debug)]
pub enum LogError {
    Io(io::Error),
    /// A batch that is not valid: offered to `append` (Kafka answers CORRUPT_MESSAGE for CRC and
    /// framing errors, INVALID_RECORD for inconsistent counts) or found on disk by a read.
    Corrupt(BatchError),
    /// Kafka's `OffsetOutOfRangeException` (OFFSET_OUT_OF_RANGE).
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A follower's batches do not start at the log end (Kafka's
    /// `UnexpectedAppendOffsetException`).
    UnexpectedAppendOffset {
        first_offset: i64,
        log_end_offset: i64,
    },
    /// Batches larger than a segment (Kafka's `RecordBatchTooLargeException`,
    /// RECORD_LIST_TOO_LARGE).
    RecordBatchTooLarge {
        size: usize,
        segment_bytes: u64,
    },
    /// A batch a client may not write, as Kafka's `LogValidator` refuses it (a control batch, a
    /// producer id without a sequence): INVALID_RECORD.
    InvalidRecord(String),
    /// The producer state refuses the batch or marker (see `ProducerError` for the codes).
    Producer(ProducerError),
}

impl LogError {
    /// The Kafka error code a produce (or a marker write) is answered with.
    pub fn error_code(&self) -> i16 {
        match self {
            LogError::Io(_) => 56,                         // KAFKA_STORAGE_ERROR
            LogError::Corrupt(_) => 2,                     // CORRUPT_MESSAGE
            LogError::OffsetOutOfRange { .. } => 1,        // OFFSET_OUT_OF_RANGE
            LogError::UnexpectedAppendOffset { .. } => -1, // UNKNOWN_SERVER_ERROR
            LogError::RecordBatchTooLarge { .. } => 18,    // RECORD_LIST_TOO_LARGE
            LogError::InvalidRecord(_) => 87,              // INVALID_RECORD
            LogError::Producer(e) => e.code(),
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io(e) => write!(f, "I/O error: {e}"),
            LogError::Corrupt(e) => write!(f, "{e}"),
            LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            } => write!(
                f,
                "offset {offset} is out of range [{log_start_offset}, {log_end_offset}]"
            ),
            LogError::UnexpectedAppendOffset {
                first_offset,
                log_end_offset,
            } => write!(
                f,
                "batches start at offset {first_offset}, log end offset is {log_end_offset}"
            ),
            LogError::RecordBatchTooLarge {
                size,
                segment_bytes,
            } => write!(
                f,
                "a batch of {size} bytes exceeds the segment size {segment_bytes}"
            ),
            LogError::InvalidRecord(why) => write!(f, "invalid record: {why}"),
            LogError::Producer(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LogError {}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(e)
    }
}

impl From<ProducerError> for LogError {
    fn from(e: ProducerError) -> Self {
        LogError::Producer(e)
    }
}

impl From<BatchError> for LogError {
    fn from(e: BatchError) -> Self {
        LogError::Corrupt(e)
    }
}

impl From<LogError> for io::Error {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

pub(crate) fn invalid_input(why: String) -> LogError {
    LogError::Io(io::Error::new(io::ErrorKind::InvalidInput, why))
}
