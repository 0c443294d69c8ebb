//! Errors of the builder's operations and of the rebalancer.
//!
//! Messages follow Swift's wording where Swift has one, so that operators and scripts that
//! grep swift-ring-builder's output keep working.

/// What went wrong in a builder operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuilderError {
    /// A constructor or setter argument is out of range (Swift's `ValueError`).
    #[error("{0}")]
    InvalidArgument(String),
    /// `add_dev` with an id already taken.
    #[error("Duplicate device id: {0}")]
    DuplicateDevice(u32),
    /// An operation named a device id that does not exist.
    #[error("No device with id {0}")]
    UnknownDevice(u32),
    /// A device marked for removal cannot be changed any more.
    #[error("Can not set {what} of dev_id {id} because it is marked for removal")]
    MarkedForRemoval { what: &'static str, id: u32 },
    /// No weighted device at all.
    #[error("There are no devices in this ring, or all devices have been deleted")]
    EmptyRing,
    /// The ring (or the plan for it) is inconsistent (Swift's `RingValidationError`).
    #[error("{0}")]
    Validation(String),
    /// The ring is in the middle of a partition power increase.
    #[error("{0}")]
    PartitionPowerIncrease(String),
}

/// Python's `repr()` of a float for the values messages show (`3.0`, `2.5`).
pub(crate) fn py_float(value: f64) -> String {
    if value.is_finite() && value == value.trunc() && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        format!("{value:?}")
    }
}
