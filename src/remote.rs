//! SSH connections shared by every target on a host (one master per host).
//!
//! Placeholder until the ssh_env target lands: it holds no connection yet.

/// The run's SSH connections, one per distinct host.
#[derive(Default)]
pub struct SshPool {}
