//! `execute_in_transaction`: a unit of work in a transaction of its own, committed if the work
//! succeeds and aborted if it gives up, the way Spring's `KafkaTemplate.executeInTransaction`
//! wraps Kafka's `beginTransaction` / `commitTransaction` / `abortTransaction`.
//!
//! Unlike Spring, a commit that fails with an abortable error (a send of the transaction failed)
//! is followed by the abort Kafka's documentation asks for; a fatal error (the producer was
//! fenced) or a timeout (the commit's outcome is unknown, the call may be retried) is handed
//! back as it is.

use std::future::Future;

use super::transactions::TxnError;
use super::KafkaProducer;

/// Why a transaction did not commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InTransactionError<E> {
    /// The work gave up with `error`; `abort` is what aborting its transaction came to.
    Work {
        error: E,
        abort: Result<(), TxnError>,
    },
    /// Beginning or committing failed with `error`. An abortable failure was followed by an
    /// abort, whose outcome is `abort`; otherwise nothing was tried after it.
    Txn {
        error: TxnError,
        abort: Option<Result<(), TxnError>>,
    },
}

impl KafkaProducer {
    /// Runs `work` in a new transaction: commits when it returns `Ok`, aborts when it returns
    /// `Err` (or when the commit fails abortably). `work` gets a handle to this producer to send
    /// with (and to `send_offsets_to_transaction`).
    pub async fn execute_in_transaction<T, E, F, Fut>(
        &self,
        work: F,
    ) -> Result<T, InTransactionError<E>>
    where
        F: FnOnce(KafkaProducer) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.begin_transaction()
            .map_err(|error| InTransactionError::Txn { error, abort: None })?;
        let value = match work(self.clone()).await {
            Ok(value) => value,
            Err(error) => {
                let abort = self.abort_transaction().await;
                return Err(InTransactionError::Work { error, abort });
            }
        };
        match self.commit_transaction().await {
            Ok(()) => Ok(value),
            Err(error @ TxnError::Abortable(_)) => {
                let abort = Some(self.abort_transaction().await);
                Err(InTransactionError::Txn { error, abort })
            }
            Err(error) => Err(InTransactionError::Txn { error, abort: None }),
        }
    }
}
