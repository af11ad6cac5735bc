//! The benchmark harness of issue 4: a synthetic, valid workload
//! ([`workload`]), fresh processes timed with their own peak memory
//! ([`measure`]), and the Markdown table ([`report`]). The binary
//! `accord-bench` ties them together; see its `--help`.

pub mod measure;
pub mod postgres;
pub mod report;
pub mod serve;
pub mod workload;
