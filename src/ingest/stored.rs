//! Rules over the whole input and the stored tables, checked once the input has been
//! read: keys the warehouse already holds, parents defined anywhere in the input,
//! project scores that must add up to their evaluation, and projects a replaced year
//! would leave referred to but gone.

use std::collections::BTreeSet;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use foldhash::{HashMap, HashSet};
use futures::StreamExt;

use super::keys::KeyTracker;
use super::refs::{project_key, Refs, TargetKey};
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
    /// Per (year, object_kind, object_code): (month, executed hundredths, where).
    executions: Executions,
    /// The targets of an input of perf_targets.
    targets: HashSet<TargetKey>,
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
                StoredRule::ExecutionNeverDecreases => {
                    let years = ints(column("year"));
                    let kinds = strings(column("object_kind"));
                    let codes = strings(column("object_code"));
                    let months = ints(column("as_of_month"));
                    let executed = decimals(column("executed_amount"));
                    for r in 0..batch.num_rows() {
                        let valid = [
                            years.is_valid(r),
                            kinds.is_valid(r),
                            codes.is_valid(r),
                            months.is_valid(r),
                            executed.is_valid(r),
                        ];
                        // A month out of range is reported by its own rule only.
                        let in_range = def
                            .column("as_of_month")
                            .bounds()
                            .is_some_and(|(low, high)| (low..=high).contains(&months.value(r)));
                        if valid.contains(&false) || !in_range {
                            continue;
                        }
                        self.executions
                            .entry((years.value(r), kinds.value(r).into(), codes.value(r).into()))
                            .or_default()
                            .push((
                                months.value(r),
                                executed.value(r),
                                Some((file.clone(), chunk.lines[r])),
                            ));
                    }
                }
                StoredRule::KeepsReferencedTargets => {
                    let years = ints(column("year"));
                    let kinds = strings(column("object_kind"));
                    let codes = strings(column("object_code"));
                    let indicators = strings(column("indicator_code"));
                    for r in 0..batch.num_rows() {
                        if years.is_valid(r)
                            && kinds.is_valid(r)
                            && codes.is_valid(r)
                            && indicators.is_valid(r)
                        {
                            self.targets.insert((
                                years.value(r),
                                kinds.value(r).into(),
                                codes.value(r).into(),
                                indicators.value(r).into(),
                            ));
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
    gathered: &mut Gathered,
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
            StoredRule::ExecutionNeverDecreases => {
                // Read once: the input's rows are not needed after this check.
                let mut executions = std::mem::take(&mut gathered.executions);
                if mode == WriteMode::Append {
                    add_stored_executions(engine, &gathered.years(), &mut executions).await?;
                }
                never_decreases(executions, problems);
            }
            StoredRule::KeepsReferencedTargets if mode != WriteMode::Append => {
                let header = gathered.whole();
                for key in &refs.referenced_targets {
                    let (year, kind, code, indicator) = key;
                    if (gathered.years.contains(year) || mode == WriteMode::Replace)
                        && !gathered.targets.contains(key)
                    {
                        problems.add(header.problem(
                            1,
                            "indicator_code",
                            indicator,
                            format!(
                                "replacing would drop the {year} target of {kind} {code} on this \
                                 indicator, which target_results still refers to"
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

/// One month's cumulative execution: (month, executed hundredths, where in the input;
/// none for a stored row).
type Execution = (i32, i128, Option<(FileRef, usize)>);

/// Executions per (year, object_kind, object_code).
type Executions = HashMap<(i32, Box<str>, Box<str>), Vec<Execution>>;

/// Adds the stored execution rows of `years` (no place: they are not in the input).
async fn add_stored_executions(
    engine: &Engine,
    years: &[i32],
    executions: &mut Executions,
) -> Result<()> {
    if years.is_empty() {
        return Ok(());
    }
    let years: Vec<String> = years.iter().map(|y| y.to_string()).collect();
    let sql = format!(
        "SELECT year, object_kind, object_code, as_of_month, executed_amount \
         FROM budget_execution WHERE year IN ({})",
        years.join(", ")
    );
    for batch in engine.query(&sql).await? {
        let years = ints(batch.column(0));
        // Text is read back as Utf8View.
        let kinds = cast(batch.column(1), &DataType::Utf8)?;
        let codes = cast(batch.column(2), &DataType::Utf8)?;
        let (kinds, codes) = (strings(&kinds), strings(&codes));
        let months = ints(batch.column(3));
        let executed = decimals(batch.column(4));
        for r in 0..batch.num_rows() {
            let key = (years.value(r), kinds.value(r).into(), codes.value(r).into());
            // Only objects of the input can break the rule anew.
            if let Some(rows) = executions.get_mut(&key) {
                rows.push((months.value(r), executed.value(r), None));
            }
        }
    }
    Ok(())
}

/// Reports each input row whose cumulative execution is below an earlier month's,
/// or above a later stored month's.
fn never_decreases(executions: Executions, problems: &mut Problems) {
    for ((year, kind, code), mut rows) in executions {
        rows.sort_by_key(|(month, ..)| *month);
        let mut highest: Option<Execution> = None;
        for (month, executed, place) in rows {
            match &highest {
                Some((before, most, earlier)) if executed < *most => {
                    let (at, value, rule) = match (place, earlier) {
                        (Some(place), _) => (
                            place,
                            executed,
                            format!(
                                "execution is cumulative: {kind} {code} had {} executed by month {before} of {year}, \
                                 more than this month {month}",
                                hundredths(*most)
                            ),
                        ),
                        (None, Some(earlier)) => (
                            earlier.clone(),
                            *most,
                            format!(
                                "execution is cumulative: the warehouse holds {} executed for {kind} {code} by the \
                                 later month {month} of {year}, less than this month {before}",
                                hundredths(executed)
                            ),
                        ),
                        (None, None) => continue,
                    };
                    problems.add(at.0.problem(at.1, "executed_amount", hundredths(value), rule));
                }
                _ => highest = Some((month, executed, place)),
            }
        }
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
