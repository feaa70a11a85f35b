//! Money for every service: one type for an exact amount in one currency, so amounts are never
//! floats, never lose or invent a fen in arithmetic, and are written the same way everywhere
//! (database, events, gRPC, JSON).
//!
//! - [`Currency`]: an ISO 4217 code with its minor unit (CNY 2, JPY 0, KWD 3) from a built-in
//!   table of the currencies in circulation. Codes are upper case only; unknown codes, fund
//!   codes, precious metals and test codes are refused ([`Currency::from_code`]).
//! - [`Money`]: a [`Decimal`] amount that always has exactly its currency's number of decimal
//!   places. Parsing refuses what it would have to round (`"1.005"` CNY, `"100.5"` JPY), and
//!   any text that is not a plain decimal (`+1`, `1e3`, `1,000`); see [`Money::parse`].
//! - Arithmetic: [`checked_add`](Money::checked_add) / [`checked_sub`](Money::checked_sub) only
//!   within one currency and never overflowing silently; [`checked_mul`](Money::checked_mul) by
//!   a quantity or rate rounds once, exactly, with **banker's rounding (half-even)**;
//!   [`mul_rounded`](Money::mul_rounded) and [`from_decimal_rounded`](Money::from_decimal_rounded)
//!   take another [`Rounding`] (e.g. [`Rounding::HalfUp`], 四舍五入) where a rule prescribes it.
//! - Allocation: [`split`](Money::split) into N parts and [`allocate`](Money::allocate) by
//!   ratios, for payment plans (回款) and shared costs; the parts always sum to the whole.
//! - Text: [`Money::amount_string`] is the canonical amount (`"12.30"`, `"100"` for JPY); the
//!   `Display` form adds the code (`"12.30 CNY"`) and `FromStr` reads it back.
//! - Wire: serde as `{ "amount": "12.30", "currency": "CNY" }` (the amount a string, never a JSON
//!   number), and `From`/`TryFrom` for the `crm.common.v1.Money` proto message.
//!
//! All errors are one [`MoneyError`], whose messages name the problem and are safe to show to a
//! client.
//!
//! ```
//! use crm_money::{Currency, Decimal, Money, Rounding};
//!
//! let price = Money::parse("19.99", Currency::CNY)?;
//! let total = price.checked_mul(Decimal::from(3))?; // 59.97
//! let vat = total.checked_mul(Decimal::new(13, 2))?; // 7.7961 → 7.80 (half-even)
//! assert_eq!(total.checked_add(vat)?.to_string(), "67.77 CNY");
//!
//! // Half-even by default, other roundings on request.
//! let round = |r| Money::from_decimal_rounded(Decimal::new(2345, 3), Currency::CNY, r);
//! assert_eq!(round(Rounding::HalfEven)?.amount_string(), "2.34"); // 2.345
//! assert_eq!(round(Rounding::HalfUp)?.amount_string(), "2.35");
//!
//! // What a currency cannot hold is refused, not rounded.
//! assert!(Money::parse("1.005", Currency::CNY).is_err());
//! assert!(Money::parse("100.5", Currency::JPY).is_err());
//!
//! // Instalments that always add up.
//! let plan = Money::parse("100.00", Currency::CNY)?.split(3)?;
//! let plan: Vec<String> = plan.iter().map(|m| m.amount_string()).collect();
//! assert_eq!(plan, ["33.34", "33.33", "33.33"]);
//! # Ok::<(), crm_money::MoneyError>(())
//! ```

mod allocate;
mod currency;
mod error;
mod money;
mod proto;
mod rounding;
mod serde_impl;

pub use currency::Currency;
pub use error::MoneyError;
pub use money::{MAX_MINOR_UNITS, Money};
pub use rounding::Rounding;
/// The decimal type of amounts, factors and ratios (re-exported, so callers need no version of
/// their own).
pub use rust_decimal::Decimal;
