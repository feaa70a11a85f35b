//! [`Money`]: an exact amount in one currency.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Neg;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::Currency;
use crate::error::{MoneyError, excerpt};
use crate::rounding::{Rounding, mul_div_pow10};

/// The largest magnitude of an amount, in minor units (fen, cents, yen): 2^96 − 1, the largest
/// [`Decimal`] mantissa. 79 228 162 514 264 337 593 543 950 335 — far beyond any real amount,
/// so hitting it means a bug or hostile input, and it is refused, never wrapped or saturated.
pub const MAX_MINOR_UNITS: u128 = (1 << 96) - 1;

/// An exact amount of money in one currency, always with exactly the currency's minor unit as
/// its number of decimal places (CNY 12.30, JPY 100, KWD 1.250).
///
/// Ways in, each refusing what it cannot represent exactly instead of rounding silently:
/// [`Money::parse`] (text), [`Money::new`] (a [`Decimal`]), [`Money::from_minor_units`]
/// (integer fen/cents); [`Money::from_decimal_rounded`] and [`Money::checked_mul`] round, and
/// say how.
///
/// Amounts of different currencies never mix: [`checked_add`](Money::checked_add),
/// [`checked_sub`](Money::checked_sub) and [`try_cmp`](Money::try_cmp) return
/// [`MoneyError::CurrencyMismatch`]. There is deliberately no `PartialOrd` (it would answer
/// "not less" for CNY vs USD) and no `+` operator (it could only panic on overflow).
/// `==` is true only for the same amount in the same currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    // Invariant: amount.scale() == currency.exponent(), so amount.mantissa() is the amount in
    // minor units; never negative zero.
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money {
            amount: Decimal::new(0, currency.exponent()),
            currency,
        }
    }

    /// Parses an amount in major units (yuan, dollars, yen) written as a plain decimal:
    /// `-?[0-9]+(\.[0-9]+)?`, the format of `crm.common.v1.Money.amount`.
    ///
    /// - At most `currency.exponent()` fraction digits: `"1.005"` CNY and `"100.5"` JPY are
    ///   [`MoneyError::TooManyDecimals`], never rounded; so is `"100.0"` JPY (digits are counted
    ///   as written, so a client that sends more digits than the currency has is told so).
    ///   Fewer are fine: `"12.3"` CNY is 12.30.
    /// - A leading `-` for negative amounts; `"-0"` is zero. No `+`: positive amounts have no
    ///   sign, so there is one spelling of each amount.
    /// - No exponent (`1e3`), no digit group separators (`1,234.50`), no whitespace, no `.5` or
    ///   `5.`. Leading zeros are accepted (`007.50` is 7.50); output never has them.
    /// - Beyond [`MAX_MINOR_UNITS`] is [`MoneyError::OutOfRange`].
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        let invalid = |reason: &'static str| MoneyError::InvalidAmount {
            input: excerpt(amount),
            reason,
        };
        if amount.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(c) = amount.chars().find(|c| !matches!(c, '0'..='9' | '.' | '-')) {
            return Err(invalid(match c {
                '+' => "a '+' sign is not allowed (positive amounts have no sign)",
                'e' | 'E' => "exponent notation is not allowed",
                ',' | '_' | '\'' | '，' => "digit group separators are not allowed",
                c if c.is_whitespace() => "whitespace is not allowed",
                _ => "only digits, one '.' and a leading '-' are allowed",
            }));
        }
        let (negative, body) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        if body.contains('-') {
            return Err(invalid("a '-' is allowed only at the start"));
        }
        if body.is_empty() {
            return Err(invalid("it has no digits"));
        }
        let (int, frac) = match body.split_once('.') {
            Some((_, frac)) if frac.contains('.') => {
                return Err(invalid("it has more than one '.'"));
            }
            Some((int, frac)) => (int, Some(frac)),
            None => (body, None),
        };
        if int.is_empty() {
            return Err(invalid("a digit is required before the '.'"));
        }
        if frac == Some("") {
            return Err(invalid("a digit is required after the '.'"));
        }
        let frac = frac.unwrap_or("");
        let found = u32::try_from(frac.len()).unwrap_or(u32::MAX);
        let allowed = currency.exponent();
        if found > allowed {
            return Err(MoneyError::TooManyDecimals {
                input: excerpt(amount),
                currency,
                found,
                allowed,
            });
        }
        let padding = std::iter::repeat_n(b'0', (allowed - found) as usize);
        let mut units: u128 = 0;
        for digit in int.bytes().chain(frac.bytes()).chain(padding) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u128::from(digit - b'0')))
                .filter(|u| *u <= MAX_MINOR_UNITS)
                .ok_or(MoneyError::OutOfRange { currency })?;
        }
        Money::from_magnitude(units, negative, currency)
    }

    /// `amount` exactly: a value with more decimal places than the currency has is
    /// [`MoneyError::TooManyDecimals`]. Here the value counts, not how it is written:
    /// `Decimal` 1.2300 is fine for CNY (it is 1.23), 1.235 is not.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let found = amount.normalize().scale();
        if found > currency.exponent() {
            return Err(MoneyError::TooManyDecimals {
                input: amount.to_string(),
                currency,
                found,
                allowed: currency.exponent(),
            });
        }
        Money::from_decimal_rounded(amount, currency, Rounding::HalfEven)
    }

    /// `amount` rounded to the currency's minor unit by `rounding`, e.g. a tax computed with
    /// more precision: 2.345 CNY is 2.34 with [`Rounding::HalfEven`], 2.35 with
    /// [`Rounding::HalfUp`].
    pub fn from_decimal_rounded(
        amount: Decimal,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Money, MoneyError> {
        let negative = amount.is_sign_negative();
        let units = mul_div_pow10(
            amount.mantissa().unsigned_abs(),
            10u128.pow(currency.exponent()),
            amount.scale(),
            negative,
            rounding,
        )
        .ok_or(MoneyError::OutOfRange { currency })?;
        Money::from_magnitude(units, negative, currency)
    }

    /// An amount given in minor units: 1230 CNY minor units is 12.30 CNY (fen, as payment
    /// providers count), 100 JPY is 100 yen.
    pub fn from_minor_units(units: i128, currency: Currency) -> Result<Money, MoneyError> {
        Money::from_magnitude(units.unsigned_abs(), units < 0, currency)
    }

    fn from_magnitude(
        magnitude: u128,
        negative: bool,
        currency: Currency,
    ) -> Result<Money, MoneyError> {
        if magnitude > MAX_MINOR_UNITS {
            return Err(MoneyError::OutOfRange { currency });
        }
        // In range, so the cast cannot wrap; -0 is 0.
        let units = if negative {
            -(magnitude as i128)
        } else {
            magnitude as i128
        };
        let amount = Decimal::try_from_i128_with_scale(units, currency.exponent())
            .map_err(|_| MoneyError::OutOfRange { currency })?;
        Ok(Money { amount, currency })
    }

    /// The amount in major units, with exactly the currency's decimal places.
    pub fn amount(self) -> Decimal {
        self.amount
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The amount in minor units: 12.30 CNY is 1230.
    pub fn minor_units(self) -> i128 {
        self.amount.mantissa()
    }

    /// The canonical amount text, with exactly the currency's decimal places: `"12.30"`,
    /// `"100"` (JPY), `"-1.250"` (KWD); never `"-0"`. What serde and the proto message carry,
    /// and what [`Money::parse`] reads back to the same value.
    pub fn amount_string(self) -> String {
        let mut out = String::new();
        self.write_amount(&mut out).expect("writing to a String");
        out
    }

    fn write_amount(self, out: &mut impl fmt::Write) -> fmt::Result {
        let units = self.minor_units();
        if units < 0 {
            out.write_char('-')?;
        }
        let magnitude = units.unsigned_abs();
        let exponent = self.currency.exponent();
        if exponent == 0 {
            write!(out, "{magnitude}")
        } else {
            let unit = 10u128.pow(exponent);
            write!(
                out,
                "{}.{:0width$}",
                magnitude / unit,
                magnitude % unit,
                width = exponent as usize
            )
        }
    }

    pub fn is_zero(self) -> bool {
        self.minor_units() == 0
    }

    pub fn is_positive(self) -> bool {
        self.minor_units() > 0
    }

    pub fn is_negative(self) -> bool {
        self.minor_units() < 0
    }

    pub fn abs(self) -> Money {
        if self.is_negative() { -self } else { self }
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`, exact; a different currency is [`MoneyError::CurrencyMismatch`], a sum
    /// beyond [`MAX_MINOR_UNITS`] is [`MoneyError::OutOfRange`].
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        // Both are within ±(2^96 - 1): their sum cannot overflow an i128.
        Money::from_minor_units(self.minor_units() + other.minor_units(), self.currency)
    }

    /// `self - other`, exact; errors as [`checked_add`](Money::checked_add).
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Money::from_minor_units(self.minor_units() - other.minor_units(), self.currency)
    }

    /// Compares two amounts of the same currency; a different currency is
    /// [`MoneyError::CurrencyMismatch`].
    pub fn try_cmp(self, other: Money) -> Result<Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.minor_units().cmp(&other.minor_units()))
    }

    /// The sum of `items`, all in `currency` (zero if there are none).
    pub fn sum(
        currency: Currency,
        items: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// `self × factor` (a quantity, a price ratio, a tax or exchange rate), rounded to the
    /// currency's minor unit with **banker's rounding** ([`Rounding::HalfEven`]): 1.00 CNY ×
    /// 2.345 is 2.34, × 2.355 is 2.36. The product is computed exactly before its one rounding,
    /// whatever the factor's precision. For a rule that prescribes another rounding, use
    /// [`mul_rounded`](Money::mul_rounded).
    pub fn checked_mul(self, factor: Decimal) -> Result<Money, MoneyError> {
        self.mul_rounded(factor, Rounding::HalfEven)
    }

    /// `self × factor`, rounded to the currency's minor unit by `rounding`.
    pub fn mul_rounded(self, factor: Decimal, rounding: Rounding) -> Result<Money, MoneyError> {
        let negative = self.is_negative() != factor.is_sign_negative();
        let units = mul_div_pow10(
            self.minor_units().unsigned_abs(),
            factor.mantissa().unsigned_abs(),
            factor.scale(),
            negative,
            rounding,
        )
        .ok_or(MoneyError::OutOfRange {
            currency: self.currency,
        })?;
        Money::from_magnitude(units, negative, self.currency)
    }
}

/// Negation is exact: the range is symmetric.
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money {
            amount: Decimal::from_i128_with_scale(-self.minor_units(), self.currency.exponent()),
            currency: self.currency,
        }
    }
}

/// `12.30 CNY`: the canonical amount, one space, the code. [`FromStr`] reads it back.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_amount(f)?;
        write!(f, " {}", self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

/// Reads what [`Display`](fmt::Display) writes: an amount as [`Money::parse`] takes it, one
/// space, a currency code (`"12.30 CNY"`).
impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (amount, code) = s.split_once(' ').ok_or_else(|| MoneyError::InvalidAmount {
            input: excerpt(s),
            reason: "expected an amount, one space and a currency code, e.g. \"12.30 CNY\"",
        })?;
        Money::parse(amount, Currency::from_code(code)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn cny(s: &str) -> Money {
        Money::parse(s, Currency::CNY).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn parse_and_display_use_the_currency_scale() {
        assert_eq!(cny("12.3").amount_string(), "12.30");
        assert_eq!(cny("12.30").amount_string(), "12.30");
        assert_eq!(cny("12").amount_string(), "12.00");
        assert_eq!(cny("0.05").minor_units(), 5);
        assert_eq!(cny("-7.5").amount_string(), "-7.50");
        assert_eq!(cny("007.50").amount_string(), "7.50");
        assert_eq!(cny("12.3").to_string(), "12.30 CNY");

        let yen = Money::parse("100", Currency::JPY).unwrap();
        assert_eq!(yen.amount_string(), "100");
        assert_eq!(yen.minor_units(), 100);
        assert_eq!(yen.to_string(), "100 JPY");

        let kwd = Money::parse("1.25", Currency::KWD).unwrap();
        assert_eq!(kwd.amount_string(), "1.250");
        assert_eq!(kwd.minor_units(), 1250);
        assert_eq!(
            Money::parse("-0.001", Currency::KWD)
                .unwrap()
                .amount_string(),
            "-0.001"
        );

        // The Decimal carries the currency's scale too.
        assert_eq!(cny("12.3").amount().scale(), 2);
        assert_eq!(cny("12.3").amount().to_string(), "12.30");
    }

    #[test]
    fn negative_zero_is_zero() {
        for s in ["-0", "-0.00", "0", "0.0"] {
            let m = cny(s);
            assert_eq!(m, Money::zero(Currency::CNY));
            assert_eq!(m.amount_string(), "0.00");
            assert!(m.is_zero() && !m.is_negative() && !m.is_positive());
        }
        assert_eq!((-Money::zero(Currency::JPY)).amount_string(), "0");
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_refused() {
        assert_eq!(
            Money::parse("1.005", Currency::CNY),
            Err(MoneyError::TooManyDecimals {
                input: "1.005".into(),
                currency: Currency::CNY,
                found: 3,
                allowed: 2
            })
        );
        assert_eq!(
            Money::parse("1.005", Currency::CNY)
                .unwrap_err()
                .to_string(),
            "amount \"1.005\": CNY allows at most 2 decimal places, found 3"
        );
        assert!(matches!(
            Money::parse("100.5", Currency::JPY),
            Err(MoneyError::TooManyDecimals {
                found: 1,
                allowed: 0,
                ..
            })
        ));
        // Digits are counted as written.
        assert!(matches!(
            Money::parse("100.0", Currency::JPY),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse("1.2300", Currency::CNY),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(Money::parse("1.2345", Currency::KWD).is_err());
        assert!(Money::parse("1.234", Currency::KWD).is_ok());
    }

    #[test]
    fn malformed_amounts_are_refused_with_a_reason() {
        let reason = |s: &str| match Money::parse(s, Currency::CNY) {
            Err(MoneyError::InvalidAmount { reason, .. }) => reason,
            other => panic!("{s:?}: {other:?}"),
        };
        assert_eq!(reason(""), "it is empty");
        assert_eq!(
            reason("+1.00"),
            "a '+' sign is not allowed (positive amounts have no sign)"
        );
        assert_eq!(reason("1e3"), "exponent notation is not allowed");
        assert_eq!(reason("1E3"), "exponent notation is not allowed");
        assert_eq!(reason("1,234.50"), "digit group separators are not allowed");
        assert_eq!(reason("1_234"), "digit group separators are not allowed");
        assert_eq!(reason("1'234"), "digit group separators are not allowed");
        assert_eq!(reason(" 1.00"), "whitespace is not allowed");
        assert_eq!(reason("1.00\n"), "whitespace is not allowed");
        assert_eq!(reason("1 234"), "whitespace is not allowed");
        assert_eq!(reason(".5"), "a digit is required before the '.'");
        assert_eq!(reason("-.5"), "a digit is required before the '.'");
        assert_eq!(reason("5."), "a digit is required after the '.'");
        assert_eq!(reason("1.2.3"), "it has more than one '.'");
        assert_eq!(reason("-"), "it has no digits");
        assert_eq!(reason("--1"), "a '-' is allowed only at the start");
        assert_eq!(reason("1-"), "a '-' is allowed only at the start");
        for s in ["NaN", "inf", "¥1", "１２", "0x10", "1.0f"] {
            assert_eq!(
                reason(s),
                "only digits, one '.' and a leading '-' are allowed",
                "{s}"
            );
        }
        assert_eq!(
            Money::parse("1e3", Currency::CNY).unwrap_err().to_string(),
            "amount \"1e3\" is not a plain decimal: exponent notation is not allowed"
        );
        // Long input is shortened in the message.
        let long = "9".repeat(500) + "x";
        let message = Money::parse(&long, Currency::CNY).unwrap_err().to_string();
        assert!(message.len() < 150, "{message}");
    }

    #[test]
    fn overflow_is_refused() {
        let max = MAX_MINOR_UNITS.to_string(); // 79228162514264337593543950335
        let yen = Money::parse(&max, Currency::JPY).unwrap();
        assert_eq!(yen.minor_units() as u128, MAX_MINOR_UNITS);
        assert_eq!(
            Money::parse(&format!("-{max}"), Currency::JPY)
                .unwrap()
                .amount_string(),
            format!("-{max}")
        );
        assert_eq!(
            Money::parse("79228162514264337593543950336", Currency::JPY),
            Err(MoneyError::OutOfRange {
                currency: Currency::JPY
            })
        );
        // The same digits are 100× more minor units in CNY.
        assert!(matches!(
            Money::parse(&max, Currency::CNY),
            Err(MoneyError::OutOfRange { .. })
        ));
        assert!(Money::parse("792281625142643375935439503.35", Currency::CNY).is_ok());
        assert!(Money::parse("792281625142643375935439503.36", Currency::CNY).is_err());
        assert!(Money::parse(&"9".repeat(100), Currency::CNY).is_err());
        // Leading zeros do not count towards the range.
        assert!(Money::parse(&format!("{}1", "0".repeat(100)), Currency::CNY).is_ok());

        let one = Money::from_minor_units(1, Currency::JPY).unwrap();
        assert!(matches!(
            yen.checked_add(one),
            Err(MoneyError::OutOfRange { .. })
        ));
        assert!(matches!(
            (-yen).checked_sub(one),
            Err(MoneyError::OutOfRange { .. })
        ));
        assert!(matches!(
            yen.checked_mul(dec("1.0000000001")),
            Err(MoneyError::OutOfRange { .. })
        ));
        assert_eq!(yen.checked_mul(dec("1.0000000000")), Ok(yen));
        assert!(Money::from_minor_units(MAX_MINOR_UNITS as i128 + 1, Currency::JPY).is_err());
        assert!(Money::from_minor_units(i128::MIN, Currency::JPY).is_err());
        assert!(Money::new(Decimal::MAX, Currency::CNY).is_err());
        assert!(Money::new(Decimal::MAX, Currency::JPY).is_ok());
    }

    #[test]
    fn from_str_reads_display() {
        let m: Money = "12.30 CNY".parse().unwrap();
        assert_eq!(m, cny("12.3"));
        assert_eq!("-1.250 KWD".parse::<Money>().unwrap().minor_units(), -1250);
        assert!(matches!(
            "12.30".parse::<Money>(),
            Err(MoneyError::InvalidAmount { .. })
        ));
        assert!(matches!(
            "12.30 cny".parse::<Money>(),
            Err(MoneyError::MalformedCurrencyCode(_))
        ));
        assert!(matches!(
            "12.30 XYZ".parse::<Money>(),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert_eq!(format!("{:?}", cny("1")), "Money(1.00 CNY)");
    }

    #[test]
    fn new_is_exact_by_value() {
        assert_eq!(Money::new(dec("1.2300"), Currency::CNY), Ok(cny("1.23")));
        assert_eq!(
            Money::new(dec("5"), Currency::CNY).unwrap().amount_string(),
            "5.00"
        );
        assert_eq!(
            Money::new(dec("1.005"), Currency::CNY),
            Err(MoneyError::TooManyDecimals {
                input: "1.005".into(),
                currency: Currency::CNY,
                found: 3,
                allowed: 2
            })
        );
        assert!(Money::new(dec("100.5"), Currency::JPY).is_err());
        assert_eq!(
            Money::new(dec("100.0"), Currency::JPY)
                .unwrap()
                .amount_string(),
            "100"
        );
        assert_eq!(
            Money::new(dec("-0.00"), Currency::CNY)
                .unwrap()
                .amount_string(),
            "0.00"
        );
    }

    #[test]
    fn rounding_is_half_even_by_default() {
        let round = |s: &str| {
            Money::from_decimal_rounded(dec(s), Currency::CNY, Rounding::default())
                .unwrap()
                .amount_string()
        };
        assert_eq!(round("2.345"), "2.34");
        assert_eq!(round("2.355"), "2.36");
        assert_eq!(round("-2.345"), "-2.34");
        assert_eq!(round("-2.355"), "-2.36");
        assert_eq!(round("2.3450000001"), "2.35");
        assert_eq!(round("2.3449999999"), "2.34");
        assert_eq!(round("0.005"), "0.00");
        assert_eq!(round("0.015"), "0.02");
        assert_eq!(round("-0.004"), "0.00");
        assert_eq!(round("2.34"), "2.34");

        let yen = |s: &str| {
            Money::from_decimal_rounded(dec(s), Currency::JPY, Rounding::HalfEven)
                .unwrap()
                .amount_string()
        };
        assert_eq!(yen("100.5"), "100");
        assert_eq!(yen("101.5"), "102");
        assert_eq!(yen("-100.5"), "-100");

        let kwd = |s: &str| {
            Money::from_decimal_rounded(dec(s), Currency::KWD, Rounding::HalfEven)
                .unwrap()
                .amount_string()
        };
        assert_eq!(kwd("1.2345"), "1.234");
        assert_eq!(kwd("1.2355"), "1.236");
    }

    #[test]
    fn other_roundings_on_request() {
        let round = |s: &str, r: Rounding| {
            Money::from_decimal_rounded(dec(s), Currency::CNY, r)
                .unwrap()
                .amount_string()
        };
        assert_eq!(round("2.345", Rounding::HalfUp), "2.35");
        assert_eq!(round("-2.345", Rounding::HalfUp), "-2.35");
        assert_eq!(round("2.344", Rounding::HalfUp), "2.34");
        assert_eq!(round("2.345", Rounding::HalfDown), "2.34");
        assert_eq!(round("2.3451", Rounding::HalfDown), "2.35");
        assert_eq!(round("2.349", Rounding::TowardZero), "2.34");
        assert_eq!(round("-2.349", Rounding::TowardZero), "-2.34");
        assert_eq!(round("2.341", Rounding::AwayFromZero), "2.35");
        assert_eq!(round("-2.341", Rounding::AwayFromZero), "-2.35");
        assert_eq!(round("-2.341", Rounding::Floor), "-2.35");
        assert_eq!(round("2.349", Rounding::Floor), "2.34");
        assert_eq!(round("2.341", Rounding::Ceiling), "2.35");
        assert_eq!(round("-2.349", Rounding::Ceiling), "-2.34");
    }

    #[test]
    fn multiplication_rounds_once_half_even() {
        let one = cny("1.00");
        assert_eq!(
            one.checked_mul(dec("2.345")).unwrap().amount_string(),
            "2.34"
        );
        assert_eq!(
            one.checked_mul(dec("2.355")).unwrap().amount_string(),
            "2.36"
        );
        assert_eq!(
            one.checked_mul(dec("-2.345")).unwrap().amount_string(),
            "-2.34"
        );
        assert_eq!(
            (-one).checked_mul(dec("2.345")).unwrap().amount_string(),
            "-2.34"
        );
        assert_eq!(
            (-one).checked_mul(dec("-2.345")).unwrap().amount_string(),
            "2.34"
        );
        assert_eq!(
            cny("0.05").checked_mul(dec("0.5")).unwrap().amount_string(),
            "0.02"
        );
        assert_eq!(
            cny("0.15").checked_mul(dec("0.5")).unwrap().amount_string(),
            "0.08"
        );
        // 13 % VAT on 99.99: 12.9987 → 13.00
        assert_eq!(
            cny("99.99")
                .checked_mul(dec("0.13"))
                .unwrap()
                .amount_string(),
            "13.00"
        );
        // Quantity × unit price.
        assert_eq!(
            cny("19.99").checked_mul(dec("3")).unwrap().amount_string(),
            "59.97"
        );
        assert_eq!(
            cny("2.50")
                .mul_rounded(dec("0.125"), Rounding::HalfUp)
                .unwrap()
                .amount_string(),
            "0.31"
        );
        assert_eq!(
            cny("2.50")
                .checked_mul(dec("0.125"))
                .unwrap()
                .amount_string(),
            "0.31"
        ); // 0.3125: not a tie
        assert_eq!(
            cny("2.00")
                .checked_mul(dec("0.1225"))
                .unwrap()
                .amount_string(),
            "0.24"
        ); // 0.245: tie → even
        assert_eq!(
            Money::parse("1000", Currency::JPY)
                .unwrap()
                .checked_mul(dec("0.0825"))
                .unwrap()
                .amount_string(),
            "82"
        ); // 82.5 → 82
        assert_eq!(
            cny("12.34").checked_mul(Decimal::ZERO),
            Ok(Money::zero(Currency::CNY))
        );
        assert_eq!(
            cny("12.34")
                .checked_mul(dec("-0.0"))
                .unwrap()
                .amount_string(),
            "0.00"
        );
    }

    #[test]
    fn multiplication_is_exact_beyond_128_bits() {
        // 10^18 CNY × a factor with 28 decimals: the intermediate product has ~160 bits.
        let big = cny("1000000000000000000");
        let factor = dec("1.2345678901234567890123456789");
        // Exactly 1234567890123456789.0123456789 → 1234567890123456789.01
        assert_eq!(
            big.checked_mul(factor).unwrap().amount_string(),
            "1234567890123456789.01"
        );
        // A tie at the 28th decimal place, exactly: 0.01 CNY × 0.5 = 0.005 → 0.00,
        // 0.03 × 0.5 = 0.015 → 0.02.
        assert_eq!(
            cny("0.01")
                .checked_mul(dec("0.5000000000000000000000000000"))
                .unwrap()
                .amount_string(),
            "0.00"
        );
        assert_eq!(
            cny("0.03")
                .checked_mul(dec("0.5000000000000000000000000000"))
                .unwrap()
                .amount_string(),
            "0.02"
        );
        // Just below a tie stays below.
        assert_eq!(
            cny("0.03")
                .checked_mul(dec("0.4999999999999999999999999999"))
                .unwrap()
                .amount_string(),
            "0.01"
        );
    }

    #[test]
    fn add_and_sub_need_one_currency() {
        let a = cny("10.10");
        let b = cny("0.95");
        assert_eq!(a.checked_add(b).unwrap().amount_string(), "11.05");
        assert_eq!(a.checked_sub(b).unwrap().amount_string(), "9.15");
        assert_eq!(b.checked_sub(a).unwrap().amount_string(), "-9.15");
        let usd = Money::parse("1.00", Currency::USD).unwrap();
        assert_eq!(
            a.checked_add(usd),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::CNY,
                right: Currency::USD
            })
        );
        assert_eq!(
            a.checked_sub(usd).unwrap_err().to_string(),
            "currency mismatch: CNY and USD amounts cannot be combined"
        );
        assert_eq!(a.try_cmp(b), Ok(Ordering::Greater));
        assert_eq!(b.try_cmp(a), Ok(Ordering::Less));
        assert_eq!(a.try_cmp(a), Ok(Ordering::Equal));
        assert!(a.try_cmp(usd).is_err());
        // Same number, different currency: not equal.
        assert_ne!(cny("1.00"), usd);

        assert_eq!(
            Money::sum(Currency::CNY, [a, b, -a])
                .unwrap()
                .amount_string(),
            "0.95"
        );
        assert_eq!(
            Money::sum(Currency::CNY, []),
            Ok(Money::zero(Currency::CNY))
        );
        assert!(Money::sum(Currency::USD, [a]).is_err());
        assert_eq!(cny("-3.20").abs(), cny("3.20"));
    }

    /// A small deterministic pseudo-random generator (64-bit LCG), so no proptest dependency.
    pub(crate) struct Lcg(pub u64);

    impl Lcg {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0
        }

        /// Amounts of every size: a random number of significant bits, a random sign.
        pub fn units(&mut self) -> i128 {
            let bits = self.next_u64() % 97;
            let raw = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
            let magnitude = if bits == 0 { 0 } else { raw >> (128 - bits) };
            let magnitude = magnitude.min(MAX_MINOR_UNITS) as i128;
            if self.next_u64().is_multiple_of(2) {
                magnitude
            } else {
                -magnitude
            }
        }
    }

    #[test]
    fn parse_of_display_is_identity_over_many_values() {
        let mut rng = Lcg(42);
        let currencies = [Currency::CNY, Currency::JPY, Currency::KWD, Currency::USD];
        for i in 0..20_000 {
            let currency = currencies[i % currencies.len()];
            let m = Money::from_minor_units(rng.units(), currency).unwrap();
            let text = m.amount_string();
            assert_eq!(Money::parse(&text, currency), Ok(m), "{text}");
            assert_eq!(m.to_string().parse::<Money>(), Ok(m));
            assert_eq!(Money::new(m.amount(), currency), Ok(m));
            // The canonical form has exactly the currency's decimals and no '+' or "-0".
            let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
            assert_eq!(decimals as u32, currency.exponent(), "{text}");
            assert_eq!(text.starts_with('-'), m.is_negative(), "{text}");
            assert_eq!(m.amount().to_string(), text);
        }
    }
}
