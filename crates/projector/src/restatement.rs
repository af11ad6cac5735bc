//! Restatements: what changed on one valid date between two transaction
//! times, and which recorded events (and reversals) are responsible, for
//! `accord diff`.
//!
//! Both sides are ordinary projections (`project`), compared row by row:
//! holder rows of cap tables, obligations, rights (every scope, so that a
//! right that ended is a change and not a disappearance). Responsibility is
//! read off the events that one side knows and the other does not, by the
//! aggregate they touch; this module does not guess at causes beyond that.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use domain::event::{Event, Payload};
use domain::values::Date;
use domain::{FoldError, KnownAt, RecordedEvent};
use serde::Serialize;
use serde_json::Value;

use crate::timeline::ownership_issuer;
use crate::{project, Projection, Scope};

/// What changed on `as_of` between known-at `from` and known-at `to`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Restatement {
    pub as_of: Date,
    pub changes: Vec<Change>,
    /// The events known on one side only that can affect `as_of`, in seq
    /// order: recorded between the two times and effective on or before
    /// `as_of`, or reversals of such events.
    pub events: Vec<Responsible>,
}

/// One row that differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// `ownership`, `obligations` or `rights`.
    pub area: &'static str,
    /// `ENTITY:HOLDER:CLASS` for ownership, the obligation id, the right id.
    pub key: String,
    /// The row as known at `from`, `null` when absent.
    pub before: Option<Value>,
    /// The row as known at `to`, `null` when absent.
    pub after: Option<Value>,
    /// Ids of the responsible events, in seq order.
    pub events: Vec<String>,
}

/// An event that one side knows and the other does not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Responsible {
    pub seq: u64,
    pub id: String,
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub effective: Date,
    /// The id of the reversed event, for a reversal.
    pub reverses: Option<String>,
}

/// One row of one side: its JSON text, which is what the two sides compare (a struct
/// serializes its fields in one order, so equal text is equal JSON), turned into a `Value`
/// only for the rows that differ. That holds because the report rows are made of strings
/// (amounts and dates serialize as strings), booleans and options: a row with a map of
/// unspecified order, or a float, would need comparing as a `Value` again.
struct Row {
    text: String,
    /// The entity of a holder row, which its JSON carries but the report row does not.
    entity: Option<String>,
    /// The milestone a right waits for.
    until_milestone: Option<String>,
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.text == other.text && self.entity == other.entity
    }
}

impl Row {
    fn new<T: Serialize>(row: &T) -> Row {
        Row {
            // The rows are structs of strings, booleans and options, which serde_json always
            // serializes.
            text: serde_json::to_string(row).unwrap_or_else(|_| "null".into()),
            entity: None,
            until_milestone: None,
        }
    }

    fn value(&self) -> Value {
        let mut v: Value = serde_json::from_str(&self.text).unwrap_or(Value::Null);
        if let (Some(entity), Value::Object(m)) = (&self.entity, &mut v) {
            m.insert("entity".into(), Value::String(entity.clone()));
        }
        v
    }
}

/// The rows of one side, keyed by (area, key).
fn rows(p: &Projection) -> Rows {
    let mut rows = Rows::new();
    for e in p.ownership(None).entities {
        for h in &e.holders {
            let mut row = Row::new(h);
            row.entity = Some(e.entity.to_string());
            rows.insert(
                (
                    "ownership",
                    format!("{}:{}:{}", e.entity, h.holder, h.class),
                ),
                row,
            );
        }
    }
    for o in p.obligations(None, Scope::All).obligations {
        rows.insert(("obligations", o.obligation.clone()), Row::new(&o));
    }
    for r in p.rights(None, Scope::All).rights {
        let mut row = Row::new(&r);
        row.until_milestone = r.until_milestone.clone();
        rows.insert(("rights", r.right.clone()), row);
    }
    rows
}

type Rows = BTreeMap<(&'static str, String), Row>;

/// Areas in the order of CLI.md.
fn area_rank(area: &str) -> u8 {
    match area {
        "ownership" => 0,
        "obligations" => 1,
        _ => 2,
    }
}

/// What an event touches: (area, key prefix or key). Ownership events name
/// the holder rows they change (an issue or cancellation also dilutes the
/// others, a split or a restated table changes every row); a valuation names the entity's
/// `value` fields only, and only when it is the valuation in force on the
/// date on one side; obligation and right events name their id; a milestone
/// names every right that waits for it.
fn touches(
    event: &Event,
    rights_by_milestone: &HashMap<String, Vec<String>>,
    valuations_in_force: &BTreeSet<&str>,
) -> Vec<(&'static str, String)> {
    if let Some(issuer) = ownership_issuer(&event.payload) {
        // A holder's row is changed by the events that name it, by the events that restate
        // the whole table, and (in percent only) by issues and cancellations to others.
        let holder = |h: &dyn std::fmt::Display| ("ownership", format!("{issuer}:{h}:"));
        return match &event.payload {
            Payload::SharesIssued(p) => vec![holder(&p.holder), (DILUTION, format!("{issuer}:"))],
            Payload::SharesCancelled(p) => {
                vec![holder(&p.holder), (DILUTION, format!("{issuer}:"))]
            }
            Payload::SharesTransferred(p) => vec![holder(&p.from), holder(&p.to)],
            _ => vec![("ownership", format!("{issuer}:"))],
        };
    }
    match &event.payload {
        Payload::ValuationRecorded(p) if valuations_in_force.contains(event.id.as_str()) => {
            vec![(VALUE, format!("{}:", p.entity))]
        }
        Payload::ObligationIncurred(p) => vec![("obligations", p.obligation.to_string())],
        Payload::ObligationSettled(p) => vec![("obligations", p.obligation.to_string())],
        Payload::ObligationAmended(p) => vec![("obligations", p.obligation.to_string())],
        Payload::ObligationReleased(p) => vec![("obligations", p.obligation.to_string())],
        Payload::RightGranted(p) => vec![("rights", p.right.to_string())],
        Payload::RightAmended(p) => vec![("rights", p.right.to_string())],
        Payload::RightEnded(p) => vec![("rights", p.right.to_string())],
        Payload::MilestoneDeclared(p) => {
            milestone_rights(p.milestone.as_str(), rights_by_milestone)
        }
        Payload::MilestoneVerified(p) => {
            milestone_rights(p.milestone.as_str(), rights_by_milestone)
        }
        _ => Vec::new(),
    }
}

fn milestone_rights(
    milestone: &str,
    rights_by_milestone: &HashMap<String, Vec<String>>,
) -> Vec<(&'static str, String)> {
    rights_by_milestone
        .get(milestone)
        .map(|rs| rs.iter().map(|r| ("rights", r.clone())).collect())
        .unwrap_or_default()
}

/// The pseudo-area of a valuation: it touches ownership rows only through
/// their `value`.
const VALUE: &str = "ownership/value";

/// The pseudo-area of an issue or cancellation: it changes the percent of every other holder
/// of the entity, not their units.
const DILUTION: &str = "ownership/dilution";

/// Indexes into `touched` (in seq order) of the events responsible for a
/// change, looked up by what they touch.
fn responsible_for(c: &Change, index: &HashMap<(&str, String), Vec<usize>>) -> Vec<usize> {
    let mut found: Vec<usize> = Vec::new();
    let mut add = |area: &str, key: String| {
        if let Some(v) = index.get(&(area, key)) {
            found.extend(v);
        }
    };
    if c.area == "ownership" {
        let mut parts = c.key.split(':');
        let entity = parts.next().unwrap_or_default();
        let holder = parts.next().unwrap_or_default();
        add("ownership", format!("{entity}:"));
        add("ownership", format!("{entity}:{holder}:"));
        let field = |v: &Option<Value>, f: &str| v.as_ref().and_then(|v| v.get(f)).cloned();
        // Units the same but the percent moved: diluted (or concentrated) by others.
        if field(&c.before, "units") == field(&c.after, "units")
            && field(&c.before, "percent") != field(&c.after, "percent")
        {
            add(DILUTION, format!("{entity}:"));
        }
        if field(&c.before, "value") != field(&c.after, "value") {
            add(VALUE, format!("{entity}:"));
        }
    } else {
        add(c.area, c.key.clone());
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// The ids of the valuations in force on `as_of` for each entity, as known
/// at `known_at`.
fn valuations_in_force(log: &[RecordedEvent], as_of: Date, known_at: KnownAt) -> Vec<String> {
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for (_, e) in domain::timeline(log, known_at) {
        if e.effective > as_of {
            break;
        }
        if let Payload::ValuationRecorded(p) = &e.payload {
            latest.insert(p.entity.to_string(), e.id.to_string());
        }
    }
    latest.into_values().collect()
}

/// What changed on `as_of` between what was known at `from` and at `to`.
pub fn restatement(
    log: &[RecordedEvent],
    as_of: Date,
    from: KnownAt,
    to: KnownAt,
) -> Result<Restatement, FoldError> {
    let before = project(log, as_of, from)?;
    let after = project(log, as_of, to)?;
    let in_force: Vec<String> = valuations_in_force(log, as_of, from)
        .into_iter()
        .chain(valuations_in_force(log, as_of, to))
        .collect();
    let in_force: BTreeSet<&str> = in_force.iter().map(String::as_str).collect();
    let by_id: HashMap<&str, &Event> = log
        .iter()
        .map(|r| (r.event.id.as_str(), &r.event))
        .collect();
    let differing: Vec<&RecordedEvent> = log
        .iter()
        .filter(|r| from.includes(r) != to.includes(r))
        .collect();
    Ok(restate(
        &before,
        &after,
        &differing,
        |id| by_id.get(id).copied(),
        &in_force,
    ))
}

/// The restatement between two projections of one date: `differing` are the events one side
/// knows and the other does not (in seq order), `target_of` finds the event a reversal among
/// them reverses, and `in_force` holds the ids of the valuations in force on the date on
/// either side (at least those among `differing` and their targets).
pub fn restate<'a>(
    before: &Projection,
    after: &Projection,
    differing: &[&'a RecordedEvent],
    target_of: impl Fn(&str) -> Option<&'a Event>,
    in_force: &BTreeSet<&str>,
) -> Restatement {
    let as_of = after.as_of;
    let before = rows(before);
    let after = rows(after);

    // Rights waiting for a milestone, on either side.
    let mut rights_by_milestone: HashMap<String, Vec<String>> = HashMap::new();
    for ((area, key), row) in before.iter().chain(after.iter()) {
        if *area == "rights" {
            if let Some(m) = &row.until_milestone {
                let list = rights_by_milestone.entry(m.clone()).or_default();
                if !list.contains(key) {
                    list.push(key.clone());
                }
            }
        }
    }

    // The events one side knows and the other does not, that can affect
    // `as_of`: effective on or before it, or reversing an event that is.
    let mut responsible = Vec::new();
    let mut touched: Vec<(String, Vec<(&'static str, String)>)> = Vec::new();
    for r in differing.iter().copied() {
        let (target, reverses) = match &r.event.payload {
            Payload::EventReversed(p) => match target_of(p.reverses.as_str()) {
                Some(e) => (e, Some(p.reverses.to_string())),
                None => continue,
            },
            _ => (&r.event, None),
        };
        if target.effective > as_of {
            continue;
        }
        responsible.push(Responsible {
            seq: r.seq,
            id: r.event.id.to_string(),
            type_name: r.event.payload.type_name(),
            effective: r.event.effective,
            reverses,
        });
        touched.push((
            r.event.id.to_string(),
            touches(target, &rights_by_milestone, in_force),
        ));
    }

    let mut index: HashMap<(&str, String), Vec<usize>> = HashMap::new();
    for (i, (_, t)) in touched.iter().enumerate() {
        for (area, key) in t {
            index.entry((area, key.clone())).or_default().push(i);
        }
    }

    let keys: BTreeSet<&(&'static str, String)> = before.keys().chain(after.keys()).collect();
    let mut keys: Vec<_> = keys.into_iter().collect();
    keys.sort_by(|(a, k), (b, l)| (area_rank(a), k).cmp(&(area_rank(b), l)));
    let changes = keys
        .into_iter()
        .filter_map(|k| {
            let (b, a) = (before.get(k), after.get(k));
            if b == a {
                return None;
            }
            let (area, key) = k;
            let mut change = Change {
                area,
                key: key.clone(),
                before: b.map(Row::value),
                after: a.map(Row::value),
                events: Vec::new(),
            };
            change.events = responsible_for(&change, &index)
                .into_iter()
                .map(|i| touched[i].0.clone())
                .collect();
            Some(change)
        })
        .collect();
    Restatement {
        as_of,
        changes,
        events: responsible,
    }
}
