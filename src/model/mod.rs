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

/// What a column holds; decides its Arrow type and how text is parsed into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Money,
    Score,
    Bool,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Int => DataType::Int32,
            Kind::Money => MONEY,
            Kind::Score => SCORE,
            Kind::Bool => DataType::Boolean,
        }
    }

    /// The largest absolute value (in hundredths) a decimal kind can hold.
    pub fn decimal_limit(self) -> Option<i128> {
        match self {
            Kind::Money => Some(10i128.pow(18) - 1),
            Kind::Score => Some(10i128.pow(7) - 1),
            _ => None,
        }
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
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
        allowed: None,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: false,
        allowed: None,
    }
}

const fn one_of(name: &'static str, allowed: &'static [&'static str]) -> Column {
    Column {
        name,
        kind: Kind::Text,
        required: true,
        allowed: Some(allowed),
    }
}

#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: &'static [Column],
    /// Columns that identify a row; unique within the table.
    pub key: &'static [&'static str],
}

impl TableDef {
    /// Tables with a `year` column are partitioned by it.
    pub fn partitioned(&self) -> bool {
        self.column_index("year").is_some()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn column(&self, name: &str) -> &Column {
        &self.columns[self.column_index(name).expect("column is in the model")]
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
