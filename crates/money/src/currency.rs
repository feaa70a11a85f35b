//! ISO 4217 currencies and their minor units.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{MoneyError, excerpt};

/// An ISO 4217 currency: its three-letter code and its minor unit, the number of decimal places
/// an amount in it may have (CNY 2, JPY 0, KWD 3).
///
/// Values exist only for the codes of the table in this module (an associated constant each,
/// `Currency::CNY`, …), so a `Currency` is always one the crate knows the minor unit of.
/// [`Currency::from_code`] is the way in from text; it is case-sensitive (see there).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

impl Currency {
    /// Looks up an upper-case ISO 4217 code such as `"CNY"`.
    ///
    /// Codes are case-sensitive: `"cny"` is [`MoneyError::MalformedCurrencyCode`], not CNY.
    /// ISO 4217 codes are upper case, and accepting other spellings would let two strings for one
    /// currency travel into stored rows, event payloads, cache keys and ETags, where they compare
    /// unequal. A form that lets people type a code upper-cases it before it gets here.
    ///
    /// Codes outside the table are [`MoneyError::UnknownCurrency`]: fund codes (CLF, USN, …),
    /// precious metals (XAU, …), test codes (XTS, XXX) and withdrawn codes (HRK, ZWL, …).
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::MalformedCurrencyCode(excerpt(code)));
        }
        ALL.binary_search_by(|c| c.code.cmp(code))
            .map(|i| ALL[i])
            .map_err(|_| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// The three-letter code, e.g. `"CNY"`.
    pub const fn code(self) -> &'static str {
        self.code
    }

    /// The ISO 4217 minor unit: how many decimal places amounts have (CNY 2, JPY 0, KWD 3).
    pub const fn exponent(self) -> u32 {
        self.exponent as u32
    }

    /// Every currency in the table, sorted by code.
    pub fn all() -> &'static [Currency] {
        ALL
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

/// As the code string, `"CNY"`.
impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

macro_rules! currencies {
    ($($code:ident $exponent:literal $name:literal,)*) => {
        impl Currency {
            $(
                #[doc = concat!($name, ": ", stringify!($exponent), " decimal places.")]
                pub const $code: Currency = Currency {
                    code: stringify!($code),
                    exponent: $exponent,
                };
            )*
        }

        static ALL: &[Currency] = &[$(Currency::$code),*];
    };
}

// ISO 4217 currencies in circulation (list of 2025), with the standard's minor unit — also where
// everyday practice differs (TWD, HUF and IDR have 2 here, as in ISO 4217, although cash is
// whole units). Sorted by code: lookups binary-search it, and a test checks the order.
currencies! {
    AED 2 "UAE dirham",
    AFN 2 "Afghan afghani",
    ALL 2 "Albanian lek",
    AMD 2 "Armenian dram",
    ANG 2 "Netherlands Antillean guilder",
    AOA 2 "Angolan kwanza",
    ARS 2 "Argentine peso",
    AUD 2 "Australian dollar",
    AWG 2 "Aruban florin",
    AZN 2 "Azerbaijani manat",
    BAM 2 "Bosnia and Herzegovina convertible mark",
    BBD 2 "Barbados dollar",
    BDT 2 "Bangladeshi taka",
    BGN 2 "Bulgarian lev",
    BHD 3 "Bahraini dinar",
    BIF 0 "Burundian franc",
    BMD 2 "Bermudian dollar",
    BND 2 "Brunei dollar",
    BOB 2 "Boliviano",
    BRL 2 "Brazilian real",
    BSD 2 "Bahamian dollar",
    BTN 2 "Bhutanese ngultrum",
    BWP 2 "Botswana pula",
    BYN 2 "Belarusian ruble",
    BZD 2 "Belize dollar",
    CAD 2 "Canadian dollar",
    CDF 2 "Congolese franc",
    CHF 2 "Swiss franc",
    CLP 0 "Chilean peso",
    CNY 2 "Chinese yuan (renminbi)",
    COP 2 "Colombian peso",
    CRC 2 "Costa Rican colón",
    CUP 2 "Cuban peso",
    CVE 2 "Cape Verdean escudo",
    CZK 2 "Czech koruna",
    DJF 0 "Djiboutian franc",
    DKK 2 "Danish krone",
    DOP 2 "Dominican peso",
    DZD 2 "Algerian dinar",
    EGP 2 "Egyptian pound",
    ERN 2 "Eritrean nakfa",
    ETB 2 "Ethiopian birr",
    EUR 2 "Euro",
    FJD 2 "Fiji dollar",
    FKP 2 "Falkland Islands pound",
    GBP 2 "Pound sterling",
    GEL 2 "Georgian lari",
    GHS 2 "Ghanaian cedi",
    GIP 2 "Gibraltar pound",
    GMD 2 "Gambian dalasi",
    GNF 0 "Guinean franc",
    GTQ 2 "Guatemalan quetzal",
    GYD 2 "Guyanese dollar",
    HKD 2 "Hong Kong dollar",
    HNL 2 "Honduran lempira",
    HTG 2 "Haitian gourde",
    HUF 2 "Hungarian forint",
    IDR 2 "Indonesian rupiah",
    ILS 2 "Israeli new shekel",
    INR 2 "Indian rupee",
    IQD 3 "Iraqi dinar",
    IRR 2 "Iranian rial",
    ISK 0 "Icelandic króna",
    JMD 2 "Jamaican dollar",
    JOD 3 "Jordanian dinar",
    JPY 0 "Japanese yen",
    KES 2 "Kenyan shilling",
    KGS 2 "Kyrgyzstani som",
    KHR 2 "Cambodian riel",
    KMF 0 "Comoro franc",
    KPW 2 "North Korean won",
    KRW 0 "South Korean won",
    KWD 3 "Kuwaiti dinar",
    KYD 2 "Cayman Islands dollar",
    KZT 2 "Kazakhstani tenge",
    LAK 2 "Lao kip",
    LBP 2 "Lebanese pound",
    LKR 2 "Sri Lankan rupee",
    LRD 2 "Liberian dollar",
    LSL 2 "Lesotho loti",
    LYD 3 "Libyan dinar",
    MAD 2 "Moroccan dirham",
    MDL 2 "Moldovan leu",
    MGA 2 "Malagasy ariary",
    MKD 2 "Macedonian denar",
    MMK 2 "Myanmar kyat",
    MNT 2 "Mongolian tögrög",
    MOP 2 "Macanese pataca",
    MRU 2 "Mauritanian ouguiya",
    MUR 2 "Mauritian rupee",
    MVR 2 "Maldivian rufiyaa",
    MWK 2 "Malawian kwacha",
    MXN 2 "Mexican peso",
    MYR 2 "Malaysian ringgit",
    MZN 2 "Mozambican metical",
    NAD 2 "Namibian dollar",
    NGN 2 "Nigerian naira",
    NIO 2 "Nicaraguan córdoba",
    NOK 2 "Norwegian krone",
    NPR 2 "Nepalese rupee",
    NZD 2 "New Zealand dollar",
    OMR 3 "Omani rial",
    PAB 2 "Panamanian balboa",
    PEN 2 "Peruvian sol",
    PGK 2 "Papua New Guinean kina",
    PHP 2 "Philippine peso",
    PKR 2 "Pakistani rupee",
    PLN 2 "Polish złoty",
    PYG 0 "Paraguayan guaraní",
    QAR 2 "Qatari riyal",
    RON 2 "Romanian leu",
    RSD 2 "Serbian dinar",
    RUB 2 "Russian ruble",
    RWF 0 "Rwandan franc",
    SAR 2 "Saudi riyal",
    SBD 2 "Solomon Islands dollar",
    SCR 2 "Seychelles rupee",
    SDG 2 "Sudanese pound",
    SEK 2 "Swedish krona",
    SGD 2 "Singapore dollar",
    SHP 2 "Saint Helena pound",
    SLE 2 "Sierra Leonean leone",
    SOS 2 "Somali shilling",
    SRD 2 "Surinamese dollar",
    SSP 2 "South Sudanese pound",
    STN 2 "São Tomé and Príncipe dobra",
    SVC 2 "Salvadoran colón",
    SYP 2 "Syrian pound",
    SZL 2 "Swazi lilangeni",
    THB 2 "Thai baht",
    TJS 2 "Tajikistani somoni",
    TMT 2 "Turkmenistan manat",
    TND 3 "Tunisian dinar",
    TOP 2 "Tongan paʻanga",
    TRY 2 "Turkish lira",
    TTD 2 "Trinidad and Tobago dollar",
    TWD 2 "New Taiwan dollar",
    TZS 2 "Tanzanian shilling",
    UAH 2 "Ukrainian hryvnia",
    UGX 0 "Ugandan shilling",
    USD 2 "United States dollar",
    UYU 2 "Uruguayan peso",
    UZS 2 "Uzbekistani sum",
    VED 2 "Venezuelan digital bolívar",
    VES 2 "Venezuelan sovereign bolívar",
    VND 0 "Vietnamese đồng",
    VUV 0 "Vanuatu vatu",
    WST 2 "Samoan tālā",
    XAF 0 "Central African CFA franc",
    XCD 2 "East Caribbean dollar",
    XCG 2 "Caribbean guilder",
    XOF 0 "West African CFA franc",
    XPF 0 "CFP franc",
    YER 2 "Yemeni rial",
    ZAR 2 "South African rand",
    ZMW 2 "Zambian kwacha",
    ZWG 2 "Zimbabwe Gold",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in ALL.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0],
                pair[1]
            );
        }
        for c in ALL {
            assert_eq!(c.code.len(), 3);
            assert!(c.code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(c.exponent <= 4, "{c}");
            assert_eq!(Currency::from_code(c.code), Ok(*c));
        }
    }

    #[test]
    fn minor_units_of_the_currencies_an_enterprise_uses() {
        let expected = [
            ("CNY", 2),
            ("HKD", 2),
            ("TWD", 2),
            ("MOP", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("USD", 2),
            ("EUR", 2),
            ("GBP", 2),
            ("CHF", 2),
            ("SGD", 2),
            ("AUD", 2),
            ("CAD", 2),
            ("NZD", 2),
            ("SEK", 2),
            ("NOK", 2),
            ("DKK", 2),
            ("INR", 2),
            ("IDR", 2),
            ("THB", 2),
            ("MYR", 2),
            ("PHP", 2),
            ("VND", 0),
            ("RUB", 2),
            ("BRL", 2),
            ("MXN", 2),
            ("ZAR", 2),
            ("AED", 2),
            ("SAR", 2),
            ("KWD", 3),
            ("BHD", 3),
            ("OMR", 3),
            ("JOD", 3),
            ("TND", 3),
            ("IQD", 3),
            ("LYD", 3),
            ("CLP", 0),
            ("ISK", 0),
            ("UGX", 0),
            ("PYG", 0),
            ("XOF", 0),
        ];
        for (code, exponent) in expected {
            let c = Currency::from_code(code).unwrap();
            assert_eq!((c.code(), c.exponent()), (code, exponent));
        }
        assert_eq!(Currency::CNY.exponent(), 2);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::KWD.exponent(), 3);
    }

    #[test]
    fn unknown_and_malformed_codes_are_refused() {
        assert_eq!(
            Currency::from_code("XYZ"),
            Err(MoneyError::UnknownCurrency("XYZ".into()))
        );
        for not_a_currency in ["XAU", "XTS", "XXX", "CLF", "USN", "HRK"] {
            assert!(
                matches!(
                    Currency::from_code(not_a_currency),
                    Err(MoneyError::UnknownCurrency(_))
                ),
                "{not_a_currency}"
            );
        }
        for malformed in [
            "cny",
            "Cny",
            "CN",
            "CNYY",
            "",
            " CNY",
            "CNY ",
            "C1Y",
            "ＣＮＹ",
        ] {
            assert!(
                matches!(
                    Currency::from_code(malformed),
                    Err(MoneyError::MalformedCurrencyCode(_))
                ),
                "{malformed:?}"
            );
        }
        assert_eq!(
            Currency::from_code("cny").unwrap_err().to_string(),
            "currency code \"cny\" is not three upper-case letters (ISO 4217, e.g. \"CNY\")"
        );
    }

    #[test]
    fn serde_is_the_code_string() {
        assert_eq!(serde_json::to_string(&Currency::CNY).unwrap(), "\"CNY\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"KWD\"").unwrap(),
            Currency::KWD
        );
        assert!(serde_json::from_str::<Currency>("\"usd\"").is_err());
        assert_eq!("JPY".parse::<Currency>().unwrap().to_string(), "JPY");
    }
}
