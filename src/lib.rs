//! secretsync: keep secrets identical everywhere they are deployed.
//!
//! The library behind the `secretsync` binary. A [`manifest`] declares every
//! secret's canonical value (age-encrypted, see [`crypto`]) and the targets
//! it must reach; [`plan`] compares that with what each [`target`] holds and
//! [`apply`] makes the targets converge.

pub mod crypto;
pub mod manifest;
pub mod remote;
pub mod secret;
pub mod target;
