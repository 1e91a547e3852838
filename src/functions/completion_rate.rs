//! `completion_rate(actual, target, comparator)`: how far a performance target was met.
//! The rule behind target scoring in the Ministry of Finance's project self-evaluation
//! practice: actual / target for a higher-is-better target, target / actual for a
//! lower-is-better one, closeness for an exact one.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Decimal128Array, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::numeric::{check_count, columnar, is_numeric};
use crate::model::aliases::canonical_value;
use crate::model::COMPARATORS;

const SIGNATURE: &str =
    "completion_rate(actual NUMERIC, target NUMERIC, comparator TEXT) -> DOUBLE";

/// The decimal type the values are taken in: wide enough for Decimal128(18, 4)
/// measures and exact for them.
pub(crate) const VALUES: DataType = DataType::Decimal128(38, 10);

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection::default(),
        "How far a performance target was met, as a double (1 = met exactly). By comparator: \
         '>=' (higher is better) actual / target; '<=' (lower is better: costs, days, \
         complaints) target / actual; '=' 1 when equal, else 1 − |actual − target| / |target|, \
         never below 0. NULL for 'qualitative' targets (an evaluator scores those), when \
         either value is NULL, and when the denominator is 0. Over-achievement gives a rate \
         above 1; target_points caps it. Rule: the Ministry of Finance's project \
         self-evaluation practice (项目支出绩效自评), indicator completion by direction.",
        SIGNATURE,
    )
    .with_sql_example(
        "SELECT completion_rate(92, 100, '>='), completion_rate(12, 10, '<=');  -- 0.92, 0.8333…",
    )
    .with_argument("actual", "the actual value reached (实际完成值)")
    .with_argument("target", "the target value set (指标值)")
    .with_argument(
        "comparator",
        "'>=', '<=', '=' or 'qualitative' (also ≥, ≤, 定性)",
    )
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CompletionRate {
    signature: Signature,
}

impl Default for CompletionRate {
    fn default() -> Self {
        Self::new()
    }
}

impl CompletionRate {
    pub fn new() -> Self {
        CompletionRate {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Checks that `arg_types[i]` is text (or NULL).
pub(crate) fn require_text(
    name: &str,
    signature: &str,
    arg_types: &[DataType],
    i: usize,
    what: &str,
) -> Result<()> {
    match &arg_types[i] {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => Ok(()),
        other => plan_err!("{name}: expected {signature}, but {what} is {other}"),
    }
}

/// Checks that the arguments at `numeric` are numbers.
pub(crate) fn require_numbers(
    name: &str,
    signature: &str,
    arg_types: &[DataType],
    numeric: &[usize],
) -> Result<()> {
    for &i in numeric {
        if let Some(t) = arg_types.get(i).filter(|t| !is_numeric(t)) {
            return plan_err!(
                "{name}: expected {signature}, but argument {} is {t}",
                i + 1
            );
        }
    }
    Ok(())
}

impl ScalarUDFImpl for CompletionRate {
    fn name(&self) -> &str {
        "completion_rate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_count(self.name(), SIGNATURE, arg_types, 3, 3)?;
        require_numbers(self.name(), SIGNATURE, arg_types, &[0, 1])?;
        require_text(self.name(), SIGNATURE, arg_types, 2, "comparator")?;
        Ok(vec![VALUES, VALUES, DataType::Utf8])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if arrays.len() != 3 {
            return exec_err!(
                "completion_rate: expected {SIGNATURE}, got {} arguments",
                arrays.len()
            );
        }
        let actual = cast(&arrays[0], &VALUES)?;
        let target = cast(&arrays[1], &VALUES)?;
        let (actual, target) = (
            actual.as_primitive::<Decimal128Type>(),
            target.as_primitive::<Decimal128Type>(),
        );
        let comparators = cast(&arrays[2], &DataType::Utf8)?;
        let comparators = comparators.as_string::<i32>();
        let mut out = Vec::with_capacity(actual.len());
        for r in 0..actual.len() {
            let rate = match row(
                actual,
                target,
                comparators.is_valid(r).then(|| comparators.value(r)),
                r,
            ) {
                Ok(rate) => rate,
                Err(message) => return exec_err!("completion_rate: {message}"),
            };
            out.push(rate.and_then(|r| r.to_f64()));
        }
        columnar(Arc::new(Float64Array::from(out)), all_scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn row(
    actual: &Decimal128Array,
    target: &Decimal128Array,
    comparator: Option<&str>,
    r: usize,
) -> std::result::Result<Option<Decimal>, String> {
    let Some(comparator) = comparator else {
        return Ok(None);
    };
    let value = |a: &Decimal128Array| a.is_valid(r).then(|| decimal(a.value(r))).flatten();
    completion(value(actual), value(target), comparator)
}

/// A value of [`VALUES`] as a Decimal (None beyond rust_decimal's 96 bits).
pub(crate) fn decimal(units: i128) -> Option<Decimal> {
    let DataType::Decimal128(_, scale) = VALUES else {
        unreachable!("VALUES is a decimal")
    };
    Decimal::try_from_i128_with_scale(units, scale as u32).ok()
}

/// The completion rate of `actual` against `target`, exactly; `Err` for a comparator
/// that is none of [`COMPARATORS`].
pub(crate) fn completion(
    actual: Option<Decimal>,
    target: Option<Decimal>,
    comparator: &str,
) -> std::result::Result<Option<Decimal>, String> {
    let comparator = canonical_value("comparator", comparator.trim());
    if !COMPARATORS.contains(&comparator) {
        return Err(format!(
            "unknown comparator '{comparator}'; the comparators are {}",
            COMPARATORS.join(", ")
        ));
    }
    let (Some(actual), Some(target)) = (actual, target) else {
        return Ok(None);
    };
    Ok(match comparator {
        ">=" => actual.checked_div(target),
        "<=" => target.checked_div(actual),
        "=" if actual == target => Some(Decimal::ONE),
        "=" => (actual - target)
            .abs()
            .checked_div(target.abs())
            .map(|miss| (Decimal::ONE - miss).max(Decimal::ZERO)),
        _ => None,
    })
}
