//! The rules one row can break by itself, run column-wise over a typed batch: allowed
//! values, year and amount ranges, and the table's [`RowRule`]s. Each rule is an
//! Arrow kernel producing a mask of the rows that break it; only those rows are
//! visited to write their problems. NULL cells (empty, or already reported as not
//! parsing) break no rule here.

use datafusion::arrow::array::{
    Array, BooleanArray, Date32Array, Datum, Decimal128Array, Int32Array, Scalar, StringArray,
};
use datafusion::arrow::compute::kernels::cmp::{eq, gt, gt_eq, lt, lt_eq, neq};
use datafusion::arrow::compute::{and_kleene as and, is_not_null, is_null, not, or_kleene as or};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::validate::{hundredths, FileRef, Problem};
use crate::model::aliases::allowed_list;
use crate::model::{is_year, Kind, RowRule, TableDef};

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
        if let Some((low, high)) = column.bounds() {
            let values = ints(batch.column(i));
            let bad = or(
                &lt(values, &Int32Array::new_scalar(low)).expect("int compare"),
                &gt(values, &Int32Array::new_scalar(high)).expect("int compare"),
            )
            .expect("or");
            let rule = if is_year(column.name) {
                format!("a year must be between {low} and {high}")
            } else {
                format!("{} must be between {low} and {high}", column.name)
            };
            rules.each(&bad, problems, |row| {
                (column.name, values.value(row).to_string(), rule.clone())
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

    /// One problem for each row whose decimal `column` breaks `bad` (`<= 0`, `< 0`).
    fn decimal_rule(
        &self,
        column: &'static str,
        bad: fn(&Decimal128Array, &dyn Datum) -> Result<BooleanArray, ArrowError>,
        rule: &str,
        problems: &mut Vec<Problem>,
    ) {
        let values = self.decimal(column);
        let mask = bad(values, &zero(values)).expect("decimal compare");
        self.each(&mask, problems, |row| {
            (
                column,
                hundredths(values.value(row)).to_string(),
                rule.to_string(),
            )
        });
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
            RowRule::TargetShape => self.target_shape(problems),
            RowRule::ResultShape => self.result_shape(problems),
            RowRule::ClosedInYear => self.closed_in_year(problems),
            RowRule::DecisionAmounts => self.decision_amounts(problems),
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

    /// max_score > 0; a target value unless qualitative.
    fn target_shape(&self, problems: &mut Vec<Problem>) {
        let at_most_zero = |a: &Decimal128Array, b: &dyn Datum| lt_eq(a, b);
        self.decimal_rule(
            "max_score",
            at_most_zero,
            "max_score must be greater than 0",
            problems,
        );
        let comparator = strings(self.column("comparator"));
        let value = self.column("target_value");
        let missing = and(
            &and(
                &is_not_null(comparator).expect("null"),
                &neq(comparator, &StringArray::new_scalar("qualitative")).expect("text compare"),
            )
            .expect("and"),
            &is_null(value).expect("null"),
        )
        .expect("and");
        self.each(&missing, problems, |row| {
            (
                "target_value",
                String::new(),
                format!(
                    "a target compared with {} needs a target_value (only a qualitative target has none)",
                    comparator.value(row)
                ),
            )
        });
    }

    /// awarded_score not negative; a likelihood only before the year-end month.
    fn result_shape(&self, problems: &mut Vec<Problem>) {
        let below_zero = |a: &Decimal128Array, b: &dyn Datum| lt(a, b);
        self.decimal_rule(
            "awarded_score",
            below_zero,
            "awarded_score must not be negative",
            problems,
        );
        let months = ints(self.column("as_of_month"));
        let likelihood = strings(self.column("likelihood"));
        let at_year_end = and(
            &eq(months, &Int32Array::new_scalar(12)).expect("int compare"),
            &is_not_null(likelihood).expect("null"),
        )
        .expect("and");
        self.each(&at_year_end, problems, |row| {
            (
                "likelihood",
                likelihood.value(row).to_string(),
                "month 12 is the year-end result: likelihood is for progress before it".to_string(),
            )
        });
    }

    /// closed_date on or after 1 January of the row's year.
    fn closed_in_year(&self, problems: &mut Vec<Problem>) {
        let years = ints(self.column("year"));
        let closed = self
            .column("closed_date")
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("date columns are Date32");
        let starts: Date32Array = years
            .iter()
            .map(|y| y.and_then(|y| chrono::NaiveDate::from_ymd_opt(y, 1, 1)))
            .map(|d| d.map(|d| (d - chrono::NaiveDate::default()).num_days() as i32))
            .collect();
        let early = lt(closed, &starts).expect("date compare");
        self.each(&early, problems, |row| {
            (
                "closed_date",
                super::validate::date(closed.value(row)).to_string(),
                format!(
                    "closed_date is before the start of the year {} the problem belongs to",
                    years.value(row)
                ),
            )
        });
    }

    /// evaluated_year < budget_year; approved ≤ requested; cancel ⇒ approved 0.
    fn decision_amounts(&self, problems: &mut Vec<Problem>) {
        let budget_year = ints(self.column("budget_year"));
        let evaluated = ints(self.column("evaluated_year"));
        let not_before = gt_eq(evaluated, budget_year).expect("int compare");
        self.each(&not_before, problems, |row| {
            (
                "evaluated_year",
                evaluated.value(row).to_string(),
                format!(
                    "the evaluated year must be before the budget year {}",
                    budget_year.value(row)
                ),
            )
        });
        self.approved_within_requested(problems);
        let approved = self.decimal("approved_amount");
        let action = strings(self.column("action"));
        let cancelled_with_money = and(
            &eq(action, &StringArray::new_scalar("cancel")).expect("text compare"),
            &neq(approved, &zero(approved)).expect("decimal compare"),
        )
        .expect("and");
        self.each(&cancelled_with_money, problems, |row| {
            (
                "approved_amount",
                hundredths(approved.value(row)).to_string(),
                "a cancelled budget must have approved_amount 0".to_string(),
            )
        });
    }

    /// approved_amount ≤ requested_amount.
    fn approved_within_requested(&self, problems: &mut Vec<Problem>) {
        let requested = self.decimal("requested_amount");
        let approved = self.decimal("approved_amount");
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
    }

    /// approved ≤ requested; `reject` ⇒ approved 0; `returned` ⇒ approved empty;
    /// `support` / `partial` ⇒ an approved amount.
    fn review_amounts(&self, problems: &mut Vec<Problem>) {
        self.approved_within_requested(problems);
        let approved = self.decimal("approved_amount");
        let conclusion = strings(self.column("conclusion"));
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
