//! wattledger engine: turns fleet inference logs into hourly energy and emissions aggregates.
//!
//! Data flow: [`source`] finds the input files, [`readers`] stream them in parallel blocks into
//! canonical [`record::Record`]s (bad ones go to [`rejects`]), the [`kernel`] applies the
//! methodology (config + grid) to each record and folds it into an [`aggregate`] of mergeable
//! hourly partial sums. No Python here: the `wattledger-py` crate is the binding.

pub mod aggregate;
pub mod attribution;
pub mod cell;
pub mod cells;
pub mod columns;
pub mod config;
pub mod counters;
pub mod digest;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod grid;
pub mod interner;
pub mod kernel;
pub mod names;
pub mod outcome;
pub mod per_record;
pub mod pipeline;
pub mod presets;
pub mod readers;
pub mod record;
pub mod rejects;
pub mod remote;
pub mod resolved;
pub mod rows;
pub mod source;
pub mod spill;
pub mod textcheck;
pub mod threads;
pub mod time;
pub mod udf;

#[cfg(test)]
mod testutil;

pub use error::{Error, Result};
