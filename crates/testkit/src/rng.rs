//! A tiny deterministic generator, so that generated logs and random moments
//! are the same on every run and a failure can be reproduced from its seed.

/// xorshift64 (Marsaglia's 13, 7, 17). Not for statistics: for picking.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// From any seed, small ones included (an iteration number): the seed is
    /// spread over the 64 bits, and the state is never zero.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// From a state used as it is (not zero): a stream that a test has
    /// always drawn from.
    pub fn from_state(state: u64) -> Rng {
        assert_ne!(state, 0, "a xorshift state of zero stays zero");
        Rng(state)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
