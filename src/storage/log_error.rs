//! What a partition log's operations fail with, by Kafka's exception names and error codes.

use std::fmt;
use std::io;

use crate::storage::batch::BatchError;

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
        }
    }
}

impl std::error::Error for LogError {}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(e)
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
