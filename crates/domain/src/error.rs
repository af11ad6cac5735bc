//! Rejections: one variant per broken rule, each naming the event and the
//! values involved, so a person can see what to fix and a test can assert
//! exactly which rule fired.

use rust_decimal::Decimal;

use crate::values::*;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("event `{event}`: party `{party}` is not registered on or before {date}")]
    UnknownParty {
        event: EventId,
        party: PartyId,
        date: Date,
    },
    #[error("event `{event}`: party `{party}` is already registered (since {registered})")]
    PartyAlreadyRegistered {
        event: EventId,
        party: PartyId,
        registered: Date,
    },
    #[error("event `{event}`: holder `{holder}` has {held} units of `{issuer}` class `{class}` on {date}, fewer than the {needed} this takes: holdings cannot go negative")]
    InsufficientUnits {
        event: EventId,
        issuer: PartyId,
        holder: PartyId,
        class: ClassName,
        held: Decimal,
        needed: Decimal,
        date: Date,
    },
    #[error("event `{event}`: a transfer needs two different parties, but `{party}` is both `from` and `to`")]
    TransferToSelf { event: EventId, party: PartyId },
    #[error("event `{event}`: the percents of `{issuer}`'s holdings add up to {sum}, not 100; name a remainder holder")]
    PercentsMustSumTo100 {
        event: EventId,
        issuer: PartyId,
        sum: Decimal,
    },
    #[error("event `{event}`: obligation `{obligation}` is not incurred on or before {date}")]
    UnknownObligation {
        event: EventId,
        obligation: ObligationId,
        date: Date,
    },
    #[error("event `{event}`: obligation `{obligation}` already exists")]
    ObligationAlreadyExists {
        event: EventId,
        obligation: ObligationId,
    },
    #[error("event `{event}`: settling {amount} on obligation `{obligation}` exceeds its outstanding {outstanding} on {date}")]
    SettlementExceedsOutstanding {
        event: EventId,
        obligation: ObligationId,
        amount: Money,
        outstanding: Decimal,
        date: Date,
    },
    #[error("event `{event}`: obligation `{obligation}` was released on {released}; nothing can be settled after a release")]
    SettlementAfterRelease {
        event: EventId,
        obligation: ObligationId,
        released: Date,
    },
    #[error("event `{event}`: obligation `{obligation}` was already released on {released}")]
    ObligationAlreadyReleased {
        event: EventId,
        obligation: ObligationId,
        released: Date,
    },
    #[error("event `{event}`: the new total {amount} of obligation `{obligation}` is below the {settled} already settled on {date}")]
    AmendmentBelowSettled {
        event: EventId,
        obligation: ObligationId,
        amount: Money,
        settled: Decimal,
        date: Date,
    },
    #[error("event `{event}`: obligation `{obligation}` is in {expected}, not {found}: the amounts of one obligation share one currency")]
    CurrencyMismatch {
        event: EventId,
        obligation: ObligationId,
        expected: Currency,
        found: Currency,
    },
    #[error("event `{event}`: right `{right}` is not granted on or before {date}")]
    UnknownRight {
        event: EventId,
        right: RightId,
        date: Date,
    },
    #[error("event `{event}`: right `{right}` already exists")]
    RightAlreadyExists { event: EventId, right: RightId },
    #[error("event `{event}`: right `{right}` was already ended on {ended}")]
    RightAlreadyEnded {
        event: EventId,
        right: RightId,
        ended: Date,
    },
    #[error("event `{event}`: milestone `{milestone}` is already declared (on {declared})")]
    MilestoneAlreadyDeclared {
        event: EventId,
        milestone: MilestoneId,
        declared: Date,
    },
    #[error("event `{event}`: milestone `{milestone}` is not declared on or before {date}, so it cannot be verified")]
    MilestoneNotDeclared {
        event: EventId,
        milestone: MilestoneId,
        date: Date,
    },
    #[error("event `{event}`: milestone `{milestone}` is already verified (on {verified})")]
    MilestoneAlreadyVerified {
        event: EventId,
        milestone: MilestoneId,
        verified: Date,
    },
    #[error("event `{event}`: an amount overflows the exact decimal range")]
    ArithmeticOverflow { event: EventId },
    #[error("event `{event}`: the id is already recorded{} with different content; an id can be reused only for an identical event", seq.map(|s| format!(" (seq {s})")).unwrap_or_else(|| " earlier in this batch".to_string()))]
    IdConflict { event: EventId, seq: Option<u64> },
    #[error("event `{event}`: it reverses `{reverses}`, which is not recorded before it")]
    UnknownReversedEvent { event: EventId, reverses: EventId },
    #[error(
        "event `{event}`: `{reverses}` is itself a reversal, and a reversal cannot be reversed"
    )]
    ReversalOfReversal { event: EventId, reverses: EventId },
    #[error("event `{event}`: `{reverses}` is already reversed by `{by}`")]
    AlreadyReversed {
        event: EventId,
        reverses: EventId,
        by: EventId,
    },
    #[error("event `{event}`: a reversal effective {effective} cannot precede the event it reverses, `{reverses}`, effective {reversed_effective}")]
    ReversalBeforeEvent {
        event: EventId,
        reverses: EventId,
        effective: Date,
        reversed_effective: Date,
    },
    #[error("event `{event}` would break a later event: {cause}")]
    BreaksLaterEvent {
        event: EventId,
        cause: Box<Rejection>,
    },
}

impl Rejection {
    /// The event that is refused.
    pub fn event(&self) -> &EventId {
        use Rejection::*;
        match self {
            UnknownParty { event, .. }
            | PartyAlreadyRegistered { event, .. }
            | InsufficientUnits { event, .. }
            | TransferToSelf { event, .. }
            | PercentsMustSumTo100 { event, .. }
            | UnknownObligation { event, .. }
            | ObligationAlreadyExists { event, .. }
            | SettlementExceedsOutstanding { event, .. }
            | SettlementAfterRelease { event, .. }
            | ObligationAlreadyReleased { event, .. }
            | AmendmentBelowSettled { event, .. }
            | CurrencyMismatch { event, .. }
            | UnknownRight { event, .. }
            | RightAlreadyExists { event, .. }
            | RightAlreadyEnded { event, .. }
            | MilestoneAlreadyDeclared { event, .. }
            | MilestoneNotDeclared { event, .. }
            | MilestoneAlreadyVerified { event, .. }
            | ArithmeticOverflow { event }
            | IdConflict { event, .. }
            | UnknownReversedEvent { event, .. }
            | ReversalOfReversal { event, .. }
            | AlreadyReversed { event, .. }
            | ReversalBeforeEvent { event, .. }
            | BreaksLaterEvent { event, .. } => event,
        }
    }

    /// A stable snake_case name of the broken rule, for scripts and tests.
    pub fn rule(&self) -> &'static str {
        use Rejection::*;
        match self {
            UnknownParty { .. } => "unknown_party",
            PartyAlreadyRegistered { .. } => "party_already_registered",
            InsufficientUnits { .. } => "insufficient_units",
            TransferToSelf { .. } => "transfer_to_self",
            PercentsMustSumTo100 { .. } => "percents_must_sum_to_100",
            UnknownObligation { .. } => "unknown_obligation",
            ObligationAlreadyExists { .. } => "obligation_already_exists",
            SettlementExceedsOutstanding { .. } => "settlement_exceeds_outstanding",
            SettlementAfterRelease { .. } => "settlement_after_release",
            ObligationAlreadyReleased { .. } => "obligation_already_released",
            AmendmentBelowSettled { .. } => "amendment_below_settled",
            CurrencyMismatch { .. } => "currency_mismatch",
            UnknownRight { .. } => "unknown_right",
            RightAlreadyExists { .. } => "right_already_exists",
            RightAlreadyEnded { .. } => "right_already_ended",
            MilestoneAlreadyDeclared { .. } => "milestone_already_declared",
            MilestoneNotDeclared { .. } => "milestone_not_declared",
            MilestoneAlreadyVerified { .. } => "milestone_already_verified",
            ArithmeticOverflow { .. } => "arithmetic_overflow",
            IdConflict { .. } => "id_conflict",
            UnknownReversedEvent { .. } => "unknown_reversed_event",
            ReversalOfReversal { .. } => "reversal_of_reversal",
            AlreadyReversed { .. } => "already_reversed",
            ReversalBeforeEvent { .. } => "reversal_before_event",
            BreaksLaterEvent { .. } => "breaks_later_event",
        }
    }
}
