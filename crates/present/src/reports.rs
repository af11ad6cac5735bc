//! The four reports (ownership, obligations, rights, a party's position) as aligned tables
//! for people, pretty JSON and CSV for programs. The JSON is the reports' own serialization
//! (the contract); tables are free to improve.

use std::io::{self, Write};

use domain::values::Date;

use crate::render::{self, Align, Table};
use crate::{Format, Style};

pub fn ownership(
    out: &mut dyn Write,
    format: Format,
    r: &projector::OwnershipReport,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => render::json(out, r)?,
        Format::Csv => {
            let mut rows = Vec::new();
            for e in &r.entities {
                for h in &e.holders {
                    rows.push(vec![
                        r.as_of.to_string(),
                        e.entity.to_string(),
                        e.name.clone().unwrap_or_default(),
                        h.holder.to_string(),
                        h.class.clone(),
                        h.units.to_string(),
                        h.percent.to_string(),
                        h.value
                            .as_ref()
                            .map(|v| v.amount.to_string())
                            .unwrap_or_default(),
                        h.value
                            .as_ref()
                            .map(|v| v.currency.to_string())
                            .unwrap_or_default(),
                    ]);
                }
            }
            render::csv(
                out,
                &[
                    "as_of", "entity", "name", "holder", "class", "units", "percent", "value",
                    "currency",
                ],
                &rows,
            )?;
        }
        Format::Table => {
            if r.entities.is_empty() {
                writeln!(out, "No holdings on {}.", r.as_of)?;
            }
            for (i, e) in r.entities.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(
                    out,
                    "{} ({}) on {}: {} units, post-money {}",
                    render::visible(e.name.as_deref().unwrap_or("?")),
                    e.entity,
                    r.as_of,
                    render::units(&e.total_units),
                    render::opt_money(&e.post_money)
                )?;
                let mut t = Table::new(&[
                    ("holder", Align::Left),
                    ("class", Align::Left),
                    ("units", Align::Right),
                    ("percent", Align::Right),
                    ("value", Align::Right),
                ]);
                for h in &e.holders {
                    t.row(vec![
                        h.holder.to_string(),
                        h.class.clone(),
                        render::units(&h.units),
                        render::percent(&h.percent),
                        render::opt_money(&h.value),
                    ]);
                }
                t.write(out, "  ", style)?;
            }
        }
    }
    Ok(())
}

fn obligation_table(rows: &[projector::ObligationRow]) -> Table {
    let mut t = Table::new(&[
        ("obligation", Align::Left),
        ("kind", Align::Left),
        ("obligor", Align::Left),
        ("obligee", Align::Left),
        ("amount", Align::Right),
        ("settled", Align::Right),
        ("outstanding", Align::Right),
        ("status", Align::Left),
        ("due", Align::Left),
    ]);
    for o in rows {
        t.row(vec![
            o.obligation.clone(),
            o.kind.into(),
            o.obligor.to_string(),
            render::opt(&o.obligee),
            render::money(&o.amount),
            render::money(&o.settled),
            render::money(&o.outstanding),
            if o.overdue {
                format!("{}, overdue", o.status)
            } else {
                o.status.into()
            },
            render::opt(&o.due),
        ]);
    }
    t
}

fn obligation_csv_row(as_of: Date, o: &projector::ObligationRow) -> Vec<String> {
    vec![
        as_of.to_string(),
        o.obligation.clone(),
        o.kind.into(),
        o.obligor.to_string(),
        o.obligee
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        o.amount.currency.to_string(),
        o.amount.amount.to_string(),
        o.settled.amount.to_string(),
        o.outstanding.amount.to_string(),
        o.status.into(),
        o.due.map(|d| d.to_string()).unwrap_or_default(),
        o.overdue.to_string(),
    ]
}

const OBLIGATION_CSV: &[&str] = &[
    "as_of",
    "obligation",
    "kind",
    "obligor",
    "obligee",
    "currency",
    "amount",
    "settled",
    "outstanding",
    "status",
    "due",
    // Added after the contract's columns, like JSON's added fields.
    "overdue",
];

pub fn obligations(
    out: &mut dyn Write,
    format: Format,
    r: &projector::ObligationsReport,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => render::json(out, r)?,
        Format::Csv => {
            let rows: Vec<Vec<String>> = r
                .obligations
                .iter()
                .map(|o| obligation_csv_row(r.as_of, o))
                .collect();
            render::csv(out, OBLIGATION_CSV, &rows)?;
        }
        Format::Table => {
            writeln!(out, "Obligations on {}:", r.as_of)?;
            if r.obligations.is_empty() {
                writeln!(out, "  none")?;
                return Ok(());
            }
            obligation_table(&r.obligations).write(out, "  ", style)?;
            writeln!(out, "Outstanding by obligor:")?;
            let mut t = Table::new(&[("obligor", Align::Left), ("outstanding", Align::Right)]);
            for total in &r.totals {
                t.row(vec![
                    total.obligor.to_string(),
                    format!(
                        "{} {}",
                        crate::human::group_thousands(&total.outstanding.to_string()),
                        total.currency
                    ),
                ]);
            }
            t.write(out, "  ", style)?;
        }
    }
    Ok(())
}

fn rights_table(rows: &[projector::RightRow]) -> Table {
    let mut t = Table::new(&[
        ("right", Align::Left),
        ("kind", Align::Left),
        ("holder", Align::Left),
        ("grantor", Align::Left),
        ("until", Align::Left),
        ("until milestone", Align::Left),
        ("in force", Align::Left),
    ]);
    for r in rows {
        let state = match r.ended {
            None => "yes".to_string(),
            Some(why) => format!("no ({why})"),
        };
        t.row(vec![
            r.right.clone(),
            r.kind.clone(),
            r.holder.to_string(),
            r.grantor.to_string(),
            render::opt(&r.until),
            render::opt(&r.until_milestone),
            state,
        ]);
    }
    t
}

pub fn rights(
    out: &mut dyn Write,
    format: Format,
    r: &projector::RightsReport,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => render::json(out, r)?,
        Format::Csv => {
            let rows: Vec<Vec<String>> = r
                .rights
                .iter()
                .map(|x| {
                    vec![
                        r.as_of.to_string(),
                        x.right.clone(),
                        x.kind.clone(),
                        x.holder.to_string(),
                        x.grantor.to_string(),
                        x.until.map(|d| d.to_string()).unwrap_or_default(),
                        x.until_milestone.clone().unwrap_or_default(),
                        x.in_force.to_string(),
                        x.ended.unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            render::csv(
                out,
                &[
                    "as_of",
                    "right",
                    "kind",
                    "holder",
                    "grantor",
                    "until",
                    "until_milestone",
                    "in_force",
                    "ended",
                ],
                &rows,
            )?;
        }
        Format::Table => {
            writeln!(out, "Rights on {}:", r.as_of)?;
            if r.rights.is_empty() {
                writeln!(out, "  none")?;
            } else {
                rights_table(&r.rights).write(out, "  ", style)?;
            }
            if !r.milestones.is_empty() {
                writeln!(out, "Milestones:")?;
                let mut t = Table::new(&[
                    ("milestone", Align::Left),
                    ("declared", Align::Left),
                    ("verified", Align::Left),
                ]);
                for m in &r.milestones {
                    t.row(vec![
                        m.milestone.clone(),
                        render::opt(&m.declared),
                        render::opt(&m.verified),
                    ]);
                }
                t.write(out, "  ", style)?;
            }
        }
    }
    Ok(())
}

/// A party's position; `registered_from` is the date from which it is registered, said in
/// the table's header when the party is not registered yet on the report's date.
pub fn position(
    out: &mut dyn Write,
    format: Format,
    p: &projector::PositionReport,
    registered_from: Option<Date>,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => render::json(out, p)?,
        Format::Csv => {
            // One row per item, tagged by section, so a spreadsheet can filter.
            let amount = |m: &Option<domain::values::Money>| {
                m.as_ref().map(|v| v.amount.to_string()).unwrap_or_default()
            };
            let mut rows: Vec<Vec<String>> = Vec::new();
            for h in &p.holdings {
                let currency = h.value.as_ref().map(|v| v.currency.to_string());
                rows.push(vec![
                    "holding".into(),
                    h.entity.to_string(),
                    h.class.clone(),
                    h.units.to_string(),
                    h.percent.to_string(),
                    String::new(),
                    amount(&h.value),
                    currency.unwrap_or_default(),
                    String::new(),
                    String::new(),
                ]);
            }
            for i in &p.invested {
                rows.push(vec![
                    "invested".into(),
                    i.investee.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    i.amount.amount.to_string(),
                    amount(&i.value),
                    i.amount.currency.to_string(),
                    i.multiple.map(|m| m.to_string()).unwrap_or_default(),
                    String::new(),
                ]);
            }
            for (section, list) in [("owes", &p.owes), ("owed", &p.owed)] {
                for o in list {
                    rows.push(vec![
                        section.into(),
                        o.obligation.clone(),
                        o.kind.into(),
                        String::new(),
                        String::new(),
                        o.outstanding.amount.to_string(),
                        String::new(),
                        o.outstanding.currency.to_string(),
                        String::new(),
                        o.status.into(),
                    ]);
                }
            }
            for (section, list) in [
                ("right_held", &p.rights_held),
                ("right_granted", &p.rights_granted),
            ] {
                for r in list {
                    let mut row = vec![section.to_string(), r.right.clone(), r.kind.clone()];
                    row.extend(std::iter::repeat_n(String::new(), 6));
                    row.push(r.ended.unwrap_or("in_force").to_string());
                    rows.push(row);
                }
            }
            render::csv(
                out,
                &[
                    "section", "item", "detail", "units", "percent", "amount", "value", "currency",
                    "multiple", "status",
                ],
                &rows,
            )?;
        }
        Format::Table => {
            match (&p.name, registered_from) {
                (None, Some(from)) if from > p.as_of => writeln!(
                    out,
                    "{} on {}: not registered yet (registered from {from})",
                    p.party, p.as_of
                )?,
                // Registered by then, but not as known at the report's transaction time.
                (None, Some(from)) => writeln!(
                    out,
                    "{} on {}: not registered as known then (its registration, effective {from}, was recorded later)",
                    p.party, p.as_of
                )?,
                _ => writeln!(
                    out,
                    "{} ({}) on {}",
                    render::visible(p.name.as_deref().unwrap_or("unregistered party")),
                    p.party,
                    p.as_of
                )?,
            }
            writeln!(out, "Holdings:")?;
            if p.holdings.is_empty() {
                writeln!(out, "  none")?;
            } else {
                let mut t = Table::new(&[
                    ("entity", Align::Left),
                    ("class", Align::Left),
                    ("units", Align::Right),
                    ("percent", Align::Right),
                    ("value", Align::Right),
                ]);
                for h in &p.holdings {
                    t.row(vec![
                        h.entity.to_string(),
                        h.class.clone(),
                        render::units(&h.units),
                        render::percent(&h.percent),
                        render::opt_money(&h.value),
                    ]);
                }
                t.write(out, "  ", style)?;
            }
            writeln!(out, "Invested:")?;
            if p.invested.is_empty() {
                writeln!(out, "  none")?;
            } else {
                let mut t = Table::new(&[
                    ("investee", Align::Left),
                    ("invested", Align::Right),
                    ("value", Align::Right),
                    ("multiple", Align::Right),
                ]);
                for i in &p.invested {
                    t.row(vec![
                        i.investee.to_string(),
                        render::money(&i.amount),
                        render::opt_money(&i.value),
                        i.multiple
                            .map(|m| format!("{m}x"))
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                t.write(out, "  ", style)?;
            }
            for (title, list) in [("Owes", &p.owes), ("Owed", &p.owed)] {
                writeln!(out, "{title}:")?;
                if list.is_empty() {
                    writeln!(out, "  none")?;
                } else {
                    obligation_table(list).write(out, "  ", style)?;
                }
            }
            for (title, list) in [
                ("Rights held", &p.rights_held),
                ("Rights granted", &p.rights_granted),
            ] {
                writeln!(out, "{title}:")?;
                if list.is_empty() {
                    writeln!(out, "  none")?;
                } else {
                    rights_table(list).write(out, "  ", style)?;
                }
            }
        }
    }
    Ok(())
}
