//! The events of format v1: the envelope, one payload type per event type,
//! parsing from a JSON line and the canonical encoding that the store hashes.
//!
//! Parsing is strict: unknown fields, unknown types, JSON numbers for decimals
//! and impossible dates are refused with a message that names them. This
//! module checks the shape of one event; rules that need the rest of the log
//! live in `ledger` and `validate`.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::values::*;

/// One event: the envelope and its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub effective: Date,
    pub source: Option<Text>,
    pub note: Option<Text>,
    pub payload: Payload,
}

/// A JSON object written key by key (`Event::canonical_by_hand`): keys are the caller's
/// literals (plain ASCII, in byte order), values go through serde_json.
struct Object(Vec<u8>);

impl Object {
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { b'{' } else { b',' });
        self.0.push(b'"');
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn value(&mut self, value: &(impl Serialize + ?Sized)) -> Option<()> {
        serde_json::to_writer(&mut self.0, value).ok()
    }

    fn field(&mut self, key: &str, value: &(impl Serialize + ?Sized)) -> Option<()> {
        self.key(key);
        self.value(value)
    }

    fn optional(&mut self, key: &str, value: Option<&impl Serialize>) -> Option<()> {
        value.map_or(Some(()), |v| self.field(key, v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Corporation,
    Nonprofit,
    PublicBenefitCorporation,
    Partnership,
    Fund,
    Individual,
    Group,
    Government,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    #[default]
    Equity,
    ProfitParticipation,
    Convertible,
    Safe,
    Debt,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationKind {
    PurchaseCommitment,
    Pledge,
    FundingCommitment,
    Loan,
    RevenueShare,
    Other,
}

impl Instrument {
    /// Every value, as written in an event.
    pub const NAMES: &'static [&'static str] = &[
        "equity",
        "profit_participation",
        "convertible",
        "safe",
        "debt",
        "other",
    ];
}

impl ObligationKind {
    /// Every value, as written in an event.
    pub const NAMES: &'static [&'static str] = &[
        "purchase_commitment",
        "pledge",
        "funding_commitment",
        "loan",
        "revenue_share",
        "other",
    ];

    pub fn as_str(self) -> &'static str {
        // NAMES is in declaration order (a test checks it against serde's names).
        Self::NAMES[self as usize]
    }
}

impl PartyKind {
    /// Every value, as written in an event.
    pub const NAMES: &'static [&'static str] = &[
        "corporation",
        "nonprofit",
        "public_benefit_corporation",
        "partnership",
        "fund",
        "individual",
        "group",
        "government",
    ];

    pub fn as_str(self) -> &'static str {
        // NAMES is in declaration order (a test checks it against serde's names).
        Self::NAMES[self as usize]
    }
}

/// A field that distinguishes "absent" (outer `None`) from JSON `null`
/// (`Some(None)`), as `right_amended` needs.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRegistered {
    pub party: PartyId,
    pub name: Text,
    pub kind: PartyKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyUpdated {
    pub party: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PartyKind>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharesIssued {
    pub issuer: PartyId,
    pub holder: PartyId,
    pub units: Positive,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ClassName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharesTransferred {
    pub issuer: PartyId,
    pub from: PartyId,
    pub to: PartyId,
    pub units: Positive,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ClassName>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharesCancelled {
    pub issuer: PartyId,
    pub holder: PartyId,
    pub units: Positive,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ClassName>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharesSplit {
    pub issuer: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ClassName>,
    pub numerator: Positive,
    pub denominator: Positive,
}

/// One line of a `recapitalized` or `holdings_stated` table, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a holding object such as {"holder": "alice", "percent": "40"}"#
)]
pub struct HoldingLine {
    pub holder: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<Positive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ClassName>,
}

/// The shared payload of `recapitalized` and `holdings_stated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldingsTable {
    pub issuer: PartyId,
    pub holdings: Vec<HoldingLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_units: Option<Positive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

/// Default `total_units` of a table in percent form.
pub fn default_total_units() -> Decimal {
    Decimal::from(1_000_000_000u64)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuationRecorded {
    pub entity: PartyId,
    pub post_money: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvestmentMade {
    pub investor: PartyId,
    pub investee: PartyId,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument: Option<Instrument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObligationIncurred {
    pub obligation: ObligationId,
    pub kind: ObligationKind,
    pub obligor: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obligee: Option<PartyId>,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObligationSettled {
    pub obligation: ObligationId,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObligationAmended {
    pub obligation: ObligationId,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObligationReleased {
    pub obligation: ObligationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RightGranted {
    pub right: RightId,
    pub kind: KindSlug,
    pub holder: PartyId,
    pub grantor: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_milestone: Option<MilestoneId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RightAmended {
    pub right: RightId,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Option<Date>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub until_milestone: Option<Option<MilestoneId>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RightEnded {
    pub right: RightId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilestoneDeclared {
    pub milestone: MilestoneId,
    pub declared_by: PartyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilestoneVerified {
    pub milestone: MilestoneId,
    pub verified_by: Text,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventReversed {
    pub reverses: EventId,
    pub reason: Text,
}

macro_rules! payloads {
    ($($variant:ident($ty:ty) = $name:literal,)*) => {
        /// The payload of an event, one variant per event type.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Payload {
            $($variant($ty),)*
        }

        /// Every event type name of format v1, in the order of EVENTS.md.
        pub const EVENT_TYPES: &[&str] = &[$($name,)*];

        impl Payload {
            /// The event type name, as written in the `type` field.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Payload::$variant(_) => $name,)*
                }
            }

            fn from_fields(type_name: &str, fields: Map<String, Value>) -> Result<Payload, String> {
                match type_name {
                    $($name => <$ty>::deserialize(MapAccessDeserializer::new(KeyedFields::new(fields)))
                        .map(Payload::$variant)
                        .map_err(|e| with_suggestion(&e.to_string())),)*
                    other => Err(format!(
                        "unknown event type {other:?}{}; the types are: {}",
                        nearest(other, EVENT_TYPES.iter().copied())
                            .map(|t| format!(" (did you mean {t:?}?)"))
                            .unwrap_or_default(),
                        EVENT_TYPES.join(", ")
                    )),
                }
            }

            /// `from_fields` over fields still in their JSON text, without
            /// building a `Value` of each.
            fn from_raw_fields(
                type_name: &str,
                fields: Vec<(&str, &RawValue)>,
            ) -> Result<Payload, serde_json::Error> {
                match type_name {
                    $($name => <$ty>::deserialize(MapAccessDeserializer::new(RawFields::new(fields)))
                        .map(Payload::$variant),)*
                    other => Err(serde::de::Error::custom(format!("unknown event type {other:?}"))),
                }
            }

            fn to_fields(&self) -> Map<String, Value> {
                let value = match self {
                    $(Payload::$variant(p) => serde_json::to_value(p),)*
                };
                match value {
                    Ok(Value::Object(map)) => map,
                    // Every payload is a struct of strings and lists; serde_json
                    // cannot fail on it or produce anything but an object.
                    other => unreachable!("payload serialized to {other:?}"),
                }
            }
        }
    };
}

payloads! {
    PartyRegistered(PartyRegistered) = "party_registered",
    PartyUpdated(PartyUpdated) = "party_updated",
    SharesIssued(SharesIssued) = "shares_issued",
    SharesTransferred(SharesTransferred) = "shares_transferred",
    SharesCancelled(SharesCancelled) = "shares_cancelled",
    SharesSplit(SharesSplit) = "shares_split",
    Recapitalized(HoldingsTable) = "recapitalized",
    HoldingsStated(HoldingsTable) = "holdings_stated",
    ValuationRecorded(ValuationRecorded) = "valuation_recorded",
    InvestmentMade(InvestmentMade) = "investment_made",
    ObligationIncurred(ObligationIncurred) = "obligation_incurred",
    ObligationSettled(ObligationSettled) = "obligation_settled",
    ObligationAmended(ObligationAmended) = "obligation_amended",
    ObligationReleased(ObligationReleased) = "obligation_released",
    RightGranted(RightGranted) = "right_granted",
    RightAmended(RightAmended) = "right_amended",
    RightEnded(RightEnded) = "right_ended",
    MilestoneDeclared(MilestoneDeclared) = "milestone_declared",
    MilestoneVerified(MilestoneVerified) = "milestone_verified",
    EventReversed(EventReversed) = "event_reversed",
}

/// Why one line could not be read as an event. Carries the event id when
/// the line got far enough to have one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", id.as_ref().map(|i| format!("event `{i}`: ")).unwrap_or_default())]
pub struct ParseError {
    pub id: Option<String>,
    pub message: String,
}

impl Event {
    /// Reads one event from a JSON object.
    pub fn from_json(value: Value) -> Result<Event, ParseError> {
        let Value::Object(mut map) = value else {
            return Err(ParseError {
                id: None,
                message: "expected one JSON object".to_string(),
            });
        };
        let raw_id = map.remove("id");
        let id_text = raw_id.as_ref().and_then(Value::as_str).map(str::to_string);
        let fail = |message: String| ParseError {
            id: id_text.clone(),
            message,
        };
        let id = match raw_id {
            None => return Err(fail("missing field `id`".to_string())),
            Some(Value::String(s)) => EventId::parse(&s).map_err(fail)?,
            Some(_) => return Err(fail("field `id` must be a string".to_string())),
        };
        let type_name = match map.remove("type") {
            None => return Err(fail("missing field `type`".to_string())),
            Some(Value::String(s)) => s,
            Some(_) => return Err(fail("field `type` must be a string".to_string())),
        };
        let effective = match map.remove("effective") {
            None => return Err(fail("missing field `effective`".to_string())),
            Some(Value::String(s)) => {
                Date::parse(&s).map_err(|e| fail(format!("effective: {e}")))?
            }
            Some(_) => {
                return Err(fail(
                    "field `effective` must be a date string YYYY-MM-DD".to_string(),
                ))
            }
        };
        let text = |field: &str, v: Option<Value>| -> Result<Option<Text>, ParseError> {
            match v {
                None => Ok(None),
                Some(Value::String(s)) => Text::parse(&s)
                    .map(Some)
                    .map_err(|e| fail(format!("{field}: {e}"))),
                Some(_) => Err(fail(format!("field `{field}` must be a string"))),
            }
        };
        let source = text("source", map.remove("source"))?;
        let note = text("note", map.remove("note"))?;
        let payload =
            Payload::from_fields(&type_name, map).map_err(|e| fail(format!("{type_name}: {e}")))?;
        let event = Event {
            id,
            effective,
            source,
            note,
            payload,
        };
        event.check_shape().map_err(fail)?;
        Ok(event)
    }

    /// Reads one event from one line of JSON.
    ///
    /// The common case, a well-formed event, takes a faster path that reads
    /// each field from its own JSON text instead of building a `Value` of
    /// the whole line; anything that path refuses is read again by the
    /// strict one (`from_json`), so refusals and their words are the strict
    /// path's. The fast path is never laxer: it goes through the same
    /// payload types, with `deny_unknown_fields`, and the same checks.
    pub fn from_line(line: &str) -> Result<Event, ParseError> {
        // The two commonest types in the compact form read by hand (`compact`), the rest
        // through serde.
        if let Some(event) = compact::parse(line) {
            return Ok(event);
        }
        if let Some(event) = Event::from_line_fast(line) {
            return Ok(event);
        }
        Event::from_line_strict(line)
    }

    fn from_line_fast(line: &str) -> Option<Event> {
        let fields: Vec<(&str, &RawValue)> = serde_json::from_str::<RawObject>(line).ok()?.0;
        let mut id = None;
        let mut type_name = None;
        let mut effective = None;
        let mut source = None;
        let mut note = None;
        let mut payload = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            let slot = match k {
                "id" => &mut id,
                "type" => &mut type_name,
                "effective" => &mut effective,
                "source" => &mut source,
                "note" => &mut note,
                _ => {
                    payload.push((k, v));
                    continue;
                }
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(serde_json::from_str::<&str>(v.get()).ok()?);
        }
        let event = Event {
            id: EventId::parse(id?).ok()?,
            effective: Date::parse(effective?).ok()?,
            source: source.map(Text::parse).transpose().ok()?,
            note: note.map(Text::parse).transpose().ok()?,
            payload: Payload::from_raw_fields(type_name?, payload).ok()?,
        };
        event.check_shape().ok()?;
        Some(event)
    }

    pub(crate) fn from_line_strict(line: &str) -> Result<Event, ParseError> {
        let value: Value = serde_json::from_str(line).map_err(|e| ParseError {
            id: None,
            message: format!("not a JSON object: {e}"),
        })?;
        // A JSON object keeps the last of two equal keys: a line that says a field twice
        // would be stored with one of its values, silently. Refused, naming the field.
        if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(line) {
            let id = value.get("id").and_then(Value::as_str).map(str::to_string);
            return Err(ParseError {
                id,
                message: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Event::from_json(value)
    }

    /// The event as a JSON object: envelope and payload fields together.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = self.payload.to_fields();
        map.insert("id".into(), Value::String(self.id.to_string()));
        map.insert(
            "type".into(),
            Value::String(self.payload.type_name().to_string()),
        );
        map.insert(
            "effective".into(),
            Value::String(self.effective.to_string()),
        );
        if let Some(s) = &self.source {
            map.insert("source".into(), Value::String(s.to_string()));
        }
        if let Some(n) = &self.note {
            map.insert("note".into(), Value::String(n.to_string()));
        }
        map
    }

    /// The canonical encoding: compact JSON with keys in byte order and
    /// decimals normalized. Two events with the same content have the same
    /// bytes, so the store can compare and hash them.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.canonical_by_hand()
            .unwrap_or_else(|| self.canonical_generic())
    }

    /// `canonical_bytes` through a JSON map: every type.
    fn canonical_generic(&self) -> Vec<u8> {
        // serde_json's Map is a BTreeMap (no `preserve_order`), so keys come out sorted.
        let map = self.to_json();
        serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
    }

    /// `canonical_bytes` of the commonest two types (nearly every event of a big log), written
    /// field by field with the keys in byte order and each value as serde_json writes it on the
    /// generic path, without building a map; `None` for the other types. The two must agree
    /// byte for byte (tests compare them on hostile and generated events): the store hashes
    /// these bytes.
    fn canonical_by_hand(&self) -> Option<Vec<u8>> {
        let mut out = Object(Vec::with_capacity(224));
        let effective = self.effective.to_string();
        let type_name = self.payload.type_name();
        match &self.payload {
            Payload::ObligationSettled(p) => {
                out.key("amount");
                out.0.extend_from_slice(b"{\"amount\":");
                out.value(&p.amount.amount)?;
                out.0.extend_from_slice(b",\"currency\":");
                out.value(&p.amount.currency)?;
                out.0.push(b'}');
                out.field("effective", &effective)?;
                out.field("id", self.id.as_str())?;
                out.optional("note", self.note.as_ref())?;
                out.field("obligation", &p.obligation)?;
                out.optional("reference", p.reference.as_ref())?;
                out.optional("source", self.source.as_ref())?;
                out.field("type", type_name)?;
            }
            Payload::SharesTransferred(p) => {
                out.optional("class", p.class.as_ref())?;
                out.field("effective", &effective)?;
                out.field("from", &p.from)?;
                out.field("id", self.id.as_str())?;
                out.field("issuer", &p.issuer)?;
                out.optional("note", self.note.as_ref())?;
                out.optional("source", self.source.as_ref())?;
                out.field("to", &p.to)?;
                out.field("type", type_name)?;
                out.field("units", &p.units)?;
            }
            _ => return None,
        }
        out.0.push(b'}');
        Some(out.0)
    }

    /// Rules that one event must satisfy on its own, whatever the log holds.
    fn check_shape(&self) -> Result<(), String> {
        match &self.payload {
            Payload::PartyUpdated(p) if p.name.is_none() && p.kind.is_none() => {
                Err("party_updated needs at least one of `name`, `kind`".into())
            }
            Payload::RightAmended(p) if p.until.is_none() && p.until_milestone.is_none() => {
                Err("right_amended needs at least one of `until`, `until_milestone`".into())
            }
            Payload::Recapitalized(t) | Payload::HoldingsStated(t) => check_table_shape(t),
            _ => Ok(()),
        }
    }

    /// Every party, obligation, right and milestone id this event names, for
    /// indexes and for "what depends on what" questions.
    pub fn referenced_parties(&self) -> Vec<&PartyId> {
        let mut parties = Vec::new();
        let _ = self.each_referenced_party(|p| {
            parties.push(p);
            Ok::<(), ()>(())
        });
        parties
    }

    /// `f` on each party the event names, in the order `referenced_parties` lists them, until
    /// one fails: a replay asks this of every event and allocates nothing for it.
    pub fn each_referenced_party<'a, E>(
        &'a self,
        mut f: impl FnMut(&'a PartyId) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.payload {
            Payload::PartyRegistered(p) => f(&p.party),
            Payload::PartyUpdated(p) => f(&p.party),
            Payload::SharesIssued(p) => f(&p.issuer).and_then(|()| f(&p.holder)),
            Payload::SharesTransferred(p) => f(&p.issuer)
                .and_then(|()| f(&p.from))
                .and_then(|()| f(&p.to)),
            Payload::SharesCancelled(p) => f(&p.issuer).and_then(|()| f(&p.holder)),
            Payload::SharesSplit(p) => f(&p.issuer),
            Payload::Recapitalized(t) | Payload::HoldingsStated(t) => {
                f(&t.issuer)?;
                t.holdings.iter().try_for_each(|h| f(&h.holder))
            }
            Payload::ValuationRecorded(p) => f(&p.entity),
            Payload::InvestmentMade(p) => f(&p.investor).and_then(|()| f(&p.investee)),
            Payload::ObligationIncurred(p) => {
                f(&p.obligor)?;
                p.obligee.iter().try_for_each(f)
            }
            Payload::RightGranted(p) => f(&p.holder).and_then(|()| f(&p.grantor)),
            Payload::MilestoneDeclared(p) => f(&p.declared_by),
            _ => Ok(()),
        }
    }
}

/// Most lines one `recapitalized` or `holdings_stated` table may hold.
pub const HOLDINGS_MAX: usize = 10_000;

fn check_table_shape(t: &HoldingsTable) -> Result<(), String> {
    if t.holdings.is_empty() {
        return Err("`holdings` must not be empty".into());
    }
    if t.holdings.len() > HOLDINGS_MAX {
        return Err(format!(
            "`holdings` has {} lines, more than the limit of {HOLDINGS_MAX}",
            t.holdings.len()
        ));
    }
    let percent_form = t.holdings[0].percent.is_some();
    let mut seen = BTreeSet::new();
    for h in &t.holdings {
        match (h.percent.is_some(), h.units.is_some()) {
            (true, true) | (false, false) => {
                return Err(format!(
                    "holding of `{}` must give exactly one of `percent`, `units`",
                    h.holder
                ))
            }
            (p, _) if p != percent_form => {
                return Err(
                    "holdings must all use the same form: all `percent` or all `units`".into(),
                )
            }
            _ => {}
        }
        if let Some(p) = h.percent {
            if p.0 < Decimal::ZERO || p.0 > Decimal::ONE_HUNDRED {
                return Err(format!(
                    "holding of `{}` has percent {p}, outside 0 to 100",
                    h.holder
                ));
            }
        }
        let class = h.class.clone().unwrap_or_else(ClassName::common);
        if !seen.insert((h.holder.clone(), class.clone())) {
            return Err(format!(
                "holder `{}` appears twice for class `{class}`",
                h.holder
            ));
        }
    }
    if !percent_form && t.total_units.is_some() {
        return Err("`total_units` is only allowed with the percent form".into());
    }
    Ok(())
}

/// Any JSON value, read only to refuse an object that holds the same key twice, at any depth.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NoDuplicateKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if !seen.insert(key.to_string()) {
                        return Err(serde::de::Error::custom(format!(
                            "field `{key}` is given twice: give each field once"
                        )));
                    }
                    map.next_value::<NoDuplicateKeys>()?;
                }
                Ok(NoDuplicateKeys)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
                Ok(NoDuplicateKeys)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON object read as its keys and the text of each value, borrowed from
/// the line (a key with escapes fails, and the strict path reads the line).
struct RawObject<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(RawObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The fields of a payload as a map for its derived `Deserialize`, each
/// value read from its own JSON text.
struct RawFields<'a> {
    fields: std::vec::IntoIter<(&'a str, &'a RawValue)>,
    value: Option<&'a RawValue>,
}

impl<'a> RawFields<'a> {
    fn new(fields: Vec<(&'a str, &'a RawValue)>) -> Self {
        RawFields {
            fields: fields.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for RawFields<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.fields.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let raw = self
            .value
            .take()
            .ok_or_else(|| serde::de::Error::custom("a value without its key"))?;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let value = seed.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

/// The fields of a payload as a map for its derived `Deserialize`, from a parsed object: a
/// value that does not fit says which field it is (`amount`: ...), where serde alone says
/// only what it expected.
struct KeyedFields {
    fields: serde_json::map::IntoIter,
    key: String,
    value: Option<Value>,
}

impl KeyedFields {
    fn new(fields: Map<String, Value>) -> Self {
        KeyedFields {
            fields: fields.into_iter(),
            key: String::new(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for KeyedFields {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.fields.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key = seed.deserialize(serde::de::value::StrDeserializer::new(&k))?;
                self.key = k;
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| serde::de::Error::custom("a value without its key"))?;
        seed.deserialize(value).map_err(|e| {
            let message = e.to_string();
            if message.contains(&format!("`{}`", self.key)) || message.starts_with(&self.key) {
                e
            } else {
                serde::de::Error::custom(format!("`{}`: {message}", self.key))
            }
        })
    }
}

/// A parsed file: each event with its 1-based line number.
pub type ParsedFile = Vec<(usize, Event)>;

/// Why a file could not be read: the first bad line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct FileError {
    pub line: usize,
    pub error: ParseError,
}

/// Longest line accepted in an event file, in bytes.
pub const LINE_LEN_MAX: usize = 1 << 20;

/// Most events one file (one batch) may hold.
pub const BATCH_EVENTS_MAX: usize = 1_000_000;

/// Parses a JSON Lines text. Blank lines are skipped; the first bad line
/// stops the parse. A file of more than [`BATCH_EVENTS_MAX`] non-blank lines
/// is refused before any line is parsed, naming the first line past the limit.
pub fn parse_jsonl(text: &str) -> Result<ParsedFile, FileError> {
    parse_jsonl_ticked(text, None)
}

/// `parse_jsonl` that tells `tick` how many more lines it has parsed, as it goes.
pub fn parse_jsonl_ticked(
    text: &str,
    tick: Option<crate::tick::Tick<'_>>,
) -> Result<ParsedFile, FileError> {
    // A byte-order mark (some editors write one) is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((i, _)) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .nth(BATCH_EVENTS_MAX)
    {
        return Err(FileError {
            line: i + 1,
            error: ParseError {
                id: None,
                message: format!(
                    "the file holds more than {BATCH_EVENTS_MAX} events, the limit of one batch: split it into several files"
                ),
            },
        });
    }
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    // Parsing is most of an import's time: big files are parsed in two
    // halves on two threads. The first half's error, if any, comes first,
    // so the refusal names the same (first) bad line either way.
    if lines.len() < 4096 {
        return parse_lines(&lines, tick);
    }
    let (first, second) = lines.split_at(lines.len() / 2);
    // The first half is parsed straight into the file's list, sized once for both.
    let mut events = Vec::with_capacity(lines.len());
    let (a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(|| parse_lines(second, tick));
        let a = parse_lines_into(first, tick, &mut events);
        (a, other.join())
    });
    a?;
    match b {
        Ok(b) => events.extend(b?),
        // A panic while parsing is a bug; parse again on this thread so
        // that it surfaces here rather than as a lost half.
        Err(_) => events.extend(parse_lines(second, None)?),
    }
    Ok(events)
}

/// Parses non-empty lines, each with its 1-based number, stopping at the
/// first bad one.
fn parse_lines(
    lines: &[(usize, &str)],
    tick: Option<crate::tick::Tick<'_>>,
) -> Result<ParsedFile, FileError> {
    let mut events = Vec::with_capacity(lines.len());
    parse_lines_into(lines, tick, &mut events)?;
    Ok(events)
}

/// `parse_lines`, pushing onto `events`.
fn parse_lines_into(
    lines: &[(usize, &str)],
    tick: Option<crate::tick::Tick<'_>>,
    events: &mut ParsedFile,
) -> Result<(), FileError> {
    for (i, &(line_no, line)) in lines.iter().enumerate() {
        if let Some(tick) = tick {
            if i > 0 && (i as u64).is_multiple_of(crate::tick::TICK_EVERY) {
                tick(crate::tick::TICK_EVERY);
            }
        }
        if line.len() > LINE_LEN_MAX {
            return Err(FileError {
                line: line_no,
                error: ParseError {
                    id: None,
                    message: format!(
                        "line of {} bytes is longer than the limit of {LINE_LEN_MAX}",
                        line.len()
                    ),
                },
            });
        }
        let event = Event::from_line(line).map_err(|error| FileError {
            line: line_no,
            error: lines_hint(line, error),
        })?;
        if may_hold_controls(line) {
            check_text(&event).map_err(|error| FileError {
                line: line_no,
                error,
            })?;
        }
        events.push((line_no, event));
    }
    if let Some(tick) = tick {
        let rest = lines.len() as u64 % crate::tick::TICK_EVERY;
        let full = !lines.is_empty() && rest == 0;
        tick(if full { crate::tick::TICK_EVERY } else { rest });
    }
    Ok(())
}

/// A line that is not one JSON object because the file is not JSON Lines: a JSON array, or
/// a pretty-printed object spread over lines, is said to be that.
fn lines_hint(line: &str, error: ParseError) -> ParseError {
    let t = line.trim();
    let hint = if t.starts_with('[') {
        "this line starts a JSON array: an event file is JSON Lines, one event object per line, without [ ] around them"
    } else if t == "{" || t == "}" || t == "}," || (t.starts_with('"') && t.contains("\":")) {
        "this line is part of a JSON object spread over several lines: an event file is JSON Lines, each event one JSON object on one line (not pretty-printed)"
    } else {
        return error;
    };
    ParseError {
        id: error.id,
        message: format!("{}; {hint}", error.message),
    }
}

/// The candidate nearest to `word` by edit distance, when it is near enough to be the word
/// meant (at most a third of its letters off, and never the word itself).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    // Case does not count: `SAFE` is `safe`, `Microsoft` is `microsoft`.
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance over characters, a swap of two neighbours counting as one edit (optimal
/// string alignment), so that `nmae` is one edit from `name`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (and the same for variants), with
/// the nearest expected name suggested.
fn with_suggestion(message: &str) -> String {
    let pick = |kind: &str| -> Option<String> {
        let rest = message.split(kind).nth(1)?;
        let (word, rest) = rest.strip_prefix('`')?.split_once('`')?;
        let expected = rest.split("expected one of ").nth(1)?;
        let names: Vec<&str> = expected
            .split(", ")
            .map(|n| n.trim().trim_matches('`'))
            .collect();
        nearest(word, names.iter().copied()).map(|n| format!("{message} (did you mean `{n}`?)"))
    };
    pick("unknown field ")
        .or_else(|| pick("unknown variant "))
        .unwrap_or_else(|| message.to_string())
}

/// Whether a JSON line can hold a control character in a string: only as an escape (raw
/// C0 characters are not JSON) or as a raw C1 character (U+0080 to U+009F, UTF-8 `C2 80` to
/// `C2 9F`). Most lines have neither, and skip the precise check.
fn may_hold_controls(line: &str) -> bool {
    line.contains('\\')
        || line
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]))
}

/// A control character: U+0000 to U+001F and U+007F to U+009F.
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The text rule of new events (EVENTS.md, Text): no control characters in any text field,
/// but line feeds and tabs in `note` and `description`. Events recorded before the rule are
/// read as they are; this is checked on input only.
pub fn check_text(event: &Event) -> Result<(), ParseError> {
    fn walk(field: &str, v: &Value, id: &str) -> Result<(), ParseError> {
        match v {
            Value::String(s) => {
                let free = matches!(field, "note" | "description");
                match s.chars().find(|c| is_control(*c) && !(free && matches!(c, '\n' | '\t'))) {
                    None => Ok(()),
                    Some(c) => Err(ParseError {
                        id: Some(id.to_string()),
                        message: format!(
                            "field `{field}` holds the control character U+{:04X}: text may not hold control characters{}",
                            c as u32,
                            if free { " other than line feeds and tabs" } else { "" }
                        ),
                    }),
                }
            }
            Value::Array(items) => items.iter().try_for_each(|i| walk(field, i, id)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| walk(k, v, id)),
            _ => Ok(()),
        }
    }
    let id = event.id.as_str();
    event.to_json().iter().try_for_each(|(k, v)| walk(k, v, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_of_each_enum_are_its_serde_names() {
        fn check<T: serde::de::DeserializeOwned + std::fmt::Debug>(names: &[&str]) {
            for name in names {
                serde_json::from_value::<T>(Value::String(name.to_string()))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            let e = serde_json::from_value::<T>(Value::String("nope".into())).unwrap_err();
            let listed = names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            assert!(e.to_string().ends_with(&listed), "{e} vs {listed}");
        }
        check::<PartyKind>(PartyKind::NAMES);
        check::<Instrument>(Instrument::NAMES);
        check::<ObligationKind>(ObligationKind::NAMES);
    }

    #[test]
    fn big_files_parsed_on_two_threads_report_the_first_bad_line() {
        let good = |i: usize| {
            format!(
                r#"{{"type":"party_registered","id":"e{i}","effective":"2025-01-01","party":"p{i}","name":"P","kind":"fund"}}"#
            )
        };
        let mut lines: Vec<String> = (0..6000).map(good).collect();
        lines.insert(100, String::new());
        let text = lines.join("\n");
        let events = parse_jsonl(&text).unwrap();
        assert_eq!(events.len(), 6000);
        assert_eq!(events[99].0, 100);
        assert_eq!(events[100].0, 102, "line numbers count the blank line");
        assert_eq!(events[5999].1.id.as_str(), "e5999");

        lines[5000] = "{".into();
        assert_eq!(parse_jsonl(&lines.join("\n")).unwrap_err().line, 5001);
        lines[20] = "not json".into();
        assert_eq!(parse_jsonl(&lines.join("\n")).unwrap_err().line, 21);
    }

    fn parse(s: &str) -> Result<Event, ParseError> {
        Event::from_line(s)
    }

    #[test]
    fn round_trips_canonically() {
        let line = r#"{"type":"obligation_incurred","id":"o1","effective":"2025-10-28","obligation":"azure","kind":"purchase_commitment","obligor":"openai-group","obligee":"microsoft","amount":{"currency":"USD","amount":"250000000000.00"},"note":"n"}"#;
        let e = parse(line).unwrap();
        let bytes = e.canonical_bytes();
        let again = Event::from_line(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(again, e);
        assert_eq!(again.canonical_bytes(), bytes);
        assert!(String::from_utf8(bytes)
            .unwrap()
            .starts_with(r#"{"amount":{"amount":"250000000000","currency":"USD"},"effective""#));
    }

    #[test]
    fn refuses_unknown_fields_types_and_numbers() {
        let e = parse(r#"{"id":"a","type":"party_registered","effective":"2020-01-01","party":"x","name":"X","kind":"fund","colour":"red"}"#).unwrap_err();
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        assert_eq!(e.id.as_deref(), Some("a"));
        let e =
            parse(r#"{"id":"a","type":"party_exploded","effective":"2020-01-01"}"#).unwrap_err();
        assert!(e.message.contains("unknown event type"), "{e}");
        let e = parse(r#"{"id":"a","type":"valuation_recorded","effective":"2020-01-01","entity":"x","post_money":{"amount":5,"currency":"USD"}}"#).unwrap_err();
        assert!(e.message.contains("write it as a string"), "{e}");
        let e = parse(r#"{"id":"a","type":"party_registered","effective":"2020-02-30","party":"x","name":"X","kind":"fund"}"#).unwrap_err();
        assert!(e.message.contains("impossible date"), "{e}");
        assert!(parse("[1,2]").is_err());
        assert!(parse("{").is_err());
    }

    #[test]
    fn right_amended_tells_null_from_absent() {
        let e = parse(r#"{"id":"a","type":"right_amended","effective":"2020-01-01","right":"r","until":"2032-12-31","until_milestone":null}"#).unwrap();
        let Payload::RightAmended(p) = &e.payload else {
            panic!("wrong payload")
        };
        assert_eq!(p.until, Some(Some(Date::parse("2032-12-31").unwrap())));
        assert_eq!(p.until_milestone, Some(None));
        let text = String::from_utf8(e.canonical_bytes()).unwrap();
        assert!(text.contains(r#""until_milestone":null"#), "{text}");
        assert!(
            parse(r#"{"id":"a","type":"right_amended","effective":"2020-01-01","right":"r"}"#)
                .is_err()
        );
    }

    #[test]
    fn holdings_tables_have_one_form() {
        let mixed = r#"{"id":"a","type":"recapitalized","effective":"2020-01-01","issuer":"x","holdings":[{"holder":"a","percent":"50"},{"holder":"b","units":"5"}]}"#;
        assert!(parse(mixed).unwrap_err().message.contains("same form"));
        let dup = r#"{"id":"a","type":"recapitalized","effective":"2020-01-01","issuer":"x","holdings":[{"holder":"a","percent":"50"},{"holder":"a","percent":"50"}]}"#;
        assert!(parse(dup).unwrap_err().message.contains("twice"));
    }

    #[test]
    fn holdings_tables_are_bounded() {
        let table = |n: usize| {
            let lines: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"holder":"h{i}","units":"1"}}"#))
                .collect();
            format!(
                r#"{{"id":"a","type":"holdings_stated","effective":"2020-01-01","issuer":"x","holdings":[{}]}}"#,
                lines.join(",")
            )
        };
        assert!(parse(&table(HOLDINGS_MAX)).is_ok());
        let e = parse(&table(HOLDINGS_MAX + 1)).unwrap_err();
        assert!(
            e.message.contains(&format!(
                "{} lines, more than the limit of {HOLDINGS_MAX}",
                HOLDINGS_MAX + 1
            )),
            "{e}"
        );
        assert_eq!(e.id.as_deref(), Some("a"));
    }

    #[test]
    fn batches_are_bounded() {
        // Junk lines: the count is checked before any line is parsed.
        let mut text = "\n{}\n".repeat(BATCH_EVENTS_MAX);
        let err = parse_jsonl(&text).unwrap_err();
        assert_eq!(err.line, 2, "at the limit, the first line is parsed: {err}");
        assert!(err.error.message.contains("missing field `id`"), "{err}");
        text.push_str("{}\n");
        let err = parse_jsonl(&text).unwrap_err();
        assert_eq!(err.line, 2 * BATCH_EVENTS_MAX + 1);
        assert!(
            err.error
                .message
                .contains(&format!("more than {BATCH_EVENTS_MAX} events")),
            "{err}"
        );
    }

    #[test]
    fn files_name_the_bad_line() {
        let text = "\n{\"id\":\"a\",\"type\":\"party_registered\",\"effective\":\"2020-01-01\",\"party\":\"x\",\"name\":\"X\",\"kind\":\"fund\"}\n\nnot json\n";
        let err = parse_jsonl(text).unwrap_err();
        assert_eq!(err.line, 4);
    }
}

mod compact {
    //! A reader of the two commonest events (`obligation_settled`, `shares_transferred`) in the
    //! narrowest form a line can take: compact JSON, keys in byte order, every string without an
    //! escape. That is the form of every stored event (canonical bytes) and of most generated
    //! files, and reading it by hand is several times cheaper than through serde (`verify` and an
    //! import decode a million of them).
    //!
    //! It is never laxer than `Event::from_line`: it accepts a strict subset of JSON (no
    //! whitespace, no number, no escape, no key twice: keys must ascend), only the fields the
    //! event's type has, and every value goes through the same `parse` as in the serde path, with
    //! the same checks (strictly positive units and amounts). Anything else is `None`, and the
    //! caller reads the line the usual way, so refusals and their words are unchanged. The tests
    //! below hold it to that (random edits of valid lines, and lines generated from valid and
    //! hostile values): whatever line it accepts, `from_line`'s strict path reads to the same
    //! event.

    use super::{Event, ObligationSettled, Payload, SharesTransferred};
    use crate::values::{
        parse_decimal, ClassName, Currency, Date, Dec, EventId, Money, Positive, Slug, Text,
    };

    /// One value of the subset: a string, or (for `amount`) an object of strings.
    enum Value<'a> {
        Str(&'a str),
        Object(Vec<(&'a str, &'a str)>),
    }

    struct Cursor<'a> {
        s: &'a str,
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        fn eat(&mut self, b: u8) -> Option<()> {
            (self.s.as_bytes().get(self.pos) == Some(&b)).then(|| self.pos += 1)
        }

        fn peek(&self) -> Option<u8> {
            self.s.as_bytes().get(self.pos).copied()
        }

        /// A string without escapes or control characters: its text is its value.
        fn string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.pos;
            let rest = &self.s.as_bytes()[start..];
            let len = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            if rest[len] != b'"' {
                return None;
            }
            self.pos = start + len + 1;
            // Quotes are ASCII, so both ends are character boundaries.
            self.s.get(start..start + len)
        }

        /// `{"k":"v",...}` with ascending keys; `nested` allows one level of object values.
        fn object(&mut self, nested: bool) -> Option<Vec<(&'a str, Value<'a>)>> {
            self.eat(b'{')?;
            let mut fields: Vec<(&'a str, Value<'a>)> = Vec::with_capacity(8);
            if self.eat(b'}').is_some() {
                return Some(fields);
            }
            loop {
                let key = self.string()?;
                if fields.last().is_some_and(|(k, _)| *k >= key) {
                    return None;
                }
                self.eat(b':')?;
                let value = match self.peek()? {
                    b'"' => Value::Str(self.string()?),
                    b'{' if nested => Value::Object(
                        self.object(false)?
                            .into_iter()
                            .map(|(k, v)| match v {
                                Value::Str(s) => Some((k, s)),
                                Value::Object(_) => None,
                            })
                            .collect::<Option<_>>()?,
                    ),
                    _ => return None,
                };
                fields.push((key, value));
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        return Some(fields);
                    }
                    _ => return None,
                }
            }
        }
    }

    /// The event of `line` when it is one of the two types in the narrow form; `None` otherwise
    /// (not an error: the caller reads the line the usual way).
    pub(crate) fn parse(line: &str) -> Option<Event> {
        let mut c = Cursor { s: line, pos: 0 };
        let fields = c.object(true)?;
        if c.pos != line.len() {
            return None;
        }
        let mut envelope = Envelope::default();
        let mut payload: Vec<(&str, Value<'_>)> = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            let slot = match k {
                "id" => &mut envelope.id,
                "type" => &mut envelope.type_name,
                "effective" => &mut envelope.effective,
                "source" => &mut envelope.source,
                "note" => &mut envelope.note,
                _ => {
                    payload.push((k, v));
                    continue;
                }
            };
            match v {
                Value::Str(s) => *slot = Some(s),
                Value::Object(_) => return None,
            }
        }
        let payload = match envelope.type_name? {
            "obligation_settled" => Payload::ObligationSettled(settled(payload)?),
            "shares_transferred" => Payload::SharesTransferred(transferred(payload)?),
            _ => return None,
        };
        let event = Event {
            id: EventId::parse(envelope.id?).ok()?,
            effective: Date::parse(envelope.effective?).ok()?,
            source: envelope.source.map(Text::parse).transpose().ok()?,
            note: envelope.note.map(Text::parse).transpose().ok()?,
            payload,
        };
        // The rules one event must keep on its own, as every reader checks them.
        event.check_shape().ok()?;
        Some(event)
    }

    #[derive(Default)]
    struct Envelope<'a> {
        id: Option<&'a str>,
        type_name: Option<&'a str>,
        effective: Option<&'a str>,
        source: Option<&'a str>,
        note: Option<&'a str>,
    }

    fn str_of<'a>(v: &Value<'a>) -> Option<&'a str> {
        match v {
            Value::Str(s) => Some(s),
            Value::Object(_) => None,
        }
    }

    /// A decimal, as `Dec` reads one from a JSON string.
    fn decimal(s: &str) -> Option<Dec> {
        parse_decimal(s).ok().map(Dec)
    }

    fn settled(fields: Vec<(&str, Value<'_>)>) -> Option<ObligationSettled> {
        let (mut obligation, mut amount, mut reference) = (None, None, None);
        for (k, v) in fields {
            match (k, v) {
                ("obligation", v) => obligation = Some(Slug::parse(str_of(&v)?).ok()?),
                ("reference", v) => reference = Some(Text::parse(str_of(&v)?).ok()?),
                ("amount", Value::Object(m)) => amount = Some(money(&m)?),
                _ => return None,
            }
        }
        Some(ObligationSettled {
            obligation: obligation?,
            amount: amount?,
            reference,
        })
    }

    /// `{"amount":"...","currency":"..."}`, both and nothing else (keys ascend, so in that order).
    fn money(m: &[(&str, &str)]) -> Option<Money> {
        match m {
            [("amount", a), ("currency", c)] => {
                Money::of(decimal(a)?, Currency::parse(c).ok()?).ok()
            }
            _ => None,
        }
    }

    fn transferred(fields: Vec<(&str, Value<'_>)>) -> Option<SharesTransferred> {
        let (mut issuer, mut from, mut to, mut units, mut class) = (None, None, None, None, None);
        for (k, v) in fields {
            let s = str_of(&v)?;
            match k {
                "issuer" => issuer = Some(Slug::parse(s).ok()?),
                "from" => from = Some(Slug::parse(s).ok()?),
                "to" => to = Some(Slug::parse(s).ok()?),
                "units" => units = Some(Positive::of(decimal(s)?).ok()?),
                "class" => class = Some(ClassName::parse(s).ok()?),
                _ => return None,
            }
        }
        Some(SharesTransferred {
            issuer: issuer?,
            from: from?,
            to: to?,
            units: units?,
            class,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::parse;
        use crate::event::Event;
        use proptest::prelude::*;

        /// Lines of both types in the compact form, with and without their optional fields.
        fn lines() -> Vec<String> {
            [
                r#"{"amount":{"amount":"1.00","currency":"USD"},"effective":"2020-12-31","id":"ev-1","obligation":"ob-0","reference":"bench","type":"obligation_settled"}"#,
                r#"{"amount":{"amount":"250000000","currency":"EUR"},"effective":"2025-10-28","id":"s1","note":"é ünïcode — \u2028 ok","obligation":"azure-commitment","source":"press","type":"obligation_settled"}"#,
                r#"{"effective":"2016-01-02","from":"p1","id":"ev-9","issuer":"e0","to":"p2","type":"shares_transferred","units":"10.5"}"#,
                r#"{"class":"series-a preferred","effective":"2016-01-02","from":"p1","id":"ev-10","issuer":"e0","note":"n","source":"s","to":"p2","type":"shares_transferred","units":"3"}"#,
            ]
            .iter()
            .map(|s| s.replace(r"\u2028", "\u{2028}"))
            .collect()
        }

        #[test]
        fn the_compact_form_reads_as_the_strict_parser_reads_it() {
            for line in lines() {
                let fast = parse(&line).unwrap_or_else(|| panic!("not read: {line}"));
                assert_eq!(Ok(fast.clone()), Event::from_line_strict(&line), "{line}");
                // A stored event's canonical bytes are in that form.
                let canonical = String::from_utf8(fast.canonical_bytes()).unwrap();
                assert_eq!(parse(&canonical), Some(fast));
            }
        }

        #[test]
        fn anything_outside_the_narrow_form_is_left_to_the_usual_reader() {
            let base = &lines()[0];
            for (from, to) in [
                (r#""amount":"1.00""#, r#""amount":"0""#),
                (r#""amount":"1.00""#, r#""amount":"-1""#),
                (r#""amount":"1.00""#, r#""amount":1"#),
                (r#""currency":"USD""#, r#""currency":"usd""#),
                (r#""obligation":"ob-0""#, r#""obligation":"Ob 0""#),
                (r#""id":"ev-1","#, r#""id":"ev-1","id":"ev-2","#),
                (r#""id":"ev-1","#, ""),
                (r#","reference":"bench""#, r#","reference":"be\"nch""#),
                (r#","reference":"bench""#, r#","reference":"b\nch""#),
                (r#","reference":"bench""#, r#","zzz":"x""#),
                (
                    r#""effective":"2020-12-31","#,
                    r#""effective":"2020-02-30","#,
                ),
                (
                    r#""effective":"2020-12-31","id":"ev-1","#,
                    r#""id":"ev-1","effective":"2020-12-31","#,
                ),
                (
                    r#""type":"obligation_settled""#,
                    r#""type":"obligation_amended""#,
                ),
                (r#","currency":"USD""#, r#","currency":"USD","extra":"x""#),
                ("{", "{ "),
            ] {
                let line = base.replacen(from, to, 1);
                assert_ne!(&line, base, "{from} not in the line");
                assert_eq!(parse(&line), None, "{line}");
            }
            assert_eq!(parse(&format!("{base}\n")), None);
            let units = &lines()[2];
            for bad in [r#""units":"0""#, r#""units":"1e3""#, r#""units":"""#] {
                assert_eq!(
                    parse(&units.replacen(r#""units":"10.5""#, bad, 1)),
                    None,
                    "{bad}"
                );
            }
        }

        /// A small deterministic generator (xorshift), so that a failure is the same every run.
        struct Rng(u64);

        impl Rng {
            fn below(&mut self, n: usize) -> usize {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % n as u64) as usize
            }
            /// One of `xs`, one of the first `VALID` (the valid values) three times in four.
            fn pick(&mut self, xs: &[String]) -> String {
                let n = if self.chance(75) { VALID } else { xs.len() };
                xs[self.below(n)].clone()
            }
            fn chance(&mut self, percent: usize) -> bool {
                self.below(100) < percent
            }
        }

        /// Every pool below starts with this many valid values.
        const VALID: usize = 2;

        fn strs(xs: &[&str]) -> Vec<String> {
            xs.iter().map(|s| s.to_string()).collect()
        }

        /// Lines built from valid and hostile values of every field, with fields left out,
        /// added, said twice, out of order or of the wrong kind: whatever the hand reader
        /// accepts, the strict reading gives the same event, scale of decimals included (their
        /// `Debug`, which `==` does not compare).
        #[test]
        fn generated_lines_read_as_the_strict_parser_reads_them() {
            let decimals = strs(&[
                "1",
                "1.00",
                "250000000",
                "10.5",
                "0",
                "0.0",
                "-1",
                "-0",
                "+1",
                "1.",
                ".5",
                "1e3",
                "007",
                "1 ",
                "",
                "\\u0031",
                "79228162514264337593543950335",
                "79228162514264337593543950336",
                "0.0000000000000000000000000001",
                "0.00000000000000000000000000001",
                "\u{967}",
            ]);
            let slugs = strs(&[
                "ob-0",
                "p1",
                "e0",
                "azure-commitment",
                "A",
                "-x",
                "a_b",
                "",
                "a b",
                "é",
                &"a".repeat(64),
                &"a".repeat(65),
            ]);
            let texts = strs(&[
                "bench",
                "é ü",
                "\u{7f}",
                "\u{85}",
                "\u{2028}",
                "\u{feff}",
                "\t",
                "",
                "a\\b",
                "q\\\"uote",
                "back\\\\slash",
                "\\u00e9\\/",
                &"t".repeat(4096),
                &"t".repeat(4097),
            ]);
            let classes = strs(&["common", "series a", "", &"c".repeat(64), &"c".repeat(65)]);
            let currencies = strs(&["USD", "EUR", "usd", "US", "USDX", "€UR"]);
            let dates = strs(&[
                "2020-12-31",
                "2016-01-01",
                "2020-02-30",
                "2020-2-3",
                "0000-01-01",
                "9999-12-31",
                "2020-12-31T00:00",
            ]);
            let ids = strs(&[
                "ev-1",
                "s1",
                "",
                "ev 1",
                "é",
                &"i".repeat(128),
                &"i".repeat(129),
            ]);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let (mut accepted, mut written, total) = (0usize, 0usize, 20_000usize);
            for _ in 0..total {
                let settled = rng.chance(50);
                let mut fields: Vec<(String, String)> = Vec::new();
                let string = |rng: &mut Rng, pool: &[String]| {
                    let v = rng.pick(pool);
                    match rng.below(40) {
                        0 => v,
                        1 => "null".to_string(),
                        2 => format!("[\"{v}\"]"),
                        _ => format!("\"{v}\""),
                    }
                };
                fields.push(("effective".into(), string(&mut rng, &dates)));
                fields.push(("id".into(), string(&mut rng, &ids)));
                for (key, pool) in [("note", &texts), ("source", &texts)] {
                    if rng.chance(20) {
                        fields.push((key.into(), string(&mut rng, pool)));
                    }
                }
                if settled {
                    fields.push(("type".into(), "\"obligation_settled\"".into()));
                    fields.push(("obligation".into(), string(&mut rng, &slugs)));
                    if rng.chance(40) {
                        fields.push(("reference".into(), string(&mut rng, &texts)));
                    }
                    let mut money = vec![
                        ("amount".to_string(), string(&mut rng, &decimals)),
                        ("currency".to_string(), string(&mut rng, &currencies)),
                    ];
                    match rng.below(12) {
                        0 => money.reverse(),
                        1 => {
                            money.pop();
                        }
                        2 => money.push(("extra".into(), "\"x\"".into())),
                        3 => money.push(("currency".into(), "\"USD\"".into())),
                        _ => {}
                    }
                    let inner: Vec<String> =
                        money.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    fields.push(("amount".into(), format!("{{{}}}", inner.join(","))));
                } else {
                    fields.push(("type".into(), "\"shares_transferred\"".into()));
                    for key in ["issuer", "from", "to"] {
                        fields.push((key.into(), string(&mut rng, &slugs)));
                    }
                    fields.push(("units".into(), string(&mut rng, &decimals)));
                    if rng.chance(30) {
                        fields.push(("class".into(), string(&mut rng, &classes)));
                    }
                    if rng.chance(3) {
                        fields.push((
                            "amount".into(),
                            "{\"amount\":\"1\",\"currency\":\"USD\"}".into(),
                        ));
                    }
                }
                match rng.below(30) {
                    0 => {
                        let i = rng.below(fields.len());
                        fields.remove(i);
                    }
                    1 => fields.push(("zzz".into(), "\"x\"".into())),
                    2 => {
                        let i = rng.below(fields.len());
                        let twice = fields[i].clone();
                        fields.push(twice);
                    }
                    _ => {}
                }
                fields.sort();
                if rng.chance(3) {
                    let (i, j) = (rng.below(fields.len()), rng.below(fields.len()));
                    fields.swap(i, j);
                }
                let body: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                let line = format!("{{{}}}", body.join(","));
                // Whatever the strict reading accepts is written back as the generic path
                // writes it (the canonical bytes the store hashes).
                if let Ok(strict) = Event::from_line_strict(&line) {
                    let generic = strict.canonical_generic();
                    assert_eq!(strict.canonical_by_hand(), Some(generic), "{line}");
                    written += 1;
                }
                if let Some(fast) = parse(&line) {
                    accepted += 1;
                    let strict = Event::from_line_strict(&line).unwrap_or_else(|e| {
                        panic!("accepted, but refused by the strict reading ({e}): {line}")
                    });
                    assert_eq!(format!("{fast:?}"), format!("{strict:?}"), "{line}");
                }
            }
            // The test means something only if many of its lines are accepted.
            assert!(
                accepted * 20 > total,
                "only {accepted} of {total} lines accepted"
            );
            assert!(
                written * 20 > total,
                "only {written} of {total} lines read strictly"
            );
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever line the hand reader accepts, the strict parser reads to the same event:
            /// lines of the narrow form cut, changed and lengthened at random.
            #[test]
            fn never_laxer_than_the_strict_parser(
                which in 0usize..4,
                edits in proptest::collection::vec((0usize..400, 0usize..3, 0usize..24), 1..4),
            ) {
                let alphabet = [
                    "\"", ":", ",", "{", "}", " ", "\\", "0", "1", "-", ".", "a", "é", "x",
                    "amount", "currency", "class", "note", "id", "type", "units", "\"\"", "USD", "\n",
                ];
                let mut line = lines()[which].clone();
                for (at, op, what) in edits {
                    let mut at = at % (line.len() + 1);
                    while !line.is_char_boundary(at) {
                        at -= 1;
                    }
                    match op {
                        0 => line.insert_str(at, alphabet[what]),
                        1 => {
                            let end = (at + 1 + what % 4).min(line.len());
                            let mut end = end;
                            while !line.is_char_boundary(end) {
                                end += 1;
                            }
                            line.replace_range(at..end, "");
                        }
                        _ => {
                            let end = (at + 1).min(line.len());
                            let mut end = end;
                            while !line.is_char_boundary(end) {
                                end += 1;
                            }
                            line.replace_range(at..end, alphabet[what]);
                        }
                    }
                }
                if let Some(fast) = parse(&line) {
                    prop_assert_eq!(Ok(fast), Event::from_line_strict(&line), "{}", line);
                }
            }
        }
    }
}
