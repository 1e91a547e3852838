//! What the warehouse holds that an input is checked against, read once before the
//! input (the tables it refers to are small: departments, indicators, projects), and
//! the checks of each chunk against it, run in parallel with the row rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use foldhash::{HashMap, HashSet};

use super::keys::{lookup, Dict, KeyCodec, Part, NONE};
use super::rules::{decimals, ints, strings};
use super::validate::{hundredths, FileRef, Problem};
use super::Chunk;
use crate::model::{StoredRule, TableDef};
use crate::storage::WriteMode;
use crate::{Engine, Result};

/// A (year, project id) pair as one number.
pub fn project_key(year: i32, id: u32) -> u64 {
    (u64::from(year as u32) << 32) | u64::from(id)
}

/// The stored data one table's rules refer to, at the versions `versions` names.
#[derive(Debug, Default)]
pub struct Refs {
    /// Every table read, at the version read.
    pub versions: BTreeMap<String, u64>,
    pub departments: Arc<Dict>,
    pub indicators: Arc<Dict>,
    /// Each indicator's framework, by id.
    pub frameworks: Vec<String>,
    pub project_codes: Arc<Dict>,
    /// Every (year, project) in projects.
    pub projects: HashSet<u64>,
    /// Σ project_scores.score per (year, project), in hundredths.
    pub score_sums: HashMap<u64, i128>,
    /// finance_evaluation total_score per (year, project), in hundredths.
    pub finance_totals: HashMap<u64, i128>,
    /// (year, project_code, table) of every project another table refers to.
    pub referenced: Vec<(i32, String, &'static str)>,
    /// (code, table) of every code of this table another table refers to.
    pub referenced_codes: Vec<(String, &'static str)>,
    /// Each performance target's (comparator, max_score in hundredths).
    pub targets: HashMap<TargetKey, (Box<str>, i128)>,
    /// The targets target_results refers to (when targets are being replaced).
    pub referenced_targets: Vec<TargetKey>,
}

/// (year, object_kind, object_code, indicator_code) of a performance target.
pub type TargetKey = (i32, Box<str>, Box<str>, Box<str>);

/// Where a table names the project or department it is about: (year column, code
/// column, condition) for a reference to `kind` (`project` or `dept`), if it has one.
fn object_columns(table: &str, kind: &str) -> Option<(&'static str, &'static str, String)> {
    let def = crate::model::table(table)?;
    let code = match kind {
        "project" => "project_code",
        _ => "dept_code",
    };
    if def.column_index(code).is_some() {
        return Some(("year", code, "TRUE".to_string()));
    }
    def.column_index("object_code")?;
    let year = if def.column_index("year").is_some() {
        "year"
    } else {
        "evaluated_year"
    };
    Some((year, "object_code", format!("object_kind = '{kind}'")))
}

impl Refs {
    /// Reads what `def`'s rules need from `engine`.
    pub async fn load(engine: &Engine, def: &TableDef, mode: WriteMode) -> Result<Refs> {
        let mut refs = Refs {
            versions: engine
                .versions()
                .into_iter()
                .map(|(t, v)| (t, v.unwrap_or(0)))
                .collect(),
            ..Refs::default()
        };
        let needs = |rule: StoredRule| def.stored_rules.contains(&rule);
        let any = |f: fn(&StoredRule) -> bool| def.stored_rules.iter().any(f);
        let objects = any(|r| matches!(r, StoredRule::ObjectExists(_)));
        // Replacing departments, parents must be among the new rows alone.
        let parents_stored = needs(StoredRule::ParentExists) && mode != WriteMode::Replace;
        if needs(StoredRule::DepartmentExists) || parents_stored || objects {
            let mut dict = Dict::default();
            for batch in engine.query("SELECT dept_code FROM departments").await? {
                let codes = text(&batch, 0)?;
                (0..codes.len()).for_each(|r| {
                    dict.intern(codes.value(r));
                });
            }
            refs.departments = Arc::new(dict);
        }
        if any(|r| {
            matches!(
                r,
                StoredRule::IndicatorExists(_) | StoredRule::IndicatorOfObject
            )
        }) {
            let mut dict = Dict::default();
            for batch in engine
                .query("SELECT indicator_code, framework FROM indicators")
                .await?
            {
                let (codes, frameworks) = (text(&batch, 0)?, text(&batch, 1)?);
                for r in 0..codes.len() {
                    let id = dict.intern(codes.value(r)) as usize;
                    if id == refs.frameworks.len() {
                        refs.frameworks.push(frameworks.value(r).to_string());
                    }
                }
            }
            refs.indicators = Arc::new(dict);
        }
        if needs(StoredRule::ProjectExists) || objects {
            let mut dict = Dict::default();
            for batch in engine
                .query("SELECT year, project_code FROM projects")
                .await?
            {
                let (years, codes) = (int(&batch, 0)?, text(&batch, 1)?);
                for r in 0..codes.len() {
                    let id = dict.intern(codes.value(r));
                    refs.projects.insert(project_key(years.value(r), id));
                }
            }
            refs.project_codes = Arc::new(dict);
        }
        if needs(StoredRule::TargetExists) {
            let sql = "SELECT year, object_kind, object_code, indicator_code, comparator, \
                       CAST(max_score * 100 AS BIGINT) FROM perf_targets";
            for batch in engine.query(sql).await? {
                let years = int(&batch, 0)?;
                let (kinds, codes, indicators, comparators) = (
                    text(&batch, 1)?,
                    text(&batch, 2)?,
                    text(&batch, 3)?,
                    text(&batch, 4)?,
                );
                let max = cast(batch.column(5), &DataType::Int64)?;
                let max = max
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("cast to Int64");
                for r in 0..batch.num_rows() {
                    refs.targets.insert(
                        (
                            years.value(r),
                            kinds.value(r).into(),
                            codes.value(r).into(),
                            indicators.value(r).into(),
                        ),
                        (comparators.value(r).into(), i128::from(max.value(r))),
                    );
                }
            }
        }
        let sums_needed = needs(StoredRule::EvaluationMatchesScores)
            || (needs(StoredRule::ScoresAddUpToEvaluation) && mode == WriteMode::Append);
        if sums_needed {
            let sql = "SELECT year, project_code, CAST(sum(score) * 100 AS BIGINT) \
                       FROM project_scores GROUP BY year, project_code";
            refs.score_sums = refs.per_project(engine, sql).await?;
        }
        if needs(StoredRule::ScoresAddUpToEvaluation) {
            let sql =
                "SELECT year, project_code, CAST(total_score * 100 AS BIGINT) FROM evaluations \
                       WHERE eval_kind = 'finance_evaluation' AND total_score IS NOT NULL";
            refs.finance_totals = refs.per_project(engine, sql).await?;
        }
        let replacing = matches!(mode, WriteMode::ReplaceYear | WriteMode::Replace);
        if needs(StoredRule::KeepsReferencedTargets) && replacing {
            let sql = "SELECT DISTINCT year, object_kind, object_code, indicator_code \
                       FROM target_results ORDER BY 1, 2, 3, 4";
            for batch in engine.query(sql).await? {
                let years = int(&batch, 0)?;
                let (kinds, codes, indicators) =
                    (text(&batch, 1)?, text(&batch, 2)?, text(&batch, 3)?);
                for r in 0..batch.num_rows() {
                    refs.referenced_targets.push((
                        years.value(r),
                        kinds.value(r).into(),
                        codes.value(r).into(),
                        indicators.value(r).into(),
                    ));
                }
            }
        }
        if needs(StoredRule::KeepsReferencedProjects) && replacing {
            for table in StoredRule::KeepsReferencedProjects.reads() {
                let Some((year, code, condition)) = object_columns(table, "project") else {
                    continue;
                };
                let sql = format!(
                    "SELECT DISTINCT {year}, {code} FROM {table} WHERE {condition} ORDER BY 1, 2"
                );
                for batch in engine.query(&sql).await? {
                    let (years, codes) = (int(&batch, 0)?, text(&batch, 1)?);
                    for r in 0..codes.len() {
                        refs.referenced
                            .push((years.value(r), codes.value(r).to_string(), table));
                    }
                }
            }
        }
        for rule in def.stored_rules {
            if let (StoredRule::KeepsReferencedCodes(tables), WriteMode::Replace) = (rule, mode) {
                for table in *tables {
                    let (column, condition) = match object_columns(table, "dept") {
                        Some((_, code, condition)) if def.name == "departments" => {
                            (code, condition)
                        }
                        _ => (def.key[0], "TRUE".to_string()),
                    };
                    let sql = format!(
                        "SELECT DISTINCT {column} FROM {table} WHERE {condition} ORDER BY 1"
                    );
                    for batch in engine.query(&sql).await? {
                        let codes = text(&batch, 0)?;
                        for r in 0..codes.len() {
                            refs.referenced_codes
                                .push((codes.value(r).to_string(), table));
                        }
                    }
                }
            }
        }
        Ok(refs)
    }

    /// `sql`'s (year, project_code, hundredths) rows keyed by (year, project id);
    /// projects missing from the projects dictionary are added to it.
    async fn per_project(&mut self, engine: &Engine, sql: &str) -> Result<HashMap<u64, i128>> {
        let mut out = HashMap::default();
        let mut dict = (*self.project_codes).clone();
        for batch in engine.query(sql).await? {
            let (years, codes) = (int(&batch, 0)?, text(&batch, 1)?);
            let values = cast(batch.column(2), &DataType::Int64)?;
            let values = values
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("cast to Int64");
            for r in 0..codes.len() {
                let id = dict.intern(codes.value(r));
                out.insert(project_key(years.value(r), id), i128::from(values.value(r)));
            }
        }
        self.project_codes = Arc::new(dict);
        Ok(out)
    }

    /// The dictionary a key column of `def` refers to, if it refers to one.
    pub fn foreign(&self, def: &TableDef, column: &str) -> Option<Arc<Dict>> {
        let rules = def.stored_rules;
        match column {
            "dept_code" if rules.contains(&StoredRule::DepartmentExists) => {
                Some(Arc::clone(&self.departments))
            }
            "indicator_code"
                if rules.iter().any(|r| {
                    matches!(
                        r,
                        StoredRule::IndicatorExists(_) | StoredRule::IndicatorOfObject
                    )
                }) =>
            {
                Some(Arc::clone(&self.indicators))
            }
            "project_code" if rules.contains(&StoredRule::ProjectExists) => {
                Some(Arc::clone(&self.project_codes))
            }
            _ => None,
        }
    }

    /// Appends every problem `chunk` has against the stored tables that one row shows
    /// by itself. `ids` are the chunk's key part ids, reused for the lookups.
    pub fn check(
        &self,
        def: &TableDef,
        codec: &KeyCodec,
        ids: &[Option<Vec<u32>>],
        file: &FileRef,
        chunk: &Chunk,
        problems: &mut Vec<Problem>,
    ) {
        let batch = &chunk.batch;
        let column = |name: &str| batch.column(def.column_index(name).expect("rule column"));
        // A key part's ids, or a lookup in `dict` for a column outside the key.
        let ids_of = |name: &str, dict: &Dict| -> Vec<u32> {
            let i = def.column_index(name).expect("rule column");
            codec
                .columns
                .iter()
                .zip(&codec.parts)
                .zip(ids)
                .find(|((c, part), _)| **c == i && matches!(part, Part::Foreign(_)))
                .and_then(|(_, ids)| ids.clone())
                .unwrap_or_else(|| lookup(dict, column(name).as_ref()))
        };
        for rule in def.stored_rules {
            match rule {
                StoredRule::DepartmentExists => {
                    let ids = ids_of("dept_code", &self.departments);
                    let codes = strings(column("dept_code").as_ref());
                    for (r, id) in ids.iter().enumerate() {
                        if codes.is_valid(r) && *id == NONE {
                            problems.push(file.problem(
                                chunk.lines[r],
                                "dept_code",
                                codes.value(r),
                                "unknown dept_code: not in departments",
                            ));
                        }
                    }
                }
                StoredRule::IndicatorExists(framework) => {
                    let ids = ids_of("indicator_code", &self.indicators);
                    let takes = format!("{} takes {framework} indicators", def.name);
                    self.check_frameworks(
                        chunk,
                        file,
                        &ids,
                        |_| Some((*framework, takes.as_str())),
                        problems,
                    );
                }
                StoredRule::ProjectExists => {
                    let ids = ids_of("project_code", &self.project_codes);
                    let codes = strings(column("project_code").as_ref());
                    let years = ints(column("year").as_ref());
                    for (r, id) in ids.iter().enumerate() {
                        if !codes.is_valid(r) || !years.is_valid(r) {
                            continue;
                        }
                        if *id == NONE || !self.projects.contains(&project_key(years.value(r), *id))
                        {
                            problems.push(file.problem(
                                chunk.lines[r],
                                "project_code",
                                codes.value(r),
                                format!(
                                    "unknown project_code: no such project in projects for year {}",
                                    years.value(r)
                                ),
                            ));
                        }
                    }
                }
                StoredRule::EvaluationMatchesScores => {
                    let ids = ids_of("project_code", &self.project_codes);
                    let years = ints(column("year").as_ref());
                    let kinds = strings(column("eval_kind").as_ref());
                    let totals = decimals(column("total_score").as_ref());
                    for (r, id) in ids.iter().enumerate() {
                        if *id == NONE
                            || !years.is_valid(r)
                            || !totals.is_valid(r)
                            || !kinds.is_valid(r)
                            || kinds.value(r) != "finance_evaluation"
                        {
                            continue;
                        }
                        if let Some(sum) = self.score_sums.get(&project_key(years.value(r), *id)) {
                            if *sum != totals.value(r) {
                                problems.push(file.problem(
                                    chunk.lines[r],
                                    "total_score",
                                    hundredths(totals.value(r)),
                                    format!(
                                        "the project's stored indicator scores add up to {}",
                                        hundredths(*sum)
                                    ),
                                ));
                            }
                        }
                    }
                }
                StoredRule::ObjectExists(year_column) => {
                    let years = ints(column(year_column).as_ref());
                    let kinds = strings(column("object_kind").as_ref());
                    let codes = strings(column("object_code").as_ref());
                    for r in 0..batch.num_rows() {
                        if !(years.is_valid(r) && kinds.is_valid(r) && codes.is_valid(r)) {
                            continue;
                        }
                        let (year, code) = (years.value(r), codes.value(r));
                        let rule = match kinds.value(r) {
                            "dept" if self.departments.get(code).is_none() => {
                                "unknown object_code: no department with this dept_code in departments"
                                    .to_string()
                            }
                            "project"
                                if !self.project_codes.get(code).is_some_and(|id| {
                                    self.projects.contains(&project_key(year, id))
                                }) =>
                            {
                                format!(
                                    "unknown object_code: no such project in projects for year {year}"
                                )
                            }
                            _ => continue,
                        };
                        problems.push(file.problem(chunk.lines[r], "object_code", code, rule));
                    }
                }
                StoredRule::IndicatorOfObject => {
                    let ids = ids_of("indicator_code", &self.indicators);
                    let kinds = strings(column("object_kind").as_ref());
                    let takes = |kind: &str| match kind {
                        "dept" => "a dept target takes dept indicators",
                        _ => "a project target takes project indicators",
                    };
                    self.check_frameworks(
                        chunk,
                        file,
                        &ids,
                        |r| {
                            kinds
                                .is_valid(r)
                                .then(|| (kinds.value(r), takes(kinds.value(r))))
                        },
                        problems,
                    );
                }
                StoredRule::TargetExists => self.check_targets(def, file, chunk, problems),
                // Rules over the whole input: see `stored.rs`.
                StoredRule::ParentExists
                | StoredRule::ScoresAddUpToEvaluation
                | StoredRule::KeepsReferencedProjects
                | StoredRule::KeepsReferencedTargets
                | StoredRule::KeepsReferencedCodes(_)
                | StoredRule::ExecutionNeverDecreases => {}
            }
        }
    }
}

impl Refs {
    /// Each row's indicator (its dictionary id in `ids`) exists, in the framework
    /// `expected(row)` names with the words that say who takes it; rows without an
    /// expectation are skipped.
    fn check_frameworks<'a>(
        &self,
        chunk: &Chunk,
        file: &FileRef,
        ids: &[u32],
        expected: impl Fn(usize) -> Option<(&'a str, &'a str)>,
        problems: &mut Vec<Problem>,
    ) {
        let codes = chunk
            .batch
            .column_by_name("indicator_code")
            .expect("rule column");
        let codes = strings(codes.as_ref());
        for (r, id) in ids.iter().enumerate() {
            let Some((framework, takes)) = expected(r).filter(|_| codes.is_valid(r)) else {
                continue;
            };
            let rule = match self.frameworks.get(*id as usize) {
                None => "unknown indicator_code: not in indicators".to_string(),
                Some(f) if f != framework => {
                    format!("indicator belongs to the {f} framework; {takes}")
                }
                Some(_) => continue,
            };
            problems.push(file.problem(chunk.lines[r], "indicator_code", codes.value(r), rule));
        }
    }

    /// Each result's target exists, and what its comparator and max_score imply:
    /// an actual value unless qualitative; achievement and awarded_score only for a
    /// qualitative target, the score at most its max_score.
    fn check_targets(
        &self,
        def: &TableDef,
        file: &FileRef,
        chunk: &Chunk,
        problems: &mut Vec<Problem>,
    ) {
        let batch = &chunk.batch;
        let column = |name: &str| batch.column(def.column_index(name).expect("rule column"));
        let years = ints(column("year").as_ref());
        let kinds = strings(column("object_kind").as_ref());
        let codes = strings(column("object_code").as_ref());
        let indicators = strings(column("indicator_code").as_ref());
        let actual = column("actual_value");
        let achievement = strings(column("achievement").as_ref());
        let awarded = decimals(column("awarded_score").as_ref());
        for r in 0..batch.num_rows() {
            if !(years.is_valid(r)
                && kinds.is_valid(r)
                && codes.is_valid(r)
                && indicators.is_valid(r))
            {
                continue;
            }
            let key: TargetKey = (
                years.value(r),
                kinds.value(r).into(),
                codes.value(r).into(),
                indicators.value(r).into(),
            );
            let line = chunk.lines[r];
            let Some((comparator, max)) = self.targets.get(&key) else {
                problems.push(file.problem(
                    line,
                    "indicator_code",
                    indicators.value(r),
                    format!(
                        "no such target in perf_targets: {} {} {} has no target on this indicator",
                        key.0, key.1, key.2
                    ),
                ));
                continue;
            };
            let qualitative = &**comparator == "qualitative";
            if !qualitative && actual.is_null(r) {
                problems.push(file.problem(
                    line,
                    "actual_value",
                    "",
                    format!(
                        "the target is compared with {comparator}: an actual_value is required"
                    ),
                ));
            }
            if !qualitative && achievement.is_valid(r) {
                problems.push(file.problem(
                    line,
                    "achievement",
                    achievement.value(r),
                    "achievement is for qualitative targets; this one is quantitative",
                ));
            }
            if awarded.is_valid(r) {
                let score = awarded.value(r);
                if !qualitative {
                    problems.push(file.problem(
                        line,
                        "awarded_score",
                        hundredths(score),
                        "awarded_score is for qualitative targets; a quantitative one is scored from its values",
                    ));
                } else if score > *max {
                    problems.push(file.problem(
                        line,
                        "awarded_score",
                        hundredths(score),
                        format!(
                            "awarded_score is above the target's max_score {}",
                            hundredths(*max)
                        ),
                    ));
                }
            }
        }
    }
}

fn text(batch: &RecordBatch, i: usize) -> Result<StringArray> {
    let column = cast(batch.column(i), &DataType::Utf8)?;
    Ok(column
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

fn int(batch: &RecordBatch, i: usize) -> Result<Int32Array> {
    let column = cast(batch.column(i), &DataType::Int32)?;
    Ok(column
        .as_any()
        .downcast_ref::<Int32Array>()
        .expect("cast to Int32")
        .clone())
}
