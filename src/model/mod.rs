//! The data model: every table's columns, Arrow types, keys and partitioning.
//! This is the contract of DESIGN.md; ingest, storage and the sample generator all
//! read it from here so that a table is described in exactly one place.

pub mod aliases;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Money in 万元 with two decimals.
pub const MONEY: DataType = DataType::Decimal128(18, 2);
/// Scores out of a max_score, two decimals.
pub const SCORE: DataType = DataType::Decimal128(7, 2);
/// Target and actual values of performance indicators, four decimals.
pub const MEASURE: DataType = DataType::Decimal128(18, 4);

/// What a column holds; decides its Arrow type and how text is parsed into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Money,
    Score,
    /// A target or actual value of an indicator: Decimal128(18, 4), may be negative.
    Measure,
    Bool,
    /// A calendar date (Date32).
    Date,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Int => DataType::Int32,
            Kind::Money => MONEY,
            Kind::Score => SCORE,
            Kind::Measure => MEASURE,
            Kind::Bool => DataType::Boolean,
            Kind::Date => DataType::Date32,
        }
    }

    /// Precision and scale of a decimal kind.
    pub fn precision_scale(self) -> (u8, i8) {
        match self.data_type() {
            DataType::Decimal128(p, s) => (p, s),
            _ => (0, 0),
        }
    }

    /// The largest absolute value (in units of its scale) a decimal kind can hold.
    pub fn decimal_limit(self) -> Option<i128> {
        match self {
            Kind::Money | Kind::Measure => Some(10i128.pow(18) - 1),
            Kind::Score => Some(10i128.pow(7) - 1),
            _ => None,
        }
    }

    /// Whether values of the kind are Decimal128.
    pub fn is_decimal(self) -> bool {
        matches!(self, Kind::Money | Kind::Score | Kind::Measure)
    }
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// A required column must be present in every input file and never empty.
    pub required: bool,
    /// Closed set of values, when the column is an enumeration.
    pub allowed: Option<&'static [&'static str]>,
    /// Inclusive bounds of a whole-number column; every column named `year` or
    /// ending in `_year` lies in [`YEARS`] without one.
    pub range: Option<(i32, i32)>,
}

/// The years any year column may hold.
pub const YEARS: (i32, i32) = (1949, 2100);

impl Column {
    /// The bounds of a whole-number column, if it has any.
    pub fn bounds(&self) -> Option<(i32, i32)> {
        match self.range {
            Some(range) => Some(range),
            None if self.kind == Kind::Int && is_year(self.name) => Some(YEARS),
            None => None,
        }
    }
}

/// Whether a column named `name` holds years: `year`, `budget_year`, `evaluated_year`.
pub fn is_year(name: &str) -> bool {
    name == "year" || name.ends_with("_year")
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
        allowed: None,
        range: None,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: false,
        allowed: None,
        range: None,
    }
}

const fn one_of(name: &'static str, allowed: &'static [&'static str]) -> Column {
    Column {
        name,
        kind: Kind::Text,
        required: true,
        allowed: Some(allowed),
        range: None,
    }
}

const fn opt_one_of(name: &'static str, allowed: &'static [&'static str]) -> Column {
    Column {
        name,
        kind: Kind::Text,
        required: false,
        allowed: Some(allowed),
        range: None,
    }
}

const fn int_in(name: &'static str, low: i32, high: i32) -> Column {
    Column {
        name,
        kind: Kind::Int,
        required: true,
        allowed: None,
        range: Some((low, high)),
    }
}

/// A rule on one row beyond what its columns' kinds, `required`, `allowed` and `range`
/// say. Every year column must lie in 1949..=2100 and every money column must not be
/// negative; those need no entry here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRule {
    /// `dept_code` differs from `parent_code`: a department is not its own parent.
    NotOwnParent,
    /// `max_score` > 0 and 0 ≤ `score` ≤ `max_score`.
    ScoreWithinMax,
    /// `approved_amount` ≤ `requested_amount`, and the amounts each `conclusion` implies.
    ReviewAmounts,
    /// `total_score` between 0 and 100, `suggestions` not negative.
    EvaluationRanges,
    /// `max_score` > 0; `target_value` present unless the comparator is `qualitative`.
    TargetShape,
    /// `awarded_score` not negative; `likelihood` only before the year-end month 12.
    ResultShape,
    /// `closed_date` not before the first day of `year`.
    ClosedInYear,
    /// `evaluated_year` < `budget_year`; `approved_amount` ≤ `requested_amount`;
    /// `cancel` ⇒ `approved_amount` = 0.
    DecisionAmounts,
}

/// A rule that needs what the warehouse already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredRule {
    /// `dept_code` is a dept_code in departments.
    DepartmentExists,
    /// `parent_code` is a dept_code in departments or in the same input.
    ParentExists,
    /// `indicator_code` is in indicators, in this framework.
    IndicatorExists(&'static str),
    /// (`year`, `project_code`) is in projects.
    ProjectExists,
    /// A project's indicator scores add up to its finance_evaluation total_score.
    ScoresAddUpToEvaluation,
    /// A finance_evaluation total_score equals the project's stored indicator scores.
    EvaluationMatchesScores,
    /// Replacing a year keeps every project that other tables of that year refer to.
    KeepsReferencedProjects,
    /// Replacing the table keeps every code (its key) that these tables refer to.
    KeepsReferencedCodes(&'static [&'static str]),
    /// (`object_kind`, `object_code`) names a department (`dept`: a dept_code) or a
    /// project of the year in the named column (`project`: a project_code).
    ObjectExists(&'static str),
    /// `indicator_code` is in indicators, in the framework `object_kind` names.
    IndicatorOfObject,
    /// The row's target is in perf_targets; what the target's comparator and
    /// max_score imply of `actual_value`, `achievement` and `awarded_score`.
    TargetExists,
    /// Per object and year, `executed_amount` never decreases with `as_of_month`,
    /// over the input and the stored rows together.
    ExecutionNeverDecreases,
    /// Replacing targets keeps every target that target_results refers to.
    KeepsReferencedTargets,
}

/// Columns of one table that name a row of another by its key: a foreign key, as a
/// stored rule checks it.
#[derive(Debug, Clone, Copy)]
pub struct Reference {
    pub columns: &'static [&'static str],
    /// The table referred to; `columns` match its `key`, in order.
    pub table: &'static TableDef,
}

impl StoredRule {
    /// The reference this rule checks, when it is one.
    pub fn reference(&self) -> Option<Reference> {
        let (columns, table): (&'static [&'static str], _) = match self {
            StoredRule::DepartmentExists => (&["dept_code"], &DEPARTMENTS),
            StoredRule::ParentExists => (&["parent_code"], &DEPARTMENTS),
            StoredRule::IndicatorExists(_) => (&["indicator_code"], &INDICATORS),
            StoredRule::ProjectExists => (&["year", "project_code"], &PROJECTS),
            StoredRule::TargetExists => (
                &["year", "object_kind", "object_code", "indicator_code"],
                &PERF_TARGETS,
            ),
            _ => return None,
        };
        Some(Reference { columns, table })
    }

    /// The stored tables the rule reads, besides the table being written.
    pub fn reads(&self) -> Vec<&'static str> {
        match self {
            StoredRule::DepartmentExists | StoredRule::ParentExists => vec![DEPARTMENTS.name],
            StoredRule::IndicatorExists(_) => vec![INDICATORS.name],
            StoredRule::ProjectExists => vec![PROJECTS.name],
            StoredRule::ScoresAddUpToEvaluation | StoredRule::EvaluationMatchesScores => {
                vec![EVALUATIONS.name, PROJECT_SCORES.name]
            }
            StoredRule::KeepsReferencedProjects => vec![
                EXANTE_REVIEWS.name,
                EVALUATIONS.name,
                PROJECT_SCORES.name,
                PERF_TARGETS.name,
                BUDGET_EXECUTION.name,
                RECTIFICATIONS.name,
                BUDGET_DECISIONS.name,
            ],
            StoredRule::KeepsReferencedCodes(tables) => tables.to_vec(),
            StoredRule::ObjectExists(_) => vec![DEPARTMENTS.name, PROJECTS.name],
            StoredRule::IndicatorOfObject => vec![INDICATORS.name],
            StoredRule::TargetExists => vec![PERF_TARGETS.name],
            StoredRule::ExecutionNeverDecreases => vec![],
            StoredRule::KeepsReferencedTargets => vec![TARGET_RESULTS.name],
        }
    }
}

#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: &'static [Column],
    /// Columns that identify a row; unique within the table.
    pub key: &'static [&'static str],
    pub row_rules: &'static [RowRule],
    pub stored_rules: &'static [StoredRule],
}

impl TableDef {
    /// Tables with a `year` column are partitioned by it.
    pub fn partitioned(&self) -> bool {
        self.column_index("year").is_some()
    }

    /// The table's references to others, in the order of its stored rules.
    pub fn references(&self) -> Vec<Reference> {
        self.stored_rules
            .iter()
            .filter_map(StoredRule::reference)
            .collect()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn column(&self, name: &str) -> &Column {
        &self.columns[self.column_index(name).expect("column is in the model")]
    }

    /// The schema with every column nullable: the shape of rows still being checked,
    /// where a cell that did not parse is NULL.
    pub fn loose_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.data_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.data_type(), !c.required))
                .collect::<Vec<_>>(),
        ))
    }
}

pub const FRAMEWORKS: &[&str] = &["dept", "project"];
pub const DIRECTIONS: &[&str] = &["higher", "lower"];
pub const BUDGET_BOOKS: &[&str] = &["general", "gov_fund", "soe_capital", "social_insurance"];
pub const PROJECT_KINDS: &[&str] = &["project", "policy"];
pub const CONCLUSIONS: &[&str] = &["support", "partial", "reject", "returned"];
pub const OBJECT_KINDS: &[&str] = &["dept", "project"];
pub const COMPARATORS: &[&str] = &[">=", "<=", "=", "qualitative"];
pub const ACHIEVEMENTS: &[&str] = &["achieved", "partial", "not_achieved"];
pub const LIKELIHOODS: &[&str] = &["certain", "likely", "unlikely"];
pub const RECTIFICATION_SOURCES: &[&str] =
    &["exante", "monitoring", "evaluation", "dept_evaluation"];
pub const ACTIONS: &[&str] = &["prioritise", "maintain", "cut", "cancel"];
pub const EVAL_KINDS: &[&str] = &[
    "self",
    "monitoring",
    "finance_monitoring",
    "finance_evaluation",
];

pub static DEPARTMENTS: TableDef = TableDef {
    name: "departments",
    description: "budget departments and their budget units (parent_code null for first-level)",
    columns: &[
        col("dept_code", Kind::Text),
        col("dept_name", Kind::Text),
        opt("parent_code", Kind::Text),
        opt("sector", Kind::Text),
    ],
    key: &["dept_code"],
    row_rules: &[RowRule::NotOwnParent],
    stored_rules: &[
        StoredRule::ParentExists,
        StoredRule::KeepsReferencedCodes(&[
            "dept_scores",
            "unit_budgets",
            "projects",
            "perf_targets",
            "budget_execution",
            "rectifications",
            "budget_decisions",
        ]),
    ],
};

pub static INDICATORS: TableDef = TableDef {
    name: "indicators",
    description: "the three-level indicator trees of the dept and project frameworks",
    columns: &[
        col("indicator_code", Kind::Text),
        one_of("framework", FRAMEWORKS),
        col("level1", Kind::Text),
        col("level2", Kind::Text),
        col("level3", Kind::Text),
        one_of("direction", DIRECTIONS),
    ],
    key: &["indicator_code"],
    row_rules: &[],
    stored_rules: &[StoredRule::KeepsReferencedCodes(&[
        "dept_scores",
        "project_scores",
        "perf_targets",
    ])],
};

pub static DEPT_SCORES: TableDef = TableDef {
    name: "dept_scores",
    description: "whole-department evaluation: one score per department, indicator and year",
    columns: &[
        col("year", Kind::Int),
        col("dept_code", Kind::Text),
        col("indicator_code", Kind::Text),
        col("score", Kind::Score),
        col("max_score", Kind::Score),
    ],
    key: &["year", "dept_code", "indicator_code"],
    row_rules: &[RowRule::ScoreWithinMax],
    stored_rules: &[
        StoredRule::DepartmentExists,
        StoredRule::IndicatorExists("dept"),
    ],
};

pub static UNIT_BUDGETS: TableDef = TableDef {
    name: "unit_budgets",
    description: "budget units under performance-target management, per year",
    columns: &[
        col("year", Kind::Int),
        col("dept_code", Kind::Text),
        col("budget_amount", Kind::Money),
        col("has_targets", Kind::Bool),
        col("targets_reviewed", Kind::Bool),
    ],
    key: &["year", "dept_code"],
    row_rules: &[],
    stored_rules: &[StoredRule::DepartmentExists],
};

pub static PROJECTS: TableDef = TableDef {
    name: "projects",
    description: "projects and policies with their budget, per year",
    columns: &[
        col("year", Kind::Int),
        col("project_code", Kind::Text),
        col("project_name", Kind::Text),
        col("dept_code", Kind::Text),
        one_of("budget_book", BUDGET_BOOKS),
        one_of("kind", PROJECT_KINDS),
        col("budget_amount", Kind::Money),
        col("has_targets", Kind::Bool),
        col("targets_disclosed", Kind::Bool),
    ],
    key: &["year", "project_code"],
    row_rules: &[],
    stored_rules: &[
        StoredRule::DepartmentExists,
        StoredRule::KeepsReferencedProjects,
    ],
};

pub static EXANTE_REVIEWS: TableDef = TableDef {
    name: "exante_reviews",
    description: "ex-ante performance review of requested project budgets",
    columns: &[
        col("year", Kind::Int),
        col("project_code", Kind::Text),
        col("requested_amount", Kind::Money),
        opt("approved_amount", Kind::Money),
        one_of("conclusion", CONCLUSIONS),
    ],
    key: &["year", "project_code"],
    row_rules: &[RowRule::ReviewAmounts],
    stored_rules: &[StoredRule::ProjectExists],
};

pub static EVALUATIONS: TableDef = TableDef {
    name: "evaluations",
    description: "self-evaluations, monitoring and finance evaluations of projects",
    columns: &[
        col("year", Kind::Int),
        col("project_code", Kind::Text),
        one_of("eval_kind", EVAL_KINDS),
        opt("total_score", Kind::Score),
        opt("suggestions", Kind::Int),
    ],
    key: &["year", "project_code", "eval_kind"],
    row_rules: &[RowRule::EvaluationRanges],
    stored_rules: &[
        StoredRule::ProjectExists,
        StoredRule::EvaluationMatchesScores,
    ],
};

pub static PROJECT_SCORES: TableDef = TableDef {
    name: "project_scores",
    description: "indicator scores of finance-evaluated projects",
    columns: &[
        col("year", Kind::Int),
        col("project_code", Kind::Text),
        col("indicator_code", Kind::Text),
        col("score", Kind::Score),
        col("max_score", Kind::Score),
    ],
    key: &["year", "project_code", "indicator_code"],
    row_rules: &[RowRule::ScoreWithinMax],
    stored_rules: &[
        StoredRule::ProjectExists,
        StoredRule::IndicatorExists("project"),
        StoredRule::ScoresAddUpToEvaluation,
    ],
};

pub static PERF_TARGETS: TableDef = TableDef {
    name: "perf_targets",
    description: "performance targets (绩效目标) set with the budget of a department or project",
    columns: &[
        col("year", Kind::Int),
        one_of("object_kind", OBJECT_KINDS),
        col("object_code", Kind::Text),
        col("indicator_code", Kind::Text),
        opt("unit", Kind::Text),
        one_of("comparator", COMPARATORS),
        opt("target_value", Kind::Measure),
        col("max_score", Kind::Score),
    ],
    key: &["year", "object_kind", "object_code", "indicator_code"],
    row_rules: &[RowRule::TargetShape],
    stored_rules: &[
        StoredRule::ObjectExists("year"),
        StoredRule::IndicatorOfObject,
        StoredRule::KeepsReferencedTargets,
    ],
};

pub static TARGET_RESULTS: TableDef = TableDef {
    name: "target_results",
    description: "progress (months 1–11) and year-end results (month 12) of performance targets",
    columns: &[
        col("year", Kind::Int),
        one_of("object_kind", OBJECT_KINDS),
        col("object_code", Kind::Text),
        col("indicator_code", Kind::Text),
        int_in("as_of_month", 1, 12),
        opt("actual_value", Kind::Measure),
        opt_one_of("achievement", ACHIEVEMENTS),
        opt("awarded_score", Kind::Score),
        opt_one_of("likelihood", LIKELIHOODS),
    ],
    key: &[
        "year",
        "object_kind",
        "object_code",
        "indicator_code",
        "as_of_month",
    ],
    row_rules: &[RowRule::ResultShape],
    stored_rules: &[StoredRule::TargetExists],
};

pub static BUDGET_EXECUTION: TableDef = TableDef {
    name: "budget_execution",
    description:
        "budget execution (预算执行) of a department or project, cumulative to the end of a month",
    columns: &[
        col("year", Kind::Int),
        one_of("object_kind", OBJECT_KINDS),
        col("object_code", Kind::Text),
        int_in("as_of_month", 1, 12),
        col("budget_amount", Kind::Money),
        col("executed_amount", Kind::Money),
    ],
    key: &["year", "object_kind", "object_code", "as_of_month"],
    row_rules: &[],
    stored_rules: &[
        StoredRule::ObjectExists("year"),
        StoredRule::ExecutionNeverDecreases,
    ],
};

pub static RECTIFICATIONS: TableDef = TableDef {
    name: "rectifications",
    description:
        "problems found by reviews, monitoring and evaluations, and their rectification (整改)",
    columns: &[
        col("year", Kind::Int),
        one_of("object_kind", OBJECT_KINDS),
        col("object_code", Kind::Text),
        one_of("source", RECTIFICATION_SOURCES),
        int_in("seq", 1, 99_999),
        col("issue", Kind::Text),
        col("due_date", Kind::Date),
        opt("closed_date", Kind::Date),
    ],
    key: &["year", "object_kind", "object_code", "source", "seq"],
    row_rules: &[RowRule::ClosedInYear],
    stored_rules: &[StoredRule::ObjectExists("year")],
};

pub static BUDGET_DECISIONS: TableDef = TableDef {
    name: "budget_decisions",
    description: "budget decisions that use an earlier year's evaluation results (结果应用)",
    columns: &[
        col("budget_year", Kind::Int),
        one_of("object_kind", OBJECT_KINDS),
        col("object_code", Kind::Text),
        col("evaluated_year", Kind::Int),
        col("requested_amount", Kind::Money),
        col("approved_amount", Kind::Money),
        one_of("action", ACTIONS),
    ],
    key: &["budget_year", "object_kind", "object_code"],
    row_rules: &[RowRule::DecisionAmounts],
    stored_rules: &[StoredRule::ObjectExists("evaluated_year")],
};

/// Every table of the warehouse, in dependency order: a table only refers to tables
/// before it, so loading in this order never breaks referential integrity.
pub static TABLES: &[&TableDef] = &[
    &DEPARTMENTS,
    &INDICATORS,
    &DEPT_SCORES,
    &UNIT_BUDGETS,
    &PROJECTS,
    &EXANTE_REVIEWS,
    &EVALUATIONS,
    &PROJECT_SCORES,
    &PERF_TARGETS,
    &TARGET_RESULTS,
    &BUDGET_EXECUTION,
    &RECTIFICATIONS,
    &BUDGET_DECISIONS,
];

/// The tables a warehouse made before them may lack: it reads them as empty, and
/// the first ingest into one creates it.
pub static LATER_TABLES: &[&TableDef] = &[
    &PERF_TARGETS,
    &TARGET_RESULTS,
    &BUDGET_EXECUTION,
    &RECTIFICATIONS,
    &BUDGET_DECISIONS,
];

pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().copied().find(|t| t.name == name)
}

/// Looks a table up by the name a user typed, with an error that lists the tables.
pub fn table_or_err(name: &str) -> crate::Result<&'static TableDef> {
    table(name).ok_or_else(|| {
        crate::Error::usage(format!(
            "unknown table '{name}'; the tables are: {}",
            TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_names_the_key_of_the_table_it_refers_to() {
        let mut seen = 0;
        for table in TABLES {
            for reference in table.references() {
                assert_eq!(
                    reference.columns.len(),
                    reference.table.key.len(),
                    "{}",
                    table.name
                );
                for (column, key) in reference.columns.iter().zip(reference.table.key) {
                    assert_eq!(
                        table.column(column).kind,
                        reference.table.column(key).kind,
                        "{}.{column} → {}.{key}",
                        table.name,
                        reference.table.name
                    );
                }
                seen += 1;
            }
        }
        assert!(seen >= 9, "{seen} references");
    }
}
