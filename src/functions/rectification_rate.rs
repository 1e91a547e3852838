//! `rectification_rate(closed_date, due_date)`: the share of rectification items
//! closed by their due date (整改按期完成率).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, FieldRef, Int64Type};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};

use super::numeric::check_count;

const SIGNATURE: &str = "rectification_rate(closed_date DATE, due_date DATE) -> DOUBLE";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RectificationRate {
    signature: Signature,
}

impl Default for RectificationRate {
    fn default() -> Self {
        Self::new()
    }
}

impl RectificationRate {
    pub fn new() -> Self {
        RectificationRate {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for RectificationRate {
    fn name(&self) -> &str {
        "rectification_rate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_count(self.name(), SIGNATURE, arg_types, 2, 2)?;
        for (t, what) in arg_types.iter().zip(["closed_date", "due_date"]) {
            match t {
                DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Utf8
                | DataType::Utf8View
                | DataType::LargeUtf8
                | DataType::Null => {}
                other => {
                    return plan_err!(
                        "rectification_rate: expected {SIGNATURE}, but {what} is {other}"
                    )
                }
            }
        }
        Ok(vec![DataType::Date32, DataType::Date32])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OnTime::default()))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("on_time", DataType::Int64, false)),
            Arc::new(Field::new("items", DataType::Int64, false)),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DocSection::default(),
                "The share of rectification items closed on or before their due date, among all \
                 items (open ones and ones closed late count against it; an item without a due \
                 date cannot be on time), a double in 0..1; NULL over no items. The 评价—反馈—整改 \
                 loop's completion rate.",
                SIGNATURE,
            )
            .with_sql_example(
                "SELECT source, rectification_rate(closed_date, due_date) FROM rectifications\n\
                 WHERE year = 2023 GROUP BY source ORDER BY source;",
            )
            .with_argument("closed_date", "when the item was closed; NULL while open")
            .with_argument("due_date", "when it was due")
            .build()
        }))
    }
}

#[derive(Debug, Default)]
struct OnTime {
    on_time: i64,
    items: i64,
}

impl Accumulator for OnTime {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let closed = values[0].as_primitive::<Date32Type>();
        let due = values[1].as_primitive::<Date32Type>();
        self.items += closed.len() as i64;
        self.on_time += closed
            .iter()
            .zip(due.iter())
            .filter(|(c, d)| matches!((c, d), (Some(c), Some(d)) if c <= d))
            .count() as i64;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let on_time: &Int64Array = states[0].as_primitive::<Int64Type>();
        let items: &Int64Array = states[1].as_primitive::<Int64Type>();
        self.on_time += on_time.iter().flatten().sum::<i64>();
        self.items += items.iter().flatten().sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.on_time)),
            ScalarValue::Int64(Some(self.items)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            (self.items > 0).then(|| self.on_time as f64 / self.items as f64),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
