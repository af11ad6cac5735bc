//! What an append did, batch by batch.

/// What one batch did (or, on a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    pub appended: u64,
    pub skipped: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The head after the batch (before it, on a dry run), as hex.
    pub head: Option<String>,
    /// The seq of `head`.
    pub head_seq: Option<u64>,
    /// Events skipped as already recorded that a reversal has removed: (id, the reversal's
    /// id). Sending them again does not bring them back.
    pub reversed: Vec<(String, String)>,
}

/// A file's receipt, under the file's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReceipt {
    pub name: String,
    pub receipt: Receipt,
}
