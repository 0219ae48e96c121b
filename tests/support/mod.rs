#![allow(dead_code)]
//! Helpers shared by the integration tests: each file is one concern.

pub mod cli;
