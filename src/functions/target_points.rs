//! `target_points(actual, target, comparator, max_score [, awarded_score])`: the points
//! one performance target earns in a self-evaluation.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use rust_decimal::{Decimal, RoundingStrategy};

use super::completion_rate::{completion, decimal, require_numbers, require_text, VALUES};
use super::numeric::{check_count, columnar};
use crate::model::SCORE;

const SIGNATURE: &str = "target_points(actual NUMERIC, target NUMERIC, comparator TEXT, \
                         max_score NUMERIC [, awarded_score NUMERIC]) -> DECIMAL(7, 2)";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection::default(),
        "The points one performance target earns. A quantitative target earns \
         min(completion_rate, 1) × max_score (never below 0), rounded half-up to two \
         decimals: an unmet target earns points in proportion to its completion, an \
         over-achieved one no more than its max_score. A qualitative target earns the \
         awarded_score an evaluator gave it. NULL when the completion rate is NULL (a value \
         missing, a zero denominator). Rule: the Ministry of Finance's project \
         self-evaluation practice (项目支出绩效自评: 未完成的定量指标按完成比例计分; 反向指标按 \
         指标值/实际值计算).",
        SIGNATURE,
    )
    .with_sql_example(
        "SELECT target_points(92, 100, '>=', 20), target_points(12, 10, '<=', 15);  -- 18.40, 12.50",
    )
    .with_argument("actual", "the actual value reached")
    .with_argument("target", "the target value set")
    .with_argument("comparator", "'>=', '<=', '=' or 'qualitative'")
    .with_argument("max_score", "the target's points (分值)")
    .with_argument(
        "awarded_score",
        "for a qualitative target, the points an evaluator gave (optional)",
    )
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TargetPoints {
    signature: Signature,
}

impl Default for TargetPoints {
    fn default() -> Self {
        Self::new()
    }
}

impl TargetPoints {
    pub fn new() -> Self {
        TargetPoints {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TargetPoints {
    fn name(&self) -> &str {
        "target_points"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(SCORE)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_count(self.name(), SIGNATURE, arg_types, 4, 5)?;
        require_numbers(self.name(), SIGNATURE, arg_types, &[0, 1, 3, 4])?;
        require_text(self.name(), SIGNATURE, arg_types, 2, "comparator")?;
        let mut types = vec![VALUES, VALUES, DataType::Utf8, VALUES];
        if arg_types.len() == 5 {
            types.push(VALUES);
        }
        Ok(types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let mut arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if !(4..=5).contains(&arrays.len()) {
            return exec_err!(
                "target_points: expected {SIGNATURE}, got {} arguments",
                arrays.len()
            );
        }
        for i in [0, 1, 3, 4] {
            if let Some(array) = arrays.get_mut(i) {
                *array = cast(array, &VALUES)?;
            }
        }
        let value = |i: usize, r: usize| -> Option<Decimal> {
            let a = arrays.get(i)?.as_primitive::<Decimal128Type>();
            a.is_valid(r).then(|| decimal(a.value(r))).flatten()
        };
        let comparators = cast(&arrays[2], &DataType::Utf8)?;
        let comparators = comparators.as_string::<i32>();
        let mut out = Vec::with_capacity(comparators.len());
        for r in 0..comparators.len() {
            if !comparators.is_valid(r) {
                out.push(None);
                continue;
            }
            let points = points(
                value(0, r),
                value(1, r),
                comparators.value(r),
                value(3, r),
                value(4, r),
            );
            match points {
                Ok(None) => out.push(None),
                Ok(Some(points)) => match hundredths(points) {
                    Some(units) => out.push(Some(units)),
                    None => {
                        return exec_err!("target_points: {points} points do not fit DECIMAL(7, 2)")
                    }
                },
                Err(message) => return exec_err!("target_points: {message}"),
            }
        }
        let (p, s) = match SCORE {
            DataType::Decimal128(p, s) => (p, s),
            _ => unreachable!("SCORE is a decimal"),
        };
        let out = Decimal128Array::from(out).with_precision_and_scale(p, s)?;
        columnar(Arc::new(out), all_scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The points a target earns, rounded half-up to two decimals (see the documentation).
pub fn points(
    actual: Option<Decimal>,
    target: Option<Decimal>,
    comparator: &str,
    max_score: Option<Decimal>,
    awarded: Option<Decimal>,
) -> std::result::Result<Option<Decimal>, String> {
    let rate = completion(actual, target, comparator)?;
    let qualitative =
        crate::model::aliases::canonical_value("comparator", comparator.trim()) == "qualitative";
    let earned = if qualitative {
        awarded
    } else {
        match (rate, max_score) {
            (Some(rate), Some(max)) => rate.min(Decimal::ONE).max(Decimal::ZERO).checked_mul(max),
            _ => None,
        }
    };
    Ok(earned.map(|p| p.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)))
}

/// A two-decimal Decimal as hundredths, if it fits the score type.
fn hundredths(points: Decimal) -> Option<i128> {
    let mut points = points;
    points.rescale(2);
    let units = points.mantissa();
    (units.abs() < 10i128.pow(7)).then_some(units)
}
