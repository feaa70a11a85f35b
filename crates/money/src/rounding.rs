//! Rounding to a currency's minor unit, done exactly on integers.
//!
//! `rust_decimal`'s own multiplication shortens a product that does not fit 96 bits by rounding
//! it first, and rounding that result again to cents could then be wrong (double rounding). So
//! every rounding here computes `a × b / 10^k` on a 256-bit product and looks at the exact
//! remainder: the one rounding step is the only one.

/// How to round a value that falls between two amounts of the currency's minor unit.
///
/// The default, and what [`Money::checked_mul`](crate::Money::checked_mul) uses, is
/// [`Rounding::HalfEven`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Rounding {
    /// Banker's rounding: to the nearest; an exact half goes to the even neighbour
    /// (2.345 → 2.34, 2.355 → 2.36, -2.345 → -2.34). Unbiased: over many roundings the halves
    /// cancel out instead of drifting up, which is why it is the default for computed amounts.
    #[default]
    HalfEven,
    /// To the nearest; an exact half goes away from zero (2.345 → 2.35, -2.345 → -2.35).
    /// Commercial rounding (四舍五入, Java's `HALF_UP`), which many tax and invoice rules
    /// prescribe: use it where a rule says so.
    HalfUp,
    /// To the nearest; an exact half goes toward zero (2.345 → 2.34, -2.345 → -2.34).
    HalfDown,
    /// Truncation (2.349 → 2.34, -2.349 → -2.34).
    TowardZero,
    /// Any remainder goes up in magnitude (2.341 → 2.35, -2.341 → -2.35).
    AwayFromZero,
    /// Toward negative infinity (2.349 → 2.34, -2.341 → -2.35).
    Floor,
    /// Toward positive infinity (2.341 → 2.35, -2.349 → -2.34).
    Ceiling,
}

/// `a × b / 10^k`, rounded to an integer magnitude by `rounding`, for a value whose sign is
/// `negative`. `None` if the rounded magnitude does not fit in a `u128`.
pub(crate) fn mul_div_pow10(
    a: u128,
    b: u128,
    k: u32,
    negative: bool,
    rounding: Rounding,
) -> Option<u128> {
    assert!(k <= 38, "10^{k} does not fit in u128");
    let mut n = mul_wide(a, b);
    // Divide by 10^k in steps of at most 10^19 (fits a u64), keeping the exact remainder:
    // n = q1·d1 + r1 and q1 = q2·d2 + r2 give n = q2·(d1·d2) + (r2·d1 + r1).
    let mut remainder: u128 = 0;
    let mut divided: u128 = 1;
    let mut left = k;
    while left > 0 {
        let step = left.min(19);
        let d = 10u64.pow(step);
        let r = div_small(&mut n, d);
        remainder += u128::from(r) * divided;
        divided *= u128::from(d);
        left -= step;
    }
    if n[2] != 0 || n[3] != 0 {
        return None;
    }
    let q = u128::from(n[0]) | (u128::from(n[1]) << 64);
    if remainder == 0 {
        return Some(q);
    }
    // remainder < divided ≤ 10^38, so 2·remainder < 2·10^38 < u128::MAX.
    let twice = remainder * 2;
    let up = match rounding {
        Rounding::HalfEven => twice > divided || (twice == divided && q % 2 == 1),
        Rounding::HalfUp => twice >= divided,
        Rounding::HalfDown => twice > divided,
        Rounding::TowardZero => false,
        Rounding::AwayFromZero => true,
        Rounding::Floor => negative,
        Rounding::Ceiling => !negative,
    };
    if up { q.checked_add(1) } else { Some(q) }
}

/// `⌊a × b / d⌋` and `a × b mod d`, exactly (`d > 0`). `None` if the quotient does not fit in a
/// `u128`.
pub(crate) fn mul_div_rem(a: u128, b: u128, d: u128) -> Option<(u128, u128)> {
    assert!(d > 0, "division by zero");
    let n = mul_wide(a, b);
    // Binary long division, most significant bit first.
    let mut q = [0u64; 4];
    let mut rem: u128 = 0;
    for i in (0..256).rev() {
        let bit = (n[i / 64] >> (i % 64)) & 1;
        // If the top bit is set, 2·rem + bit is at least 2^128 > d; the wrapping subtraction
        // below then yields the exact (smaller than d) result.
        let carry = rem >> 127 == 1;
        rem = (rem << 1) | u128::from(bit);
        if carry || rem >= d {
            rem = rem.wrapping_sub(d);
            q[i / 64] |= 1 << (i % 64);
        }
    }
    if q[2] != 0 || q[3] != 0 {
        return None;
    }
    Some((u128::from(q[0]) | (u128::from(q[1]) << 64), rem))
}

/// The full 256-bit product, as little-endian 64-bit limbs.
fn mul_wide(a: u128, b: u128) -> [u64; 4] {
    let a = [a as u64, (a >> 64) as u64];
    let b = [b as u64, (b >> 64) as u64];
    let mut out = [0u64; 4];
    for i in 0..2 {
        let mut carry: u128 = 0;
        for j in 0..2 {
            // At most (2^64-1)^2 + 2·(2^64-1) = 2^128 - 1: no overflow.
            let t = u128::from(a[i]) * u128::from(b[j]) + u128::from(out[i + j]) + carry;
            out[i + j] = t as u64;
            carry = t >> 64;
        }
        out[i + 2] = carry as u64;
    }
    out
}

/// Divides `n` in place by `d`, returning the remainder.
fn div_small(n: &mut [u64; 4], d: u64) -> u64 {
    let d = u128::from(d);
    let mut rem: u128 = 0;
    for limb in n.iter_mut().rev() {
        let cur = (rem << 64) | u128::from(*limb);
        *limb = (cur / d) as u64;
        rem = cur % d;
    }
    rem as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_product_and_division_are_exact() {
        // (2^96-1)^2 = 6277101735386680763835789423049210091073826769276946612225
        let max = (1u128 << 96) - 1;
        let q = mul_div_pow10(max, max, 28, false, Rounding::TowardZero).unwrap();
        assert_eq!(q, 627710173538668076383578942304);
        // Too big to fit u128 after dividing by only 10.
        assert_eq!(
            mul_div_pow10(u128::MAX, u128::MAX, 1, false, Rounding::HalfEven),
            None
        );
        assert_eq!(
            mul_div_pow10(12345, 1, 0, false, Rounding::HalfEven),
            Some(12345)
        );
    }

    #[test]
    fn long_division_is_exact() {
        let max = (1u128 << 96) - 1;
        // (2^96-1)^2 = 6277101735386680763835789423049210091073826769276946612225
        assert_eq!(
            mul_div_rem(max, max, 10u128.pow(28)),
            Some((627710173538668076383578942304, 9210091073826769276946612225))
        );
        assert_eq!(mul_div_rem(7, 3, 4), Some((5, 1)));
        assert_eq!(
            mul_div_rem(u128::MAX, u128::MAX, u128::MAX),
            Some((u128::MAX, 0))
        );
        assert_eq!(mul_div_rem(u128::MAX, 2, u128::MAX - 1), Some((2, 2)));
        assert_eq!(mul_div_rem(u128::MAX, u128::MAX, 1), None);
        // Against plain u128 arithmetic where it cannot overflow.
        let mut x: u64 = 7;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = u128::from(x >> 1);
            let b = u128::from(x.rotate_left(17) >> 3);
            let d = u128::from(x.rotate_left(31) | 1);
            assert_eq!(mul_div_rem(a, b, d), Some(((a * b) / d, (a * b) % d)));
        }
    }

    #[test]
    fn every_mode_on_halves_and_near_halves() {
        // value = a / 10 with a sign; (a, negative, expected per mode)
        use Rounding::*;
        let modes = [
            HalfEven,
            HalfUp,
            HalfDown,
            TowardZero,
            AwayFromZero,
            Floor,
            Ceiling,
        ];
        let cases: [(u128, bool, [u128; 7]); 6] = [
            (25, false, [2, 3, 2, 2, 3, 2, 3]), // 2.5
            (35, false, [4, 4, 3, 3, 4, 3, 4]), // 3.5
            (25, true, [2, 3, 2, 2, 3, 3, 2]),  // -2.5 (magnitudes)
            (26, false, [3, 3, 3, 2, 3, 2, 3]), // 2.6
            (24, true, [2, 2, 2, 2, 3, 3, 2]),  // -2.4 (magnitudes)
            (20, true, [2, 2, 2, 2, 2, 2, 2]),  // -2.0: exact
        ];
        for (a, negative, expected) in cases {
            for (mode, want) in modes.iter().zip(expected) {
                assert_eq!(
                    mul_div_pow10(a, 1, 1, negative, *mode),
                    Some(want),
                    "{a}/10 negative={negative} {mode:?}"
                );
            }
        }
    }
}
