//! How long passes (parsing, folding) tell a progress bar how far they have got, without
//! knowing of any bar.

/// How often a long pass reports how far it has got: every this many events.
pub const TICK_EVERY: u64 = 4096;

/// Told how many more events a long pass has done (from any thread), for a progress bar.
pub type Tick<'a> = &'a (dyn Fn(u64) + Sync);
