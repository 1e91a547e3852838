//! `format(formatstr, args…)`, PostgreSQL's string formatting: `%s` an argument as
//! text (NULL as nothing), `%I` as an identifier (double-quoted when it must be),
//! `%L` as a literal (single-quoted, NULL as `NULL`), `%%` a percent sign. Metabase
//! names each table `format('%I.%I', schema, table)` to find its columns' comments.

use std::sync::Arc;

use crate::functions::numeric::columnar;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Format {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null) => {
                Ok(DataType::Utf8)
            }
            _ => plan_err!("format: expected format(formatstr TEXT, args…), got {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let columns = args
            .args
            .iter()
            .map(|a| cast(&a.to_array(args.number_rows)?, &DataType::Utf8))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        let texts: Vec<_> = columns.iter().map(|c| c.as_string::<i32>()).collect();
        let mut out = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            if texts[0].is_null(row) {
                out.push(None);
                continue;
            }
            let values: Vec<Option<&str>> = texts[1..]
                .iter()
                .map(|t| (!t.is_null(row)).then(|| t.value(row)))
                .collect();
            out.push(Some(format_row(texts[0].value(row), &values)?));
        }
        columnar(Arc::new(StringArray::from(out)), scalar)
    }
}

/// One row of `format`.
fn format_row(pattern: &str, values: &[Option<&str>]) -> Result<String> {
    let mut out = String::new();
    let mut next = values.iter();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let kind = chars.next();
        if kind == Some('%') {
            out.push('%');
            continue;
        }
        let Some(value) = next.next() else {
            return exec_err!("format: too few arguments for \"{pattern}\"");
        };
        match (kind, value) {
            (Some('s'), Some(v)) => out.push_str(v),
            (Some('s'), None) => {}
            (Some('I'), Some(v)) => out.push_str(&quote_ident(v)),
            (Some('I'), None) => {
                return exec_err!("format: a NULL cannot be formatted as an SQL identifier")
            }
            (Some('L'), Some(v)) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
            (Some('L'), None) => out.push_str("NULL"),
            (Some(other), _) => {
                return exec_err!("format: unrecognized conversion type specifier \"{other}\"")
            }
            (None, _) => return exec_err!("format: unterminated format() type specifier"),
        }
    }
    Ok(out)
}

/// `name` as an SQL identifier: as it is when it is lower case letters, digits and
/// underscores not starting with a digit, else double-quoted.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match plain {
        true => name.to_string(),
        false => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_postgresql_does() {
        assert_eq!(
            format_row("%I.%I", &[Some("public"), Some("Dept Scores")]).unwrap(),
            "public.\"Dept Scores\""
        );
        assert_eq!(
            format_row("%s|%s|%L|%L|100%%", &[Some("a"), None, Some("it's"), None]).unwrap(),
            "a||'it''s'|NULL|100%"
        );
        assert!(format_row("%s %s", &[Some("a")]).is_err());
        assert!(format_row("%x", &[Some("a")]).is_err());
    }
}
