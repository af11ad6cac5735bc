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

/// What a flag's value is, for `record TYPE --help`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Party,
    /// An obligation, right or milestone id.
    Id,
    Text,
    Date,
    Units,
    /// One side of a split ratio.
    Ratio,
    Money,
    Class,
    /// A share class where leaving it out means every class.
    EveryClass,
    Slug,
    Holding,
    /// A date, or `null` to remove it.
    NullableDate,
    /// A milestone id, or `null` to remove it.
    NullableId,
    /// An event's id.
    EventId,
    OneOf(&'static [&'static str]),
}

impl What {
    /// The placeholder after the flag in help.
    fn placeholder(self) -> &'static str {
        match self {
            What::Party => "PARTY",
            What::Id => "ID",
            What::Text => "TEXT",
            What::Date | What::NullableDate => "DATE",
            What::Units => "UNITS",
            What::Ratio => "N",
            What::Money => "MONEY",
            What::Class | What::EveryClass => "CLASS",
            What::Slug => "KIND",
            What::Holding => "HOLDER=SHARE",
            What::NullableId => "ID",
            What::EventId => "EVENT",
            What::OneOf(_) => "KIND",
        }
    }

    /// The value's type and form, in words.
    fn describe(self) -> String {
        match self {
            What::Party => "a registered party's id".into(),
            What::Id => "an id: a-z, 0-9 and -, up to 64 characters".into(),
            What::Text => "text, up to 4,096 characters".into(),
            What::Date => "a date, YYYY-MM-DD".into(),
            What::Units => "a number of shares, e.g. 3,000,000 or 1.5M (fractions allowed)".into(),
            What::Ratio => "a positive number, e.g. 2 (2-for-1: --numerator 2 --denominator 1)".into(),
            What::Money => "an amount and currency, e.g. \"5M USD\", \"$5M\", \"2,500,000 EUR\"".into(),
            What::Class => "a share class (default: common)".into(),
            What::EveryClass => "the share class to split (default: every class)".into(),
            What::Slug => "a kind of right: a-z, 0-9, _ and -, e.g. ip_rights".into(),
            What::Holding => {
                "one line of the table, repeated: HOLDER=27% (percent) or HOLDER=270000units (units), optionally @CLASS".into()
            }
            What::NullableDate => "a date, YYYY-MM-DD, or null to remove the end date".into(),
            What::NullableId => "a milestone id, or null to remove it".into(),
            What::EventId => "the id of a recorded event".into(),
            What::OneOf(values) => format!("one of: {}", values.join(", ")),
        }
    }
}

/// One flag of `record TYPE`: its name (the field, `-` for `_`), how its text becomes JSON,
/// what it holds, and whether the event needs it.
#[derive(Clone, Copy)]
struct Flag {
    name: &'static str,
    kind: Kind,
    what: What,
    required: bool,
}

const fn req(name: &'static str, kind: Kind, what: What) -> Flag {
    Flag {
        name,
        kind,
        what,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind, what: What) -> Flag {
    Flag {
        name,
        kind,
        what,
        required: false,
    }
}

const PARTY_KINDS: What = What::OneOf(domain::event::PartyKind::NAMES);
const INSTRUMENTS: What = What::OneOf(domain::event::Instrument::NAMES);
const OBLIGATION_KINDS: What = What::OneOf(domain::event::ObligationKind::NAMES);

/// The payload fields of each event type, as flags.
fn fields(type_name: &str) -> Option<&'static [Flag]> {
    use Kind::*;
    use What::{Class as C, Date as D, Id as I, Money as M, Party as P, Text as T};
    const TABLE: &[Flag] = &[
        req("issuer", Str, P),
        req("holding", Holdings, What::Holding),
        opt("total-units", Dec, What::Units),
        opt("reason", Str, T),
    ];
    Some(match type_name {
        "party_registered" => {
            const {
                &[
                    req("party", Str, I),
                    req("name", Str, T),
                    req("kind", Str, PARTY_KINDS),
                ]
            }
        }
        "party_updated" => {
            const {
                &[
                    req("party", Str, P),
                    opt("name", Str, T),
                    opt("kind", Str, PARTY_KINDS),
                ]
            }
        }
        "shares_issued" => {
            const {
                &[
                    req("issuer", Str, P),
                    req("holder", Str, P),
                    req("units", Dec, What::Units),
                    opt("class", Str, C),
                    opt("price", Money, M),
                ]
            }
        }
        "shares_transferred" => {
            const {
                &[
                    req("issuer", Str, P),
                    req("from", Str, P),
                    req("to", Str, P),
                    req("units", Dec, What::Units),
                    opt("class", Str, C),
                ]
            }
        }
        "shares_cancelled" => {
            const {
                &[
                    req("issuer", Str, P),
                    req("holder", Str, P),
                    req("units", Dec, What::Units),
                    opt("class", Str, C),
                ]
            }
        }
        "shares_split" => {
            const {
                &[
                    req("issuer", Str, P),
                    opt("class", Str, What::EveryClass),
                    req("numerator", Dec, What::Ratio),
                    req("denominator", Dec, What::Ratio),
                ]
            }
        }
        "recapitalized" | "holdings_stated" => TABLE,
        "valuation_recorded" => {
            const {
                &[
                    req("entity", Str, P),
                    req("post-money", Money, M),
                    opt("basis", Str, T),
                ]
            }
        }
        "investment_made" => {
            const {
                &[
                    req("investor", Str, P),
                    req("investee", Str, P),
                    req("amount", Money, M),
                    opt("instrument", Str, INSTRUMENTS),
                    opt("label", Str, T),
                ]
            }
        }
        "obligation_incurred" => {
            const {
                &[
                    req("obligation", Str, I),
                    req("kind", Str, OBLIGATION_KINDS),
                    req("obligor", Str, P),
                    opt("obligee", Str, P),
                    req("amount", Money, M),
                    opt("purpose", Str, T),
                    opt("due", Str, D),
                ]
            }
        }
        "obligation_settled" => {
            const {
                &[
                    req("obligation", Str, I),
                    req("amount", Money, M),
                    opt("reference", Str, T),
                ]
            }
        }
        "obligation_amended" => {
            const {
                &[
                    req("obligation", Str, I),
                    req("amount", Money, M),
                    opt("reason", Str, T),
                ]
            }
        }
        "obligation_released" => const { &[req("obligation", Str, I), opt("reason", Str, T)] },
        "right_granted" => {
            const {
                &[
                    req("right", Str, I),
                    req("kind", Str, What::Slug),
                    req("holder", Str, P),
                    req("grantor", Str, P),
                    opt("description", Str, T),
                    opt("until", Str, D),
                    opt("until-milestone", Str, I),
                ]
            }
        }
        "right_amended" => {
            const {
                &[
                    req("right", Str, I),
                    opt("until", Nullable, What::NullableDate),
                    opt("until-milestone", Nullable, What::NullableId),
                ]
            }
        }
        "right_ended" => const { &[req("right", Str, I), opt("reason", Str, T)] },
        "milestone_declared" => {
            const {
                &[
                    req("milestone", Str, I),
                    req("declared-by", Str, P),
                    opt("description", Str, T),
                ]
            }
        }
        "milestone_verified" => const { &[req("milestone", Str, I), req("verified-by", Str, T)] },
        "event_reversed" => const { &[req("reverses", Str, What::EventId), req("reason", Str, T)] },
        _ => return None,
    })
}

/// What one event type records, in a line.
fn summary(type_name: &str) -> &'static str {
    match type_name {
        "party_registered" => "a party enters the ledger",
        "party_updated" => "a party shows a new name or kind from its effective date",
        "shares_issued" => "an issuer issues new shares to a holder",
        "shares_transferred" => "a holder transfers shares to another",
        "shares_cancelled" => "an issuer cancels (buys back) a holder's shares",
        "shares_split" => "an issuer's shares of a class are split (or consolidated) by a ratio",
        "recapitalized" => "an issuer's whole cap table is replaced by a new one",
        "holdings_stated" => "an issuer's cap table is stated as it stands (an opening position)",
        "valuation_recorded" => "an entity's post-money valuation is marked",
        "investment_made" => "an investor puts money into an investee",
        "obligation_incurred" => {
            "an obligor comes to owe an amount (to an obligee, or to no one for a pledge)"
        }
        "obligation_settled" => "part or all of an obligation is paid",
        "obligation_amended" => "an obligation's total amount is changed",
        "obligation_released" => "an obligation's outstanding amount is forgiven",
        "right_granted" => "a grantor grants a holder a right, until a date or a milestone",
        "right_amended" => "a right's end (date or milestone) changes",
        "right_ended" => "a right ends",
        "milestone_declared" => "a milestone (such as AGI) is declared",
        "milestone_verified" => "a declared milestone is verified; rights until it end",
        "event_reversed" => {
            "a recorded event is reversed: it no longer counts, and stays in the log"
        }
        _ => "",
    }
}

/// The flags a type takes, for help and error messages.
pub fn flag_list(type_name: &str) -> String {
    fields(type_name)
        .map(|f| {
            f.iter()
                .map(|f| format!("--{}", f.name))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `accord record TYPE --help`: what the type records, each flag with whether it is required,
/// its type and its allowed values, the flags every type takes, and an example.
pub fn help(type_name: &str) -> Option<String> {
    let flags = fields(type_name)?;
    let width = flags
        .iter()
        .map(|f| f.name.len() + f.what.placeholder().len() + 3)
        .chain([19])
        .max()
        .unwrap_or(19);
    let line = |flag: String, required: &str, what: String| {
        format!("  {flag:<width$}  {required:<8}  {what}\n")
    };
    let mut out = format!("accord record {type_name}: {}\n\n", summary(type_name));
    let usage: Vec<String> = flags
        .iter()
        .map(|f| {
            let flag = format!("--{} {}", f.name, f.what.placeholder());
            let flag = if f.what == What::Holding {
                format!("{flag}...")
            } else {
                flag
            };
            if f.required {
                flag
            } else {
                format!("[{flag}]")
            }
        })
        .collect();
    out.push_str(&format!(
        "Usage: accord record {type_name} [--id ID] [--effective DATE] {}\n\nFlags of {type_name}:\n",
        usage.join(" ")
    ));
    for f in flags {
        out.push_str(&line(
            format!("--{} {}", f.name, f.what.placeholder()),
            if f.required { "required" } else { "optional" },
            f.what.describe(),
        ));
    }
    if type_name == "party_updated" {
        out.push_str("  (at least one of --name, --kind)\n");
    }
    if type_name == "right_amended" {
        out.push_str("  (at least one of --until, --until-milestone)\n");
    }
    let effective = if type_name == "event_reversed" {
        "the event's date, YYYY-MM-DD (default: the reversed event's date)"
    } else {
        "the event's date, YYYY-MM-DD (default: today, UTC)"
    };
    out.push_str("\nFlags of every type:\n");
    for (flag, what) in [
        ("--id ID", "the event's id; give one so that running the command again records nothing new (default: generated)"),
        ("--effective DATE", effective),
        ("--source TEXT", "where the fact comes from, e.g. a URL"),
        ("--note TEXT", "a note kept with the event"),
        ("--dry-run", "check the event against the store and write nothing"),
        ("--format FORMAT", "table (default) or json: how the receipt is printed"),
        ("--store PATH", "the store (default: $ACCORD_STORE, else ./accord.db)"),
        ("--wait SECONDS", "how long to wait for a store another command holds (default 5)"),
    ] {
        out.push_str(&line(flag.to_string(), "optional", what.to_string()));
    }
    Some(out)
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
        let Some(Flag { kind, .. }) = schema.iter().find(|f| f.name == flag) else {
            let known = schema.iter().map(|f| f.name).chain([
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

    /// A value of each kind that the parser takes.
    fn sample(what: What) -> &'static str {
        match what {
            What::Party | What::Id | What::NullableId => "acme",
            What::Text => "words",
            What::Date | What::NullableDate => "2025-01-01",
            What::Units | What::Ratio => "2",
            What::Money => "5M USD",
            What::Class | What::EveryClass => "common",
            What::Slug => "ip_rights",
            What::Holding => "acme=100%",
            What::EventId => "e-1",
            What::OneOf(values) => values[0],
        }
    }

    fn parses(type_name: &str, flags: &[Flag]) -> Result<(), String> {
        let pairs: Vec<(String, String)> = flags
            .iter()
            .map(|f| (f.name.to_string(), sample(f.what).to_string()))
            .collect();
        let mut m = payload(type_name, &pairs).map_err(|e| format!("{e:?}"))?;
        m.insert("id".into(), Value::String("e-2".into()));
        m.insert("type".into(), Value::String(type_name.into()));
        m.insert("effective".into(), Value::String("2025-01-01".into()));
        domain::Event::from_json(Value::Object(m))
            .map(|_| ())
            .map_err(|e| e.message)
    }

    #[test]
    fn help_says_required_exactly_when_the_parser_needs_the_field() {
        for &type_name in domain::EVENT_TYPES {
            let flags = fields(type_name).unwrap_or_else(|| panic!("{type_name} has no flags"));
            let required: Vec<Flag> = flags.iter().copied().filter(|f| f.required).collect();
            let all_but_one_of = |names: &[&str]| -> Vec<Flag> {
                // Types that need one of several optional fields get the first of them.
                let mut v = required.clone();
                if let Some(f) = flags.iter().find(|f| names.contains(&f.name)) {
                    v.push(*f);
                }
                v
            };
            let minimal = match type_name {
                "party_updated" => all_but_one_of(&["name"]),
                "right_amended" => all_but_one_of(&["until"]),
                _ => required.clone(),
            };
            parses(type_name, &minimal)
                .unwrap_or_else(|e| panic!("{type_name} with its required flags: {e}"));
            parses(type_name, flags).unwrap_or_else(|e| panic!("{type_name} with every flag: {e}"));
            for f in &required {
                let without: Vec<Flag> = minimal
                    .iter()
                    .copied()
                    .filter(|g| g.name != f.name)
                    .collect();
                assert!(
                    parses(type_name, &without).is_err(),
                    "{type_name} parses without --{}, which help says is required",
                    f.name
                );
            }
            let text = help(type_name).unwrap_or_default();
            for f in flags {
                assert!(
                    text.contains(&format!("--{} ", f.name)),
                    "{type_name}: --{}",
                    f.name
                );
            }
        }
    }
}
