//! `prior_year(value, year) OVER (PARTITION BY … ORDER BY year)`: the value of the row
//! whose year is exactly this year − 1 in the partition. Unlike `LAG`, a missing year
//! gives NULL instead of silently comparing across the gap.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    DocSection, Documentation, PartitionEvaluator, Signature, Volatility, WindowUDFImpl,
};

const SIGNATURE: &str =
    "prior_year(value ANY, year INTEGER) OVER (PARTITION BY … ORDER BY year) -> type of value";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PriorYear {
    signature: Signature,
}

impl PriorYear {
    pub fn new() -> Self {
        PriorYear {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for PriorYear {
    fn name(&self) -> &str {
        "prior_year"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value, year] if year.is_integer() || year.is_null() => {
                Ok(vec![value.clone(), DataType::Int64])
            }
            [_, year] => plan_err!("prior_year: expected {SIGNATURE}, but year is {year}"),
            _ => plan_err!(
                "prior_year: expected {SIGNATURE}, but got {} arguments",
                arg_types.len()
            ),
        }
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(PriorYearEvaluator))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let value = field_args
            .get_input_field(0)
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        Ok(Arc::new(Field::new(field_args.name(), value, true)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DocSection::default(),
                "The value from the row whose year is exactly this row's year − 1 in the same \
                 partition; NULL when that year is missing (LAG would compare across the gap). \
                 A year that appears twice in one partition is an error.",
                SIGNATURE,
            )
            .with_sql_example(
                "SELECT dept_code, year, total,\n\
                 \x20      total - prior_year(total, year) OVER (PARTITION BY dept_code ORDER BY year) AS change\n\
                 FROM (SELECT dept_code, year, sum(score) AS total FROM dept_scores GROUP BY 1, 2);",
            )
            .with_argument("value", "the value to carry from the previous year")
            .with_argument("year", "the row's year")
            .build()
        }))
    }
}

#[derive(Debug)]
struct PriorYearEvaluator;

impl PartitionEvaluator for PriorYearEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let years = cast(&values[1], &DataType::Int64)?;
        let years = years.as_primitive::<Int64Type>();
        let mut row_of_year: HashMap<i64, u32> = HashMap::with_capacity(num_rows);
        for i in 0..num_rows {
            if years.is_valid(i) && row_of_year.insert(years.value(i), i as u32).is_some() {
                return exec_err!(
                    "prior_year: year {} appears twice in one partition; partition by the columns that make each year unique",
                    years.value(i)
                );
            }
        }
        let indices: UInt32Array = (0..num_rows)
            .map(|i| {
                years
                    .is_valid(i)
                    .then(|| years.value(i).checked_sub(1))
                    .flatten()
                    .and_then(|prior| row_of_year.get(&prior).copied())
            })
            .collect();
        Ok(take(values[0].as_ref(), &indices, None)?)
    }
}
