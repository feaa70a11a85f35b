//! Conversions to and from the wire message `crm.common.v1.Money`.
//!
//! [`Money`] → message is infallible; message → [`Money`] is `TryFrom` and applies every rule of
//! [`Currency::from_code`] and [`Money::parse`], so a service that converts at its edge never
//! handles an amount it cannot represent exactly. A service answers a failed conversion with
//! INVALID_ARGUMENT and the error's message as the field violation.

use crm_proto::common as pb;

use crate::{Currency, Money, MoneyError};

impl From<Money> for pb::Money {
    fn from(money: Money) -> Self {
        pb::Money {
            currency_code: money.currency().code().to_owned(),
            amount: money.amount_string(),
        }
    }
}

impl TryFrom<&pb::Money> for Money {
    type Error = MoneyError;
    fn try_from(message: &pb::Money) -> Result<Self, Self::Error> {
        Money::parse(
            &message.amount,
            Currency::from_code(&message.currency_code)?,
        )
    }
}

impl TryFrom<pb::Money> for Money {
    type Error = MoneyError;
    fn try_from(message: pb::Money) -> Result<Self, Self::Error> {
        Money::try_from(&message)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::money::tests::Lcg;

    fn message(amount: &str, currency_code: &str) -> pb::Money {
        pb::Money {
            currency_code: currency_code.into(),
            amount: amount.into(),
        }
    }

    #[test]
    fn to_and_from_the_message() {
        let m = Money::parse("1234.5", Currency::CNY).unwrap();
        let wire = pb::Money::from(m);
        assert_eq!(wire, message("1234.50", "CNY"));
        assert_eq!(Money::try_from(&wire), Ok(m));
        assert_eq!(
            Money::try_from(message("100", "JPY"))
                .unwrap()
                .minor_units(),
            100
        );
    }

    #[test]
    fn invalid_messages_are_refused() {
        assert!(matches!(
            Money::try_from(message("1.005", "CNY")),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::try_from(message("100.5", "JPY")),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::try_from(message("1.00", "")),
            Err(MoneyError::MalformedCurrencyCode(_))
        ));
        assert!(matches!(
            Money::try_from(message("1.00", "usd")),
            Err(MoneyError::MalformedCurrencyCode(_))
        ));
        assert!(matches!(
            Money::try_from(message("1.00", "XAU")),
            Err(MoneyError::UnknownCurrency(_))
        ));
        // An unset message field decodes as the default: both fields empty.
        assert!(Money::try_from(pb::Money::default()).is_err());
        assert!(matches!(
            Money::try_from(message("", "CNY")),
            Err(MoneyError::InvalidAmount { .. })
        ));
    }

    #[test]
    fn round_trip_through_protobuf_bytes() {
        let mut rng = Lcg(3);
        for currency in [Currency::CNY, Currency::JPY, Currency::KWD, Currency::HKD] {
            for _ in 0..2_000 {
                let m = Money::from_minor_units(rng.units(), currency).unwrap();
                let bytes = pb::Money::from(m).encode_to_vec();
                let decoded = pb::Money::decode(bytes.as_slice()).unwrap();
                assert_eq!(Money::try_from(decoded), Ok(m));
            }
        }
    }

    #[test]
    fn paging_messages_exist() {
        let request = crm_proto::common::PageRequest {
            page_size: 50,
            page_token: String::new(),
            include_total: true,
        };
        assert_eq!(
            crm_proto::common::PageRequest::decode(request.encode_to_vec().as_slice()).unwrap(),
            request
        );
        // `optional`: "not counted" and "zero" differ on the wire.
        let not_counted = crm_proto::common::PageResponse::default();
        assert_eq!(not_counted.total_size, None);
        let zero = crm_proto::common::PageResponse {
            next_page_token: String::new(),
            total_size: Some(0),
        };
        let decoded =
            crm_proto::common::PageResponse::decode(zero.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.total_size, Some(0));
    }
}
