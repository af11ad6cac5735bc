//! Human input and output: amounts such as `13.8B USD` or `$250B`, and
//! numbers with thousands separators for tables.
//!
//! Parsing produces exact decimals (a suffix multiplies a decimal, never a
//! float); anything ambiguous is refused rather than guessed.

use domain::values::{parse_decimal, Currency};
use rust_decimal::Decimal;

/// Parses a decimal with an optional K, M, B or T suffix: `13.8B`, `250000`.
pub fn parse_scaled(s: &str) -> Result<Decimal, String> {
    let s = s.trim().replace('_', "");
    // Thousands separators as tables print them (`3,000,000`), in whole groups of three.
    let s = match ungroup(&s) {
        Some(plain) => plain,
        None if s.contains(',') => {
            return Err(format!(
                "invalid amount {s:?}: commas must group thousands, as in 3,000,000"
            ))
        }
        None => s,
    };
    let (digits, scale) = match s.chars().last() {
        Some(c @ ('K' | 'k' | 'M' | 'm' | 'B' | 'b' | 'T' | 't')) => {
            let exp = match c.to_ascii_uppercase() {
                'K' => 3,
                'M' => 6,
                'B' => 9,
                _ => 12,
            };
            (&s[..s.len() - 1], exp)
        }
        _ => (s.as_str(), 0),
    };
    let base = parse_decimal(digits)
        .map_err(|_| format!("invalid amount {s:?}: write e.g. 13.8B, 250000000000 or 27.5"))?;
    base.checked_mul(Decimal::from(10u64.pow(scale)))
        .map(|d| d.normalize())
        .ok_or_else(|| format!("amount {s:?} is too large"))
}

/// `3,000,000.5` without its commas, when every comma groups three digits of the integer part.
fn ungroup(s: &str) -> Option<String> {
    if !s.contains(',') {
        return None;
    }
    let (int, rest) = match s.find(|c: char| !(c.is_ascii_digit() || c == ',')) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let groups: Vec<&str> = int.split(',').collect();
    let first = groups[0];
    let whole = !first.is_empty()
        && first.len() <= 3
        && groups[1..].iter().all(|g| g.len() == 3)
        && !rest.contains(',');
    whole.then(|| format!("{}{rest}", groups.concat()))
}

/// Parses money in human forms: `13.8B USD`, `USD 13.8B`, `$13.8B`,
/// `250000000000 USD`. `$` means USD; other currencies are named.
pub fn parse_money(s: &str) -> Result<(Decimal, Currency), String> {
    let t = s.trim();
    let bad = || {
        format!(
            "invalid amount {s:?}: write e.g. \"13.8B USD\", \"USD 13.8B\", \"$13.8B\" or \"250000000000 USD\""
        )
    };
    // Slips with an answer of their own, said before the general form.
    if let Some(rest) = t.strip_prefix('-') {
        return Err(format!(
            "invalid amount {s:?}: amounts are strictly positive; write {:?} without the minus (a payment back is its own event)",
            rest.trim()
        ));
    }
    if let Some(symbol) = t.chars().next().filter(|c| "€£¥₹".contains(*c)) {
        let code = match symbol {
            '€' => "EUR",
            '£' => "GBP",
            '¥' => "JPY",
            _ => "INR",
        };
        let rest = t[symbol.len_utf8()..].trim();
        return Err(format!(
            "invalid amount {s:?}: only $ stands for a currency (USD); write {:?}",
            format!("{rest} {code}")
        ));
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    let lower_code = |w: &str| {
        w.len() == 3
            && w.chars().all(|c| c.is_ascii_alphabetic())
            && w.chars().any(|c| c.is_ascii_lowercase())
    };
    let code = match words.as_slice() {
        [a, b] if lower_code(a) && parse_scaled(b).is_ok() => Some(*a),
        [a, b] if lower_code(b) && parse_scaled(a).is_ok() => Some(*b),
        _ => None,
    };
    if let Some(code) = code {
        let upper = code.to_ascii_uppercase();
        if Currency::parse(&upper).is_ok() {
            return Err(format!(
                "invalid amount {s:?}: currency codes are upper case; did you mean {:?}?",
                t.replace(code, &upper)
            ));
        }
    }
    if let (Some(rest), [_, last]) = (t.strip_prefix('$'), words.as_slice()) {
        if Currency::parse(last).is_ok() {
            let number = rest.trim().trim_end_matches(last).trim();
            return Err(format!(
                "invalid amount {s:?}: $ already means USD; write \"${number}\" or \"{number} {last}\""
            ));
        }
    }
    let (number, currency) = if let Some(rest) = t.strip_prefix('$') {
        (rest.trim(), "USD".to_string())
    } else {
        let parts: Vec<&str> = t.split_whitespace().collect();
        match parts.as_slice() {
            [a, b] if Currency::parse(a).is_ok() => (*b, a.to_string()),
            [a, b] if Currency::parse(b).is_ok() => (*a, b.to_string()),
            [one] if parse_scaled(one).is_ok() => {
                return Err(format!(
                    "amount {s:?} has no currency: write e.g. \"{one} USD\" or \"${one}\""
                ))
            }
            [one] => {
                let letters: String = one.chars().take_while(char::is_ascii_alphabetic).collect();
                let number = &one[letters.len()..];
                if letters.len() == 3 && parse_scaled(number).is_ok() {
                    return Err(format!(
                        "invalid amount {s:?}: put a space between the currency and the number, e.g. \"{letters} {number}\""
                    ));
                }
                return Err(bad());
            }
            _ => return Err(bad()),
        }
    };
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits > 28 {
        return Err(format!(
            "invalid amount {s:?}: {digits} digits, more than the 28 significant digits an exact amount can hold"
        ));
    }
    let amount = parse_scaled(number).map_err(|e| if e.contains("commas") { e } else { bad() })?;
    let currency = Currency::parse(&currency)?;
    Ok((amount, currency))
}

/// Groups the integer part of a decimal string by thousands: `1234567.5`
/// becomes `1,234,567.5`.
pub fn group_thousands(s: &str) -> String {
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_forms() {
        let usd = |s| parse_money(s).map(|(a, c)| format!("{a} {c}"));
        assert_eq!(usd("13.8B USD").unwrap(), "13800000000 USD");
        assert_eq!(usd("USD 13.8B").unwrap(), "13800000000 USD");
        assert_eq!(usd("$13.8B").unwrap(), "13800000000 USD");
        assert_eq!(usd("$250B").unwrap(), "250000000000 USD");
        assert_eq!(usd("250000000000 USD").unwrap(), "250000000000 USD");
        assert_eq!(usd("1.5K EUR").unwrap(), "1500 EUR");
        assert!(usd("13.8B").unwrap_err().contains("no currency"));
        assert!(usd("13.8X USD").is_err());
        assert!(usd("1e9 USD").is_err());
        assert_eq!(usd("3,000,000 USD").unwrap(), "3000000 USD");
        assert_eq!(usd("$1,234.5").unwrap(), "1234.5 USD");
        assert!(usd("3,00,000 USD").unwrap_err().contains("group thousands"));
        // The input is never pasted into a suggestion it does not fit.
        for bad in ["-$5M", "€5M", "foo"] {
            let e = usd(bad).unwrap_err();
            assert!(!e.contains(&format!("\"{bad} USD\"")), "{e}");
        }
        assert!(usd("USD1000").unwrap_err().contains("\"USD 1000\""));
    }

    #[test]
    fn amount_slips_get_their_own_answer() {
        let e = |s: &str| parse_money(s).unwrap_err();
        assert!(
            e("5M usd").contains("did you mean \"5M USD\""),
            "{}",
            e("5M usd")
        );
        assert!(e("$5M USD").contains("$ already means USD"));
        assert!(e("€5M").contains("write \"5M EUR\""));
        assert!(e("-$5M").contains("strictly positive"));
        assert!(e("12345678901234567890123456789 USD").contains("28 significant digits"));
        assert!(e("foo").starts_with("invalid amount \"foo\": write e.g."));
        assert_eq!(parse_money("$5M").unwrap().0.to_string(), "5000000");
    }

    #[test]
    fn thousands() {
        assert_eq!(group_thousands("135000000000"), "135,000,000,000");
        assert_eq!(group_thousands("-1234.56"), "-1,234.56");
        assert_eq!(group_thousands("999"), "999");
    }
}
