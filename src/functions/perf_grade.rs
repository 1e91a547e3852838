//! `perf_grade(score [, scheme])`: the grade band of a 100-point score.
//! Bands are 90 / 80 / 60 with the lower bound inclusive (89.99 is 良, 90.00 is 优),
//! compared exactly for decimal scores.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, DecimalType, Float64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::numeric::{check_count, coerce, columnar, is_numeric};

const SIGNATURE: &str = "perf_grade(score NUMERIC [, scheme TEXT]) -> TEXT";

/// A naming of the four grade bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GradeScheme {
    /// Ministry of Finance: 优 / 良 / 中 / 差.
    #[default]
    Mof,
    /// Local reports: 优秀 / 良好 / 一般 / 较差.
    Local,
    /// English: excellent / good / fair / poor.
    En,
}

impl GradeScheme {
    pub const NAMES: &'static str = "mof, local, en";

    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "mof" => Some(GradeScheme::Mof),
            "local" => Some(GradeScheme::Local),
            "en" => Some(GradeScheme::En),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GradeScheme::Mof => "mof",
            GradeScheme::Local => "local",
            GradeScheme::En => "en",
        }
    }

    /// Names of the bands, best first.
    pub fn labels(self) -> [&'static str; 4] {
        match self {
            GradeScheme::Mof => ["优", "良", "中", "差"],
            GradeScheme::Local => ["优秀", "良好", "一般", "较差"],
            GradeScheme::En => ["excellent", "good", "fair", "poor"],
        }
    }

    /// The band of a score in hundredths-exact form: `score / 10^scale`.
    pub fn grade(self, score: i128, scale: i8) -> &'static str {
        let unit = 10i128.pow(scale.max(0) as u32);
        let band = if score >= 90 * unit {
            0
        } else if score >= 80 * unit {
            1
        } else if score >= 60 * unit {
            2
        } else {
            3
        };
        self.labels()[band]
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PerfGrade {
    signature: Signature,
    default_scheme: GradeScheme,
}

impl PerfGrade {
    /// The scheme used when a call names none.
    pub fn default_scheme(&self) -> GradeScheme {
        self.default_scheme
    }

    pub fn new(default_scheme: GradeScheme) -> Self {
        PerfGrade {
            signature: Signature::user_defined(Volatility::Immutable),
            default_scheme,
        }
    }
}

fn scheme_of(text: &str) -> Result<GradeScheme> {
    match GradeScheme::parse(text) {
        Some(s) => Ok(s),
        None => exec_err!(
            "perf_grade: unknown scheme '{text}'; the schemes are {}",
            GradeScheme::NAMES
        ),
    }
}

impl ScalarUDFImpl for PerfGrade {
    fn name(&self) -> &str {
        "perf_grade"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_count(self.name(), SIGNATURE, arg_types, 1, 2)?;
        if !is_numeric(&arg_types[0]) {
            return plan_err!(
                "perf_grade: expected {SIGNATURE}, but score is {}",
                arg_types[0]
            );
        }
        let mut types = vec![coerce(self.name(), SIGNATURE, &arg_types[..1])?];
        if let Some(scheme) = arg_types.get(1) {
            if !matches!(
                scheme,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null
            ) {
                return plan_err!("perf_grade: expected {SIGNATURE}, but scheme is {scheme}");
            }
            types.push(DataType::Utf8);
        }
        Ok(types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // A constant scheme is read once; a scheme column row by row.
        let fixed = match args.args.get(1) {
            None => Some(self.default_scheme),
            Some(ColumnarValue::Scalar(s)) if s.is_null() => Some(self.default_scheme),
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name)))) => Some(scheme_of(name)?),
            Some(_) => None,
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let schemes = arrays.get(1).map(|a| a.as_string::<i32>().clone());
        let scheme_at = |i: usize| -> Result<GradeScheme> {
            match (fixed, &schemes) {
                (Some(s), _) => Ok(s),
                (None, Some(col)) if col.is_null(i) => Ok(self.default_scheme),
                (None, Some(col)) => scheme_of(col.value(i)),
                (None, None) => Ok(self.default_scheme),
            }
        };
        let scores = &arrays[0];
        let mut out = Vec::with_capacity(scores.len());
        match scores.data_type() {
            DataType::Decimal128(_, scale) => {
                let scores = scores.as_primitive::<Decimal128Type>();
                let unit = 10i128.pow((*scale).max(0) as u32);
                for i in 0..scores.len() {
                    if scores.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let v = scores.value(i);
                    if v < 0 || v > 100 * unit {
                        return exec_err!(
                            "perf_grade: score {} is outside 0..100",
                            Decimal128Type::format_decimal(v, 38, *scale)
                        );
                    }
                    out.push(Some(scheme_at(i)?.grade(v, *scale)));
                }
            }
            DataType::Float64 => {
                let scores = scores.as_primitive::<Float64Type>();
                for i in 0..scores.len() {
                    if scores.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let v = scores.value(i);
                    if !(0.0..=100.0).contains(&v) {
                        return exec_err!("perf_grade: score {v} is outside 0..100");
                    }
                    // Grade on hundredths so a float 89.99 is 良 like the decimal 89.99.
                    out.push(Some(scheme_at(i)?.grade((v * 100.0).round() as i128, 2)));
                }
            }
            other => return exec_err!("perf_grade: score of type {other} was not coerced"),
        }
        columnar(Arc::new(StringArray::from(out)), all_scalar)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DocSection::default(),
                "The grade of a 100-point score. Bands 90 / 80 / 60, lower bound inclusive \
                 (89.99 → 良, 90.00 → 优). Schemes: 'mof' 优/良/中/差, 'local' 优秀/良好/一般/较差, \
                 'en' excellent/good/fair/poor; the default comes from the configuration (mof). \
                 NULL gives NULL; a score outside 0..100 is an error naming it.",
                SIGNATURE,
            )
            .with_sql_example(
                "SELECT project_code, total_score, perf_grade(total_score, 'local') FROM evaluations\n\
                 WHERE year = 2023 AND eval_kind = 'finance_evaluation';",
            )
            .with_argument("score", "a score out of 100")
            .with_argument("scheme", "'mof', 'local' or 'en' (optional)")
            .build()
        }))
    }
}
