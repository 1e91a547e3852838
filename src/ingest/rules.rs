//! The rules one row can break by itself, run column-wise over a typed batch: allowed
//! values, year and amount ranges, and the table's [`RowRule`]s. Each rule is an
//! Arrow kernel producing a mask of the rows that break it; only those rows are
//! visited to write their problems. NULL cells (empty, or already reported as not
//! parsing) break no rule here.

use datafusion::arrow::array::{
    Array, BooleanArray, Datum, Decimal128Array, Int32Array, Scalar, StringArray,
};
use datafusion::arrow::compute::kernels::cmp::{eq, gt, lt, lt_eq, neq};
use datafusion::arrow::compute::{and_kleene as and, is_not_null, is_null, not, or_kleene as or};
use datafusion::arrow::record_batch::RecordBatch;

use super::validate::{hundredths, FileRef, Problem};
use crate::model::aliases::allowed_list;
use crate::model::{Kind, RowRule, TableDef};

/// Appends to `problems` every single-row rule `batch` breaks; `lines[i]` is row i's.
pub fn check(
    def: &TableDef,
    file: &FileRef,
    batch: &RecordBatch,
    lines: &[usize],
    problems: &mut Vec<Problem>,
) {
    let rules = Rules {
        def,
        file,
        batch,
        lines,
    };
    for (i, column) in def.columns.iter().enumerate() {
        if let Some(allowed) = column.allowed {
            let values = strings(batch.column(i));
            for (value, line) in values.iter().zip(lines) {
                if let Some(value) = value.filter(|v| !allowed.contains(v)) {
                    problems.push(file.problem(
                        *line,
                        column.name,
                        value,
                        format!("must be one of {}", allowed_list(column.name, allowed)),
                    ));
                }
            }
        }
        if column.name == "year" {
            let years = ints(batch.column(i));
            let bad = or(
                &lt(years, &Int32Array::new_scalar(1949)).expect("int compare"),
                &gt(years, &Int32Array::new_scalar(2100)).expect("int compare"),
            )
            .expect("or");
            rules.each(&bad, problems, |row| {
                (
                    "year",
                    years.value(row).to_string(),
                    "a year must be between 1949 and 2100".to_string(),
                )
            });
        }
        if column.kind == Kind::Money {
            let amounts = decimals(batch.column(i));
            let bad = lt(amounts, &zero(amounts)).expect("decimal compare");
            rules.each(&bad, problems, |row| {
                (
                    column.name,
                    hundredths(amounts.value(row)).to_string(),
                    "an amount must not be negative".to_string(),
                )
            });
        }
    }
    for rule in def.row_rules {
        rules.row_rule(*rule, problems);
    }
}

struct Rules<'a> {
    def: &'a TableDef,
    file: &'a FileRef,
    batch: &'a RecordBatch,
    lines: &'a [usize],
}

impl Rules<'_> {
    fn column(&self, name: &str) -> &dyn Array {
        self.batch
            .column(
                self.def
                    .column_index(name)
                    .expect("rule column is in the model"),
            )
            .as_ref()
    }

    fn decimal(&self, name: &str) -> &Decimal128Array {
        decimals(self.column(name))
    }

    /// Writes one problem for each row `mask` is true on.
    fn each(
        &self,
        mask: &BooleanArray,
        problems: &mut Vec<Problem>,
        describe: impl Fn(usize) -> (&'static str, String, String),
    ) {
        if mask.true_count() == 0 {
            return;
        }
        for row in 0..mask.len() {
            if mask.is_valid(row) && mask.value(row) {
                let (column, value, rule) = describe(row);
                problems.push(self.file.problem(self.lines[row], column, value, rule));
            }
        }
    }

    fn row_rule(&self, rule: RowRule, problems: &mut Vec<Problem>) {
        match rule {
            RowRule::NotOwnParent => {
                let (code, parent) = (self.column("dept_code"), self.column("parent_code"));
                let bad = eq(&code, &parent).expect("text compare");
                let parents = strings(parent);
                self.each(&bad, problems, |row| {
                    (
                        "parent_code",
                        parents.value(row).to_string(),
                        "a department cannot be its own parent".to_string(),
                    )
                });
            }
            RowRule::ScoreWithinMax => {
                let (score, max) = (self.decimal("score"), self.decimal("max_score"));
                let bad_max = lt_eq(max, &zero(max)).expect("decimal compare");
                self.each(&bad_max, problems, |row| {
                    (
                        "max_score",
                        hundredths(max.value(row)).to_string(),
                        "max_score must be greater than 0".to_string(),
                    )
                });
                let negative = lt(score, &zero(score)).expect("decimal compare");
                self.each(&negative, problems, |row| {
                    (
                        "score",
                        hundredths(score.value(row)).to_string(),
                        "a score must not be negative".to_string(),
                    )
                });
                let above = and(
                    &gt(score, max).expect("decimal compare"),
                    &not(&negative).expect("not"),
                )
                .expect("and");
                self.each(&above, problems, |row| {
                    (
                        "score",
                        hundredths(score.value(row)).to_string(),
                        format!(
                            "score is above its max_score {}",
                            hundredths(max.value(row))
                        ),
                    )
                });
            }
            RowRule::ReviewAmounts => self.review_amounts(problems),
            RowRule::EvaluationRanges => {
                let total = self.decimal("total_score");
                let bad = or(
                    &lt(total, &zero(total)).expect("decimal compare"),
                    &gt(total, &decimal_scalar(total, 10_000)).expect("decimal compare"),
                )
                .expect("or");
                self.each(&bad, problems, |row| {
                    (
                        "total_score",
                        hundredths(total.value(row)).to_string(),
                        "total_score must be between 0 and 100".to_string(),
                    )
                });
                let suggestions = ints(self.column("suggestions"));
                let bad = lt(suggestions, &Int32Array::new_scalar(0)).expect("int compare");
                self.each(&bad, problems, |row| {
                    (
                        "suggestions",
                        suggestions.value(row).to_string(),
                        "suggestions must not be negative".to_string(),
                    )
                });
            }
        }
    }

    /// approved ≤ requested; `reject` ⇒ approved 0; `returned` ⇒ approved empty;
    /// `support` / `partial` ⇒ an approved amount.
    fn review_amounts(&self, problems: &mut Vec<Problem>) {
        let requested = self.decimal("requested_amount");
        let approved = self.decimal("approved_amount");
        let conclusion = strings(self.column("conclusion"));
        let above = gt(approved, requested).expect("decimal compare");
        self.each(&above, problems, |row| {
            (
                "approved_amount",
                hundredths(approved.value(row)).to_string(),
                format!(
                    "approved_amount is above requested_amount {}",
                    hundredths(requested.value(row))
                ),
            )
        });
        let is =
            |value: &str| eq(conclusion, &StringArray::new_scalar(value)).expect("text compare");
        let shown = |row: usize| {
            if approved.is_valid(row) {
                hundredths(approved.value(row)).to_string()
            } else {
                String::new()
            }
        };
        let rejected_not_zero = and(
            &is("reject"),
            &or(
                &is_null(approved).expect("null"),
                &neq(approved, &zero(approved)).expect("decimal compare"),
            )
            .expect("or"),
        )
        .expect("and");
        self.each(&rejected_not_zero, problems, |row| {
            (
                "approved_amount",
                shown(row),
                "a rejected project must have approved_amount 0".to_string(),
            )
        });
        let returned_with_amount =
            and(&is("returned"), &is_not_null(approved).expect("null")).expect("and");
        self.each(&returned_with_amount, problems, |row| {
            (
                "approved_amount",
                shown(row),
                "a returned project is not reviewed: approved_amount must be empty".to_string(),
            )
        });
        let reviewed_without = and(
            &or(&is("support"), &is("partial")).expect("or"),
            &is_null(approved).expect("null"),
        )
        .expect("and");
        self.each(&reviewed_without, problems, |_| {
            (
                "approved_amount",
                String::new(),
                "a reviewed project needs an approved_amount".to_string(),
            )
        });
    }
}

fn zero(like: &Decimal128Array) -> impl Datum {
    decimal_scalar(like, 0)
}

/// `hundredths` as a scalar of `like`'s decimal type.
fn decimal_scalar(like: &Decimal128Array, hundredths: i128) -> impl Datum {
    Scalar::new(Decimal128Array::from(vec![hundredths]).with_data_type(like.data_type().clone()))
}

pub fn strings(array: &dyn Array) -> &StringArray {
    array
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("text columns are Utf8")
}

pub fn ints(array: &dyn Array) -> &Int32Array {
    array
        .as_any()
        .downcast_ref::<Int32Array>()
        .expect("whole-number columns are Int32")
}

pub fn decimals(array: &dyn Array) -> &Decimal128Array {
    array
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .expect("decimal columns are Decimal128")
}
