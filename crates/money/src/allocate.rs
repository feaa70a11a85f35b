//! Splitting an amount into parts without losing or inventing a minor unit: instalments of a
//! payment plan (回款计划), a discount spread over order lines, a cost shared by departments.

use std::cmp::Reverse;

use rust_decimal::Decimal;

use crate::rounding::mul_div_rem;
use crate::{Money, MoneyError};

impl Money {
    /// Splits into `parts` amounts that differ by at most one minor unit and always sum to
    /// exactly `self`. The leftover minor units go one each to the first parts, so a payment
    /// plan's first instalments carry the extra fen:
    /// 100.00 CNY in 3 is 33.34 + 33.33 + 33.33; 100 JPY in 3 is 34 + 33 + 33.
    /// A negative amount splits symmetrically (-100.00 → -33.34, -33.33, -33.33).
    ///
    /// The same as [`allocate`](Money::allocate) with `parts` equal ratios.
    pub fn split(self, parts: usize) -> Result<Vec<Money>, MoneyError> {
        if parts == 0 {
            return Err(MoneyError::InvalidAllocation(
                "cannot split into zero parts",
            ));
        }
        self.allocate_weights(&vec![1; parts])
    }

    /// Allocates in proportion to `ratios` (any non-negative weights: `[30, 40, 30]`,
    /// `[0.3, 0.4, 0.3]`, `[1, 2]`; they need not sum to 1 or 100), one part per ratio, in
    /// order. The parts always sum to exactly `self`.
    ///
    /// Rule (largest remainder, a.k.a. Hamilton's method): each part is first its exact share
    /// rounded toward zero to the minor unit; the few minor units this leaves over (fewer than
    /// the number of parts) go one each to the parts whose exact share had the largest
    /// remainder, the earlier part first on a tie. So every part is within one minor unit of its
    /// exact share, and a zero ratio always gets zero. The shares are computed exactly on
    /// integers, never with a rounded fraction.
    ///
    /// Errors ([`MoneyError::InvalidAllocation`]): no ratios, a negative ratio, all ratios zero,
    /// or ratios so far apart in scale that they cannot be put on one integer scale
    /// (e.g. 10^28 next to 10^-28).
    pub fn allocate(self, ratios: &[Decimal]) -> Result<Vec<Money>, MoneyError> {
        if ratios.is_empty() {
            return Err(MoneyError::InvalidAllocation("no ratios given"));
        }
        if ratios.iter().any(|r| r.is_sign_negative() && !r.is_zero()) {
            return Err(MoneyError::InvalidAllocation("ratios must not be negative"));
        }
        // Integer weights on one scale: 0.3, 0.45 → 30, 45.
        let ratios: Vec<Decimal> = ratios.iter().map(|r| r.normalize()).collect();
        let scale = ratios.iter().map(|r| r.scale()).max().unwrap_or(0);
        let weights = ratios
            .iter()
            .map(|r| {
                r.mantissa()
                    .unsigned_abs()
                    .checked_mul(10u128.pow(scale - r.scale()))
            })
            .collect::<Option<Vec<u128>>>()
            .ok_or(MoneyError::InvalidAllocation(
                "ratios are too far apart in scale to combine exactly",
            ))?;
        self.allocate_weights(&weights)
    }

    fn allocate_weights(self, weights: &[u128]) -> Result<Vec<Money>, MoneyError> {
        let total_weight = weights
            .iter()
            .try_fold(0u128, |sum, w| sum.checked_add(*w))
            .ok_or(MoneyError::InvalidAllocation(
                "the ratios' sum is too large to combine exactly",
            ))?;
        if total_weight == 0 {
            return Err(MoneyError::InvalidAllocation("ratios must not all be zero"));
        }
        let negative = self.is_negative();
        let total = self.minor_units().unsigned_abs();

        let mut shares = Vec::with_capacity(weights.len());
        let mut remainders = Vec::with_capacity(weights.len());
        for &w in weights {
            // w ≤ total_weight, so the quotient is at most `total`: it always fits.
            let (share, remainder) = mul_div_rem(total, w, total_weight)
                .expect("a share is never larger than the whole");
            shares.push(share);
            remainders.push(remainder);
        }
        // Less than weights.len(): the remainders are each < total_weight and sum to
        // leftover × total_weight.
        let leftover = total - shares.iter().sum::<u128>();
        let mut order: Vec<usize> = (0..weights.len()).collect();
        // Stable: equal remainders keep the earlier part first.
        order.sort_by_key(|&i| Reverse(remainders[i]));
        for &i in order.iter().take(leftover as usize) {
            shares[i] += 1;
        }
        shares
            .into_iter()
            .map(|units| {
                let units = units as i128; // ≤ total ≤ MAX_MINOR_UNITS
                Money::from_minor_units(if negative { -units } else { units }, self.currency())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use crate::money::tests::Lcg;

    fn cny(s: &str) -> Money {
        Money::parse(s, Currency::CNY).unwrap()
    }

    fn strings(parts: &[Money]) -> Vec<String> {
        parts.iter().map(|m| m.amount_string()).collect()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn split_gives_the_leftover_to_the_first_parts() {
        assert_eq!(
            strings(&cny("100.00").split(3).unwrap()),
            ["33.34", "33.33", "33.33"]
        );
        assert_eq!(
            strings(&cny("-100.00").split(3).unwrap()),
            ["-33.34", "-33.33", "-33.33"]
        );
        assert_eq!(
            strings(&cny("100.02").split(3).unwrap()),
            ["33.34", "33.34", "33.34"]
        );
        assert_eq!(
            strings(&cny("0.05").split(7).unwrap()),
            ["0.01", "0.01", "0.01", "0.01", "0.01", "0.00", "0.00"]
        );
        let yen = Money::parse("100", Currency::JPY).unwrap();
        assert_eq!(strings(&yen.split(3).unwrap()), ["34", "33", "33"]);
        let kwd = Money::parse("10", Currency::KWD).unwrap();
        assert_eq!(strings(&kwd.split(3).unwrap()), ["3.334", "3.333", "3.333"]);
        assert_eq!(strings(&cny("12.34").split(1).unwrap()), ["12.34"]);
        assert_eq!(
            strings(&Money::zero(Currency::CNY).split(2).unwrap()),
            ["0.00", "0.00"]
        );
        assert_eq!(
            cny("1.00").split(0),
            Err(MoneyError::InvalidAllocation(
                "cannot split into zero parts"
            ))
        );
    }

    #[test]
    fn allocate_by_ratios() {
        // A 回款 plan: 30 % on signing, 60 % on delivery, 10 % retention.
        let contract = cny("1000000.01");
        let plan = contract
            .allocate(&[dec("30"), dec("60"), dec("10")])
            .unwrap();
        assert_eq!(strings(&plan), ["300000.00", "600000.01", "100000.00"]);
        // Same plan as fractions: the same answer.
        assert_eq!(
            contract
                .allocate(&[dec("0.3"), dec("0.60"), dec("0.1")])
                .unwrap(),
            plan
        );
        assert_eq!(
            strings(
                &cny("100.00")
                    .allocate(&[dec("1"), dec("1"), dec("1")])
                    .unwrap()
            ),
            ["33.34", "33.33", "33.33"]
        );
        // 1/3 written with 28 decimals, and a large amount: still exact.
        let third = Decimal::ONE / Decimal::from(3);
        let big = cny("1000000000000.00");
        let parts = big.allocate(&[third, third, third]).unwrap();
        assert_eq!(
            strings(&parts),
            ["333333333333.34", "333333333333.33", "333333333333.33"]
        );
        // The largest remainder wins the leftover, not the first part: 0.10 by 1:2 is
        // 0.0333… + 0.0666… → 0.03 + 0.07.
        assert_eq!(
            strings(&cny("0.10").allocate(&[dec("1"), dec("2")]).unwrap()),
            ["0.03", "0.07"]
        );
        // A zero ratio gets zero.
        assert_eq!(
            strings(
                &cny("0.01")
                    .allocate(&[dec("1"), dec("0"), dec("2")])
                    .unwrap()
            ),
            ["0.00", "0.00", "0.01"]
        );
        assert_eq!(
            strings(&cny("-0.10").allocate(&[dec("1"), dec("2")]).unwrap()),
            ["-0.03", "-0.07"]
        );
    }

    #[test]
    fn impossible_allocations_are_refused() {
        let m = cny("1.00");
        assert_eq!(
            m.allocate(&[]),
            Err(MoneyError::InvalidAllocation("no ratios given"))
        );
        assert_eq!(
            m.allocate(&[dec("1"), dec("-1")]),
            Err(MoneyError::InvalidAllocation("ratios must not be negative"))
        );
        assert_eq!(
            m.allocate(&[dec("0"), dec("0.00")]),
            Err(MoneyError::InvalidAllocation("ratios must not all be zero"))
        );
        assert!(matches!(
            m.allocate(&[Decimal::MAX, dec("0.0000000000000000000000000001")]),
            Err(MoneyError::InvalidAllocation(_))
        ));
        // -0 is not negative.
        assert!(m.allocate(&[dec("-0"), dec("1")]).is_ok());
    }

    #[test]
    fn parts_always_sum_to_the_whole() {
        let mut rng = Lcg(7);
        let currencies = [Currency::CNY, Currency::JPY, Currency::KWD];
        for i in 0..3_000 {
            let whole =
                Money::from_minor_units(rng.units(), currencies[i % currencies.len()]).unwrap();

            let n = 1 + (rng.next_u64() % 13) as usize;
            let parts = whole.split(n).unwrap();
            assert_eq!(parts.len(), n);
            assert_eq!(
                Money::sum(whole.currency(), parts.iter().copied()),
                Ok(whole)
            );
            let min = parts.iter().map(|p| p.minor_units()).min().unwrap();
            let max = parts.iter().map(|p| p.minor_units()).max().unwrap();
            assert!(max - min <= 1, "{whole} / {n}: {parts:?}");

            // Random small weights, some zero; checked against plain u128 arithmetic.
            let weights: Vec<u64> = (0..n)
                .map(|_| match rng.next_u64() % 4 {
                    0 => 0,
                    _ => rng.next_u64() % 1_000_000,
                })
                .collect();
            if weights.iter().all(|w| *w == 0) {
                continue;
            }
            let ratios: Vec<Decimal> = weights.iter().map(|w| Decimal::new(*w as i64, 2)).collect();
            let parts = whole.allocate(&ratios).unwrap();
            assert_eq!(
                Money::sum(whole.currency(), parts.iter().copied()),
                Ok(whole)
            );
            let total = whole.minor_units().unsigned_abs();
            let weight_sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
            for (part, w) in parts.iter().zip(&weights) {
                // |part| is ⌊exact⌋ or ⌊exact⌋ + 1, with the sign of the whole.
                let floor = total * u128::from(*w) / weight_sum;
                let got = part.minor_units().unsigned_abs();
                assert!(
                    got == floor || got == floor + 1,
                    "{whole} {weights:?} {parts:?}"
                );
                assert!(part.is_zero() || part.is_negative() == whole.is_negative());
                if *w == 0 {
                    assert!(part.is_zero());
                }
            }
        }
    }
}
