//! A Railway scope resolved to ids: what the queries, the writes and the
//! liveness verdicts address.

/// A scope resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Ids {
    pub(super) environment: String,
    pub(super) service: Option<String>,
}
