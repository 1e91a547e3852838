//! `lowest_k(label, value, k)`: the labels of the k lowest values, lowest first,
//! ties broken by label, as in "the three lowest-scoring indicators of a department".

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};
use datafusion::physical_plan::expressions::Literal;

const SIGNATURE: &str = "lowest_k(label TEXT, value NUMERIC, k INTEGER) -> LIST<TEXT>";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LowestK {
    signature: Signature,
}

impl LowestK {
    pub fn new() -> Self {
        LowestK {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

impl AggregateUDFImpl for LowestK {
    fn name(&self) -> &str {
        "lowest_k"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [label, value, k] = arg_types else {
            return plan_err!(
                "lowest_k: expected {SIGNATURE}, but got {} arguments",
                arg_types.len()
            );
        };
        if !(label.is_null()
            || matches!(
                label,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            )
            || label.is_integer())
        {
            return plan_err!("lowest_k: expected {SIGNATURE}, but label is {label}");
        }
        if !(value.is_numeric() || value.is_null()) {
            return plan_err!("lowest_k: expected {SIGNATURE}, but value is {value}");
        }
        if !k.is_integer() {
            return plan_err!("lowest_k: expected {SIGNATURE}, but k is {k}");
        }
        Ok(vec![DataType::Utf8, DataType::Float64, DataType::Int64])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(DataType::Utf8))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let k = args
            .exprs
            .get(2)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value().cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(k)) => k,
                _ => None,
            });
        match k {
            Some(k) if k >= 0 => Ok(Box::new(Lowest {
                k: k as usize,
                items: Vec::new(),
            })),
            Some(k) => plan_err!("lowest_k: k must not be negative, got {k}"),
            None => plan_err!("lowest_k: k must be a constant integer ({SIGNATURE})"),
        }
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("labels", list_of(DataType::Utf8), true)),
            Arc::new(Field::new("values", list_of(DataType::Float64), true)),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DocSection::default(),
                "The labels of the k lowest values in the group, lowest first; equal values are \
                 ordered by label. Rows with a NULL label or value are skipped. k is a constant ≥ 0.",
                SIGNATURE,
            )
            .with_sql_example(
                "SELECT dept_code, lowest_k(indicator_code, score_rate(score, max_score), 3)\n\
                 FROM dept_scores WHERE year = 2023 GROUP BY dept_code;",
            )
            .with_argument("label", "what to name (an indicator code, a department)")
            .with_argument("value", "what to rank by, lowest first")
            .with_argument("k", "how many labels to return")
            .build()
        }))
    }
}

#[derive(Debug)]
struct Lowest {
    k: usize,
    /// At most k candidates after each batch, sorted (value, label).
    items: Vec<(f64, String)>,
}

impl Lowest {
    fn keep_lowest(&mut self) {
        self.items
            .sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        self.items.truncate(self.k);
    }

    fn add(&mut self, labels: &ArrayRef, values: &ArrayRef) -> Result<()> {
        let labels = cast(labels, &DataType::Utf8)?;
        let values = cast(values, &DataType::Float64)?;
        let (labels, values) = (
            labels.as_string::<i32>(),
            values.as_primitive::<Float64Type>(),
        );
        for i in 0..labels.len() {
            if labels.is_valid(i) && values.is_valid(i) {
                self.items
                    .push((values.value(i), labels.value(i).to_string()));
            }
        }
        self.keep_lowest();
        Ok(())
    }
}

impl Accumulator for Lowest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], &values[1])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (labels, values): (&ListArray, &ListArray) = (states[0].as_list(), states[1].as_list());
        for i in 0..labels.len() {
            if labels.is_valid(i) && values.is_valid(i) {
                self.add(&labels.value(i), &values.value(i))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let labels: Vec<ScalarValue> = self
            .items
            .iter()
            .map(|(_, l)| ScalarValue::Utf8(Some(l.clone())))
            .collect();
        let values: Vec<ScalarValue> = self
            .items
            .iter()
            .map(|(v, _)| ScalarValue::Float64(Some(*v)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&labels, &DataType::Utf8)),
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let labels: Vec<ScalarValue> = self
            .items
            .iter()
            .map(|(_, l)| ScalarValue::Utf8(Some(l.clone())))
            .collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &labels,
            &DataType::Utf8,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .items
                .iter()
                .map(|(_, l)| 8 + l.capacity() + 24)
                .sum::<usize>()
    }
}
