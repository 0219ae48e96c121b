//! The integration tests, one binary: each module is one suite (run one with
//! `cargo test --test integration ssh::`). One binary compiles and links the
//! helpers (the Railway test server with apollo-compiler, the sshd harness)
//! once, instead of once per suite.
//!
//! Suites run interleaved on the default test threads, so no test may rely on
//! running alone in its process: each starts its own sshd, Railway server and
//! sandbox on free ports and temp folders, and sets no process-wide state.

// The helpers stay in tests/support/, where benches/scale.rs includes them too.
#[path = "../support/mod.rs"]
mod support;

mod architecture;
mod attacks;
mod careful;
mod check;
mod cli;
mod comment_size;
mod concurrency;
mod crash;
mod edit;
mod env_file;
mod environments;
mod everyday;
mod faults;
mod hostile;
mod install;
mod json_docs;
mod keychain;
mod leaks;
mod lifecycle;
mod liveness;
mod railway;
mod railway_live;
mod readers;
mod reliability;
mod review;
mod scale_counts;
mod scripts;
mod signals;
mod ssh;
mod transcripts;
mod trust;
mod values;
mod workflow;
