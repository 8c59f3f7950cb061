//! The one error type of the core. Callers branch on its variants (an entry that
//! was already decided is not the same failure as one that does not exist), and
//! the HTTP layer maps each variant to exactly one status code.

use crate::status::{Status, UnknownStatus};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed or violates a named limit.
    #[error("{0}")]
    Invalid(String),
    /// The body is larger than the named limit.
    #[error("{0}")]
    TooLarge(String),
    /// No usable credentials were presented.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The path is blocked for privacy on this service.
    #[error("{0}")]
    Blocked(String),
    #[error("{0}")]
    NotFound(String),
    /// A name that must be unique is already taken.
    #[error("{0}")]
    Conflict(String),
    /// A queue entry has already left the state the action needs.
    #[error("queue entry {id} is already {status}")]
    AlreadyDecided { id: String, status: Status },
    /// Too many attempts; the caller may retry after this many seconds.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after_secs: u64,
    },
    /// The owner paused all agents.
    #[error("{0}")]
    Paused(String),
    /// The upstream service did not answer in time.
    #[error("{0}")]
    UpstreamTimeout(String),
    /// The upstream service could not be reached or answered unusably.
    #[error("{0}")]
    Upstream(String),
    /// The credential store failed; the message says what to do.
    #[error("{0}")]
    Credentials(String),
    /// Anything else: a bug or an I/O failure. Its details are logged, not shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The HTTP status this error answers with, on any surface.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::TooLarge(_) => 413,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) | Error::Blocked(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) | Error::AlreadyDecided { .. } => 409,
            Error::Throttled { .. } => 429,
            Error::UpstreamTimeout(_) => 504,
            Error::Upstream(_) => 502,
            Error::Credentials(_) | Error::Paused(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
}

impl From<UnknownStatus> for Error {
    fn from(e: UnknownStatus) -> Self {
        Error::Invalid(e.to_string())
    }
}
