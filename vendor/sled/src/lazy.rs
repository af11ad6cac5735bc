//! This module exists because `lazy_static` causes TSAN to
//! be very unhappy. We rely heavily on TSAN for finding
//! races, so we don't use `lazy_static`.
//!
//! accord's copy: the value is kept in a `std::sync::OnceLock`, whose
//! waiters sleep until the initializer is done. The original spun on an
//! `AtomicBool` instead, and the threadpool's `QUEUE` is initialized by a
//! function that starts seven threads which all deref `QUEUE` at once: on a
//! two-core machine those seven spinners starved the thread that was still
//! starting them, which cost every `sled::open` about ten milliseconds.

use std::sync::OnceLock;

/// A lazily initialized value
pub struct Lazy<T, F> {
    value: OnceLock<T>,
    init: F,
}

impl<T, F> Lazy<T, F> {
    /// Create a new Lazy
    pub const fn new(init: F) -> Self
    where
        F: Sized,
    {
        Self { value: OnceLock::new(), init }
    }
}

impl<T, F> std::ops::Deref for Lazy<T, F>
where
    F: Fn() -> T,
{
    type Target = T;

    fn deref(&self) -> &T {
        self.value.get_or_init(|| (self.init)())
    }
}
