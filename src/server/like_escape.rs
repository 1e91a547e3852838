//! `kpidb_like_pattern(pattern, escape)`: a LIKE pattern written with another escape
//! character (`'pg/_%' ESCAPE '/'`, as SQLAlchemy writes it) rewritten with the
//! backslash, the only escape DataFusion's LIKE takes. The compat rewrite puts it in
//! place of `ESCAPE 'c'`; an escaped escape character (`//`) stands for itself.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub const NAME: &str = "kpidb_like_pattern";

#[derive(Debug, PartialEq, Eq, Hash)]
struct LikePattern {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(LikePattern {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// `pattern` with `escape` as its escape character, rewritten for the backslash.
pub fn with_backslash(pattern: &str, escape: char) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c == escape => match chars.next() {
                Some(next) if next == escape => out.push(escape),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '\\' => out.push_str("\\\\"),
            other => out.push(other),
        }
    }
    out
}

impl ScalarUDFImpl for LikePattern {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let text = |i: usize| -> Result<StringArray> {
            let array = cast(&args.args[i].to_array(args.number_rows)?, &DataType::Utf8)?;
            Ok(array
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .unwrap_or_else(|| StringArray::new_null(args.number_rows)))
        };
        let (patterns, escapes) = (text(0)?, text(1)?);
        let out: StringArray = patterns
            .iter()
            .zip(escapes.iter())
            .map(|(pattern, escape)| {
                let pattern = pattern?;
                Some(match escape.and_then(|e| e.chars().next()) {
                    Some(escape) if escape != '\\' => with_backslash(pattern, escape),
                    _ => pattern.to_string(),
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_escapes_become_the_backslash() {
        assert_eq!(with_backslash("pg/_%", '/'), "pg\\_%");
        assert_eq!(with_backslash("a//b", '/'), "a/b");
        assert_eq!(with_backslash("a\\b/%", '/'), "a\\\\b\\%");
        assert_eq!(with_backslash("plain%", '#'), "plain%");
    }
}
