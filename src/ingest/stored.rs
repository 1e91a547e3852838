//! Rules over the whole input and the stored tables, checked once the input has been
//! read: keys the warehouse already holds, parents defined anywhere in the input,
//! project scores that must add up to their evaluation, and projects a replaced year
//! would leave referred to but gone.

use std::collections::BTreeSet;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use foldhash::{HashMap, HashSet};
use futures::StreamExt;

use super::keys::KeyTracker;
use super::refs::{project_key, Refs};
use super::rules::{decimals, ints, strings};
use super::validate::{hundredths, FileRef, Problems};
use super::Chunk;
use crate::model::{StoredRule, TableDef};
use crate::storage::WriteMode;
use crate::{Engine, Result};

/// What the first reading gathers for the rules over the whole input.
#[derive(Default)]
pub struct Gathered {
    pub rows: usize,
    pub years: BTreeSet<i32>,
    /// Parents not among the stored departments: (file, row, parent_code).
    parents: Vec<(FileRef, usize, String)>,
    /// Per (year, project): the input's Σ score and where the project first appears.
    sums: HashMap<u64, (i128, FileRef, usize)>,
    /// The (year, project_code) pairs of an input of projects.
    projects: HashSet<(i32, Box<str>)>,
    /// The first input, where problems of the input as a whole are reported.
    first: Option<FileRef>,
}

impl Gathered {
    pub fn add(&mut self, def: &TableDef, refs: &Refs, file: &FileRef, chunk: &Chunk) {
        let batch = &chunk.batch;
        let column = |name: &str| batch.column(def.column_index(name).expect("rule column"));
        self.rows += batch.num_rows();
        if self.first.is_none() {
            self.first = Some(file.clone());
        }
        if let Some(i) = def.column_index("year") {
            // Years come in runs: insert each run once.
            let mut last = None;
            for year in ints(batch.column(i)).iter().flatten() {
                if last != Some(year) {
                    self.years.insert(year);
                    last = Some(year);
                }
            }
        }
        for rule in def.stored_rules {
            match rule {
                StoredRule::ParentExists => {
                    let parents = strings(column("parent_code"));
                    for r in 0..batch.num_rows() {
                        if parents.is_valid(r) && refs.departments.get(parents.value(r)).is_none() {
                            self.parents.push((
                                file.clone(),
                                chunk.lines[r],
                                parents.value(r).to_string(),
                            ));
                        }
                    }
                }
                StoredRule::ScoresAddUpToEvaluation => {
                    let years = ints(column("year"));
                    let codes = strings(column("project_code"));
                    let scores = decimals(column("score"));
                    for r in 0..batch.num_rows() {
                        if !(years.is_valid(r) && codes.is_valid(r)) {
                            continue;
                        }
                        let Some(id) = refs.project_codes.get(codes.value(r)) else {
                            continue;
                        };
                        let entry = self
                            .sums
                            .entry(project_key(years.value(r), id))
                            .or_insert_with(|| (0, file.clone(), chunk.lines[r]));
                        if scores.is_valid(r) {
                            entry.0 += scores.value(r);
                        }
                    }
                }
                StoredRule::KeepsReferencedProjects => {
                    let years = ints(column("year"));
                    let codes = strings(column("project_code"));
                    for r in 0..batch.num_rows() {
                        if years.is_valid(r) && codes.is_valid(r) {
                            self.projects
                                .insert((years.value(r), codes.value(r).into()));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Where a problem of the whole input is reported: its first file, row 1.
    fn whole(&self) -> FileRef {
        self.first.clone().unwrap_or_else(|| FileRef::new("", 0))
    }

    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }
}

/// Checks the rules over the whole input. Returns the keys of the input that the
/// warehouse already holds (appends only); their rows are found by a second reading.
pub async fn check(
    engine: &Engine,
    def: &TableDef,
    refs: &Refs,
    tracker: &KeyTracker,
    gathered: &Gathered,
    mode: WriteMode,
    problems: &mut Problems,
) -> Result<HashSet<u64>> {
    for rule in def.stored_rules {
        match rule {
            StoredRule::ParentExists => {
                // The input's own codes are the first (only) own dictionary.
                let own = tracker.own.first();
                for (file, line, parent) in &gathered.parents {
                    if own.and_then(|d| d.get(parent)).is_none() {
                        problems.add(file.problem(
                            *line,
                            "parent_code",
                            parent,
                            "unknown parent_code: not a dept_code in departments or this file",
                        ));
                    }
                }
            }
            StoredRule::ScoresAddUpToEvaluation => {
                for (key, (sum, file, line)) in &gathered.sums {
                    let Some(total) = refs.finance_totals.get(key) else {
                        continue;
                    };
                    let stored = match mode {
                        WriteMode::Append => refs.score_sums.get(key).copied().unwrap_or(0),
                        WriteMode::ReplaceYear | WriteMode::Replace => 0,
                    };
                    let sum = sum + stored;
                    if sum != *total {
                        problems.add(file.problem(
                            *line,
                            "score",
                            hundredths(sum),
                            format!(
                                "the project's indicator scores add up to {} but its finance_evaluation total_score is {}",
                                hundredths(sum),
                                hundredths(*total)
                            ),
                        ));
                    }
                }
            }
            StoredRule::KeepsReferencedProjects if mode != WriteMode::Append => {
                let header = gathered.whole();
                for (year, code, table) in &refs.referenced {
                    if (gathered.years.contains(year) || mode == WriteMode::Replace)
                        && !gathered.projects.contains(&(*year, code.as_str().into()))
                    {
                        problems.add(header.problem(
                            1,
                            "project_code",
                            code,
                            format!(
                                "replacing year {year} would drop this project, which {table} still refers to"
                            ),
                        ));
                    }
                }
            }
            StoredRule::KeepsReferencedCodes(_) if mode == WriteMode::Replace => {
                let header = gathered.whole();
                let own = tracker.own.first();
                for (code, table) in &refs.referenced_codes {
                    if own.and_then(|d| d.get(code)).is_none() {
                        problems.add(header.problem(
                            1,
                            def.key[0],
                            code,
                            format!(
                                "replacing {} would drop this code, which {table} still refers to",
                                def.name
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    match mode {
        WriteMode::Append => stored_keys(engine, def, tracker, &gathered.years()).await,
        WriteMode::ReplaceYear | WriteMode::Replace => Ok(HashSet::default()),
    }
}

/// The input's keys that the stored rows of its years already hold.
async fn stored_keys(
    engine: &Engine,
    def: &TableDef,
    tracker: &KeyTracker,
    years: &[i32],
) -> Result<HashSet<u64>> {
    let mut found = HashSet::default();
    let filter = if def.partitioned() {
        if years.is_empty() {
            return Ok(found);
        }
        format!(
            "WHERE year IN ({})",
            years
                .iter()
                .map(|y| y.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let sql = format!("SELECT {} FROM {} {filter}", def.key.join(", "), def.name);
    let mut stream = engine.sql(&sql).await?.execute_stream().await?;
    let schema = def.loose_schema();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        // The key columns in the table's own places, the others NULL.
        let columns = def
            .columns
            .iter()
            .map(|c| match def.key.iter().position(|k| *k == c.name) {
                Some(k) => Ok(cast(batch.column(k), &c.kind.data_type())?),
                None => Ok(new_null_array(&c.kind.data_type(), batch.num_rows())),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let batch = RecordBatch::try_new(std::sync::Arc::clone(&schema), columns)?;
        for key in tracker.keys_again(&batch).into_iter().flatten() {
            if tracker.contains(key) {
                found.insert(key);
            }
        }
    }
    Ok(found)
}
