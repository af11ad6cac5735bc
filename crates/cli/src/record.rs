//! `accord record TYPE --field value ...`: one event built from flags.
//!
//! Each payload field of EVENTS.md is a flag of the same name with `-` for
//! `_`. The flags become a JSON object that goes through the very same parser
//! as a file line, so `record` can never accept what `append` would refuse.

use serde_json::{Map, Value};

use present::human::{parse_money, parse_scaled};

/// How a flag's text becomes a JSON value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Kept as a string.
    Str,
    /// A decimal, with K/M/B/T suffixes allowed; a trailing `%` is dropped.
    Dec,
    /// Money: `13.8B USD`, `$13.8B`.
    Money,
    /// A date or a limit that `null` (or `none`) removes.
    Nullable,
    /// `--holding HOLDER=27%|UNITS[@CLASS]`, repeated.
    Holdings,
}

/// The payload fields of each event type: (flag name, kind).
fn fields(type_name: &str) -> Option<&'static [(&'static str, Kind)]> {
    use Kind::*;
    const TABLE: &[(&str, Kind)] = &[
        ("issuer", Str),
        ("holding", Holdings),
        ("total-units", Dec),
        ("reason", Str),
    ];
    Some(match type_name {
        "party_registered" => &[("party", Str), ("name", Str), ("kind", Str)],
        "party_updated" => &[("party", Str), ("name", Str), ("kind", Str)],
        "shares_issued" => &[
            ("issuer", Str),
            ("holder", Str),
            ("units", Dec),
            ("class", Str),
            ("price", Money),
        ],
        "shares_transferred" => &[
            ("issuer", Str),
            ("from", Str),
            ("to", Str),
            ("units", Dec),
            ("class", Str),
        ],
        "shares_cancelled" => &[
            ("issuer", Str),
            ("holder", Str),
            ("units", Dec),
            ("class", Str),
        ],
        "shares_split" => &[
            ("issuer", Str),
            ("class", Str),
            ("numerator", Dec),
            ("denominator", Dec),
        ],
        "recapitalized" | "holdings_stated" => TABLE,
        "valuation_recorded" => &[("entity", Str), ("post-money", Money), ("basis", Str)],
        "investment_made" => &[
            ("investor", Str),
            ("investee", Str),
            ("amount", Money),
            ("instrument", Str),
            ("label", Str),
        ],
        "obligation_incurred" => &[
            ("obligation", Str),
            ("kind", Str),
            ("obligor", Str),
            ("obligee", Str),
            ("amount", Money),
            ("purpose", Str),
            ("due", Str),
        ],
        "obligation_settled" => &[("obligation", Str), ("amount", Money), ("reference", Str)],
        "obligation_amended" => &[("obligation", Str), ("amount", Money), ("reason", Str)],
        "obligation_released" => &[("obligation", Str), ("reason", Str)],
        "right_granted" => &[
            ("right", Str),
            ("kind", Str),
            ("holder", Str),
            ("grantor", Str),
            ("description", Str),
            ("until", Str),
            ("until-milestone", Str),
        ],
        "right_amended" => &[
            ("right", Str),
            ("until", Nullable),
            ("until-milestone", Nullable),
        ],
        "right_ended" => &[("right", Str), ("reason", Str)],
        "milestone_declared" => &[
            ("milestone", Str),
            ("declared-by", Str),
            ("description", Str),
        ],
        "milestone_verified" => &[("milestone", Str), ("verified-by", Str)],
        "event_reversed" => &[("reverses", Str), ("reason", Str)],
        _ => return None,
    })
}

/// The flags a type takes, for help and error messages.
pub fn flag_list(type_name: &str) -> String {
    fields(type_name)
        .map(|f| {
            f.iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// A problem with the flags: the usage is wrong (exit 2) or a value is
/// refused (exit 1).
#[derive(Debug)]
pub enum FlagError {
    Usage(String),
    Value(String),
}

/// One `--holding`, and its units when they were given as a bare number (`HOLDER=27`,
/// which could be a percent without its `%`).
fn holding(spec: &str) -> Result<(Value, Option<rust_decimal::Decimal>), String> {
    let (holder, rest) = spec.split_once('=').ok_or_else(|| {
        format!("invalid --holding {spec:?}: write HOLDER=27% (percent) or HOLDER=270000000 (units), optionally @CLASS")
    })?;
    let (amount, class) = match rest.rsplit_once('@') {
        Some((a, c)) => (a, Some(c)),
        None => (rest, None),
    };
    let mut m = Map::new();
    m.insert("holder".into(), Value::String(holder.to_string()));
    let mut bare = None;
    if let Some(p) = amount.strip_suffix('%') {
        let p = parse_scaled(p.trim())?;
        m.insert("percent".into(), Value::String(p.to_string()));
    } else if let Some(u) = amount.strip_suffix("units") {
        let u = parse_scaled(u.trim())?;
        m.insert("units".into(), Value::String(u.to_string()));
    } else {
        let u = parse_scaled(amount)?;
        m.insert("units".into(), Value::String(u.to_string()));
        bare = Some(u);
    }
    if let Some(c) = class {
        m.insert("class".into(), Value::String(c.to_string()));
    }
    Ok((Value::Object(m), bare))
}

/// A cap table given in bare numbers that could all be percents (each 100 or less, 100 or
/// less in all) replaces the table with unit counts a `%` away from what was meant: refused,
/// asking for `%` or an explicit `units`.
fn looks_like_percents(bare: &[Option<rust_decimal::Decimal>]) -> bool {
    let hundred = rust_decimal::Decimal::ONE_HUNDRED;
    let all: Option<Vec<rust_decimal::Decimal>> = bare.iter().copied().collect();
    all.is_some_and(|units| {
        !units.is_empty()
            && units.iter().all(|u| *u <= hundred)
            && units.iter().copied().sum::<rust_decimal::Decimal>() <= hundred
    })
}

/// Builds the payload of `type_name` from `--flag value` pairs.
pub fn payload(
    type_name: &str,
    flags: &[(String, String)],
) -> Result<Map<String, Value>, FlagError> {
    let schema = fields(type_name).ok_or_else(|| {
        FlagError::Usage(format!(
            "unknown event type {type_name:?}{}; the types are: {}",
            domain::event::nearest(type_name, domain::EVENT_TYPES.iter().copied())
                .map(|t| format!(" (did you mean {t}?)"))
                .unwrap_or_default(),
            domain::EVENT_TYPES.join(", ")
        ))
    })?;
    let mut out = Map::new();
    let mut holdings = Vec::new();
    let mut bare_units = Vec::new();
    for (flag, text) in flags {
        let Some((_, kind)) = schema.iter().find(|(n, _)| n == flag) else {
            let known = schema.iter().map(|(n, _)| *n).chain([
                "id",
                "effective",
                "source",
                "note",
                "format",
                "dry-run",
            ]);
            let hint = domain::event::nearest(flag, known)
                .map(|n| format!(" (did you mean --{n}?)"))
                .unwrap_or_default();
            return Err(FlagError::Usage(format!(
                "`record {type_name}` takes no flag --{flag}{hint}; its flags are: {} (and --id, --effective, --source, --note)",
                flag_list(type_name)
            )));
        };
        let field = if *kind == Kind::Holdings {
            "holdings".to_string()
        } else {
            flag.replace('-', "_")
        };
        if *kind != Kind::Holdings && out.contains_key(&field) {
            return Err(FlagError::Usage(format!("--{flag} is given twice")));
        }
        let bad = |e: String| FlagError::Value(format!("--{flag}: {e}"));
        let value = match kind {
            Kind::Str => Value::String(text.clone()),
            Kind::Dec => {
                let t = text.trim().trim_end_matches('%');
                Value::String(parse_scaled(t).map_err(bad)?.to_string())
            }
            Kind::Money => {
                let (amount, currency) = parse_money(text).map_err(bad)?;
                let mut m = Map::new();
                m.insert("amount".into(), Value::String(amount.to_string()));
                m.insert("currency".into(), Value::String(currency.to_string()));
                Value::Object(m)
            }
            Kind::Nullable => match text.as_str() {
                "null" | "none" => Value::Null,
                _ => Value::String(text.clone()),
            },
            Kind::Holdings => {
                let (h, bare) = holding(text).map_err(bad)?;
                holdings.push(h);
                bare_units.push(bare);
                continue;
            }
        };
        out.insert(field, value);
    }
    if looks_like_percents(&bare_units) {
        let first = flags
            .iter()
            .find(|(f, _)| f == "holding")
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        return Err(FlagError::Usage(format!(
            "--holding {first} reads as units, and every holding here is 100 units or fewer, so they look like percents without their %: write {first}% for a percent, or {first}units for units"
        )));
    }
    if !holdings.is_empty() {
        out.insert("holdings".into(), Value::Array(holdings));
    }
    Ok(out)
}

/// Splits `--name value` and `--name=value` arguments into pairs.
pub fn pairs(args: &[String]) -> Result<Vec<(String, String)>, FlagError> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            return Err(FlagError::Usage(format!(
                "unexpected argument {a:?}: event fields are given as --field value"
            )));
        };
        if let Some((n, v)) = name.split_once('=') {
            out.push((n.to_string(), v.to_string()));
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| FlagError::Usage(format!("--{name} needs a value")))?;
        out.push((name.to_string(), value.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str, args: &[&str]) -> Result<Map<String, Value>, FlagError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        payload(t, &pairs(&args)?)
    }

    #[test]
    fn builds_money_and_holdings() {
        let m = p(
            "investment_made",
            &[
                "--investor",
                "microsoft",
                "--investee=openai-group",
                "--amount",
                "$13.8B",
            ],
        )
        .unwrap();
        assert_eq!(m["amount"]["amount"], "13800000000");
        assert_eq!(m["amount"]["currency"], "USD");
        let m = p(
            "recapitalized",
            &[
                "--issuer",
                "x",
                "--holding",
                "a=27%",
                "--holding",
                "b=73%@pref",
            ],
        )
        .unwrap();
        assert_eq!(m["holdings"][0]["percent"], "27");
        assert_eq!(m["holdings"][1]["class"], "pref");
        let m = p(
            "right_amended",
            &["--right", "r", "--until-milestone", "null"],
        )
        .unwrap();
        assert_eq!(m["until_milestone"], Value::Null);
    }

    #[test]
    fn refuses_unknown_flags_and_types() {
        assert!(matches!(
            p("investment_made", &["--colour", "red"]),
            Err(FlagError::Usage(_))
        ));
        assert!(matches!(p("party_exploded", &[]), Err(FlagError::Usage(_))));
        assert!(matches!(
            p("investment_made", &["--amount", "lots"]),
            Err(FlagError::Value(_))
        ));
    }
}
