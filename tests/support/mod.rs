#![allow(dead_code, unreachable_pub)]
//! Helpers shared by the integration tests: each file is one concern.

pub mod cli;
pub mod conformance;
pub mod railway_server;
pub mod sshd;
pub mod webhook;
