//! XLSX input: the first sheet, or the one named by `--sheet`. A sheet holds at most
//! about a million rows, so it is read whole and then typed in chunks like CSV. The
//! header is the first of the top rows naming the table's columns (a title row above
//! it is skipped).

use calamine::{Data, Reader, Xlsx};

use super::cells::Layout;
use crate::model::TableDef;
use crate::{Error, Result};

/// Rows above the header a title may take.
const HEADER_SEARCH_ROWS: usize = 10;

/// A sheet as text: its header, the header's row, and every non-empty data row with
/// its spreadsheet row number.
pub struct Sheet {
    /// The file and sheet, for messages: `scores.xlsx [得分]`.
    pub name: String,
    pub headers: Vec<String>,
    pub header_line: usize,
    pub rows: Vec<(usize, Vec<String>)>,
}

pub fn read(path: &str, bytes: Vec<u8>, sheet: Option<&str>, def: &TableDef) -> Result<Sheet> {
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
    let mut rows: Vec<(usize, Vec<String>)> = range
        .rows()
        .enumerate()
        .map(|(i, cells)| (first_row + i, cells.iter().map(cell_text).collect()))
        .collect();
    if rows.is_empty() {
        return Err(Error::input(
            path,
            format!("sheet '{name}' is empty: no header row and no data"),
        ));
    }
    let header_at = rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .position(|(_, cells)| Layout::known_columns(def, cells) > 0)
        .unwrap_or(0);
    let (header_line, headers) = rows.remove(header_at);
    let rows = rows
        .into_iter()
        .skip(header_at)
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    Ok(Sheet {
        name: format!("{path} [{name}]"),
        headers,
        header_line,
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
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{day:02}")
        }
        Data::DateTime(d) => d.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}
