//! Rejections: one variant per broken rule, each naming the event and the
//! values involved, so a person can see what to fix and a test can assert
//! exactly which rule fired.

use rust_decimal::Decimal;

use crate::values::*;

/// Every [`Rejection::rule`] name, in the order of the variants. The test
/// below fails to compile when a variant is added without a name here, and
/// fails when the list and the variants disagree.
pub const RULES: &[&str] = &[
    "unknown_party",
    "party_already_registered",
    "insufficient_units",
    "transfer_to_self",
    "percents_must_sum_to_100",
    "unknown_obligation",
    "obligation_already_exists",
    "settlement_exceeds_outstanding",
    "settlement_after_release",
    "obligation_already_released",
    "amendment_below_settled",
    "currency_mismatch",
    "unknown_right",
    "right_already_exists",
    "right_already_ended",
    "milestone_already_declared",
    "milestone_not_declared",
    "milestone_already_verified",
    "arithmetic_overflow",
    "id_conflict",
    "unknown_reversed_event",
    "reversal_of_reversal",
    "already_reversed",
    "reversal_before_event",
    "breaks_later_event",
];

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
    #[error("event `{event}`: the id is already recorded{} with different content{differs}; an id can be reused only for an identical event", seq.map(|s| format!(" (seq {s})")).unwrap_or_else(|| " earlier in this batch".to_string()))]
    IdConflict {
        event: EventId,
        seq: Option<u64>,
        /// Which fields differ, as `: `effective` is 2026-12-01 there, 2026-12-02 here`
        /// (empty when unknown).
        differs: String,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The index of a variant in declaration order. Exhaustive, with no
    /// wildcard: a new variant does not compile until it is listed here.
    fn index(r: &Rejection) -> usize {
        use Rejection::*;
        match r {
            UnknownParty { .. } => 0,
            PartyAlreadyRegistered { .. } => 1,
            InsufficientUnits { .. } => 2,
            TransferToSelf { .. } => 3,
            PercentsMustSumTo100 { .. } => 4,
            UnknownObligation { .. } => 5,
            ObligationAlreadyExists { .. } => 6,
            SettlementExceedsOutstanding { .. } => 7,
            SettlementAfterRelease { .. } => 8,
            ObligationAlreadyReleased { .. } => 9,
            AmendmentBelowSettled { .. } => 10,
            CurrencyMismatch { .. } => 11,
            UnknownRight { .. } => 12,
            RightAlreadyExists { .. } => 13,
            RightAlreadyEnded { .. } => 14,
            MilestoneAlreadyDeclared { .. } => 15,
            MilestoneNotDeclared { .. } => 16,
            MilestoneAlreadyVerified { .. } => 17,
            ArithmeticOverflow { .. } => 18,
            IdConflict { .. } => 19,
            UnknownReversedEvent { .. } => 20,
            ReversalOfReversal { .. } => 21,
            AlreadyReversed { .. } => 22,
            ReversalBeforeEvent { .. } => 23,
            BreaksLaterEvent { .. } => 24,
        }
    }
    const VARIANTS: usize = 25;

    fn one_of_each() -> Vec<Rejection> {
        use Rejection::*;
        let event = EventId::parse("e").unwrap();
        let other = EventId::parse("f").unwrap();
        let slug = Slug::parse("x").unwrap();
        let date = Date::parse("2020-01-01").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let money = Money {
            amount: Dec(Decimal::ONE),
            currency: usd.clone(),
        };
        vec![
            UnknownParty {
                event: event.clone(),
                party: slug.clone(),
                date,
            },
            PartyAlreadyRegistered {
                event: event.clone(),
                party: slug.clone(),
                registered: date,
            },
            InsufficientUnits {
                event: event.clone(),
                issuer: slug.clone(),
                holder: slug.clone(),
                class: ClassName::common(),
                held: Decimal::ZERO,
                needed: Decimal::ONE,
                date,
            },
            TransferToSelf {
                event: event.clone(),
                party: slug.clone(),
            },
            PercentsMustSumTo100 {
                event: event.clone(),
                issuer: slug.clone(),
                sum: Decimal::ONE,
            },
            UnknownObligation {
                event: event.clone(),
                obligation: slug.clone(),
                date,
            },
            ObligationAlreadyExists {
                event: event.clone(),
                obligation: slug.clone(),
            },
            SettlementExceedsOutstanding {
                event: event.clone(),
                obligation: slug.clone(),
                amount: money.clone(),
                outstanding: Decimal::ZERO,
                date,
            },
            SettlementAfterRelease {
                event: event.clone(),
                obligation: slug.clone(),
                released: date,
            },
            ObligationAlreadyReleased {
                event: event.clone(),
                obligation: slug.clone(),
                released: date,
            },
            AmendmentBelowSettled {
                event: event.clone(),
                obligation: slug.clone(),
                amount: money,
                settled: Decimal::TWO,
                date,
            },
            CurrencyMismatch {
                event: event.clone(),
                obligation: slug.clone(),
                expected: usd,
                found: Currency::parse("EUR").unwrap(),
            },
            UnknownRight {
                event: event.clone(),
                right: slug.clone(),
                date,
            },
            RightAlreadyExists {
                event: event.clone(),
                right: slug.clone(),
            },
            RightAlreadyEnded {
                event: event.clone(),
                right: slug.clone(),
                ended: date,
            },
            MilestoneAlreadyDeclared {
                event: event.clone(),
                milestone: slug.clone(),
                declared: date,
            },
            MilestoneNotDeclared {
                event: event.clone(),
                milestone: slug.clone(),
                date,
            },
            MilestoneAlreadyVerified {
                event: event.clone(),
                milestone: slug.clone(),
                verified: date,
            },
            ArithmeticOverflow {
                event: event.clone(),
            },
            IdConflict {
                event: event.clone(),
                seq: Some(1),
                differs: String::new(),
            },
            UnknownReversedEvent {
                event: event.clone(),
                reverses: other.clone(),
            },
            ReversalOfReversal {
                event: event.clone(),
                reverses: other.clone(),
            },
            AlreadyReversed {
                event: event.clone(),
                reverses: other.clone(),
                by: other.clone(),
            },
            ReversalBeforeEvent {
                event: event.clone(),
                reverses: other.clone(),
                effective: date,
                reversed_effective: date,
            },
            BreaksLaterEvent {
                event: event.clone(),
                cause: Box::new(ArithmeticOverflow { event: other }),
            },
        ]
    }

    #[test]
    fn rules_name_every_variant_once() {
        let all = one_of_each();
        let indices: BTreeSet<usize> = all.iter().map(index).collect();
        assert_eq!(
            indices,
            (0..VARIANTS).collect(),
            "one value of each variant"
        );
        assert_eq!(all.len(), VARIANTS);
        let names: BTreeSet<&str> = all.iter().map(Rejection::rule).collect();
        assert_eq!(names.len(), VARIANTS, "rule names are distinct");
        let listed: BTreeSet<&str> = RULES.iter().copied().collect();
        assert_eq!(listed.len(), RULES.len(), "RULES has no duplicates");
        assert_eq!(listed, names);
        for r in &all {
            assert_eq!(r.event().as_str(), "e");
            assert!(r.to_string().starts_with("event `e`"), "{r}");
        }
    }
}
