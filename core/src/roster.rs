//! Roster import: the commune's list of households and residents, and the reference list of
//! administrative units, read from CSV files (the format is `docs/roster-format.md`).
//!
//! # Deterministic ids
//!
//! Every household and resident a roster creates gets an id derived from its content, so that
//! two phones (or a phone and the station) importing the same roster create *the same* records:
//! after a sync they converge instead of holding every resident twice.
//!
//! * a household: `UUIDv5(campaign id, "household:<household_code>")` ([`household_id`]);
//! * a resident with a 12-digit citizen ID (CCCD, unique nationwide):
//!   `UUIDv5(campaign id, "resident:cccd:<12 digits>")`;
//! * any other resident (no ID number, or an old 9-digit CMND, which is not unique):
//!   `UUIDv5(campaign id, "resident:<household_code>:<folded name>:<birth date>")`, where the
//!   name is folded as search folds it ([`crate::text::fold`]) and the birth date is in its
//!   canonical form (`YYYY-MM-DD` or `YYYY`) ([`resident_id`]).
//!
//! The namespace is the campaign id — a random UUIDv7 that is not published — so an id is not a
//! plain, dictionary-reversible hash of an ID number that anyone could compute. This is not
//! encryption: whoever knows the campaign id can test a guessed ID number against a resident
//! id, so campaign ids deserve the same care as the roster itself.
//!
//! A consequence to know: a resident first imported without an ID number and later with a CCCD
//! gets a new id (the CCCD one); the old record stays until it is deleted.
//!
//! # Import
//!
//! [`Store::import_roster`] validates every row with the same rules as the write API
//! ([`crate::validate`]), reports every rejected row with its physical line number and a reason
//! that names the field and the accepted form, never the value, and writes what changed.
//! Unchanged fields make no operation, so importing the same file twice makes no operation the
//! second time. Households are committed together with their residents, in chunks of about
//! [`CHUNK_RESIDENTS`] residents per transaction: a crash keeps whole chunks, and running the
//! import again finishes the work (it is idempotent).
//!
//! The whole file is read into memory first (a commune roster is a few megabytes), because the
//! rows of one household need not be adjacent and the head of a household may come after its
//! members.

use crate::model::{Entity, Field, Key, RosterStatus, UnitLevel, Value};
use crate::record::UnitInput;
use crate::store::Store;
use crate::validate::{self, IdNumber};
use crate::validate::{check_code, check_text, MAX_TEXT_CHARS};
use crate::{text, Cancel, Error, Result};
use rusqlite::OptionalExtension;
use std::collections::HashMap;
use std::io::Read;
use uuid::Uuid;

/// About how many residents go into one transaction (whole households are never split).
pub const CHUNK_RESIDENTS: usize = 2000;

/// How many rows between two progress reports.
pub const PROGRESS_EVERY: usize = 1000;

/// The id a roster gives a household: `UUIDv5(campaign, "household:<code>")`.
pub fn household_id(campaign: Uuid, household_code: &str) -> Uuid {
    Uuid::new_v5(&campaign, format!("household:{household_code}").as_bytes())
}

/// The id a roster gives a resident: from the 12-digit citizen ID when there is one, else from
/// the household code, the folded name ([`crate::text::fold`]) and the canonical birth date
/// (`YYYY-MM-DD` or `YYYY`). An old 9-digit ID number is not unique and is not used.
pub fn resident_id(
    campaign: Uuid,
    household_code: &str,
    id_number: Option<&IdNumber>,
    folded_name: &str,
    birth_canonical: &str,
) -> Uuid {
    match id_number {
        Some(IdNumber::Cccd(digits)) => {
            Uuid::new_v5(&campaign, format!("resident:cccd:{digits}").as_bytes())
        }
        _ => Uuid::new_v5(
            &campaign,
            format!("resident:{household_code}:{folded_name}:{birth_canonical}").as_bytes(),
        ),
    }
}

/// What an import did.
///
/// `rows = accepted + rejected.len()`. For a roster, `accepted = residents_changed + unchanged`
/// (counted in residents, i.e. rows). For a units file, `accepted - unchanged` units changed and
/// the household and resident counts are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read (the header and rows whose cells are all empty are not counted).
    pub rows: usize,
    /// Rows that passed validation.
    pub accepted: usize,
    /// Households created or changed.
    pub households_changed: usize,
    /// Residents created or changed.
    pub residents_changed: usize,
    /// Accepted rows whose record already held exactly these values (no operation made).
    pub unchanged: usize,
    /// Every rejected row, in file order.
    pub rejected: Vec<RejectedRow>,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based physical line number in the file where the row starts (the header is line 1).
    pub line: u64,
    /// Why, naming the field and the accepted form, never the value.
    pub reason: String,
}

/// How far an import has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// Data rows read so far.
    pub rows_read: usize,
    /// Bytes of the file parsed so far.
    pub bytes_read: u64,
}

// ---------------------------------------------------------------------------------------------
// CSV reading
// ---------------------------------------------------------------------------------------------

/// Records of an in-memory CSV file, with their physical line numbers.
struct Records<'a> {
    data: &'a [u8],
    rdr: csv::Reader<&'a [u8]>,
    record: csv::ByteRecord,
    /// `line` is the 1-based line number of byte `counted_to`.
    counted_to: usize,
    line: u64,
}

impl<'a> Records<'a> {
    fn new(data: &'a [u8]) -> Self {
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(data);
        Records {
            data,
            rdr,
            record: csv::ByteRecord::new(),
            counted_to: 0,
            line: 1,
        }
    }

    /// The next record and the line it starts on. The reader's own line count lags behind
    /// blank lines and line ends, so lines are counted here from the record's byte offset.
    fn next(&mut self) -> Result<Option<u64>> {
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let from = self.record.position().map_or(0, |p| p.byte());
                let mut start = usize::try_from(from)
                    .unwrap_or(usize::MAX)
                    .min(self.data.len());
                // Skip what is left of the previous line end and any blank lines.
                while start < self.data.len() && matches!(self.data[start], b'\r' | b'\n') {
                    start += 1;
                }
                if start > self.counted_to {
                    self.line += newlines(&self.data[self.counted_to..start]);
                    self.counted_to = start;
                }
                Ok(Some(self.line))
            }
            Err(_) => Err(Error::Csv(format!(
                "the CSV could not be parsed after line {}",
                self.line
            ))),
        }
    }

    fn bytes_read(&self) -> u64 {
        self.rdr.position().byte()
    }

    /// How many lines the current record spans beyond its first (quoted line breaks).
    fn extra_lines(&self) -> u64 {
        let end = usize::try_from(self.rdr.position().byte())
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let mut end = end.max(self.counted_to);
        while end > self.counted_to && matches!(self.data[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        newlines(&self.data[self.counted_to..end])
    }

    fn is_blank(&self) -> bool {
        self.record
            .iter()
            .all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Where each known column is in the file.
struct Header {
    index: Vec<Option<usize>>,
    len: usize,
}

/// A column name is echoed in an error only if it looks like a column name (a header row
/// that is really a data row must not leak names or numbers into the error): at most 3
/// digits, so that no ID or phone number glued to a word is echoed (found by fuzzing).
fn printable_column(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.bytes().filter(u8::is_ascii_digit).count() <= 3
}

/// Read and check the header row: every column must be one of `known`, none twice, every
/// `required` one present. Names are compared trimmed and case-insensitively.
fn read_header(
    records: &mut Records<'_>,
    known: &[&'static str],
    required: &[&'static str],
) -> Result<Header> {
    if records.next()?.is_none() {
        return Err(Error::Csv(
            "the file is empty: a header row naming the columns is required".into(),
        ));
    }
    let mut index = vec![None; known.len()];
    let mut unknown = Vec::new();
    for (i, raw) in records.record.iter().enumerate() {
        let raw = if i == 0 {
            raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw)
        } else {
            raw
        };
        let name = std::str::from_utf8(raw)
            .map_err(|_| Error::Csv("the header row is not UTF-8 text".into()))?
            .trim()
            .to_lowercase();
        match known.iter().position(|k| *k == name) {
            Some(k) if index[k].is_some() => {
                return Err(Error::Csv(format!("column {} appears twice", known[k])))
            }
            Some(k) => index[k] = Some(i),
            None if printable_column(&name) => unknown.push(format!("{name} (column {})", i + 1)),
            None => unknown.push(format!("column {}", i + 1)),
        }
    }
    let expected = known.join(", ");
    if index.iter().all(Option::is_none) {
        let fields = &records.record;
        let hint = if fields.len() == 1 && fields[0].contains(&b';') {
            " (the columns must be separated by commas, not semicolons)"
        } else if fields.len() == 1 && fields[0].contains(&b'\t') {
            " (the columns must be separated by commas, not tabs)"
        } else {
            ""
        };
        return Err(Error::Csv(format!(
            "no known column name in line 1: a header row naming the columns is required \
             (columns: {expected}){hint}"
        )));
    }
    if !unknown.is_empty() {
        return Err(Error::Csv(format!(
            "unknown column(s): {}; the columns are: {expected}",
            unknown.join(", ")
        )));
    }
    let missing: Vec<&str> = required
        .iter()
        .filter(|r| {
            known
                .iter()
                .position(|k| k == *r)
                .and_then(|k| index[k])
                .is_none()
        })
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(Error::Csv(format!(
            "missing required column(s): {}",
            missing.join(", ")
        )));
    }
    Ok(Header {
        index,
        len: records.record.len(),
    })
}

/// One data row, checked for its field count, with text access by column.
struct Row<'r> {
    record: &'r csv::ByteRecord,
    header: &'r Header,
    names: &'r [&'static str],
}

impl Row<'_> {
    /// The trimmed text of column `col` ("" if the file has no such column).
    fn get(&self, col: usize) -> std::result::Result<&str, String> {
        let Some(i) = self.header.index[col] else {
            return Ok("");
        };
        let raw = self.record.get(i).unwrap_or_default();
        std::str::from_utf8(raw)
            .map(str::trim)
            .map_err(|_| format!("invalid {}: expected UTF-8 text", self.names[col]))
    }

    fn opt(&self, col: usize) -> std::result::Result<Option<&str>, String> {
        self.get(col).map(|s| (!s.is_empty()).then_some(s))
    }
}

fn field_count_reason(got: usize, want: usize, first: u64, extra: u64) -> String {
    let mut reason = format!("the row has {got} fields but the header has {want}");
    if extra > 0 {
        reason.push_str(&format!(
            " (it spans lines {first}-{}: is a quote left open?)",
            first + extra
        ));
    } else if got > want {
        reason.push_str(" (a comma inside a value must be quoted)");
    }
    reason
}

/// Read the whole input and check that it is UTF-8 text: a file saved in a legacy code page
/// (Excel's plain "CSV" on Windows) is refused as a whole rather than half imported.
fn read_all<R: Read>(mut input: R) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    input.read_to_end(&mut data)?;
    if let Err(e) = std::str::from_utf8(&data) {
        let line = 1 + newlines(&data[..e.valid_up_to()]);
        return Err(Error::Csv(format!(
            "the file is not UTF-8 text (first bad byte on line {line}): save it as \"CSV UTF-8\""
        )));
    }
    Ok(data)
}

// ---------------------------------------------------------------------------------------------
// Roster
// ---------------------------------------------------------------------------------------------

const HOUSEHOLD_CODE: usize = 0;
const VILLAGE_CODE: usize = 1;
const ADDRESS: usize = 2;
const FULL_NAME: usize = 3;
const BIRTH_DATE: usize = 4;
const GENDER: usize = 5;
const ID_NUMBER: usize = 6;
const PHONE: usize = 7;
const RELATION: usize = 8;
const ACCOUNT: usize = 9;
const AGENCY: usize = 10;

/// The roster's columns, in the documented order.
pub const ROSTER_COLUMNS: [&str; 11] = [
    "household_code",
    "village_code",
    "address",
    "full_name",
    "birth_date",
    "gender",
    "id_number",
    "phone",
    "relation",
    "account",
    "agency",
];

/// The columns a roster must have.
pub const ROSTER_REQUIRED: [&str; 4] =
    ["household_code", "village_code", "full_name", "birth_date"];

/// A row that passed the checks that need nothing but the row and the store.
struct Candidate {
    household_code: String,
    village: String,
    address: Option<String>,
    id: Uuid,
    cccd: bool,
    folded_name: String,
    birth: String,
    head: bool,
    fields: Vec<(Field, Value)>,
}

/// A resident already accepted from this file.
struct Seen {
    line: u64,
    household_code: String,
    folded_name: String,
    birth: String,
}

/// A household as the accepted rows describe it.
struct HouseholdPlan {
    id: Uuid,
    code: String,
    village: String,
    first_line: u64,
    address: Option<(String, u64)>,
    head: Option<(Uuid, u64)>,
    residents: Vec<(Uuid, Vec<(Field, Value)>)>,
}

/// Whether a relation marks the head of household (`chủ hộ` or `head`, any case or accents).
fn is_head(relation: &str) -> bool {
    // Cheap pre-check before folding: both start with c or h and are 4-24 bytes long in any
    // spelling (this skips folding for the common `con`, `vợ`, `chồng`...).
    let first = relation.as_bytes().first().map(|b| b | 0x20);
    matches!(first, Some(b'c' | b'h'))
        && (4..=24).contains(&relation.len())
        && matches!(text::fold(relation).as_str(), "chu ho" | "head")
}

impl Store {
    fn unit_exists(&self, cache: &mut HashMap<String, bool>, code: &str) -> Result<bool> {
        if let Some(known) = cache.get(code) {
            return Ok(*known);
        }
        let found = self
            .conn
            .prepare_cached("SELECT 1 FROM units WHERE code = ?1")?
            .query_row([code], |_| Ok(()))
            .optional()?
            .is_some();
        cache.insert(code.to_owned(), found);
        Ok(found)
    }

    /// Validate one roster row. `Ok(Err(reason))` rejects the row; `Err` is a store failure.
    fn roster_candidate(
        &self,
        campaign: Uuid,
        row: &Row<'_>,
        units: &mut HashMap<String, bool>,
    ) -> Result<std::result::Result<Candidate, String>> {
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(reason) => return Ok(Err(reason.to_string())),
                }
            };
        }
        let household_code = tri!(check_code("household_code", tri!(row.get(HOUSEHOLD_CODE))));
        let village = tri!(check_code("village_code", tri!(row.get(VILLAGE_CODE))));
        if !self.unit_exists(units, &village)? {
            return Ok(Err(Error::NotFound {
                field: "village_code",
                kind: "unit",
            }
            .to_string()));
        }
        let address = match tri!(row.opt(ADDRESS)) {
            None => None,
            Some(a) => Some(tri!(check_text(
                "address",
                a,
                MAX_TEXT_CHARS,
                "an address of at most 300 characters",
            ))),
        };
        let name = tri!(check_text(
            "full_name",
            tri!(row.get(FULL_NAME)),
            MAX_TEXT_CHARS,
            "a full name of 1-300 characters",
        ));
        let birth = tri!(validate::parse_birth_date(
            "birth_date",
            tri!(row.get(BIRTH_DATE))
        ));
        let gender = match tri!(row.opt(GENDER)) {
            None => None,
            Some(g) => Some(tri!(validate::parse_gender("gender", g))),
        };
        let id_number = match tri!(row.opt(ID_NUMBER)) {
            None => None,
            Some(n) => Some(tri!(validate::parse_id_number(
                "id_number",
                n,
                Some(birth.year()),
                gender
            ))),
        };
        let phone = match tri!(row.opt(PHONE)) {
            None => None,
            Some(p) => Some(tri!(validate::normalize_phone("phone", p))),
        };
        let relation = match tri!(row.opt(RELATION)) {
            None => None,
            Some(r) => Some(tri!(check_text(
                "relation",
                r,
                crate::validate::MAX_RELATION_CHARS,
                crate::validate::EXPECTED_RELATION
            ))),
        };
        let account = match tri!(row.opt(ACCOUNT)) {
            None => RosterStatus::None,
            Some(a) => tri!(RosterStatus::parse(&a.to_lowercase())),
        };
        let agency = match tri!(row.opt(AGENCY)) {
            None => None,
            Some(a) => Some(tri!(check_text(
                "agency",
                a,
                300,
                "an agency name of at most 300 characters"
            ))),
        };

        let folded_name = text::fold(&name);
        let birth = birth.to_canonical();
        let id = resident_id(
            campaign,
            &household_code,
            id_number.as_ref(),
            &folded_name,
            &birth,
        );
        let cccd = matches!(id_number, Some(IdNumber::Cccd(_)));
        if let Some(IdNumber::Cccd(n)) = &id_number {
            let other = self
                .conn
                .prepare_cached(
                    "SELECT 1 FROM residents WHERE id_number = ?1 AND id != ?2 AND deleted = 0",
                )?
                .query_row([n.as_str(), id.to_string().as_str()], |_| Ok(()))
                .optional()?;
            if other.is_some() {
                return Ok(Err(Error::invalid(
                    "id_number",
                    "a 12-digit citizen ID not already held by another resident",
                )
                .to_string()));
            }
        }
        let hid = household_id(campaign, &household_code);
        let mut fields = vec![
            (Field::Household, Value::Text(hid.to_string())),
            (Field::FullName, Value::Text(name)),
            (Field::BirthDate, Value::Text(birth.clone())),
        ];
        // An empty optional cell leaves the stored value alone (a phone number recorded in the
        // field is not wiped by a roster that lacks it).
        if let Some(g) = gender {
            fields.push((Field::Gender, g.as_str().into()));
        }
        if let Some(n) = &id_number {
            fields.push((Field::IdNumber, n.as_str().into()));
        }
        if let Some(p) = phone {
            fields.push((Field::Phone, p.into()));
        }
        let head = relation.as_deref().is_some_and(is_head);
        if let Some(r) = relation {
            fields.push((Field::Relation, r.into()));
        }
        fields.push((Field::Account, account.as_str().into()));
        fields.push((Field::Deleted, Value::Int(0)));
        if let Some(a) = agency {
            fields.push((Field::Agency, a.into()));
        }
        Ok(Ok(Candidate {
            household_code,
            village,
            address,
            id,
            cccd,
            folded_name,
            birth,
            head,
            fields,
        }))
    }

    /// Import a roster CSV (`docs/roster-format.md`) into `campaign_id`'s households and
    /// residents.
    ///
    /// Rows that fail validation are reported in [`ImportReport::rejected`] with their line and
    /// a reason; the others are written. Only differing fields are written, so importing the
    /// same file again makes no operation. `progress` is called every [`PROGRESS_EVERY`] rows
    /// and once at the end.
    ///
    /// Errors: [`Error::NotFound`] if the campaign does not exist; [`Error::Csv`] if the file
    /// has no usable header row (nothing is written then); [`Error::Io`] if `input` cannot be
    /// read; [`Error::Sqlite`] if the store fails, in which case the chunks committed before the
    /// failure stay and running the import again completes it.
    pub fn import_roster<R: Read>(
        &mut self,
        campaign_id: Uuid,
        input: R,
        progress: &mut dyn FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        self.import_roster_with(campaign_id, input, progress, &Cancel::new())
    }

    /// [`Store::import_roster`] that stops with [`Error::Cancelled`] once `cancel` is set: at
    /// the next [`PROGRESS_EVERY`] rows while reading (nothing written yet), or between two
    /// chunks while writing (whole chunks stay, as after a crash; importing the file again
    /// completes it).
    pub fn import_roster_with<R: Read>(
        &mut self,
        campaign_id: Uuid,
        input: R,
        progress: &mut dyn FnMut(ImportProgress),
        cancel: &Cancel,
    ) -> Result<ImportReport> {
        let campaign_known = self
            .conn
            .prepare_cached("SELECT 1 FROM campaigns WHERE id = ?1")?
            .query_row([campaign_id.to_string()], |_| Ok(()))
            .optional()?
            .is_some();
        if !campaign_known {
            return Err(Error::NotFound {
                field: "campaign_id",
                kind: "campaign",
            });
        }
        let data = read_all(input)?;
        let mut records = Records::new(&data);
        let header = read_header(&mut records, &ROSTER_COLUMNS, &ROSTER_REQUIRED)?;
        self.import_roster_rows(campaign_id, &mut records, &header, progress, cancel)
    }

    fn import_roster_rows(
        &mut self,
        campaign_id: Uuid,
        records: &mut Records<'_>,
        header: &Header,
        progress: &mut dyn FnMut(ImportProgress),
        cancel: &Cancel,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        let mut units: HashMap<String, bool> = HashMap::new();
        let mut seen: HashMap<Uuid, Seen> = HashMap::new();
        let mut plan: Vec<HouseholdPlan> = Vec::new();
        let mut by_code: HashMap<String, usize> = HashMap::new();

        while let Some(line) = records.next()? {
            if records.is_blank() {
                continue;
            }
            report.rows += 1;
            if report.rows % PROGRESS_EVERY == 0 {
                cancel.check()?;
                progress(ImportProgress {
                    rows_read: report.rows,
                    bytes_read: records.bytes_read(),
                });
            }
            let got = records.record.len();
            if got != header.len {
                let reason = field_count_reason(got, header.len, line, records.extra_lines());
                report.rejected.push(RejectedRow { line, reason });
                continue;
            }
            let row = Row {
                record: &records.record,
                header,
                names: &ROSTER_COLUMNS,
            };
            let c = match self.roster_candidate(campaign_id, &row, &mut units)? {
                Ok(c) => c,
                Err(reason) => {
                    report.rejected.push(RejectedRow { line, reason });
                    continue;
                }
            };
            if let Some(s) = seen.get(&c.id) {
                let same = s.household_code == c.household_code
                    && s.folded_name == c.folded_name
                    && s.birth == c.birth;
                let reason = if c.cccd && !same {
                    format!(
                        "invalid id_number: the same 12-digit citizen ID as line {} \
                         (one citizen ID, one resident)",
                        s.line
                    )
                } else {
                    format!(
                        "duplicate of line {}: the same resident (same id_number, or same \
                         household_code, full_name and birth_date)",
                        s.line
                    )
                };
                report.rejected.push(RejectedRow { line, reason });
                continue;
            }
            if let Some(&i) = by_code.get(&c.household_code) {
                let h = &plan[i];
                let reason = if h.village != c.village {
                    Some(format!(
                        "invalid village_code: differs from line {} of the same household_code \
                         (a household lies in one village)",
                        h.first_line
                    ))
                } else if let (Some((a, l)), Some(b)) = (&h.address, &c.address) {
                    (a != b).then(|| {
                        format!(
                            "invalid address: differs from line {l} of the same household_code \
                             (a household has one address)"
                        )
                    })
                } else {
                    None
                };
                let reason = reason.or_else(|| match h.head {
                    Some((_, l)) if c.head => Some(format!(
                        "invalid relation: a second head of household (line {l} is the head)"
                    )),
                    _ => None,
                });
                if let Some(reason) = reason {
                    report.rejected.push(RejectedRow { line, reason });
                    continue;
                }
            }
            let i = *by_code.entry(c.household_code.clone()).or_insert_with(|| {
                plan.push(HouseholdPlan {
                    id: household_id(campaign_id, &c.household_code),
                    code: c.household_code.clone(),
                    village: c.village.clone(),
                    first_line: line,
                    address: None,
                    head: None,
                    residents: Vec::new(),
                });
                plan.len() - 1
            });
            let h = &mut plan[i];
            if h.address.is_none() {
                h.address = c.address.map(|a| (a, line));
            }
            if c.head {
                h.head = Some((c.id, line));
            }
            h.residents.push((c.id, c.fields));
            seen.insert(
                c.id,
                Seen {
                    line,
                    household_code: c.household_code,
                    folded_name: c.folded_name,
                    birth: c.birth,
                },
            );
            report.accepted += 1;
        }

        // Write: each household with its residents, whole households per transaction.
        let mut ops = Vec::new();
        let mut pending = 0;
        for h in plan {
            let mut fields = vec![
                (Field::Code, Value::Text(h.code)),
                (Field::Village, Value::Text(h.village)),
            ];
            if let Some((a, _)) = h.address {
                fields.push((Field::Address, Value::Text(a)));
            }
            if let Some((head, _)) = h.head {
                fields.push((Field::Head, Value::Text(head.to_string())));
            }
            fields.push((Field::Deleted, Value::Int(0)));
            let h_ops = self.changed_fields(Entity::Household, &Key::Uuid(h.id), fields)?;
            if !h_ops.is_empty() {
                report.households_changed += 1;
            }
            ops.extend(h_ops);
            for (id, fields) in h.residents {
                let r_ops = self.changed_fields(Entity::Resident, &Key::Uuid(id), fields)?;
                if r_ops.is_empty() {
                    report.unchanged += 1;
                } else {
                    report.residents_changed += 1;
                    pending += 1;
                }
                ops.extend(r_ops);
            }
            if pending >= CHUNK_RESIDENTS {
                self.commit_local(std::mem::take(&mut ops))?;
                pending = 0;
                cancel.check()?;
            }
        }
        self.commit_local(ops)?;
        progress(ImportProgress {
            rows_read: report.rows,
            bytes_read: records.data.len() as u64,
        });
        Ok(report)
    }

    /// Import administrative units from a CSV with the columns `code, parent_code, level, kind,
    /// name` (the format of `data/ninh-thuan-2023-units.csv`; `level` is one of `province`,
    /// `district`, `commune`, `village`). A unit's parent must be one level up and already in
    /// the store or on an earlier line. Importing the same file again makes no operation.
    pub fn import_units_csv<R: Read>(&mut self, input: R) -> Result<ImportReport> {
        const COLUMNS: [&str; 5] = ["code", "parent_code", "level", "kind", "name"];
        const CHUNK_UNITS: usize = 2000;
        let data = read_all(input)?;
        let mut records = Records::new(&data);
        let header = read_header(&mut records, &COLUMNS, &COLUMNS)?;
        let mut report = ImportReport::default();
        let mut levels: HashMap<String, (UnitLevel, u64)> = HashMap::new();
        let mut ops = Vec::new();
        while let Some(line) = records.next()? {
            if records.is_blank() {
                continue;
            }
            report.rows += 1;
            let got = records.record.len();
            if got != header.len {
                let reason = field_count_reason(got, header.len, line, records.extra_lines());
                report.rejected.push(RejectedRow { line, reason });
                continue;
            }
            let row = Row {
                record: &records.record,
                header: &header,
                names: &COLUMNS,
            };
            match self.unit_row(&row, &levels)? {
                Err(reason) => report.rejected.push(RejectedRow { line, reason }),
                Ok((code, level, unit_ops)) => {
                    report.accepted += 1;
                    if unit_ops.is_empty() {
                        report.unchanged += 1;
                    }
                    ops.extend(unit_ops);
                    levels.insert(code, (level, line));
                    if ops.len() >= CHUNK_UNITS {
                        self.commit_local(std::mem::take(&mut ops))?;
                    }
                }
            }
        }
        self.commit_local(ops)?;
        Ok(report)
    }

    /// Validate one units row: `Ok(Err(reason))` rejects it.
    #[allow(clippy::type_complexity)]
    fn unit_row(
        &self,
        row: &Row<'_>,
        levels: &HashMap<String, (UnitLevel, u64)>,
    ) -> Result<std::result::Result<(String, UnitLevel, Vec<crate::op::OpBody>), String>> {
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(reason) => return Ok(Err(reason.to_string())),
                }
            };
        }
        const CODE: usize = 0;
        const PARENT: usize = 1;
        const LEVEL: usize = 2;
        const KIND: usize = 3;
        const NAME: usize = 4;
        let code = tri!(check_code("code", tri!(row.get(CODE))));
        if let Some((_, l)) = levels.get(&code) {
            return Ok(Err(format!(
                "duplicate of line {l}: the same unit code twice"
            )));
        }
        let level = tri!(UnitLevel::parse(&tri!(row.get(LEVEL)).to_lowercase()));
        let parent = tri!(row.opt(PARENT));
        let parent = match (level, parent) {
            (UnitLevel::Province, None) => None,
            (UnitLevel::Province, Some(_)) | (_, None) => {
                return Ok(Err(Error::invalid(
                    "parent_code",
                    "the parent unit's code (none for a province only)",
                )
                .to_string()))
            }
            (_, Some(p)) => {
                let p = tri!(check_code("parent_code", p));
                let parent_level = match levels.get(&p) {
                    Some((l, _)) => Some(*l),
                    None => self
                        .conn
                        .prepare_cached("SELECT level FROM units WHERE code = ?1")?
                        .query_row([&p], |r| r.get::<_, Option<String>>(0))
                        .optional()?
                        .flatten()
                        .and_then(|l| UnitLevel::parse(&l).ok()),
                };
                let (want, expected) = match level {
                    UnitLevel::District => (UnitLevel::Province, "the code of a province"),
                    UnitLevel::Commune => (UnitLevel::District, "the code of a district"),
                    _ => (UnitLevel::Commune, "the code of a commune"),
                };
                match parent_level {
                    None => {
                        return Ok(Err(
                            "unknown parent_code: no unit with that code on an earlier line \
                             or in the store (list parents before their children)"
                                .to_owned(),
                        ))
                    }
                    Some(l) if l != want => {
                        return Ok(Err(Error::invalid("parent_code", expected).to_string()))
                    }
                    Some(_) => Some(p),
                }
            }
        };
        let input = UnitInput {
            code: code.clone(),
            parent_code: parent,
            level,
            kind: tri!(row.get(KIND)).to_owned(),
            name: tri!(row.get(NAME)).to_owned(),
        };
        let ops = tri!(self.unit_ops(&input));
        Ok(Ok((code, level, ops)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CampaignInput, HouseholdInput, ManualClock, Options, ResidentInput};
    use chrono::NaiveDate;
    use std::sync::Arc;
    use unicode_normalization::UnicodeNormalization;

    const UNITS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/ninh-thuan-2023-units.csv"
    );
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/roster/");
    const CAMPAIGN: Uuid = Uuid::from_u128(0x0189_0b6e_7c00_7abc_8def_0123_4567_89ab);

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn store() -> Store {
        Store::open_in_memory(Options {
            clock: Arc::new(ManualClock::new(1_688_000_000_000)),
            ..Options::default()
        })
        .unwrap()
    }

    /// A store with the province's units, the fixture villages and the campaign.
    fn campaign_store() -> Store {
        let mut s = store();
        let r = s
            .import_units_csv(std::fs::File::open(UNITS).unwrap())
            .unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        let r = s.import_units_csv(&fixture("villages.csv")[..]).unwrap();
        assert_eq!((r.rows, r.accepted), (3, 3), "{:?}", r.rejected);
        s.put_campaign(CampaignInput {
            id: CAMPAIGN,
            name: "80 ngày đêm".into(),
            start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
            target: 264_720,
            unit_code: "58".into(),
        })
        .unwrap();
        s
    }

    fn import(s: &mut Store, csv: &[u8]) -> Result<ImportReport> {
        s.import_roster(CAMPAIGN, csv, &mut |_| {})
    }

    fn count(s: &Store, sql: &str) -> i64 {
        s.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn rows_of(s: &Store, sql: &str) -> Vec<Vec<String>> {
        let mut stmt = s.connection().prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                            rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                            v => v.as_str().unwrap_or("?").to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn imports_the_reference_units_idempotently() {
        let mut s = store();
        let r = s
            .import_units_csv(std::fs::File::open(UNITS).unwrap())
            .unwrap();
        assert_eq!((r.rows, r.accepted, r.unchanged), (73, 73, 0));
        assert!(r.rejected.is_empty());
        let by_level = rows_of(
            &s,
            "SELECT level, count(*) FROM units GROUP BY level ORDER BY level",
        );
        assert_eq!(
            by_level,
            [["commune", "65"], ["district", "7"], ["province", "1"]]
        );
        assert_eq!(
            count(&s, "SELECT count(*) FROM units WHERE parent_code = '58'"),
            7
        );
        let vv = s.version_vector().unwrap();
        let r = s
            .import_units_csv(std::fs::File::open(UNITS).unwrap())
            .unwrap();
        assert_eq!((r.rows, r.accepted, r.unchanged), (73, 73, 73));
        assert_eq!(s.version_vector().unwrap(), vv);

        // Villages under the communes.
        let r = s.import_units_csv(&fixture("villages.csv")[..]).unwrap();
        assert_eq!((r.accepted, r.unchanged), (3, 0));
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM units WHERE level = 'village' AND parent_code = '22738'"
            ),
            2
        );
    }

    #[test]
    fn bad_unit_rows_are_reported() {
        let mut s = store();
        s.import_units_csv(std::fs::File::open(UNITS).unwrap())
            .unwrap();
        let csv = "Name,Code,Parent_Code,Level,Kind\n\
                   Thôn 1,22741-01,22741,village,thôn\n\
                   Thôn 2,22741-02,99999,village,thôn\n\
                   Thôn 3,22741-03,582,village,thôn\n\
                   Thôn 1 bis,22741-01,22741,village,thôn\n\
                   Tỉnh X,59,58,province,province\n\
                   Thôn 5,22741-05,22741,hamlet,thôn\n\
                   Thôn 6,22741-06,22741-01,village,thôn\n";
        let r = s.import_units_csv(csv.as_bytes()).unwrap();
        assert_eq!((r.rows, r.accepted), (7, 1));
        let lines: Vec<u64> = r.rejected.iter().map(|x| x.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8]);
        let reasons: Vec<&str> = r.rejected.iter().map(|x| x.reason.as_str()).collect();
        assert!(reasons[0].contains("unknown parent_code"), "{}", reasons[0]);
        assert!(reasons[1].contains("parent_code") && reasons[1].contains("commune"));
        assert!(reasons[2].contains("duplicate of line 2"));
        assert!(reasons[3].contains("parent_code"));
        assert!(reasons[4].contains("level"));
        assert!(reasons[5].contains("commune"));
    }

    /// (line, field or phrase the reason must contain)
    const SMALL_REJECTED: [(u64, &str); 11] = [
        (5, "invalid phone"),
        (6, "invalid id_number"),
        (7, "unknown village_code"),
        (8, "invalid full_name"),
        (9, "invalid birth_date"),
        (10, "duplicate of line 4"),
        (11, "invalid village_code: differs from line 2"),
        (
            13,
            "invalid id_number: the same 12-digit citizen ID as line 3",
        ),
        (18, "invalid account"),
        (19, "the row has 4 fields but the header has 10"),
        (21, "invalid relation: a second head of household (line 15"),
    ];

    #[test]
    fn small_roster_reports_every_bad_row_by_line() {
        let mut s = campaign_store();
        let data = fixture("small.csv");
        let r = import(&mut s, &data).unwrap();
        let got: Vec<(u64, &str)> = r
            .rejected
            .iter()
            .map(|x| (x.line, x.reason.as_str()))
            .collect();
        assert_eq!(got.len(), SMALL_REJECTED.len(), "{got:#?}");
        for ((line, reason), (want_line, want)) in got.iter().zip(SMALL_REJECTED) {
            assert_eq!(*line, want_line, "{got:#?}");
            assert!(reason.contains(want), "line {line}: {reason}");
        }
        assert_eq!(r.rows, 18);
        assert_eq!(r.accepted, 7);
        assert_eq!(r.rows, r.accepted + r.rejected.len());
        assert_eq!((r.residents_changed, r.unchanged), (7, 0));
        assert_eq!(r.households_changed, 4);
        assert_eq!(count(&s, "SELECT count(*) FROM residents"), 7);
        assert_eq!(count(&s, "SELECT count(*) FROM households"), 4);
        assert_eq!(count(&s, "SELECT count(*) FROM account_state"), 7);

        // No reason repeats a value of any row of the file.
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(&data[..]);
        for rec in rdr.records() {
            for cell in rec.unwrap().iter() {
                let cell = cell.trim();
                // (The account column's codes are vocabulary, not personal data.)
                if cell.chars().count() < 4 || RosterStatus::parse(cell).is_ok() {
                    continue;
                }
                for x in &r.rejected {
                    assert!(!x.reason.contains(cell), "line {}: {}", x.line, x.reason);
                }
            }
        }
        // Validation errors are the crate's own: they name the field and the accepted form.
        let bad_phone = &r.rejected[0].reason;
        assert!(
            bad_phone.starts_with("invalid phone: expected "),
            "{bad_phone}"
        );
    }

    #[test]
    fn small_roster_content() {
        let mut s = campaign_store();
        import(&mut s, &fixture("small.csv")).unwrap();
        let an = resident_id(
            CAMPAIGN,
            "HH001",
            Some(&IdNumber::Cccd("058075001234".into())),
            "",
            "",
        );
        let hh1 = household_id(CAMPAIGN, "HH001");
        let got = rows_of(
            &s,
            &format!(
                "SELECT code, village_code, address, head_id FROM households WHERE id = '{hh1}'"
            ),
        );
        assert_eq!(got, [["HH001", "22738-01", "12 Lê Lợi", &an.to_string()]]);
        let got = rows_of(
            &s,
            &format!(
                "SELECT household_id, full_name, birth_date, gender, id_number, phone, relation,
                        roster_account, name_folded FROM residents WHERE id = '{an}'"
            ),
        );
        assert_eq!(
            got,
            [[
                hh1.to_string().as_str(),
                "Nguyễn Văn An",
                "1975-03-12",
                "male",
                "058075001234",
                "0912345678",
                "chủ hộ",
                "none",
                "nguyen van an"
            ]]
        );
        // Spaces in an ID number, +84 phones, DD/MM/YYYY dates are normalised.
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM residents WHERE id_number = '058060000777'"
            ),
            1
        );
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM residents WHERE phone = '0901234567'"
            ),
            1
        );
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM residents WHERE birth_date = '1980-08-12'"
            ),
            1
        );
        // The roster's account claims reach the account state.
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM account_state WHERE need = 'level1_pending'"
            ),
            1
        );
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM account_state WHERE need = 'level2_to_activate'"
            ),
            1
        );
        // A quoted comma and a quoted line break stay inside the value.
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM households WHERE address = '8 Ngô Quyền, tổ 3'"
            ),
            1
        );
        // HH006: no address on its head's row, so the next row's (line break collapsed) is used;
        // the head is marked by "Head".
        let hh6 = household_id(CAMPAIGN, "HH006");
        let minh = resident_id(CAMPAIGN, "HH006", None, "mai van minh", "1985");
        let got = rows_of(
            &s,
            &format!("SELECT address, head_id FROM households WHERE id = '{hh6}'"),
        );
        assert_eq!(got, [["7 Lý Thường Kiệt (hẻm 2)", &minh.to_string()]]);
        // HH002's first rows were rejected: its first accepted row sets it.
        let hh2 = household_id(CAMPAIGN, "HH002");
        let got = rows_of(
            &s,
            &format!("SELECT village_code, head_id FROM households WHERE id = '{hh2}'"),
        );
        assert_eq!(got, [["22738-02", "NULL"]]);
    }

    #[test]
    fn importing_twice_makes_no_operation() {
        let mut s = campaign_store();
        let data = fixture("small.csv");
        let first = import(&mut s, &data).unwrap();
        let vv = s.version_vector().unwrap();
        let dump = s.canonical_dump().unwrap();
        let second = import(&mut s, &data).unwrap();
        assert_eq!(s.version_vector().unwrap(), vv);
        assert_eq!(s.canonical_dump().unwrap(), dump);
        assert_eq!(second.accepted, first.accepted);
        assert_eq!(second.unchanged, second.accepted);
        assert_eq!(
            (second.households_changed, second.residents_changed),
            (0, 0)
        );
        assert_eq!(second.rejected, first.rejected);
    }

    #[test]
    fn import_agrees_with_the_write_api() {
        let mut s = campaign_store();
        import(&mut s, &fixture("small.csv")).unwrap();
        let an = resident_id(
            CAMPAIGN,
            "HH001",
            Some(&IdNumber::Cccd("058075001234".into())),
            "",
            "",
        );
        let hh1 = household_id(CAMPAIGN, "HH001");
        let h = HouseholdInput {
            id: hh1,
            code: "HH001".into(),
            village_code: "22738-01".into(),
            address: Some("12 Lê Lợi".into()),
            head_id: Some(an),
        };
        assert_eq!(s.household_ops(&h).unwrap(), Vec::new());
        let r = ResidentInput {
            id: an,
            household_id: hh1,
            full_name: "Nguyễn Văn An".into(),
            birth_date: "12/03/1975".into(),
            gender: Some("Nam".into()),
            id_number: Some("058075001234".into()),
            phone: Some("0912 345 678".into()),
            relation: Some("chủ hộ".into()),
            account: RosterStatus::None,
            agency: None,
        };
        assert_eq!(s.resident_ops(&r).unwrap(), Vec::new());
    }

    #[test]
    fn two_stores_importing_the_same_roster_converge() {
        let mut a = campaign_store();
        let mut b = campaign_store();
        import(&mut a, &fixture("small.csv")).unwrap();
        import(&mut b, &fixture("small.csv")).unwrap();
        assert_ne!(a.replica_id(), b.replica_id());
        for sql in [
            "SELECT * FROM households ORDER BY id",
            "SELECT * FROM residents ORDER BY id",
            "SELECT * FROM account_state ORDER BY resident_id",
        ] {
            assert_eq!(rows_of(&a, sql), rows_of(&b, sql), "{sql}");
        }
        // After a sync both hold the same records, not twice as many.
        let from_a = a.all_ops_since(&Default::default()).unwrap();
        let from_b = b.all_ops_since(&Default::default()).unwrap();
        a.apply_ops(&from_b).unwrap();
        b.apply_ops(&from_a).unwrap();
        assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
        assert_eq!(count(&a, "SELECT count(*) FROM residents"), 7);
    }

    #[test]
    fn nfd_names_are_stored_nfc() {
        let mut s = campaign_store();
        let nfd: String = "Đặng Thị Đào".nfd().collect();
        let nfd_address: String = "3 Hải Thượng Lãn Ông".nfd().collect();
        let csv = format!(
            "full_name,birth_date,household_code,village_code,address,relation\n\
             {nfd},1970,HH010,22741-01,{nfd_address},{}\n",
            "chủ hộ".nfd().collect::<String>()
        );
        let r = import(&mut s, csv.as_bytes()).unwrap();
        assert_eq!(r.accepted, 1, "{:?}", r.rejected);
        let got = rows_of(
            &s,
            "SELECT r.full_name, r.name_folded, h.address, h.head_id = r.id
               FROM residents r JOIN households h ON h.id = r.household_id",
        );
        assert_eq!(
            got,
            [["Đặng Thị Đào", "dang thi dao", "3 Hải Thượng Lãn Ông", "1"]]
        );
        // The same person typed in NFC is the same resident.
        let csv_nfc = csv.nfc().collect::<String>();
        let r = import(&mut s, csv_nfc.as_bytes()).unwrap();
        assert_eq!((r.accepted, r.unchanged), (1, 1));
    }

    #[test]
    fn quoted_line_breaks_keep_physical_line_numbers() {
        let mut s = campaign_store();
        let csv = "\u{feff}HOUSEHOLD_CODE, Village_Code ,address,full_name,birth_date\r\n\
                   H1,22741-01,\"1 Đường A, tổ 1\r\nthôn Một\",Lê Văn A,1980\r\n\
                   \r\n\
                   H1,22741-01,\"1 Đường A, tổ 1\r\nthôn Một\",Lê Văn B,198O\r\n\
                   H2,22741-01,\"x\",Lê Văn C,1981,extra\r\n\
                   H3,22741-01,\"unclosed,Lê Văn D,1982\r\nH4,22741-01,,Lê Văn E,1983\r\n";
        let r = import(&mut s, csv.as_bytes()).unwrap();
        assert_eq!((r.rows, r.accepted), (4, 1));
        let lines: Vec<u64> = r.rejected.iter().map(|x| x.line).collect();
        assert_eq!(lines, [5, 7, 8], "{:?}", r.rejected);
        assert!(r.rejected[0].reason.contains("birth_date"));
        assert!(r.rejected[1].reason.contains("must be quoted"));
        assert!(
            r.rejected[2].reason.contains("lines 8-9"),
            "{:?}",
            r.rejected[2]
        );
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM households WHERE address = '1 Đường A, tổ 1 thôn Một'"
            ),
            1
        );
    }

    #[test]
    fn rows_of_empty_cells_are_skipped_not_counted() {
        let mut s = campaign_store();
        let csv = "household_code,village_code,full_name,birth_date\n\
                   ,,,\n\
                   H1,22741-01,Lê Văn A,1980\n\
                   , ,\t,\n\
                   H1,22741-01,,1981\n";
        let r = import(&mut s, csv.as_bytes()).unwrap();
        assert_eq!((r.rows, r.accepted), (2, 1));
        assert_eq!(r.rejected[0].line, 5);
    }

    #[test]
    fn header_problems_are_csv_errors() {
        let mut s = campaign_store();
        let e = import(
            &mut s,
            b"household_code,village_code,full_name\nH1,22741-01,A\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Csv(m) if m.contains("birth_date")),
            "{e}"
        );
        let e = import(
            &mut s,
            b"household_code,village_code,full_name,birth_date,email\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Csv(m) if m.contains("email (column 5)")),
            "{e}"
        );
        let e = import(&mut s, b"full_name,Full_Name,birth_date\n").unwrap_err();
        assert!(
            matches!(&e, Error::Csv(m) if m.contains("full_name appears twice")),
            "{e}"
        );
        // A file without its header: the first data row must not be echoed.
        let e = import(
            &mut s,
            "H1,22741-01,,Lê Văn A,1980,nam,058080001234,0912345678,chủ hộ,\n".as_bytes(),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Csv(_)), "{m}");
        for secret in ["Lê Văn A", "058080001234", "0912345678", "1980"] {
            assert!(!m.contains(secret), "{m}");
        }
        // Nor a number glued to a column name.
        let e = import(
            &mut s,
            b"household_code,village_code,full_nam058180004320\n",
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(m.contains("column 3") && !m.contains("058180004320"), "{m}");
        let e = import(&mut s, b"").unwrap_err();
        assert!(matches!(e, Error::Csv(_)));
        // Nothing was written by any of these.
        assert_eq!(count(&s, "SELECT count(*) FROM households"), 0);
    }

    #[test]
    fn legacy_encodings_and_separators_are_refused_as_a_whole() {
        let mut s = campaign_store();
        // "Lê" in Windows-1258 (ê = 0xEA): not UTF-8.
        let mut cp1258 =
            b"household_code,village_code,full_name,birth_date\nH1,22741-01,L".to_vec();
        cp1258.extend_from_slice(&[0xEA]);
        cp1258.extend_from_slice(b" A,1980\n");
        let e = import(&mut s, &cp1258).unwrap_err();
        assert!(
            matches!(&e, Error::Csv(m) if m.contains("UTF-8") && m.contains("line 2")),
            "{e}"
        );
        let e = import(
            &mut s,
            b"household_code;village_code;full_name;birth_date\nH1;22741-01;A;1980\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Csv(m) if m.contains("semicolons")),
            "{e}"
        );
        assert_eq!(count(&s, "SELECT count(*) FROM households"), 0);
    }

    fn doc() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/roster-format.md"
        ))
        .unwrap()
    }

    /// The `n`th fenced csv block of the format document.
    fn doc_csv_block(n: usize) -> String {
        let doc = doc();
        let block = doc.split("```csv\n").nth(n + 1).unwrap();
        block[..block.find("```").unwrap()].to_owned()
    }

    #[test]
    fn doc_example_imports_cleanly() {
        let mut s = store();
        s.import_units_csv(std::fs::File::open(UNITS).unwrap())
            .unwrap();
        let r = s.import_units_csv(doc_csv_block(1).as_bytes()).unwrap();
        assert_eq!((r.accepted, r.rejected.len()), (2, 0));
        s.put_campaign(CampaignInput {
            id: CAMPAIGN,
            name: "c".into(),
            start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
            target: 1,
            unit_code: "58".into(),
        })
        .unwrap();
        let r = import(&mut s, doc_csv_block(0).as_bytes()).unwrap();
        assert_eq!(r.rejected, Vec::new());
        assert_eq!((r.accepted, r.households_changed), (5, 2));
        let heads = rows_of(
            &s,
            "SELECT r.full_name FROM households h JOIN residents r ON r.id = h.head_id
              ORDER BY h.code",
        );
        assert_eq!(heads, [["Nguyễn Văn An"], ["Võ Văn Ích"]]);
    }

    /// The reasons quoted in the format document are the ones the importer gives.
    #[test]
    fn doc_reasons_are_the_real_ones() {
        let mut s = campaign_store();
        let r = import(&mut s, &fixture("small.csv")).unwrap();
        let doc = doc();
        let mut quoted = 0;
        for row in doc
            .lines()
            .filter(|l| l.starts_with("| ") && l.ends_with("` |"))
        {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
            let Ok(line) = cells[0].trim().parse::<u64>() else {
                continue;
            };
            let reason = cells[1].trim().trim_matches('`');
            let got = r.rejected.iter().find(|x| x.line == line).unwrap();
            assert_eq!(got.reason, reason, "line {line}");
            quoted += 1;
        }
        assert_eq!(quoted, 8);
    }

    #[test]
    fn unknown_campaign_is_not_found() {
        let mut s = campaign_store();
        let e = s
            .import_roster(Uuid::from_u128(7), &fixture("small.csv")[..], &mut |_| {})
            .unwrap_err();
        assert!(matches!(
            e,
            Error::NotFound {
                field: "campaign_id",
                ..
            }
        ));
    }

    #[test]
    fn cccd_already_held_by_another_resident_is_rejected() {
        let mut s = campaign_store();
        import(&mut s, &fixture("small.csv")).unwrap();
        // The same CCCD under a resident created by hand with another id.
        let hh1 = household_id(CAMPAIGN, "HH001");
        let other = Uuid::from_u128(42);
        s.put_resident(ResidentInput {
            id: other,
            household_id: hh1,
            full_name: "Someone".into(),
            birth_date: "1999".into(),
            gender: None,
            id_number: Some("058099000001".into()),
            phone: None,
            relation: None,
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
        let csv = "household_code,village_code,full_name,birth_date,id_number\n\
                   HH001,22738-01,Người Khác,1999,058099000001\n";
        let r = import(&mut s, csv.as_bytes()).unwrap();
        assert_eq!(r.rejected.len(), 1);
        assert!(r.rejected[0].reason.starts_with("invalid id_number"));
        assert!(!r.rejected[0].reason.contains("058099000001"));
    }

    #[test]
    fn progress_counts_increase_over_several_chunks() {
        let mut s = campaign_store();
        let mut csv = String::from("household_code,village_code,full_name,birth_date,relation\n");
        for i in 0..2500 {
            let relation = if i % 4 == 0 { "chủ hộ" } else { "con" };
            csv.push_str(&format!("H{},22741-01,Người {i},1980,{relation}\n", i / 4));
        }
        let ops_before = count(&s, "SELECT count(*) FROM oplog");
        let mut seen = Vec::new();
        let r = s
            .import_roster(CAMPAIGN, csv.as_bytes(), &mut |p| seen.push(p))
            .unwrap();
        assert_eq!(
            (r.rows, r.accepted, r.residents_changed),
            (2500, 2500, 2500)
        );
        assert_eq!(r.households_changed, 625);
        let rows: Vec<usize> = seen.iter().map(|p| p.rows_read).collect();
        assert_eq!(rows, [1000, 2000, 2500]);
        assert!(seen.windows(2).all(|w| w[0].bytes_read < w[1].bytes_read));
        assert_eq!(seen.last().unwrap().bytes_read, csv.len() as u64);
        assert_eq!(
            count(&s, "SELECT count(*) FROM households WHERE head_id IS NULL"),
            0
        );
        // More than one chunk, nothing lost: one operation per household and per resident.
        assert_eq!(count(&s, "SELECT count(*) FROM residents"), 2500);
        assert_eq!(
            count(&s, "SELECT count(*) FROM oplog") - ops_before,
            625 + 2500
        );
    }

    #[test]
    fn ids_are_deterministic_and_campaign_scoped() {
        let cccd = IdNumber::Cccd("058075001234".into());
        let a = resident_id(CAMPAIGN, "H1", Some(&cccd), "x", "1975");
        // A CCCD identifies the person whatever household or spelling.
        assert_eq!(a, resident_id(CAMPAIGN, "H2", Some(&cccd), "y", "1976"));
        assert_ne!(
            a,
            resident_id(Uuid::from_u128(1), "H1", Some(&cccd), "x", "1975")
        );
        let cmnd = IdNumber::Cmnd("123456789".into());
        assert_eq!(
            resident_id(CAMPAIGN, "H1", Some(&cmnd), "le van a", "1980"),
            resident_id(CAMPAIGN, "H1", None, "le van a", "1980")
        );
        assert_eq!(
            household_id(CAMPAIGN, "H1"),
            Uuid::new_v5(&CAMPAIGN, b"household:H1")
        );
        assert_eq!(a, Uuid::new_v5(&CAMPAIGN, b"resident:cccd:058075001234"));
    }
}
