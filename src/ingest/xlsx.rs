//! XLSX input: the first sheet, or the one named by `--sheet`.

use calamine::{Data, Reader, Xlsx};

use super::raw::{RawRow, RawTable};
use crate::{Error, Result};

pub fn read(path: &str, bytes: Vec<u8>, sheet: Option<&str>) -> Result<RawTable> {
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| Error::input(path, format!("not a readable XLSX workbook: {e}")))?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| {
                Error::input(
                    path,
                    format!(
                        "the workbook has no sheet '{wanted}'; its sheets are: {}",
                        names.join(", ")
                    ),
                )
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| Error::input(path, "the workbook has no sheets"))?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| Error::input(path, format!("cannot read sheet '{name}': {e}")))?;
    let first_row = range.start().map(|(r, _)| r as usize + 1).unwrap_or(1);
    let mut rows = range.rows().enumerate();
    let headers = match rows.next() {
        Some((_, header)) => header.iter().map(cell_text).collect::<Vec<_>>(),
        None => {
            return Err(Error::input(
                path,
                format!("sheet '{name}' is empty: no header row and no data"),
            ))
        }
    };
    let rows = rows
        .map(|(i, cells)| RawRow {
            line: first_row + i,
            cells: cells.iter().map(cell_text).collect(),
        })
        .filter(|row| row.cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    Ok(RawTable {
        path: format!("{path} [{name}]"),
        headers,
        rows,
    })
}

/// A cell as the text a user would type: whole numbers without ".0", other numbers
/// in their shortest exact form, so 24053.22 stays 24053.22.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => format!("{f}"),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::String(s) => s.clone(),
        Data::DateTime(d) => d.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}
