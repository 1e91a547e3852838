//! Keys as fixed-width numbers: each key column becomes a small dense id (a year's
//! offset from 1949, an enumerated value's position, a code's id in the dictionary of
//! the table it refers to, or an id given in order of appearance) and the ids are
//! combined in mixed radix into one `u64`. Uniqueness is then a bitmap of those
//! numbers ([`RoaringTreemap`]), about a bit per row for dense keys, never a string.

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use foldhash::{HashMap, HashSet};
use roaring::RoaringTreemap;

use super::rules::{ints, strings};
use super::validate::{FileRef, Problems};
use crate::model::{is_year, Kind, TableDef};
use crate::{Error, Result};

/// No id: the cell is NULL, out of range, or a code its dictionary lacks.
pub const NONE: u32 = u32::MAX;

const FIRST_YEAR: i32 = 1949;
const YEARS: u64 = 152;

/// Codes and their ids.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    ids: HashMap<Box<str>, u32>,
}

impl Dict {
    pub fn get(&self, code: &str) -> Option<u32> {
        self.ids.get(code).copied()
    }

    /// The code's id, given the next id when it is new.
    pub fn intern(&mut self, code: &str) -> u32 {
        if let Some(id) = self.ids.get(code) {
            return *id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(code.into(), id);
        id
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// How one key column becomes an id.
#[derive(Debug, Clone)]
pub enum Part {
    Year,
    /// A whole number within inclusive bounds: its offset from the lower one.
    Range(i32, i32),
    Enum(&'static [&'static str]),
    /// A code of another table, looked up in that table's dictionary.
    Foreign(Arc<Dict>),
    /// The table's own code, given ids as it appears, below this radix (the bits
    /// the other parts leave, shared among the own parts; 2^28 codes at least).
    Own(u64),
}

impl Part {
    fn radix(&self) -> u64 {
        match self {
            Part::Year => YEARS,
            Part::Range(low, high) => (i64::from(*high) - i64::from(*low) + 1) as u64,
            Part::Enum(values) => values.len() as u64,
            Part::Foreign(dict) => dict.len().max(1) as u64,
            Part::Own(radix) => *radix,
        }
    }
}

/// The columns of a table's key and how each becomes an id.
#[derive(Debug, Clone)]
pub struct KeyCodec {
    pub columns: Vec<usize>,
    pub parts: Vec<Part>,
}

impl KeyCodec {
    /// `foreign(column)` gives the dictionary of the table a key column refers to.
    pub fn new(def: &TableDef, foreign: impl Fn(&str) -> Option<Arc<Dict>>) -> Result<Self> {
        let mut columns = Vec::new();
        let mut parts = Vec::new();
        for name in def.key {
            let i = def.column_index(name).expect("key column is in the model");
            let column = &def.columns[i];
            parts.push(match (column.kind, column.allowed) {
                (Kind::Int, _) if is_year(name) => Part::Year,
                (Kind::Int, _) => match column.bounds() {
                    Some((low, high)) => Part::Range(low, high),
                    None => {
                        return Err(Error::usage(format!(
                            "{}: key column {name} is a whole number without bounds",
                            def.name
                        )))
                    }
                },
                (_, Some(values)) => Part::Enum(values),
                (Kind::Text, None) => match foreign(name) {
                    Some(dict) => Part::Foreign(dict),
                    None => Part::Own(0),
                },
                _ => Part::Own(0),
            });
            columns.push(i);
        }
        let own = parts.iter().filter(|p| matches!(p, Part::Own(_))).count() as u32;
        let fixed = parts
            .iter()
            .filter(|p| !matches!(p, Part::Own(_)))
            .fold(1u64, |space, part| space.saturating_mul(part.radix()));
        if let Some(bits) = (u64::MAX / fixed).ilog2().checked_div(own) {
            let bits = bits.min(32);
            for part in &mut parts {
                if let Part::Own(radix) = part {
                    *radix = 1 << bits;
                }
            }
        }
        let space = parts
            .iter()
            .try_fold(1u64, |space, part| space.checked_mul(part.radix()));
        if space.is_none() {
            return Err(Error::usage(format!(
                "{}: too many distinct key values to check uniqueness",
                def.name
            )));
        }
        Ok(KeyCodec { columns, parts })
    }

    /// Every text key column as the table's own code: for rows checked on their own.
    pub fn local(def: &TableDef) -> Result<Self> {
        Self::new(def, |_| None)
    }

    /// Ids of every part but [`Part::Own`] ones (left `None`): what can be computed
    /// from the batch alone, on any thread.
    pub fn part_ids(&self, batch: &RecordBatch) -> Vec<Option<Vec<u32>>> {
        self.columns
            .iter()
            .zip(&self.parts)
            .map(|(&c, part)| {
                let column = batch.column(c);
                match part {
                    Part::Year => {
                        let years = ints(column);
                        Some(
                            (0..years.len())
                                .map(|r| match years.is_valid(r).then(|| years.value(r)) {
                                    Some(y)
                                        if (FIRST_YEAR..FIRST_YEAR + YEARS as i32).contains(&y) =>
                                    {
                                        (y - FIRST_YEAR) as u32
                                    }
                                    _ => NONE,
                                })
                                .collect(),
                        )
                    }
                    Part::Range(low, high) => {
                        let values = ints(column);
                        Some(
                            (0..values.len())
                                .map(|r| match values.is_valid(r).then(|| values.value(r)) {
                                    Some(v) if (*low..=*high).contains(&v) => (v - low) as u32,
                                    _ => NONE,
                                })
                                .collect(),
                        )
                    }
                    Part::Enum(values) => {
                        let texts = strings(column);
                        Some(
                            (0..texts.len())
                                .map(|r| {
                                    texts
                                        .is_valid(r)
                                        .then(|| values.iter().position(|v| *v == texts.value(r)))
                                        .flatten()
                                        .map_or(NONE, |p| p as u32)
                                })
                                .collect(),
                        )
                    }
                    Part::Foreign(dict) => Some(lookup(dict, column.as_ref())),
                    Part::Own(_) => None,
                }
            })
            .collect()
    }

    /// Fills the [`Part::Own`] ids from `own` (one dictionary per own part), adding
    /// the codes it lacks.
    pub fn fill_own(&self, batch: &RecordBatch, ids: &mut [Option<Vec<u32>>], own: &mut [Dict]) {
        self.fill_own_with(batch, ids, |part, code| own[part].intern(code));
    }

    /// Fills the [`Part::Own`] ids from `own`, leaving codes it lacks without an id.
    pub fn look_up_own(&self, batch: &RecordBatch, ids: &mut [Option<Vec<u32>>], own: &[Dict]) {
        self.fill_own_with(batch, ids, |part, code| own[part].get(code).unwrap_or(NONE));
    }

    /// `id(own part, code)` for every non-NULL cell of each own part.
    fn fill_own_with(
        &self,
        batch: &RecordBatch,
        ids: &mut [Option<Vec<u32>>],
        mut id: impl FnMut(usize, &str) -> u32,
    ) {
        let mut next = 0;
        for ((&c, part), slot) in self.columns.iter().zip(&self.parts).zip(ids.iter_mut()) {
            let Part::Own(radix) = part else {
                continue;
            };
            let texts = strings(batch.column(c));
            *slot = Some(
                (0..texts.len())
                    .map(|r| match texts.is_valid(r) {
                        false => NONE,
                        true => id(next, texts.value(r)),
                    })
                    // Beyond the radix (hundreds of millions of codes) a key is not
                    // tracked rather than confused with another.
                    .map(|id| if u64::from(id) < *radix { id } else { NONE })
                    .collect(),
            );
            next += 1;
        }
    }

    /// How many own dictionaries [`KeyCodec::fill_own`] takes.
    pub fn own_parts(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Own(_)))
            .count()
    }

    /// The keys of `rows` rows from their part ids; `None` where a part has no id.
    pub fn combine(&self, ids: &[Option<Vec<u32>>], rows: usize) -> Vec<Option<u64>> {
        let mut keys = vec![Some(0u64); rows];
        for (part, ids) in self.parts.iter().zip(ids) {
            let radix = part.radix();
            let ids = ids.as_ref().expect("every part has ids");
            for (key, &id) in keys.iter_mut().zip(ids) {
                *key = match (*key, id) {
                    (Some(k), id) if id != NONE => Some(k * radix + u64::from(id)),
                    _ => None,
                };
            }
        }
        keys
    }

    /// The key columns of `row` as a message shows them: `2024, 101, D1101`.
    pub fn describe(&self, batch: &RecordBatch, row: usize) -> String {
        self.columns
            .iter()
            .map(|&c| {
                let column = batch.column(c);
                match column.data_type() {
                    datafusion::arrow::datatypes::DataType::Int32 => {
                        ints(column.as_ref()).value(row).to_string()
                    }
                    _ => strings(column.as_ref()).value(row).to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Each cell's id in `dict`, [`NONE`] for NULL and unknown codes.
pub fn lookup(dict: &Dict, column: &dyn Array) -> Vec<u32> {
    let texts = strings(column);
    (0..texts.len())
        .map(|r| {
            if texts.is_valid(r) {
                dict.get(texts.value(r)).unwrap_or(NONE)
            } else {
                NONE
            }
        })
        .collect()
}

/// The keys an input holds: which appeared, and which appeared more than once.
pub struct KeyTracker {
    pub codec: KeyCodec,
    pub own: Vec<Dict>,
    seen: RoaringTreemap,
    /// Keys met a second time; their rows are found by a second reading.
    pub repeated: HashSet<u64>,
    label: String,
    /// How to load rows the warehouse already holds: by year, or the whole table.
    reload: &'static str,
}

impl KeyTracker {
    pub fn new(def: &TableDef, codec: KeyCodec) -> Self {
        KeyTracker {
            own: vec![Dict::default(); codec.own_parts()],
            codec,
            seen: RoaringTreemap::new(),
            repeated: HashSet::default(),
            label: def.key.join(", "),
            reload: match def.partitioned() {
                true => "use --mode replace-year to re-load a year",
                false => "use --mode replace to re-load the table",
            },
        }
    }

    /// The keys of `batch` (part ids from [`KeyCodec::part_ids`], own parts filled
    /// here), recorded as seen.
    pub fn add(&mut self, batch: &RecordBatch, mut ids: Vec<Option<Vec<u32>>>) -> Vec<Option<u64>> {
        self.codec.fill_own(batch, &mut ids, &mut self.own);
        let keys = self.codec.combine(&ids, batch.num_rows());
        for key in keys.iter().flatten() {
            if !self.seen.insert(*key) {
                self.repeated.insert(*key);
            }
        }
        keys
    }

    pub fn contains(&self, key: u64) -> bool {
        self.seen.contains(key)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The keys of a batch read again (a second reading of the input, or stored
    /// rows), with the ids the first reading gave; own codes it never met get none.
    pub fn keys_again(&self, batch: &RecordBatch) -> Vec<Option<u64>> {
        let mut ids = self.codec.part_ids(batch);
        self.codec.look_up_own(batch, &mut ids, &self.own);
        self.codec.combine(&ids, batch.num_rows())
    }
}

/// The second reading of an input whose keys broke a rule: finds the row of every
/// repeated key and of every key the warehouse already holds.
pub struct Locator<'a> {
    tracker: &'a KeyTracker,
    stored: &'a HashSet<u64>,
    first: HashMap<u64, (FileRef, usize)>,
}

impl<'a> Locator<'a> {
    pub fn new(tracker: &'a KeyTracker, stored: &'a HashSet<u64>) -> Self {
        Locator {
            tracker,
            stored,
            first: HashMap::default(),
        }
    }

    pub fn visit(
        &mut self,
        file: &FileRef,
        batch: &RecordBatch,
        lines: &[usize],
        keys: &[Option<u64>],
        problems: &mut Problems,
    ) {
        let label = self.tracker.label();
        for (row, key) in keys.iter().enumerate() {
            let Some(key) = *key else { continue };
            if self.stored.contains(&key) {
                problems.add(file.problem(
                    lines[row],
                    label,
                    self.tracker.codec.describe(batch, row),
                    format!(
                        "duplicate key ({label}): the warehouse already holds this row ({})",
                        self.tracker.reload
                    ),
                ));
            }
            if !self.tracker.repeated.contains(&key) {
                continue;
            }
            match self.first.get(&key) {
                None => {
                    self.first.insert(key, (file.clone(), lines[row]));
                }
                Some((first_file, first_line)) => {
                    let place = if first_file.order == file.order {
                        format!("row {first_line}")
                    } else {
                        format!("row {first_line} of {}", first_file.name)
                    };
                    problems.add(file.problem(
                        lines[row],
                        label,
                        self.tracker.codec.describe(batch, row),
                        format!("duplicate key ({label}): the same key is on {place}"),
                    ));
                }
            }
        }
    }
}
