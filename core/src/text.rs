//! Vietnamese text: storage form and search folding.
//!
//! Names are stored in NFC so that equal names compare equal byte for byte whatever keyboard
//! produced them. Search folds both the stored name and the query the same way (NFD, drop the
//! combining marks, map đ/Đ to d, lower-case, collapse white space), because SQLite's FTS5
//! `remove_diacritics` leaves đ alone and a field worker typing on a phone without a Vietnamese
//! keyboard writes "dang thi dao" for "Đặng Thị Đào".

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// NFC with surrounding white space trimmed and inner runs of white space collapsed to one space.
pub fn clean(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    collapse_ws(&nfc)
}

/// The search key of a text: NFD, combining marks removed, đ/Đ → d, lower-case, white space
/// collapsed. `fold("Đặng Thị Đào") == "dang thi dao"`.
pub fn fold(s: &str) -> String {
    let folded: String = s
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect();
    collapse_ws(&folded)
}

/// Lower-case NFC form used to rank exact-diacritic matches first.
pub fn exact_key(s: &str) -> String {
    collapse_ws(&s.nfc().flat_map(char::to_lowercase).collect::<String>())
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_vietnamese_names() {
        assert_eq!(fold("Nguyễn Văn A"), "nguyen van a");
        assert_eq!(fold("Đặng Thị Đào"), "dang thi dao");
        assert_eq!(fold("  ĐỖ   Thị  Hồng "), "do thi hong");
    }

    #[test]
    fn nfd_input_is_stored_as_nfc() {
        let nfd: String = "Nguyễn".nfd().collect();
        assert_ne!(nfd, "Nguyễn");
        assert_eq!(clean(&nfd), "Nguyễn");
        assert_eq!(fold(&nfd), "nguyen");
    }

    proptest! {
        #[test]
        fn fold_is_idempotent(s in "\\PC*") {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once.clone());
        }

        #[test]
        fn fold_ignores_normal_form(s in "\\PC*") {
            let nfd: String = s.nfd().collect();
            let nfc: String = s.nfc().collect();
            prop_assert_eq!(fold(&nfd), fold(&nfc));
        }
    }
}
