//! The store's error type.

use std::sync::Arc;

/// Result alias used throughout the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
///
/// Cloneable because the group-commit writer may have to hand one commit
/// failure to every job of a batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A query failed (constraint violation, I/O error, lost connection, ...).
    #[error("database error: {0}")]
    Database(Arc<diesel::result::Error>),
    /// The database could not be reached or opened.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// No pooled connection became available in time.
    #[error("database connection pool: {0}")]
    Pool(String),
    /// The database URL or options are unusable.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The request itself is unusable (e.g. an unknown bulk-data source).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A referenced row does not exist (e.g. a task for an unknown device).
    #[error("not found: {0}")]
    NotFound(String),
    /// The writer thread is gone (the store is shutting down).
    #[error("the store's writer has stopped")]
    Closed,
    /// A store job panicked; its savepoint was rolled back.
    #[error("a store job panicked: {0}")]
    Panicked(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl StoreError {
    /// True when the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Database(e) if matches!(
                **e,
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                )
            )
        )
    }

    pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> Self {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic payload".to_string()
        };
        StoreError::Panicked(msg)
    }
}
