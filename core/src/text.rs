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

/// The five Vietnamese tone marks as combining characters (NFD): huyền, sắc, ngã, hỏi, nặng.
const TONE_MARKS: [char; 5] = ['\u{300}', '\u{301}', '\u{303}', '\u{309}', '\u{323}'];

/// The key that ranks exact-diacritic matches first: lower-case, white space collapsed, and
/// **one placement of the tone mark**. Vietnamese writes the tone of `oa`, `oe`, `uy` on either
/// vowel (`hòa` in the old convention, `hoà` in the new; `thủy`/`thuỷ`), and rosters, keyboards
/// and people mix both. Each word's tone marks are taken off its letters and written after it as
/// combining characters, the rest of the word in NFC; the vowel-quality marks (`â`, `ă`, `ê`,
/// `ô`, `ơ`, `ư`) and `đ` stay on their letters. So `exact_key("Hòa") == exact_key("Hoà") ==
/// "hoa\u{300}"`, while `Hòa` and `Hỏa` stay different.
pub fn exact_key(s: &str) -> String {
    let lower: String = s.nfd().flat_map(char::to_lowercase).collect();
    let mut out = String::with_capacity(lower.len());
    for (i, word) in lower.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let base: String = word.chars().filter(|c| !TONE_MARKS.contains(c)).collect();
        out.extend(base.nfc());
        // A word has one tone; should a typo give it two, their order is fixed too.
        let mut tones: Vec<char> = word.chars().filter(|c| TONE_MARKS.contains(c)).collect();
        tones.sort_unstable();
        out.extend(tones);
    }
    out
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

    #[test]
    fn both_tone_placements_have_one_exact_key() {
        for (old, new) in [
            ("Hòa", "Hoà"),
            ("Nguyễn Thị Thủy", "Nguyễn Thị Thuỷ"),
            ("Khỏe", "Khoẻ"),
            ("Lê Văn Tòan", "Lê Văn Toàn"),
        ] {
            assert_eq!(exact_key(old), exact_key(new), "{old} / {new}");
        }
        assert_eq!(exact_key("Hòa"), "hoa\u{300}");
        assert_ne!(exact_key("Hòa"), exact_key("Hỏa"));
        assert_ne!(exact_key("Hòa"), exact_key("Hoa"));
        assert_eq!(exact_key("Đặng  Thị"), "đăng\u{323} thi\u{323}");
        // A quality mark is not a tone: Hồ and Hổ differ, Hô (no tone) differs from both.
        assert_ne!(exact_key("Hồ"), exact_key("Hổ"));
        assert_ne!(exact_key("Hô"), exact_key("Ho"));
    }

    /// A Vietnamese-looking word: letters, some with quality marks, and tone marks anywhere.
    fn word() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(vec![
                    'a', 'o', 'u', 'y', 'e', 'i', 'n', 'g', 'h', 't', 'đ', 'A', 'Đ'
                ]),
                proptest::sample::select(vec!['â', 'ă', 'ê', 'ô', 'ơ', 'ư', 'Ư']),
                proptest::sample::select(TONE_MARKS.to_vec()),
            ],
            1..8,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn exact_key_is_a_normal_form(words in proptest::collection::vec(word(), 1..4)) {
            let s = words.join(" ");
            let key = exact_key(&s);
            // Idempotent, blind to the Unicode normal form and to where in a word a tone sits.
            prop_assert_eq!(exact_key(&key), key.clone());
            let nfc: String = s.nfc().collect();
            let nfd: String = s.nfd().collect();
            prop_assert_eq!(exact_key(&nfc), key.clone());
            prop_assert_eq!(exact_key(&nfd), key.clone());
            let moved: Vec<String> = nfd
                .split(' ')
                .map(|w| {
                    let tones: String = w.chars().filter(|c| TONE_MARKS.contains(c)).collect();
                    let rest: String = w.chars().filter(|c| !TONE_MARKS.contains(c)).collect();
                    let mut cs: Vec<char> = rest.chars().collect();
                    // Put the tones right after the first letter instead.
                    let tail = cs.split_off(1.min(cs.len()));
                    cs.extend(tones.chars());
                    cs.extend(tail);
                    cs.into_iter().collect()
                })
                .collect();
            prop_assert_eq!(exact_key(&moved.join(" ")), key.clone());
            // It refines folding: equal keys fold equal.
            prop_assert_eq!(fold(&key), fold(&s));
        }

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
