//! secretsync: keep secrets identical everywhere they are deployed.
//!
//! The library behind the `secretsync` binary. A [`manifest`] declares every
//! secret's canonical value (age-encrypted, see [`crypto`]) and the targets
//! it must reach; [`engine`] reads the targets and [`plan`] compares them with
//! the manifest; [`apply`] makes them converge; [`render`] shows the result
//! without ever printing a value.
//!
//! The command line is the binary's (`src/main.rs`, `src/cli.rs` and
//! `src/commands/`, the only code that knows clap): a thin layer that parses
//! arguments, calls this library and prints what [`render`] makes.

pub mod apply;
pub mod check;
pub mod ci;
pub mod compare;
pub mod credential;
pub mod crypto;
pub mod edit;
pub mod engine;
pub mod envfile;
pub mod environ;
pub mod environments;
pub mod envkey;
pub mod error;
pub mod fsutil;
pub mod generate;
pub mod gitignore;
pub mod holdable;
pub mod lifecycle;
pub mod liveness;
pub mod lock;
pub mod manifest;
pub mod markdown;
pub mod neutral;
pub mod notice;
pub mod notify;
pub mod plan;
pub mod redact;
pub mod remote;
pub mod render;
pub mod review;
pub mod saved;
pub mod secret;
pub mod selection;
pub mod signals;
pub mod targets;
pub mod time;
pub mod undecryptable;
pub mod writelock;
