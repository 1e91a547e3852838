//! `coverage_rate(flag)`: the share of true among the non-null flags, as in the
//! target-declaration, disclosure, monitoring and self-evaluation coverage rates.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};

const SIGNATURE: &str = "coverage_rate(flag BOOLEAN) -> DOUBLE";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CoverageRate {
    signature: Signature,
}

impl CoverageRate {
    pub fn new() -> Self {
        CoverageRate {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for CoverageRate {
    fn name(&self) -> &str {
        "coverage_rate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Boolean | DataType::Null] => Ok(vec![DataType::Boolean]),
            [other] => plan_err!("coverage_rate: expected {SIGNATURE}, but flag is {other}"),
            _ => plan_err!(
                "coverage_rate: expected {SIGNATURE}, but got {} arguments",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Coverage::default()))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("covered", DataType::Int64, false)),
            Arc::new(Field::new("flagged", DataType::Int64, false)),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DocSection::default(),
                "The share of true among the non-null flags, a double in 0..1; NULL when no flag is \
                 set either way. The coverage rates of the reports: target declaration (has_targets), \
                 review (targets_reviewed), disclosure (targets_disclosed).",
                SIGNATURE,
            )
            .with_sql_example("SELECT year, coverage_rate(has_targets) FROM unit_budgets GROUP BY year ORDER BY year;")
            .with_argument("flag", "a boolean per row")
            .build()
        }))
    }
}

#[derive(Debug, Default)]
struct Coverage {
    covered: i64,
    flagged: i64,
}

impl Accumulator for Coverage {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let flags = values[0].as_boolean();
        self.covered += flags.true_count() as i64;
        self.flagged += (flags.len() - flags.null_count()) as i64;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let covered: &Int64Array = states[0].as_primitive::<Int64Type>();
        let flagged: &Int64Array = states[1].as_primitive::<Int64Type>();
        self.covered += covered.iter().flatten().sum::<i64>();
        self.flagged += flagged.iter().flatten().sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.covered)),
            ScalarValue::Int64(Some(self.flagged)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            (self.flagged > 0).then(|| self.covered as f64 / self.flagged as f64),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
