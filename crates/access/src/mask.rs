//! Masks for sensitive fields shown read-only. Owning services apply them (they have the
//! values); the examples in `crm.permission.v1.MaskKind` come from here. Everything counts
//! characters, never bytes, so multi-byte text is never split.

use crate::MaskKind;

/// Masks `value` for display:
/// - `Phone`: first 3 and last 4 characters kept, one `*` per hidden one: `138****5678`;
/// - `Email`: first character of the local part, then `***@domain`: `z***@example.com`
///   (no `@`: the first character and `***`);
/// - `IdNumber`: first 3 and last 4 kept: `110***********1234`.
///
/// Values too short to hide at least four characters this way keep a quarter at each end
/// instead (rounded down), so a short value is never shown nearly whole; below four characters
/// everything is hidden. Surrounding whitespace is dropped; an empty value stays empty.
pub fn apply_mask(kind: MaskKind, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return String::new();
    }
    match kind {
        MaskKind::Phone | MaskKind::IdNumber => keep_ends(value, 3, 4),
        MaskKind::Email => mask_email(value),
    }
}

/// At least this many characters are hidden whenever the value has this many.
const MIN_HIDDEN: usize = 4;

fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= head + tail + MIN_HIDDEN {
        (head, tail)
    } else {
        (n / 4, n / 4)
    };
    let mut out = String::with_capacity(value.len());
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

fn mask_email(value: &str) -> String {
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    match value.rsplit_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", first(local)),
        None => format!("{}***", first(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MaskKind::*;

    #[test]
    fn phones_keep_three_and_four() {
        assert_eq!(apply_mask(Phone, "13812345678"), "138****5678");
        assert_eq!(apply_mask(Phone, " 13812345678 "), "138****5678");
        assert_eq!(apply_mask(Phone, "+86 138 1234 5678"), "+86**********5678");
    }

    #[test]
    fn id_numbers_keep_three_and_four() {
        assert_eq!(
            apply_mask(IdNumber, "110101199001011234"),
            "110***********1234"
        );
        assert_eq!(
            apply_mask(IdNumber, "11010119900101123X"),
            "110***********123X"
        );
    }

    #[test]
    fn emails_keep_the_first_character_and_the_domain() {
        assert_eq!(apply_mask(Email, "zhang@example.com"), "z***@example.com");
        assert_eq!(apply_mask(Email, "z@example.com"), "z***@example.com");
        assert_eq!(apply_mask(Email, "@example.com"), "***@example.com");
        assert_eq!(apply_mask(Email, "a@b@example.com"), "a***@example.com");
        assert_eq!(apply_mask(Email, "not-an-email"), "n***");
    }

    #[test]
    fn short_values_reveal_proportionally_less() {
        assert_eq!(
            apply_mask(Phone, "12345678901"),
            "123****8901",
            "11: 3 + 4 kept"
        );
        assert_eq!(
            apply_mask(Phone, "1234567890"),
            "12******90",
            "10: a quarter each end"
        );
        assert_eq!(apply_mask(Phone, "12345678"), "12****78");
        assert_eq!(apply_mask(Phone, "1234"), "1**4");
        assert_eq!(apply_mask(Phone, "123"), "***");
        assert_eq!(apply_mask(Phone, "1"), "*");
        assert_eq!(apply_mask(IdNumber, "12345"), "1***5");
        for kind in MaskKind::ALL {
            assert_eq!(apply_mask(*kind, ""), "");
            assert_eq!(apply_mask(*kind, "   "), "");
        }
    }

    #[test]
    fn unicode_is_counted_in_characters() {
        assert_eq!(apply_mask(Email, "张三@例子.中国"), "张***@例子.中国");
        assert_eq!(apply_mask(Email, "éric@exemple.fr"), "é***@exemple.fr");
        // Multi-byte characters at both ends and in the middle, never split.
        assert_eq!(apply_mask(Phone, "١٢٣٤٥٦٧٨٩٠١"), "١٢٣****٨٩٠١");
        assert_eq!(
            apply_mask(IdNumber, "😀😀😀abcd😀😀😀😀"),
            "😀😀😀****😀😀😀😀"
        );
        assert_eq!(apply_mask(Phone, "电话号码"), "电**码");
        for kind in MaskKind::ALL {
            for value in ["ü", "ab", "日本語テキスト", "a\u{301}bc"] {
                let masked = apply_mask(*kind, value);
                assert!(masked.contains('*'), "{kind}: {value:?} -> {masked:?}");
            }
        }
    }

    #[test]
    fn masks_never_reveal_the_whole_value() {
        for len in 1..40 {
            let value: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            for kind in [Phone, IdNumber] {
                let masked = apply_mask(kind, &value);
                assert_eq!(masked.chars().count(), len, "length kept");
                let hidden = masked.chars().filter(|c| *c == '*').count();
                assert!(hidden * 2 >= len || hidden >= MIN_HIDDEN, "{len}: {masked}");
            }
        }
    }
}
