//! Numbers as kpidb's functions take them: exact decimals when every argument is a
//! decimal or an integer (money and scores stay exact until the final division),
//! floats otherwise. Shared by the rate functions and perf_grade.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array, PrimitiveArray};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType, Decimal128Type, Float64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Widest decimal precision, so coercion never overflows the stored values.
const PRECISION: u8 = 38;

pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Null)
}

/// The common type of numeric arguments: `Decimal128(38, max scale)` when all are
/// decimals or integers, `Float64` when any is a float. `Err` names the function and
/// its signature.
pub fn coerce(name: &str, signature: &str, arg_types: &[DataType]) -> Result<DataType> {
    if let Some(bad) = arg_types.iter().find(|t| !is_numeric(t)) {
        return plan_err!("{name}: expected {signature}, but an argument is {bad}");
    }
    if arg_types.iter().any(|t| t.is_floating()) {
        return Ok(DataType::Float64);
    }
    let scale = arg_types
        .iter()
        .map(|t| match t {
            DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => (*s).max(0),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    if arg_types.iter().all(|t| matches!(t, DataType::Null)) {
        return Ok(DataType::Float64);
    }
    Ok(DataType::Decimal128(PRECISION, scale))
}

/// Checks the argument count of a function with `min..=max` arguments.
pub fn check_count(
    name: &str,
    signature: &str,
    arg_types: &[DataType],
    min: usize,
    max: usize,
) -> Result<()> {
    if arg_types.len() < min || arg_types.len() > max {
        return plan_err!(
            "{name}: expected {signature}, but got {} argument{}",
            arg_types.len(),
            if arg_types.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// Applies a rate of two numbers row by row. Decimals reach `exact` as integers at one
/// scale; floats reach `float`. `None` gives NULL.
pub fn binary_rate(
    name: &str,
    args: &[ColumnarValue],
    exact: fn(i128, i128) -> Option<f64>,
    float: fn(f64, f64) -> Option<f64>,
) -> Result<ColumnarValue> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let (a, b) = (&arrays[0], &arrays[1]);
    let out: Float64Array = match (a.data_type(), b.data_type()) {
        (DataType::Decimal128(_, sa), DataType::Decimal128(_, sb)) if sa == sb => zip_rate(
            a.as_primitive::<Decimal128Type>(),
            b.as_primitive::<Decimal128Type>(),
            exact,
        ),
        (DataType::Float64, DataType::Float64) => zip_rate(
            a.as_primitive::<Float64Type>(),
            b.as_primitive::<Float64Type>(),
            float,
        ),
        (x, y) => return exec_err!("{name}: arguments of types {x} and {y} were not coerced"),
    };
    columnar(Arc::new(out), all_scalar)
}

/// `f` over two arrays row by row; NULL where either input is NULL.
fn zip_rate<T: ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    b: &PrimitiveArray<T>,
    f: fn(T::Native, T::Native) -> Option<f64>,
) -> Float64Array {
    a.iter().zip(b.iter()).map(|(a, b)| f(a?, b?)).collect()
}

/// A function's result: one value when every argument was a constant, else an array.
pub fn columnar(out: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// `a / b` as f64 for integers that are exact; the one rounding is the division.
pub fn ratio(a: i128, b: i128) -> f64 {
    a as f64 / b as f64
}

/// A rate of two numbers, returned as a double: the shape score_rate, cut_rate and
/// yoy_pct share. Each function's file supplies its name, formula and documentation.
#[derive(Debug)]
pub struct Rate {
    pub name: &'static str,
    pub signature_text: &'static str,
    pub exact: fn(i128, i128) -> Option<f64>,
    pub float: fn(f64, f64) -> Option<f64>,
    pub doc: &'static std::sync::LazyLock<Documentation>,
    signature: Signature,
}

impl Rate {
    pub fn new(
        name: &'static str,
        signature_text: &'static str,
        exact: fn(i128, i128) -> Option<f64>,
        float: fn(f64, f64) -> Option<f64>,
        doc: &'static std::sync::LazyLock<Documentation>,
    ) -> Self {
        Rate {
            name,
            signature_text,
            exact,
            float,
            doc,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

// Functions are identified by name: two rates with one name are the same function.
impl PartialEq for Rate {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Rate {}

impl std::hash::Hash for Rate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Rate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_count(self.name, self.signature_text, arg_types, 2, 2)?;
        Ok(vec![coerce(self.name, self.signature_text, arg_types)?; 2])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        binary_rate(self.name, &args.args, self.exact, self.float)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(self.doc)
    }
}
