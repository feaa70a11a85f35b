//! JSON (and any serde format): `{ "amount": "12.30", "currency": "CNY" }`.
//!
//! The amount is a string, never a JSON number: most JSON parsers read numbers into binary
//! floats (JavaScript always does), where 0.1 + 0.2 ≠ 0.3 and amounts above 2^53 lose digits.
//! It is the canonical amount of [`Money::amount_string`], and reading applies the rules of
//! [`Money::parse`]; a number, an unknown field or a lower-case code is an error.

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Currency, Money};

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Money", 2)?;
        s.serialize_field("amount", &self.amount_string())?;
        s.serialize_field("currency", &self.currency())?;
        s.end()
    }
}

#[derive(Deserialize)]
#[serde(rename = "Money", deny_unknown_fields)]
struct Wire {
    amount: String,
    currency: Currency,
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Money::parse(&wire.amount, wire.currency).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::money::tests::Lcg;

    #[test]
    fn amount_is_a_string_with_the_currency_scale() {
        let m = Money::parse("12.3", Currency::CNY).unwrap();
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            json!({ "amount": "12.30", "currency": "CNY" })
        );
        assert_eq!(
            serde_json::to_string(&Money::parse("100", Currency::JPY).unwrap()).unwrap(),
            r#"{"amount":"100","currency":"JPY"}"#
        );
        assert_eq!(
            serde_json::to_value(Money::parse("-1.5", Currency::KWD).unwrap()).unwrap(),
            json!({ "amount": "-1.500", "currency": "KWD" })
        );
    }

    #[test]
    fn reading_applies_the_parse_rules() {
        let read = |v: serde_json::Value| serde_json::from_value::<Money>(v);
        assert_eq!(
            read(json!({ "amount": "12.3", "currency": "CNY" })).unwrap(),
            Money::parse("12.30", Currency::CNY).unwrap()
        );
        assert_eq!(
            read(json!({ "currency": "JPY", "amount": "100" }))
                .unwrap()
                .amount_string(),
            "100"
        );
        let error = |v: serde_json::Value| read(v).unwrap_err().to_string();
        assert!(error(json!({ "amount": 12.3, "currency": "CNY" })).contains("expected a string"));
        assert!(error(json!({ "amount": 12, "currency": "CNY" })).contains("expected a string"));
        assert_eq!(
            error(json!({ "amount": "1.005", "currency": "CNY" })),
            "amount \"1.005\": CNY allows at most 2 decimal places, found 3"
        );
        assert_eq!(
            error(json!({ "amount": "100.5", "currency": "JPY" })),
            "amount \"100.5\": JPY allows at most 0 decimal places, found 1"
        );
        assert!(error(json!({ "amount": "1.00", "currency": "cny" })).contains("upper-case"));
        assert!(error(json!({ "amount": "1.00", "currency": "XYZ" })).contains("unknown currency"));
        assert!(error(json!({ "amount": "1.00" })).contains("missing field `currency`"));
        assert!(
            error(json!({ "amount": "1.00", "currency": "CNY", "x": 1 })).contains("unknown field")
        );
        assert!(error(json!("1.00 CNY")).contains("invalid type"));
    }

    #[test]
    fn round_trip_over_many_values() {
        let mut rng = Lcg(1);
        for currency in [Currency::CNY, Currency::JPY, Currency::KWD, Currency::EUR] {
            for _ in 0..2_000 {
                let m = Money::from_minor_units(rng.units(), currency).unwrap();
                let text = serde_json::to_string(&m).unwrap();
                assert_eq!(serde_json::from_str::<Money>(&text).unwrap(), m, "{text}");
            }
        }
    }
}
